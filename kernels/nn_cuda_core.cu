/* nn_cuda_core.cu - the CUDA backend's context, memory, matrix products
 * (cuBLAS), convolutions (cuDNN) and its operation table nn_cuda.  The
 * CUDA kernels are in nn_cuda_ops.cu; nn_cuda.cuh describes the context.
 *
 * Row-major products through column-major cuBLAS: a row-major X [r, c] with
 * leading dimension ld is the column-major Xᵀ, so C = op(A) op(B) is
 * computed as Cᵀ = op(B)ᵀ op(A)ᵀ, i.e. cublasSgemm with the operands
 * swapped and M, N swapped (gemm below keeps nn_cpu.c's row-major
 * signature).
 *
 * Convolutions: one cached plan per shape (descriptors, algorithms,
 * workspace sizes).  Algorithms come from cuDNN's heuristics
 * (cudnnGet*Algorithm_v7, no timing: cudnnFind would pick by a race),
 * keeping the first that is deterministic and, unless WENO_CUDA_FAST=1,
 * uses FMA math (PyTorch's way to keep TF32 off for float data); when none
 * qualifies, IMPLICIT_GEMM forward and ALGO_1 backward (documented
 * deterministic).  The workspace is the caller's conv scratch when that is
 * large enough (it is sized for the CPU's im2col), else the context's own.
 */
#include "nn_cuda.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cu_state cu;

/* ---------------- errors ---------------- */

void cu_fail(const char *what, const char *why)
{
	if (cu.failed)
		return;
	if (cu.capturing) {
		/* an op the device would not record: the recording is spoiled,
		 * not the context (graph_end gives up graphs, the op runs again
		 * outside a recording and fails there if it is a real error) */
		if (!cu.refused)
			snprintf(cu.refusal, sizeof cu.refusal, "%s: %s", what, why);
		cu.refused = 1;
		cu_spoil(what);
		return;
	}
	cu.failed = 1;
	snprintf(cu.errmsg, sizeof cu.errmsg, "%s: %s", what, why);
	/* the ops have no error return: say it once, or a run would go on
	 * silently with garbage (every later op is skipped, downloads are NaN) */
	fprintf(stderr, "weno: CUDA backend: %s; later GPU operations are skipped\n", cu.errmsg);
}

int cu_check(cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 0;
	cudaGetLastError(); /* clear a non-sticky error so the next check is about its own call */
	cu_fail(what, cudaGetErrorString(e));
	return -1;
}

static int blas_check(cublasStatus_t st, const char *what)
{
	if (st == CUBLAS_STATUS_SUCCESS)
		return 0;
	char why[64];
	snprintf(why, sizeof why, "cuBLAS status %d", (int)st);
	cu_fail(what, why);
	return -1;
}

static int dnn_check(cudnnStatus_t st, const char *what)
{
	if (st == CUDNN_STATUS_SUCCESS)
		return 0;
	cu_fail(what, cudnnGetErrorString(st));
	return -1;
}

static int cuda_error(char *msg, size_t n)
{
	if (msg && n)
		snprintf(msg, n, "%s", cu.failed ? cu.errmsg : "");
	return cu.failed;
}

/* ---------------- initialisation ---------------- */

/* why the runtime cannot give a device, in words a user can act on */
static void no_device_reason(cudaError_t e)
{
	int rt = 0;
	cudaRuntimeGetVersion(&rt);
	if (e == cudaErrorInsufficientDriver)
		snprintf(cu.why, sizeof cu.why,
		         "the NVIDIA driver is missing or too old for CUDA %d.%d (no GPU usable)",
		         rt / 1000, rt % 1000 / 10);
	else if (e == cudaErrorNoDevice)
		snprintf(cu.why, sizeof cu.why, "no CUDA-capable device is detected");
	else
		snprintf(cu.why, sizeof cu.why, "CUDA runtime: %s", cudaGetErrorString(e));
}

static int init_device(void)
{
	int count = 0;
	cudaError_t e = cudaGetDeviceCount(&count);
	if (e != cudaSuccess || count < 1) {
		no_device_reason(e == cudaSuccess ? cudaErrorNoDevice : e);
		cudaGetLastError();
		return -1;
	}
	if ((e = cudaSetDevice(0)) != cudaSuccess ||
	    (e = cudaStreamCreateWithFlags(&cu.stream, cudaStreamNonBlocking)) != cudaSuccess) {
		snprintf(cu.why, sizeof cu.why, "cannot start device 0: %s", cudaGetErrorString(e));
		cudaGetLastError();
		return -1;
	}
	if ((e = cu_probe_kernels()) != cudaSuccess) {
		cudaDeviceProp p;
		cudaGetDeviceProperties(&p, 0);
		snprintf(cu.why, sizeof cu.why,
		         "the kernels were not compiled for this GPU (%.64s, sm_%d%d): %.64s; rebuild with "
		         "NVCCFLAGS naming its architecture",
		         p.name, p.major, p.minor, cudaGetErrorString(e));
		cudaGetLastError();
		return -1;
	}
	return 0;
}

static int init_libraries(void)
{
	cublasStatus_t bs = cublasCreate(&cu.blas);
	if (bs != CUBLAS_STATUS_SUCCESS) {
		snprintf(cu.why, sizeof cu.why, "cuBLAS initialisation failed (status %d)", (int)bs);
		return -1;
	}
	cublasSetStream(cu.blas, cu.stream);
	/* no TF32 unless asked: CUBLAS_DEFAULT_MATH never lowers float precision */
	cublasSetMathMode(cu.blas, cu.fast ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
	cublasSetAtomicsMode(cu.blas, CUBLAS_ATOMICS_NOT_ALLOWED);
	cudnnStatus_t ds = cudnnCreate(&cu.dnn);
	if (ds != CUDNN_STATUS_SUCCESS) {
		snprintf(cu.why, sizeof cu.why, "cuDNN initialisation failed: %s",
		         cudnnGetErrorString(ds));
		return -1;
	}
	cudnnSetStream(cu.dnn, cu.stream);
	return 0;
}

/* cuBLAS's workspace: our own, set once (after cublasSetStream, which resets
 * it), so that cuBLAS never allocates inside a recording and chooses its
 * kernels from the same workspace in graphs and out of them; 32 MiB, what
 * NVIDIA advises for Hopper.  Without it cuBLAS keeps its default pool. */
#define CU_BLAS_WS ((size_t)32 << 20)

static void init_blas_workspace(void)
{
	if (cudaMalloc(&cu.blas_ws, CU_BLAS_WS) != cudaSuccess) {
		cudaGetLastError();
		cu.blas_ws = NULL;
		return;
	}
	if (cublasSetWorkspace(cu.blas, cu.blas_ws, CU_BLAS_WS) != CUBLAS_STATUS_SUCCESS) {
		cudaFree(cu.blas_ws);
		cu.blas_ws = NULL;
	}
}

static int init_buffers(void)
{
	cudaError_t e = cudaMalloc((void **)&cu.dloss, 8 * sizeof(double));
	if (e == cudaSuccess)
		e = cudaMallocHost((void **)&cu.hloss, 8 * sizeof(double));
	if (e != cudaSuccess) {
		snprintf(cu.why, sizeof cu.why, "cannot allocate on the GPU: %s",
		         cudaGetErrorString(e));
		cudaGetLastError();
		return -1;
	}
	return 0;
}

static void describe(void)
{
	cudaDeviceProp p;
	if (cudaGetDeviceProperties(&p, 0) != cudaSuccess)
		return;
	snprintf(cu.desc, sizeof cu.desc, "%.96s (sm_%d%d, %d SMs, %.0f GiB), cuDNN %zu, %s", p.name,
	         p.major, p.minor, p.multiProcessorCount,
	         (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), cudnnGetVersion(),
	         cu.fast ? "fast (TF32)" : "deterministic");
}

static void init_once(void)
{
	if (cu.tried)
		return;
	cu.tried = 1;
	const char *f = getenv("WENO_CUDA_FAST");
	cu.fast = f && !strcmp(f, "1");
	const char *g = getenv("WENO_CUDA_GRAPHS");
	cu.graphs_off = g && !strcmp(g, "0");
	const char *v = getenv("WENO_CUDA_VERBOSE");
	cu.verbose = v && !strcmp(v, "1");
	if (init_device() < 0 || init_libraries() < 0 || init_buffers() < 0)
		return;
	init_blas_workspace();
	cu.ok = 1;
	describe();
}

static int cuda_available(char *why, size_t n)
{
	init_once();
	if (why && n)
		snprintf(why, n, "%s", cu.ok ? "" : cu.why);
	return cu.ok;
}

static const char *cuda_describe(void)
{
	init_once();
	return cu.ok ? cu.desc : "";
}

/* ---------------- scratch ---------------- */

/* grows *buf to at least bytes (by half again, to avoid creeping).  Inside
 * a recording nothing may be allocated: the size is noted in *later, the
 * recording spoiled, and graph_end grows the buffer. */
static void *grow(void **buf, size_t *have, size_t *later, size_t bytes, const char *what)
{
	if (bytes <= *have)
		return *buf;
	if (cu.capturing) {
		if (bytes > *later)
			*later = bytes;
		cu_spoil(what);
		return NULL;
	}
	cu.gen++; /* graphs recorded with the old buffer are stale */
	size_t want = bytes + bytes / 2;
	/* the old buffer may still be read by queued kernels */
	if (cu_check(cudaStreamSynchronize(cu.stream), what) < 0)
		return NULL;
	if (*buf)
		cudaFree(*buf);
	*buf = NULL;
	*have = 0;
	if (cu_check(cudaMalloc(buf, want), what) < 0) {
		*buf = NULL;
		return NULL;
	}
	*have = want;
	return *buf;
}

void *cu_tmp(size_t bytes)
{
	return grow(&cu.tmp, &cu.tmp_bytes, &cu.want_tmp, bytes ? bytes : 8, "reduction scratch");
}

static void *workspace(size_t bytes)
{
	return grow(&cu.ws, &cu.ws_bytes, &cu.want_ws, bytes, "cuDNN workspace");
}

/* ---------------- memory ---------------- */

static float *cuda_alloc(size_t n)
{
	init_once();
	if (!cu_live() || cu_spoil("alloc"))
		return NULL;
	void *p = NULL;
	size_t bytes = (n ? n : 1) * sizeof(float);
	if (cudaMalloc(&p, bytes) != cudaSuccess) {
		cudaGetLastError(); /* out of memory is the caller's ERR_NOMEM, not a sticky error */
		return NULL;
	}
	if (cu_check(cudaMemsetAsync(p, 0, bytes, cu.stream), "alloc: zero") < 0 ||
	    cu_check(cudaStreamSynchronize(cu.stream), "alloc: zero") < 0) {
		cudaFree(p);
		return NULL;
	}
	return (float *)p;
}

static void cuda_free(float *p)
{
	if (!p || !cu.ok || cu_spoil("free"))
		return;
	/* queued kernels may still use p; cudaFree would wait too, but say so */
	cudaStreamSynchronize(cu.stream);
	cudaFree(p);
}

static void cuda_zero(float *p, size_t n)
{
	if (cu_live() && n)
		cu_check(cudaMemsetAsync(p, 0, n * sizeof *p, cu.stream), "zero");
}

static void cuda_copy(float *dst, const float *src, size_t n)
{
	if (!cu_live() || !n || dst == src)
		return;
	size_t bytes = n * sizeof *dst;
	int overlap = dst < src + n && src < dst + n;
	if (!overlap) {
		cu_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu.stream),
		         "copy");
		return;
	}
	/* memmove semantics (nn_cpu uses memmove): through the scratch */
	void *t = cu_tmp(bytes);
	if (t && !cu_check(cudaMemcpyAsync(t, src, bytes, cudaMemcpyDeviceToDevice, cu.stream),
	                   "copy"))
		cu_check(cudaMemcpyAsync(dst, t, bytes, cudaMemcpyDeviceToDevice, cu.stream), "copy");
}

/* Uploads are staged: the caller's data is copied into one of the ring's
 * pinned buffers and an asynchronous copy is queued from there, so the
 * caller may reuse its buffer at once (nn.h) while the host goes on to the
 * next bag or batch and the GPU is still computing: only a slot's own
 * earlier copy is waited for before the slot is refilled.  Uploads larger
 * than a slot travel in pieces.  Where pinned memory cannot be had, the
 * upload is synchronous (the caller's buffer, then a wait for the stream).
 * 1: slot s is ready for b bytes; 0: no pinned memory (go synchronous);
 * -1: a CUDA error (sticky). */
static int stage_ready(struct cu_stage *s, size_t b)
{
	if (!s->done && cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming) != cudaSuccess) {
		cudaGetLastError();
		s->done = NULL;
		return 0;
	}
	if (s->pending) {
		if (cu_check(cudaEventSynchronize(s->done), "upload (or an earlier kernel)") < 0)
			return -1;
		s->pending = 0;
	}
	if (s->bytes < b) {
		if (s->p)
			cudaFreeHost(s->p);
		s->p = NULL;
		s->bytes = 0;
		size_t want = b + b / 2 < CU_STAGE_MAX ? b + b / 2 : CU_STAGE_MAX;
		if (cudaMallocHost(&s->p, want > b ? want : b) != cudaSuccess) {
			cudaGetLastError(); /* out of pinned memory: not an error, the slow way */
			s->p = NULL;
			return 0;
		}
		s->bytes = want > b ? want : b;
	}
	return 1;
}

static void cuda_upload(float *dst, const float *host, size_t n)
{
	if (!cu_live() || !n || cu_spoil("upload"))
		return;
	const char *src = (const char *)host;
	char *d = (char *)dst;
	size_t left = n * sizeof *dst;
	while (left) {
		size_t b = left < CU_STAGE_MAX ? left : CU_STAGE_MAX;
		struct cu_stage *s = &cu.stage[cu.stage_next];
		cu.stage_next = (cu.stage_next + 1) % CU_STAGE_SLOTS;
		int r = stage_ready(s, b);
		if (r < 0)
			return;
		if (r == 0) {
			/* synchronous: the caller may reuse host at once */
			if (cu_check(cudaMemcpyAsync(d, src, left, cudaMemcpyHostToDevice, cu.stream),
			             "upload") == 0)
				cu_check(cudaStreamSynchronize(cu.stream), "upload");
			return;
		}
		memcpy(s->p, src, b);
		if (cu_check(cudaMemcpyAsync(d, s->p, b, cudaMemcpyHostToDevice, cu.stream), "upload") < 0 ||
		    cu_check(cudaEventRecord(s->done, cu.stream), "upload") < 0)
			return;
		s->pending = 1;
		src += b;
		d += b;
		left -= b;
	}
}

static void fill_nan(float *host, size_t n)
{
	for (size_t i = 0; i < n; i++)
		host[i] = NAN;
}

static void cuda_download(float *host, const float *src, size_t n)
{
	if (!n)
		return;
	if (!cu_live() || cu_spoil("download")) {
		fill_nan(host, n);
		return;
	}
	if (cu_check(cudaMemcpyAsync(host, src, n * sizeof *host, cudaMemcpyDeviceToHost,
	                             cu.stream), "download") < 0 ||
	    cu_check(cudaStreamSynchronize(cu.stream), "download (or an earlier kernel)") < 0)
		fill_nan(host, n);
}

/* ---------------- matrix products ---------------- */

/* C [M,N] = alpha op(A) op(B) + beta C, row-major, as nn_cpu.c's gemm */
static void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const char *what)
{
	if (M <= 0 || N <= 0 || !cu_live())
		return;
	cublasOperation_t oa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, ob = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
	blas_check(cublasSgemm(cu.blas, oa, ob, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc),
	           what);
}

static void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                           int N, int C, int OC)
{
	gemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, 0.0f, out, OC, "linear_forward");
	if (bias)
		cu_bias_rows(out, bias, N, OC);
}

static void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int C, int OC)
{
	if (dinp)
		gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C, "linear_backward dinp");
	if (dweight)
		gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C,
		     "linear_backward dweight");
	if (dbias)
		cu_colsum_add(dbias, dout, N, OC);
}

/* linear_backward with the plain SGD step fused in (nn.h): dinp with the
 * weights of the forward pass first, then W += -lr doutᵀ inp as one GEMM
 * with beta 1 (the gradient is never stored) and b += -lr Σ dout */
static void linear_backward_sgd(float *dinp, float *weight, float *bias, const float *dout,
                                const float *inp, int N, int C, int OC, float lr)
{
	if (dinp)
		gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C,
		     "linear_backward_sgd dinp");
	gemm(1, 0, OC, C, N, -lr, dout, OC, inp, C, 1.0f, weight, C, "linear_backward_sgd weight");
	if (bias)
		cu_colsum_axpy(bias, dout, N, OC, -lr);
}

static void wsum_forward(float *out, const float *a, const float *h, int n, int K, int D)
{
	gemm(1, 0, K, D, n, 1.0f, a, K, h, D, 0.0f, out, D, "wsum_forward");
}

static void wsum_backward(float *da, float *dh, const float *dout, const float *a,
                          const float *h, int n, int K, int D)
{
	if (da)
		gemm(0, 1, n, K, D, 1.0f, h, D, dout, D, 1.0f, da, K, "wsum_backward da");
	if (dh)
		gemm(0, 0, n, D, K, 1.0f, a, K, dout, D, 1.0f, dh, D, "wsum_backward dh");
}

/* ---------------- convolution plans (cuDNN) ---------------- */

#define PLANS 96                  /* shapes cached: a resnet18 at four batch sizes fits */
#define WS_LIMIT ((size_t)1 << 30) /* no algorithm needing more than 1 GiB of workspace */

struct conv_plan {
	int used;
	struct nn_conv_shape s;
	cudnnTensorDescriptor_t x, y;
	cudnnFilterDescriptor_t w;
	cudnnConvolutionDescriptor_t cf, cd, cw;   /* forward, backward data, backward filter */
	cudnnConvolutionFwdAlgo_t fwd;
	cudnnConvolutionBwdDataAlgo_t bwd_data;
	cudnnConvolutionBwdFilterAlgo_t bwd_filter;
	size_t ws_fwd, ws_data, ws_filter;         /* bytes */
	unsigned long last_use;                    /* plan_clock at the last use */
};

static struct conv_plan plans[PLANS];
static unsigned long plan_clock;              /* uses, for least-recently-used eviction */

static int same_shape(const struct nn_conv_shape *a, const struct nn_conv_shape *b)
{
	return a->N == b->N && a->C == b->C && a->H == b->H && a->W == b->W && a->OC == b->OC &&
	       a->OH == b->OH && a->OW == b->OW && a->KH == b->KH && a->KW == b->KW &&
	       a->SH == b->SH && a->SW == b->SW && a->PH == b->PH && a->PW == b->PW;
}

static void plan_destroy(struct conv_plan *p)
{
	if (!p->used)
		return;
	cudnnDestroyTensorDescriptor(p->x);
	cudnnDestroyTensorDescriptor(p->y);
	cudnnDestroyFilterDescriptor(p->w);
	cudnnDestroyConvolutionDescriptor(p->cf);
	cudnnDestroyConvolutionDescriptor(p->cd);
	cudnnDestroyConvolutionDescriptor(p->cw);
	memset(p, 0, sizeof *p);
}

static cudnnMathType_t want_math(void)
{
	/* CUDNN_DEFAULT_MATH lets float convolutions use TF32 on Ampere and
	 * later; FMA math forbids it.  ALLOW_CONVERSION is not used: it may
	 * convert float to half precision. */
	return cu.fast ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

/* A heuristic entry's math type we may run: deterministic mode takes FMA
 * entries and DEFAULT ones (cuDNN reports algorithms without a tensor-core
 * variant as DEFAULT) and runs both with FMA math on the descriptor, as
 * PyTorch does with TF32 off; fast mode also takes tensor-op (TF32) entries,
 * never ALLOW_CONVERSION (half precision). */
static int math_ok(cudnnMathType_t m)
{
	if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
		return 0;
	return cu.fast || m == CUDNN_FMA_MATH || m == CUDNN_DEFAULT_MATH;
}

/* the math type to set for a chosen entry of type m */
static cudnnMathType_t run_math(cudnnMathType_t m)
{
	return cu.fast ? m : CUDNN_FMA_MATH;
}

static int conv_desc(cudnnConvolutionDescriptor_t *d, const struct nn_conv_shape *s)
{
	if (dnn_check(cudnnCreateConvolutionDescriptor(d), "conv: descriptor") < 0)
		return -1;
	if (dnn_check(cudnnSetConvolution2dDescriptor(*d, s->PH, s->PW, s->SH, s->SW, 1, 1,
	                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
	              "conv: descriptor") < 0)
		return -1;
	return dnn_check(cudnnSetConvolutionMathType(*d, want_math()), "conv: math type");
}

static int plan_descriptors(struct conv_plan *p, const struct nn_conv_shape *s)
{
	if (dnn_check(cudnnCreateTensorDescriptor(&p->x), "conv: descriptor") < 0 ||
	    dnn_check(cudnnCreateTensorDescriptor(&p->y), "conv: descriptor") < 0 ||
	    dnn_check(cudnnCreateFilterDescriptor(&p->w), "conv: descriptor") < 0)
		return -1;
	if (dnn_check(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N,
	                                         s->C, s->H, s->W), "conv: input shape") < 0 ||
	    dnn_check(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, s->N,
	                                         s->OC, s->OH, s->OW), "conv: output shape") < 0 ||
	    dnn_check(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, s->OC,
	                                         s->C, s->KH, s->KW), "conv: weight shape") < 0)
		return -1;
	if (conv_desc(&p->cf, s) < 0 || conv_desc(&p->cd, s) < 0 || conv_desc(&p->cw, s) < 0)
		return -1;
	int n, c, h, w;
	if (dnn_check(cudnnGetConvolution2dForwardOutputDim(p->cf, p->x, p->w, &n, &c, &h, &w),
	              "conv: output shape") < 0)
		return -1;
	if (n != s->N || c != s->OC || h != s->OH || w != s->OW) {
		char why[160];
		snprintf(why, sizeof why, "cuDNN gives output %dx%dx%dx%d, the shape says %dx%dx%dx%d",
		         n, c, h, w, s->N, s->OC, s->OH, s->OW);
		cu_fail("conv", why);
		return -1;
	}
	return 0;
}

static int pick_fwd(struct conv_plan *p)
{
	cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
	int cnt = 0;
	p->fwd = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
	cudnnMathType_t math = want_math();
	if (cudnnGetConvolutionForwardAlgorithm_v7(cu.dnn, p->x, p->w, p->cf, p->y,
	                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &cnt,
	                                           perf) == CUDNN_STATUS_SUCCESS) {
		for (int i = 0; i < cnt; i++) {
			if (perf[i].status == CUDNN_STATUS_SUCCESS &&
			    perf[i].determinism == CUDNN_DETERMINISTIC && math_ok(perf[i].mathType) &&
			    perf[i].memory <= WS_LIMIT) {
				p->fwd = perf[i].algo;
				math = run_math(perf[i].mathType);
				break;
			}
		}
	}
	if (dnn_check(cudnnSetConvolutionMathType(p->cf, math), "conv forward: math type") < 0)
		return -1;
	return dnn_check(cudnnGetConvolutionForwardWorkspaceSize(cu.dnn, p->x, p->w, p->cf, p->y,
	                                                         p->fwd, &p->ws_fwd),
	                 "conv forward: workspace size");
}

static int pick_bwd_data(struct conv_plan *p)
{
	cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
	int cnt = 0;
	p->bwd_data = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
	cudnnMathType_t math = want_math();
	if (cudnnGetConvolutionBackwardDataAlgorithm_v7(cu.dnn, p->w, p->y, p->cd, p->x,
	                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &cnt,
	                                                perf) == CUDNN_STATUS_SUCCESS) {
		for (int i = 0; i < cnt; i++) {
			if (perf[i].status == CUDNN_STATUS_SUCCESS &&
			    perf[i].determinism == CUDNN_DETERMINISTIC && math_ok(perf[i].mathType) &&
			    perf[i].memory <= WS_LIMIT) {
				p->bwd_data = perf[i].algo;
				math = run_math(perf[i].mathType);
				break;
			}
		}
	}
	if (dnn_check(cudnnSetConvolutionMathType(p->cd, math), "conv backward data: math type") < 0)
		return -1;
	return dnn_check(cudnnGetConvolutionBackwardDataWorkspaceSize(cu.dnn, p->w, p->y, p->cd,
	                                                              p->x, p->bwd_data,
	                                                              &p->ws_data),
	                 "conv backward data: workspace size");
}

static int pick_bwd_filter(struct conv_plan *p)
{
	cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
	int cnt = 0;
	p->bwd_filter = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1;
	cudnnMathType_t math = want_math();
	if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(cu.dnn, p->x, p->y, p->cw, p->w,
	                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT,
	                                                  &cnt, perf) == CUDNN_STATUS_SUCCESS) {
		for (int i = 0; i < cnt; i++) {
			if (perf[i].status == CUDNN_STATUS_SUCCESS &&
			    perf[i].determinism == CUDNN_DETERMINISTIC && math_ok(perf[i].mathType) &&
			    perf[i].memory <= WS_LIMIT) {
				p->bwd_filter = perf[i].algo;
				math = run_math(perf[i].mathType);
				break;
			}
		}
	}
	if (dnn_check(cudnnSetConvolutionMathType(p->cw, math), "conv backward filter: math type") <
	    0)
		return -1;
	return dnn_check(cudnnGetConvolutionBackwardFilterWorkspaceSize(cu.dnn, p->x, p->y, p->cw,
	                                                                p->w, p->bwd_filter,
	                                                                &p->ws_filter),
	                 "conv backward filter: workspace size");
}

/* WENO_CUDA_VERBOSE=1: each new plan's algorithms on stderr (what cuDNN's
 * heuristics gave on this GPU, for the first runs on a new card) */
static void plan_say(const struct conv_plan *p)
{
	if (!cu.verbose)
		return;
	const struct nn_conv_shape *s = &p->s;
	fprintf(stderr, "weno: CUDA conv plan %dx%dx%dx%d -> %d, %dx%d/%d pad %d: forward algo %d (%zu B), "
	        "backward data algo %d (%zu B), backward filter algo %d (%zu B), %s\n", s->N, s->C, s->H,
	        s->W, s->OC, s->KH, s->KW, s->SH, s->PH, (int)p->fwd, p->ws_fwd, (int)p->bwd_data,
	        p->ws_data, (int)p->bwd_filter, p->ws_filter, cu.fast ? "TF32 allowed" : "FMA math");
}

/* the plan of shape s, made on first use; NULL after a failure.  Batches of
 * many sizes (bags) make many plans: the least recently used one goes. */
static struct conv_plan *plan_get(const struct nn_conv_shape *s)
{
	plan_clock++;
	struct conv_plan *victim = NULL; /* a free slot, else the least recently used */
	for (int i = 0; i < PLANS; i++) {
		struct conv_plan *q = &plans[i];
		if (q->used && same_shape(&q->s, s)) {
			q->last_use = plan_clock;
			return q;
		}
		if (!victim || (victim->used && (!q->used || q->last_use < victim->last_use)))
			victim = q;
	}
	struct conv_plan *p = victim;
	plan_destroy(p);
	p->used = 1;
	p->s = *s;
	p->last_use = plan_clock;
	if (plan_descriptors(p, s) < 0 || pick_fwd(p) < 0 || pick_bwd_data(p) < 0 ||
	    pick_bwd_filter(p) < 0) {
		plan_destroy(p);
		return NULL;
	}
	plan_say(p);
	return p;
}

/* workspace of bytes: the caller's conv scratch when it is large enough */
static void *conv_ws(size_t bytes, float *scratch, const struct nn_conv_shape *s)
{
	if (!bytes)
		return NULL;
	if (scratch && bytes <= cu.host->conv2d_scratch_floats(s) * sizeof(float))
		return scratch;
	return workspace(bytes);
}

static void conv2d_forward(float *out, float *scratch, const float *inp, const float *weight,
                           const float *bias, const struct nn_conv_shape *s)
{
	if (!cu_live())
		return;
	struct conv_plan *p = plan_get(s);
	if (!p)
		return;
	void *ws = conv_ws(p->ws_fwd, scratch, s);
	if (p->ws_fwd && !ws)
		return;
	const float one = 1.0f, zero = 0.0f;
	if (dnn_check(cudnnConvolutionForward(cu.dnn, &one, p->x, inp, p->w, weight, p->cf, p->fwd,
	                                      ws, p->ws_fwd, &zero, p->y, out),
	              "conv2d_forward") < 0)
		return;
	if (bias)
		cu_bias_planes(out, bias, s->N, s->OC, s->OH * s->OW);
}

static void conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                            const float *dout, const float *inp, const float *weight,
                            const struct nn_conv_shape *s)
{
	if (!cu_live())
		return;
	if (dbias)
		cu_chansum_add(dbias, dout, s->N, s->OC, s->OH * s->OW);
	if (!dweight && !dinp)
		return;
	struct conv_plan *p = plan_get(s);
	if (!p)
		return;
	const float one = 1.0f; /* beta = 1: backward passes accumulate */
	if (dweight) {
		void *ws = conv_ws(p->ws_filter, scratch, s);
		if (p->ws_filter && !ws)
			return;
		if (dnn_check(cudnnConvolutionBackwardFilter(cu.dnn, &one, p->x, inp, p->y, dout, p->cw,
		                                             p->bwd_filter, ws, p->ws_filter, &one,
		                                             p->w, dweight),
		              "conv2d_backward dweight") < 0)
			return;
	}
	if (dinp) {
		void *ws = conv_ws(p->ws_data, scratch, s);
		if (p->ws_data && !ws)
			return;
		dnn_check(cudnnConvolutionBackwardData(cu.dnn, &one, p->w, weight, p->y, dout, p->cd,
		                                       p->bwd_data, ws, p->ws_data, &one, p->x, dinp),
		          "conv2d_backward dinp");
	}
}

/* ---------------- graphs ---------------- */

int cu_spoil(const char *what)
{
	if (!cu.capturing)
		return 0;
	if (!cu.spoiled && cu.verbose)
		fprintf(stderr, "weno: CUDA graph: recording given up at %s; the ops run one by one\n",
		        what);
	cu.spoiled = 1;
	return 1;
}

/* graphs off for the rest of the run, said once: the device refused a
 * recording that had nothing wrong on our side */
static void graphs_off(const char *what, const char *why)
{
	cudaGetLastError();
	if (cu.graphs_off)
		return;
	cu.graphs_off = 1;
	fprintf(stderr, "weno: CUDA graphs off (%s: %s); the ops run one by one\n", what, why);
}

struct cu_graph {
	cudaGraphExec_t exec;
	unsigned long gen;            /* cu.gen when recorded */
};

static int graph_begin(void)
{
	if (!cu_live() || cu.graphs_off || cu.capturing)
		return -1;
	cudaError_t e = cudaStreamBeginCapture(cu.stream, cudaStreamCaptureModeGlobal);
	if (e != cudaSuccess) {
		graphs_off("begin capture", cudaGetErrorString(e));
		return -1;
	}
	cu.capturing = 1;
	cu.spoiled = 0;
	return 0;
}

static void *graph_end(void)
{
	if (!cu.capturing)
		return NULL;
	cudaGraph_t g = NULL;
	cudaError_t e = cudaStreamEndCapture(cu.stream, &g);
	int spoiled = cu.spoiled, refused = cu.refused;
	cu.capturing = 0;
	cu.spoiled = 0;
	cu.refused = 0;
	if (refused) /* a library call failed inside the recording */
		graphs_off("recording", cu.refusal);
	else if (!spoiled && (e != cudaSuccess || !g))
		graphs_off("end capture", e != cudaSuccess ? cudaGetErrorString(e) : "no graph");
	if (e != cudaSuccess)
		cudaGetLastError(); /* seen: not the next op's error */
	if (spoiled || e != cudaSuccess || !g) {
		if (g)
			cudaGraphDestroy(g);
		/* grow what a spoiled recording wanted, now that allocating is allowed */
		if (cu.want_tmp)
			cu_tmp(cu.want_tmp);
		if (cu.want_ws)
			workspace(cu.want_ws);
		cu.want_tmp = cu.want_ws = 0;
		return NULL;
	}
	struct cu_graph *h = (struct cu_graph *)calloc(1, sizeof *h);
	if (!h) {
		cudaGraphDestroy(g);
		return NULL;
	}
	e = cudaGraphInstantiate(&h->exec, g, 0);
	cudaGraphDestroy(g);
	if (e != cudaSuccess) {
		free(h);
		graphs_off("instantiate", cudaGetErrorString(e));
		return NULL;
	}
	h->gen = cu.gen;
	return h;
}

static int graph_launch(void *p)
{
	struct cu_graph *h = (struct cu_graph *)p;
	if (!h || cu.capturing)
		return -1;
	if (h->gen != cu.gen)
		return -1; /* a scratch it uses has moved since */
	if (!cu_live())
		return 0; /* as every op after the sticky error: nothing */
	cu_check(cudaGraphLaunch(h->exec, cu.stream), "graph launch");
	return 0;
}

static void graph_free(void *p)
{
	struct cu_graph *h = (struct cu_graph *)p;
	if (!h)
		return;
	if (cu.ok)
		cudaGraphExecDestroy(h->exec);
	free(h);
}

/* ---------------- the table ---------------- */

extern "C" {
extern const struct nn_backend nn_cuda;
}

/* positional, in nn.h's member order (C++17 has no designated initialisers) */
const struct nn_backend nn_cuda = {
	"cuda",
	cuda_alloc,
	cuda_free,
	cuda_zero,
	cuda_copy,
	cuda_upload,
	cuda_download,
	linear_forward,
	linear_backward,
	conv2d_forward,
	conv2d_backward,
	cu_batchnorm_forward,
	cu_batchnorm_backward,
	cu_relu_forward,
	cu_relu_backward,
	cu_tanh_forward,
	cu_tanh_backward,
	cu_add_forward,
	cu_add_backward,
	cu_scale,
	cu_dropout_forward,
	cu_dropout_backward,
	cu_maxpool_forward,
	cu_maxpool_backward,
	cu_avgpool_forward,
	cu_avgpool_backward,
	cu_softmax_forward,
	cu_softmax_backward,
	wsum_forward,
	wsum_backward,
	cu_loss_bce2,
	cu_loss_ce,
	cu_loss_soft2,
	cu_sgd_step,
	cu_adam_step,
	linear_backward_sgd,
	cu_abmil_attn_forward,
	cu_abmil_attn_backward,
	graph_begin,
	graph_end,
	graph_launch,
	graph_free,
	cu_dropout_forward_at,
};

/* ---------------- the entry point (lib/nn/cuda_api.h) ---------------- */

static const struct weno_cuda_api api = {
	WENO_CUDA_API_VERSION, sizeof(struct nn_backend), &nn_cuda, cuda_available, cuda_error,
	cuda_describe,
};

/* the one symbol the shared library exports (built with hidden visibility) */
extern "C" __attribute__((visibility("default"))) const struct weno_cuda_api *
weno_cuda_api(const struct weno_cuda_host *host)
{
	cu.host = host;
	return &api;
}
