# The CUDA backend's own code on the CPU emulation of the CUDA runtime,
# cuBLAS and cuDNN (tests/emu, build/emu/libweno_cuda.so): test_cuda (every
# op against the CPU, whole modules, determinism) and the --device CLI test
# run against it as they would on a GPU; then the ops whose kernels use
# barriers once more with each block's threads in reverse order (a result
# that depends on the order of the threads has a race).  What this shows
# and what it cannot (timing, the GPU's math library, real concurrency):
# tests/emu/cuda_runtime.h.  The convolutions and products once more in fast
# mode.  Lines are prefixed "emu", "emu-reverse", "emu-fast".
. "$(dirname "$0")/lib.sh"
BUILD=$(cd "$BIN/.." && pwd)
EMU=$BUILD/emu/libweno_cuda.so
if [ ! -e "$EMU" ] || [ ! -x "$BUILD/tests/test_cuda" ]; then
	echo "SKIP test_cuda_emu: no $EMU or test_cuda (a CUDA=0 build, or make test not run)"
	exit 0
fi
tag() { sed -E "s/^(PASS|FAIL|SKIP) /\1 $1 /"; }
# one BLAS thread: the emulation runs in one thread, and idle OpenBLAS
# threads spinning beside it cost more than they give
export WENO_CUDA_LIB=$EMU WENO_CUDA_DRIVER=libm.so.6 OPENBLAS_NUM_THREADS=1
# an emulation built with make EMU_SANITIZE=address: its runtime goes first
asan=$(ldd "$EMU" 2>/dev/null | awk '/libasan/ {print $3}')
if [ -n "$asan" ]; then
	export LD_PRELOAD=$asan ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=0
	echo "# AddressSanitizer: $asan"
fi
# the unit test and the CLI test side by side (each one thread)
"$BUILD/tests/test_cuda" >"$T/unit" 2>&1 &
unit=$!
CUDA_TEST_EPOCHS=1 BIN=$BIN bash "$(dirname "$0")/test_cuda.sh" >"$T/cli" 2>&1
wait $unit
tag emu <"$T/unit"
EMU_ORDER=reverse CHECK_ONLY=test_cuda_batchnorm,test_cuda_softmax_wsum,test_cuda_abmil_attn,test_cuda_losses,test_cuda_pooling,test_cuda_optim \
	"$BUILD/tests/test_cuda" 2>&1 | tag emu-reverse
# fast mode (WENO_CUDA_FAST=1): the tensor-op algorithms the heuristics offer
WENO_CUDA_FAST=1 CHECK_ONLY=test_cuda_selection,test_cuda_linear,test_cuda_conv2d \
	"$BUILD/tests/test_cuda" 2>&1 | tag emu-fast
tag emu <"$T/cli"
rm -rf "$T"
