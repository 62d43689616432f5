/* tests/emu/cuda_runtime.h - the part of the CUDA runtime that kernels/
 * uses, emulated on the CPU, so that the CUDA backend's own code (its host
 * logic and its kernels, unchanged) runs and is tested on a machine without
 * a GPU.  Built by `make emu` into build/emu/libweno_cuda.so, a drop-in for
 * the real backend library (WENO_CUDA_LIB); tests/cli/test_cuda_emu.sh runs
 * test_cuda and the --device CLI test against it.
 *
 * What it is: device memory is host memory (cudaMalloc fills it with NaN
 * bytes, as a GPU leaves it unset); every copy and kernel runs at once, in
 * the calling thread, unless its stream is capturing (graphs, below;
 * streams and events are bookkeeping only); a kernel launch runs every
 * block in order and, inside a block, every thread: as a plain call for
 * kernels that never call __syncthreads, as cooperative fibers (one stack
 * each, switched at every barrier) for those that do.
 * Launch limits (1024 threads a block, grid y and z up to 65535) and
 * barriers that not every thread of a block reaches are errors, as on a GPU.
 * EMU_ORDER=reverse runs a block's threads from the last to the first (a
 * result that depends on the order has a race).  cuBLAS is OpenBLAS
 * (column-major, as cuBLAS), cuDNN direct loops in double (cudnn.h).
 *
 * What it is not: a GPU.  Timing, the device's own math library (expf and
 * friends differ in the last bits), FMA contraction (off here), warp-level
 * behaviour and real concurrency are not emulated: parity and determinism
 * on a real GPU still need the real run.
 *
 * Graphs (stream capture, as CUDA 13 in Global mode): between
 * cudaStreamBeginCapture and cudaStreamEndCapture, the work queued on the
 * stream is recorded, not run: kernel launches (the kernel, its launch shape
 * and its arguments by value), device-to-device cudaMemcpyAsync,
 * cudaMemsetAsync, and cublasSgemm and the three cuDNN convolutions on a
 * handle set to the stream (alpha and beta read, descriptors copied,
 * algorithm and workspace baked in, at the call).  What the real call checks
 * of its arguments (launch limits, cuBLAS values, cuDNN shapes and
 * algorithm) is checked when it is recorded and fails the call; pointers,
 * ranges and workspace sizes when the node runs, as an eager call is the
 * same node run at once.  cudaGraphLaunch runs the nodes in order and stops
 * at the first that fails, returning its error (cudaErrorLaunchFailure for
 * a cuBLAS or cuDNN node).  Refused while a capture is on (the stream's own,
 * or any Global or ThreadLocal one; one thread here): cudaMalloc, cudaFree,
 * cudaMallocHost, cudaFreeHost, cudaStreamSynchronize, cudaEventRecord,
 * cudaEventSynchronize; on the capturing stream, a host copy and a graph
 * launch.  A refused call returns cudaErrorStreamCaptureUnsupported, does
 * nothing and invalidates the capture, as an invalid launch shape does: the
 * stream's later work fails (cudaErrorStreamCaptureInvalidated, cuBLAS and
 * cuDNN EXECUTION_FAILED) and cudaStreamEndCapture returns that error and
 * no graph.  Stricter than CUDA, where an event record and a pinned host
 * copy on the capturing stream become nodes, a graph launch a child graph,
 * and another stream may be synchronized.  Every failing runtime call sets
 * the error cudaGetLastError returns.
 *
 * The .cu sources are compiled as C++ after one textual change: a launch
 * `k<<<g, b, sh, st>>>(args)` becomes `emu_launch("k", k, g, b, sh, st,
 * args)` (the Makefile's sed line).
 */
#ifndef WENO_EMU_CUDA_RUNTIME_H
#define WENO_EMU_CUDA_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <functional>

typedef enum cudaError {
	cudaSuccess = 0,
	cudaErrorInvalidValue = 1,
	cudaErrorMemoryAllocation = 2,
	cudaErrorInvalidConfiguration = 9,
	cudaErrorInsufficientDriver = 35,
	cudaErrorInvalidDeviceFunction = 98,
	cudaErrorNoDevice = 100,
	cudaErrorIllegalState = 401,
	cudaErrorLaunchFailure = 719,
	cudaErrorStreamCaptureUnsupported = 900,
	cudaErrorStreamCaptureInvalidated = 901,
} cudaError_t;

typedef struct emu_stream *cudaStream_t;
typedef struct emu_event *cudaEvent_t;
typedef struct emu_graph *cudaGraph_t;
typedef struct emu_graph_exec *cudaGraphExec_t;

enum cudaStreamCaptureMode {
	cudaStreamCaptureModeGlobal = 0,
	cudaStreamCaptureModeThreadLocal = 1,
	cudaStreamCaptureModeRelaxed = 2,
};

enum cudaStreamCaptureStatus {
	cudaStreamCaptureStatusNone = 0,
	cudaStreamCaptureStatusActive = 1,
	cudaStreamCaptureStatusInvalidated = 2,
};

enum cudaMemcpyKind {
	cudaMemcpyHostToHost = 0,
	cudaMemcpyHostToDevice = 1,
	cudaMemcpyDeviceToHost = 2,
	cudaMemcpyDeviceToDevice = 3,
	cudaMemcpyDefault = 4,
};

#define cudaStreamNonBlocking 0x01
#define cudaEventDisableTiming 0x02

struct cudaDeviceProp {
	char name[256];
	int major, minor;
	int multiProcessorCount;
	size_t totalGlobalMem;
};

struct cudaFuncAttributes {
	int maxThreadsPerBlock;
};

struct uint3 {
	unsigned x, y, z;
};

struct dim3 {
	unsigned x, y, z;
	dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s);
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *st);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t emu_func_attributes(cudaFuncAttributes *a, const void *f);
template <typename F> static inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, F f)
{
	return emu_func_attributes(a, (const void *)f);
}

/* ---- the kernel side ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* one block runs at a time, its threads on one OS thread: a static is
 * shared by the block's threads, as shared memory is */
#define __shared__ static

extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
void __syncthreads(void);

/* the rounding intrinsics: one IEEE operation each (built with
 * -ffp-contract=off, nothing is fused anyway) */
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }

/* queues body (the kernel called with its arguments) on stream s for every
 * thread of grid g of blocks b: run at once, or recorded when s is capturing;
 * key tells the kernels apart (whether one uses barriers is learnt on its
 * first run), name is for messages */
void emu_kernel(cudaStream_t s, dim3 g, dim3 b, size_t shmem, std::function<void()> body,
                const void *key, const char *name);

/* the arguments convert to the kernel's parameter types where the launch
 * is written (a literal 0 for a pointer, as with <<<>>>), and are kept by
 * value: a recorded launch replays them as they were */
template <typename T> struct emu_same {
	typedef T type;
};
template <typename... P>
static inline void emu_launch(const char *name, void (*k)(P...), dim3 g, dim3 b, size_t shmem,
                              cudaStream_t s, typename emu_same<P>::type... a)
{
	emu_kernel(s, g, b, shmem, [k, a...]() { k(a...); }, (const void *)k, name);
}

#endif
