# CLI tests of the GPU-machine bundle (tests/device): it holds the MIL tools,
# the CUDA backend, the Debian libraries they link but neither the C
# library's nor CUDA's, and gpu-checks.sh unpacks and runs it.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$BIN/.." && pwd)
if [ ! -e "$BUILD/lib/libweno_cuda.so" ] || [ ! -x "$BUILD/tests/test_cuda" ]; then
	echo "SKIP test_device: no CUDA backend or CUDA test in $BUILD (a CUDA=0 build, or make test not run)"
	exit 0
fi
mkdir -p "$T/idx" && fake_idx "$T/idx" 3 2000 600
run env DEVICE_DATA=0 ZSTD_LEVEL=1 bash "$ROOT/tests/device/bundle.sh" "$BUILD" "$T/b.tar.zst"
zstd -dc "$T/b.tar.zst" 2>/dev/null | tar -tf - >"$T/list" 2>/dev/null
ok "bundle: tools, CUDA backend, CUDA test (and benchmarks where built)" '[ $status = 0 ] && grep -qx "./bin/weno-fit" "$T/list" && grep -qx "./lib/libweno_cuda.so" "$T/list" && grep -qx "./tests/test_cuda" "$T/list" && { [ ! -x "$BUILD/bench/bench_cuda" ] || grep -qx "./bench/bench_cuda" "$T/list"; }'
ok "bundle: OpenBLAS and zstd, not libc nor CUDA's libraries, no slide tools" 'grep -qx "./libs/libopenblas.so.0" "$T/list" && grep -qx "./libs/libzstd.so.1" "$T/list" && ! grep -Eq "libc\.so|libcublas|libcudnn|libcudart|wsi-tile" "$T/list"'
ok "bundle: no data with DEVICE_DATA=0, no temporary left" '! grep -q "fashion-mnist/" "$T/list" && [ -z "$(ls "$T" | grep tmp)" ]'
run env OUT="$T/dev" BUNDLE="$T/b.tar.zst" WENO_BUNDLE_DIR="$T/w" bash "$ROOT/tests/device/gpu-checks.sh" env
ok "gpu-checks.sh env: unpacks, runs a tool from the bundle, logs to \$OUT" '[ $status = 0 ] && has_out "weno-fit 0" && [ -s "$T/dev/env.log" ] && [ -x "$T/w/bin/weno-fit" ]'
run env OUT="$T/st" BUNDLE="$T/b.tar.zst" WENO_BUNDLE_DIR="$T/w" DEVICE=cpu FMNIST_DIR="$T/idx" \
	FMNIST_OUT="$T/study" FMNIST_RATIOS=0.1 FMNIST_SEEDS="0 1" FMNIST_METHODS="abmil abmil-weno" \
	FMNIST_EPOCHS=1 FMNIST_MAX_BAGS=3 FMNIST_FIT="--lr 1e-3" bash "$ROOT/tests/device/gpu-checks.sh" study
ok "gpu-checks.sh study (the pipeline's make rules, on the CPU here): the table with both seeds" '[ $status = 0 ] && grep -q "^| 0.1 | abmil-weno | .* | 2 |$" "$T/st/table.md" && grep -q "^| 0.1 | WENO − ABMIL | .*2 seeds)" "$T/st/table.md" && [ -s "$T/st/study-runs.tar.zst" ] && [ -z "$(find "$T/w" -name "*.o")" ]'
run env OUT="$T/st2" BUNDLE="$T/b.tar.zst" WENO_BUNDLE_DIR="$T/w" DEVICE=cpu FMNIST_DIR="$T/idx" \
	FMNIST_OUT="$T/study2" FMNIST_RATIOS=0.1 FMNIST_SEEDS=0 FMNIST_METHODS=abmil FMNIST_EPOCHS=100000 \
	FMNIST_MAX_BAGS=3 STUDY_SECONDS=2 bash "$ROOT/tests/device/gpu-checks.sh" study
zstd -dc "$T/st/study-runs.tar.zst" 2>/dev/null | tar -tf - >"$T/runs" 2>/dev/null
ok "the study's runs come back as tables, AUCs and logs, without models, bags or scores" \
	'grep -qx "./data-r0.1-s1/abmil-weno.auc.tsv" "$T/runs" && grep -qx "./data-r0.1-s1/abmil-weno.model.log.tsv" "$T/runs" && ! grep -Eq "scores|\.last$|\.model$|bags|\.wbag" "$T/runs"'
ok "the pipeline's WENO rows search the mining threshold (a log per threshold)" \
	'[ $(grep -c "^./data-r0.1-s0/abmil-weno.model.tau0\.[579].log.tsv$" "$T/runs") = 2 ]'
ok "gpu-checks.sh study out of time: stops, says so, fails" '[ $status = 1 ] && has_out "stopped before its end (status 124"'
# timeout's TERM reaches weno-fit, which ends its step and checkpoint after timeout has
# returned; wait for it, or its last words land in the next run's output
for i in $(seq 1 300); do pgrep -f "$T/study2" >/dev/null || break; sleep 0.1; done
run env OUT="$T/dev" BUNDLE="$T/none.tar.zst" WENO_BUNDLE_DIR="$T/w2" bash "$ROOT/tests/device/gpu-checks.sh" env
ok "gpu-checks.sh without the bundle: exit 1 saying what to do" '[ $status = 1 ] && has_out "make device-bundle"'
run env OUT="$T/dev" BUNDLE="$T/b.tar.zst" WENO_BUNDLE_DIR="$T/w" bash "$ROOT/tests/device/gpu-checks.sh" nonsense
ok "gpu-checks.sh with an unknown mode: usage, exit 2" '[ $status = 2 ] && has_out "usage"'
