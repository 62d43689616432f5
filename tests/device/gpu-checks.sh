#!/usr/bin/env bash
# tests/device/gpu-checks.sh [env|checks|study] - the CUDA backend's checks on a
# machine with a GPU, from the bundle `make device-bundle` writes
# (build/device/bundle.tar.zst): nothing is built there.  For the device tool
# of this workplace (see kernels/README.md): carry build/device and run
#   bash tests/device/gpu-checks.sh checks
# Every log goes to $OUT (default ./device-out).
#
# env: unpacks the bundle, says what it holds and whether the CUDA backend's
#   libraries resolve (seconds; the CI test runs this one).
# checks: nvidia-smi; the CUDA unit test (CPU vs GPU parity of every op);
#   the CLI test of --device; bench_cuda; then tests/bench/weno_epoch.sh on
#   the GPU: EPOCHS (default 3) epochs of ABMIL+WENO on the full
#   Fashion-MNIST-MIL set at r = 10 %, weno-fit against its PyTorch twin on
#   the same GPU, seconds per epoch (epochs 2..), the ratio and the target of
#   0.5 s, in the deterministic mode and with TF32 (WENO_CUDA_FAST=1).
# study: `make fmnist-mil` (pipelines/fmnist-mil.mk) with the bundle's tools,
#   nothing built: FMNIST_RATIOS, FMNIST_SEEDS, FMNIST_EPOCHS, FMNIST_METHODS,
#   FMNIST_FIT, FMNIST_WENO, FMNIST_MAX_BAGS from the environment (DEVICE
#   default cuda, FMNIST_OUT default /tmp/weno-study), stopped after
#   STUDY_SECONDS (default 480; then the exit status is 1 and the table holds
#   the runs that finished); the table and the runs' logs and scores go to $OUT.
set -uo pipefail
mode=${1:-checks}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
bundle=${BUNDLE:-$root/build/device/bundle.tar.zst}
W=${WENO_BUNDLE_DIR:-/tmp/weno-bundle}
log=$OUT/$mode.log
exec > >(tee -a "$log") 2>&1
# tee outlives the script unless waited for: close our ends, let it drain
teepid=$!
trap 'exec >&- 2>&-; wait "$teepid"' EXIT
say() { echo "== $(date -u +%T) $*"; }

if [ ! -x "$W/bin/weno-fit" ]; then
	[ -e "$bundle" ] || { echo "gpu-checks.sh: $bundle missing: run make device-bundle and carry build/device"; exit 1; }
	mkdir -p "$W" && zstd -dc "$bundle" | tar -C "$W" -xf - || exit 1
fi
# CUDA 13's cuBLAS and cuDNN 9: the toolkit's, or the Python wheels'
cudirs=""
for f in $(find -H /usr/local/cuda*/lib64 /usr/lib/x86_64-linux-gnu /opt /usr/local/lib -maxdepth 8 \
	\( -name 'libcublas.so.13*' -o -name 'libcudnn.so.9*' \) 2>/dev/null); do
	d=$(dirname "$f"); case ":$cudirs:" in *":$d:"*) ;; *) cudirs=$cudirs:$d ;; esac
done
export LD_LIBRARY_PATH=$W/libs$cudirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export BIN=$W/bin
say "bundle of commit $(cat "$W/COMMIT" 2>/dev/null), tree of commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null)"
say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || say "no nvidia-smi"
fm=${FMNIST_DIR:-$W/data/fashion-mnist}
[ -d "$fm" ] || fm=/usr/share/datasets/fashion-mnist
st=0

if [ "$mode" = env ]; then
	"$BIN/weno-fit" --version || st=1
	ls "$W/bin" "$W/libs" | tr '\n' ' '; echo
	miss=$(ldd "$W/lib/libweno_cuda.so" "$BIN"/* 2>&1 | grep "not found" | sort -u)
	if [ -n "$miss" ]; then echo "unresolved:"; echo "$miss"; else echo "every library resolves"; fi
elif [ "$mode" = checks ]; then
	say "test_cuda (CPU vs GPU, every op; the cuDNN algorithms chosen per shape)"
	WENO_CUDA_VERBOSE=1 "$W/tests/test_cuda" || st=1
	say "tests/cli/test_cuda.sh (--device)"
	(cd "$root" && BIN=$BIN bash tests/cli/test_cuda.sh) || st=1
	say "bench_cuda"
	"$W/bench/bench_cuda" || st=1
	say "WENO epochs on the GPU against the PyTorch twin on the same GPU: full Fashion-MNIST-MIL, r = 0.1, ABMIL+WENO"
	d=/tmp/weno-fm10
	[ -e "$d/manifest.tsv" ] || "$BIN/mil-synth" -q --idx "$fm" --pos-class 6 --ratio 0.1 --seed 0 -o "$d" || st=1
	# the image's python3 holds torch (/usr/bin/python3 may not)
	py=$(command -v python3 || echo /usr/bin/python3)
	for fast in 0 1; do
		say "weno_epoch.sh, WENO_BENCH_FAST=$fast"
		(cd "$root" && BUILD=$W WENO_BENCH_DEVICE=cuda WENO_BENCH_FAST=$fast WENO_BENCH_DATA=$d WENO_BENCH_IDX=$fm \
			WENO_BENCH_EPOCHS=${EPOCHS:-3} WENO_BENCH_PYTHON=$py bash tests/bench/weno_epoch.sh) || st=1
	done
elif [ "$mode" = study ]; then
	command -v make >/dev/null || { echo "gpu-checks.sh: study needs make"; exit 1; }
	S=${FMNIST_OUT:-/tmp/weno-study}
	# the pipeline's own rules with the bundle's tools (-o all: nothing is
	# built); every other FMNIST_* variable comes from the environment
	(cd "$root" && timeout "${STUDY_SECONDS:-480}" make --no-print-directory -o all fmnist-mil \
		BUILD="$W" FMNIST_DIR="$fm" FMNIST_OUT="$S" DEVICE="${DEVICE:-cuda}")
	rc=$?
	if [ $rc != 0 ]; then
		st=1
		say "the study stopped before its end (status $rc; 124: out of time): the table holds the runs that finished"
		done_runs=$(ls "$S"/data-r*-s*/*.auc.tsv 2>/dev/null)
		# shellcheck disable=SC2086
		[ -z "$done_runs" ] || (cd "$root" && BIN=$BIN bash pipelines/fmnist-table.sh "$S/table" $done_runs)
	fi
	cp "$S/table.md" "$S/table.tsv" "$OUT/" 2>/dev/null
	# what the table was made of, and every run's per-epoch log; not the models,
	# the bags nor the per-instance scores (hundreds of MB for the full study)
	(cd "$S" && find . \( -name '*.auc.tsv' -o -name '*.auc.txt' -o -name '*.log.tsv' -o -name 'table.*' \) -print |
		sort | tar -cf - -T -) | zstd -q -o "$OUT/study-runs.tar.zst" -f
else
	echo "usage: gpu-checks.sh [env|checks|study]"; exit 2
fi
say "done, status $st"
exit $st
