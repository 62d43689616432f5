/* nn_cuda.cuh - internals shared by the CUDA backend's two files:
 * nn_cuda_core.cu (context, memory, cuBLAS, cuDNN, the table) and
 * nn_cuda_ops.cu (the CUDA kernels).  Not a public header: lib/nn/nn_cuda.h
 * is the interface.
 *
 * One context (struct cu_state cu): device 0 of the visible ones, one
 * non-blocking stream that every op queues on, one cuBLAS and one cuDNN
 * handle bound to it, a cuDNN workspace and a reduction scratch that grow
 * and never shrink (so steady-state training never allocates), a pinned
 * word for the losses' return value, and a ring of pinned staging buffers
 * through which uploads travel asynchronously (nn_cuda_core.cu, "memory").
 *
 * Graphs (nn.h's graph_begin..graph_end, nn_cuda_core.cu "graphs"): while
 * the stream is being captured, ops queue nothing that runs; an op that
 * cannot be recorded (one that returns to the host, allocates, or advances
 * host state) or a scratch that would have to grow spoils the recording
 * instead of failing (cu_spoil), and graph_end then gives NULL, so that the
 * caller runs the ops one by one.  A scratch that moves bumps cu.gen, which
 * makes every graph recorded before it stale.
 *
 * Determinism: every reduction is a fixed tree over a fixed partition that
 * depends on the shape only (never on timing), there are no atomics, and
 * cuDNN/cuBLAS run deterministic algorithms on the one stream.
 */
#ifndef WENO_NN_CUDA_CUH
#define WENO_NN_CUDA_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "../lib/nn/cuda_api.h"
#include "../lib/nn/nn.h"
}

/* a pinned staging buffer for uploads, and the event of its last copy */
struct cu_stage {
	void *p;
	size_t bytes;
	cudaEvent_t done;
	int pending;                  /* a copy from p was queued after done's last wait */
};
#define CU_STAGE_SLOTS 4
#define CU_STAGE_MAX ((size_t)32 << 20) /* bytes of one slot at most */

struct cu_state {
	int tried, ok;                /* initialisation tried / succeeded */
	char why[256];                /* why not, when !ok */
	int fast;                     /* WENO_CUDA_FAST=1: TF32 allowed */
	int failed;                   /* the sticky error is set */
	char errmsg[512];
	char desc[256];               /* nn_cuda_describe */
	const struct weno_cuda_host *host; /* the loading library's functions */
	cudaStream_t stream;
	cublasHandle_t blas;
	cudnnHandle_t dnn;
	void *ws;                     /* cuDNN workspace */
	size_t ws_bytes;
	void *tmp;                    /* reduction partials (doubles and floats) */
	size_t tmp_bytes;
	double *dloss;                /* device word for a loss */
	double *hloss;                /* pinned host word for it */
	struct cu_stage stage[CU_STAGE_SLOTS]; /* uploads, used in turn */
	int stage_next;
	void *blas_ws;                /* cuBLAS's workspace, fixed (the same in graphs) */
	/* graphs */
	int graphs_off;               /* WENO_CUDA_GRAPHS=0, or capture failed once */
	int capturing, spoiled;       /* recording; and what it recorded is unusable */
	int refused;                  /* a CUDA/cuBLAS/cuDNN call failed while recording */
	char refusal[512];            /* the first such failure */
	size_t want_tmp, want_ws;     /* scratch sizes a spoiled recording asked for */
	unsigned long gen;            /* bumped whenever tmp or ws moves */
	int verbose;                  /* WENO_CUDA_VERBOSE=1 */
};

extern struct cu_state cu;

/* 1 when ops may run: initialised, no sticky error yet, and not inside a
 * spoiled recording (whose work is thrown away). */
static inline int cu_live(void)
{
	return cu.ok && !cu.failed && !cu.spoiled;
}

/* Spoils the recording in progress (what: the op that cannot be recorded;
 * said under WENO_CUDA_VERBOSE=1); returns 1 when one is in progress (the
 * op must then do nothing), 0 otherwise. */
int cu_spoil(const char *what);

/* Sets the sticky error (first wins) and prints it once. */
void cu_fail(const char *what, const char *why);
/* 0 when e is cudaSuccess, else cu_fail(what, its text) and -1. */
int cu_check(cudaError_t e, const char *what);
/* Checks the last kernel launch (does not wait for the kernel). */
#define CU_LAUNCHED(what) cu_check(cudaGetLastError(), what)

/* Device scratch of at least bytes, valid until the next cu_tmp call (which
 * may move it); NULL after a failure.  Ops take it once, at their start. */
void *cu_tmp(size_t bytes);

/* Blocks of `threads` for n items with grid-stride loops: the grid is
 * capped, the loops cover the rest; results never depend on the grid. */
static inline unsigned cu_grid(size_t n, unsigned threads)
{
	size_t b = (n + threads - 1) / threads;
	if (b < 1)
		b = 1;
	if (b > 65535u * 16u)
		b = 65535u * 16u;
	return (unsigned)b;
}

/* nn_cuda_ops.cu: 0 when the kernels have an image for this device, else
 * the CUDA error (cudaErrorInvalidDeviceFunction / NoKernelImageForDevice). */
cudaError_t cu_probe_kernels(void);

/* nn_cuda_ops.cu: the kernel-backed entries of the table (nn.h has the
 * contracts); "bias_rows" adds bias [C] to every row of x [rows, C], and
 * "bias_planes" adds bias [C] to every plane of x [N, C, HW]. */
void cu_bias_rows(float *x, const float *bias, int rows, int C);
void cu_bias_planes(float *x, const float *bias, int N, int C, int HW);
/* dbias [C] += column sums of dout [N, C], each column summed in row order */
void cu_colsum_add(float *dbias, const float *dout, int N, int C);
/* bias [C] += alpha * (column sums of dout [N, C]): a fused SGD step */
void cu_colsum_axpy(float *bias, const float *dout, int N, int C, float alpha);
/* dbias [C] += per-channel sums of dout [N, C, HW] (fixed-order tree) */
void cu_chansum_add(float *dbias, const float *dout, int N, int C, int HW);

void cu_batchnorm_forward(float *out, float *mean, float *rstd, float *run_mean,
                          float *run_var, const float *inp, const float *gamma,
                          const float *beta, int N, int C, int HW, int train, float momentum,
                          float eps, int relu);
void cu_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *mean, const float *rstd,
                           const float *gamma, const float *beta, int N, int C, int HW,
                           int train, int relu);
void cu_relu_forward(float *out, const float *inp, size_t n);
void cu_relu_backward(float *dinp, const float *dout, const float *out, size_t n);
void cu_tanh_forward(float *out, const float *inp, size_t n);
void cu_tanh_backward(float *dinp, const float *dout, const float *out, size_t n);
void cu_add_forward(float *out, const float *a, const float *b, size_t n);
void cu_add_backward(float *da, float *db, const float *dout, size_t n);
void cu_scale(float *x, float a, size_t n);
void cu_dropout_forward(float *out, float *mask, const float *inp, size_t n, float p,
                        struct rng *rng);
void cu_dropout_forward_at(float *out, float *mask, const float *inp, size_t n, float p,
                           const uint64_t *state);
void cu_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n);
void cu_maxpool_forward(float *out, int32_t *idx, const float *inp,
                        const struct nn_conv_shape *s);
void cu_maxpool_backward(float *dinp, const float *dout, const int32_t *idx,
                         const struct nn_conv_shape *s);
void cu_avgpool_forward(float *out, const float *inp, int N, int C, int HW);
void cu_avgpool_backward(float *dinp, const float *dout, int N, int C, int HW);
void cu_softmax_forward(float *out, const float *inp, int outer, int dim, int inner);
void cu_softmax_backward(float *dinp, const float *dout, const float *out, int outer, int dim,
                         int inner);
void cu_abmil_attn_forward(float *t, float *A, float *a, float *z, float *logits,
                           const float *pre, const float *h, const float *w, const float *bw,
                           const float *C, const float *bc, int n, int L, int D);
void cu_abmil_attn_backward(float *du, float *dh, float *dw, float *dbw, float *dC, float *dbc,
                            const float *dlogits, const float *t, const float *h, const float *a,
                            const float *z, const float *w, const float *C, int n, int L, int D);
double cu_loss_bce2(float *dlogits, const float *logits, const float *y, int B, float eps);
double cu_loss_ce(float *dlogits, const float *logits, const int *label, int B, int K);
double cu_loss_soft2(float *dlogits, const float *logits, const float *y, int B, float w,
                     float eps);
void cu_sgd_step(float *param, const float *grad, float *m, size_t n,
                 const struct nn_optim_conf *c, long step);
void cu_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                  const struct nn_optim_conf *c, long step);

#endif
