# CLI tests of --device: without a GPU, `--device cuda` exits 1 saying why and
# `--device auto` trains on the CPU with a note; with one, a short training
# run on the CPU and on the GPU give validation AUCs within 0.02, and the
# GPU scores a CPU-trained model as the CPU does (within 1e-4).
. "$(dirname "$0")/lib.sh"
fake_idx "$T" 11 1200 300
"$BIN/mil-synth" -q --idx "$T" --pos-class 3 --ratio 0.2 --bag-size 10 --val-frac 0.3 -o "$T/ds" 2>/dev/null
M="$T/ds/manifest.tsv"
# CUDA_TEST_EPOCHS: 2 (test_cuda_emu.sh runs 1: its GPU is an emulation)
FIT="$BIN/weno-fit -m $M --epochs ${CUDA_TEST_EPOCHS:-2} --lr 1e-2 --batch 32 --threads 2"

# last epoch's validation bag AUCs (student, teacher) of a training log
val_aucs() { awk -F'\t' 'END { print $7, $8 }' "$1"; }

# The CUDA backend is a library loaded on demand (lib/nn/backend.c): the
# tools link no CUDA library, and a missing backend library is a reason, not
# a crash.  (In a CPU-only build the loader is not there: the reason is the
# build's.)
: >"$T/out"; : >"$T/err"
libs=$(ldd "$BIN/weno-fit" 2>/dev/null | grep -Eo 'lib(cudart|cublas|cudnn)[^ ]*' | tr '\n' ' ')
ok "weno-fit links no CUDA library (they load with the backend, on demand)" '[ -z "$libs" ]'
# WENO_CUDA_DRIVER=libm.so.6 stands in for the driver library, so that the
# loading of the backend runs here too (the CUDA runtime then finds no driver)
cuda_env() { env WENO_CUDA_DRIVER=libm.so.6 "$@"; }
run cuda_env WENO_CUDA_LIB="$T/none/libweno_cuda.so" $FIT -q --device cuda -o "$T/n.model"
ok "--device cuda with the backend library missing exits 1 and says why" \
	'[ $status = 1 ] && has_err "no usable GPU" && { has_err "could not be loaded" || has_err "has no CUDA backend"; } && no_file "$T/n.model"'
run cuda_env WENO_CUDA_LIB="$T/none/libweno_cuda.so" $FIT -q --epochs 1 --device auto -o "$T/n.model"
ok "--device auto with the backend library missing trains on the CPU" '[ $status = 0 ] && [ -s "$T/n.model" ]'
printf 'not an ELF file\n' >"$T/bad.so"
run cuda_env WENO_CUDA_LIB="$T/bad.so" $FIT -q --device cuda -o "$T/b.model"
ok "--device cuda with a broken backend library exits 1 naming it" \
	'[ $status = 1 ] && { has_err "bad.so" || has_err "has no CUDA backend"; } && no_file "$T/b.model"'
run cuda_env WENO_CUDA_LIB=libm.so.6 $FIT -q --device cuda -o "$T/b.model"
ok "--device cuda with a library that is not the backend exits 1 saying so" \
	'[ $status = 1 ] && { has_err "not this build" || has_err "has no CUDA backend"; } && no_file "$T/b.model"'
if [ -e "$BIN/../lib/libweno_cuda.so" ]; then
	run cuda_env $FIT -q --device cuda -o "$T/b.model"
	ok "the backend library beside the tools loads (and finds no GPU here, or trains)" \
		'{ [ $status = 1 ] && has_err "no usable GPU" && ! has_err "could not be loaded" && ! has_err "not this build"; } || [ $status = 0 ]'
fi
# without the driver the library is never opened: a broken one named by
# WENO_CUDA_LIB goes unnoticed, the reason is the driver
if [ -e "$BIN/../lib/libweno_cuda.so" ] && ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
	run env -u WENO_CUDA_DRIVER WENO_CUDA_LIB="$T/bad.so" $FIT -q --device cuda -o "$T/d.model"
	ok "without the driver the backend library is not even opened" \
		'[ $status = 1 ] && has_err "no NVIDIA driver" && ! has_err "bad.so"'
fi

run $FIT -q --device tpu -o "$T/x.model"
ok "an unknown --device is bad usage" '[ $status = 2 ] && has_err "auto|cpu|cuda"'

run $FIT -q --device cuda -o "$T/g.model"
if [ $status = 1 ] && has_err "no usable GPU"; then
	why=$(sed -n 's/.*no usable GPU: //p' "$T/err" | head -1)
	ok "--device cuda without a GPU exits 1 and says why" '[ -n "$why" ] && no_file "$T/g.model"'
	run $FIT --epochs 1 --device auto -o "$T/a.model"
	ok "--device auto without a GPU trains on the CPU with a note" '[ $status = 0 ] && [ -s "$T/a.model" ] && has_err "training on the CPU"'
	run "$BIN/weno-score" --device cuda "$T/a.model" -m "$M" -o "$T/s.tsv"
	ok "weno-score --device cuda without a GPU exits 1" '[ $status = 1 ] && has_err "no usable GPU" && no_file "$T/s.tsv"'
	# the GPU epoch benchmark (make bench, gpu-checks.sh) skips at once
	run env BUILD="$BIN/.." WENO_BENCH_DEVICE=cuda bash "$(dirname "$0")/../bench/weno_epoch.sh"
	ok "weno_epoch.sh on cuda without a GPU says SKIP and why, before building any data" \
		'[ $status = 0 ] && has_out "^SKIP: weno-fit --device cuda: no usable GPU: $why" && ! has_out "mil-synth"'
	echo "SKIP cpu and cuda training give the same AUCs: $why"
	echo "SKIP weno-score on the GPU matches the CPU: $why"
else
	ok "--device cuda trains" '[ $status = 0 ] && [ -s "$T/g.model" ]'
	run $FIT -q --device cpu -o "$T/c.model"
	ok "--device cpu trains" '[ $status = 0 ] && [ -s "$T/c.model" ]'
	read -r gs gt <<<"$(val_aucs "$T/g.model.log.tsv")"
	read -r cs ct <<<"$(val_aucs "$T/c.model.log.tsv")"
	echo "# validation bag AUCs after 2 epochs: student cpu $cs cuda $gs, teacher cpu $ct cuda $gt"
	ok "cpu and cuda training give the same AUCs (within 0.02)" 'awk -v a="$gs" -v b="$cs" -v c="$gt" -v d="$ct" "BEGIN { x = a - b; y = c - d; exit !(x <= 0.02 && -x <= 0.02 && y <= 0.02 && -y <= 0.02) }"'
	run $FIT --device auto -o "$T/a.model"
	ok "--device auto picks the GPU" '[ $status = 0 ] && has_err "training on .*sm_"'
	run "$BIN/weno-score" --threads 2 --device cpu "$T/c.model" -m "$M" --split val,test -o "$T/sc.tsv"
	run "$BIN/weno-score" --device cuda "$T/c.model" -m "$M" --split val,test -o "$T/sg.tsv"
	ok "weno-score on the GPU matches the CPU (scores within 1e-4)" '[ $status = 0 ] && paste "$T/sc.tsv" "$T/sg.tsv" | awk -F"\t" "NR > 1 { for (k = 8; k <= 9; k++) { a = \$k; b = \$(k + 9); if (a == \"NA\" && b == \"NA\") continue; d = a - b; if (d > 1e-4 || -d > 1e-4) { print \"row \" NR \": \" a \" vs \" b; bad = 1 } } } END { exit bad }"'
fi
rm -rf "$T"
