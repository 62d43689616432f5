/* nn.h - the neural-network operation table (the backend interface).
 *
 * Every operation weno-fit computes is a function pointer in struct
 * nn_backend, in llm.c style: X_forward(out..., in..., dims) and
 * X_backward(dinp..., dparams..., dout, saved..., dims) over raw float32
 * buffers, NCHW.  A shape comment sits beside each pointer.  The CPU backend
 * (nn_cpu.c: OpenBLAS sgemm, OpenMP loops) is the reference; a CUDA backend
 * fills the same table with the same names, argument order and shapes.
 * Model code (net.c, heads) calls only through the table and never asks
 * which backend runs.
 *
 * Conventions:
 *   - forward functions overwrite their outputs;
 *   - backward functions ACCUMULATE (+=) into every gradient they write
 *     (dinp and dparams), so residual branches and gradient accumulation over
 *     several bags need no extra code; the caller zeroes gradients;
 *   - any gradient pointer may be NULL: that gradient is not computed;
 *   - "scratch" arguments are caller-owned work space of the documented size
 *     (see nn_conv2d_scratch_floats); nothing is allocated inside an op;
 *   - results never depend on the number of threads: reductions run over a
 *     fixed order inside one thread (parallel loops split only independent
 *     outputs) and sgemm partitions only its output.
 *
 * Thread safety: the backend tables are immutable; an op may use all the
 * threads OpenMP/OpenBLAS give it, so call ops from one thread at a time.
 * Errors: ops do not fail (shapes are the caller's contract); only
 * nn_backend_get can fail (NULL for an unknown name).
 */
#ifndef WENO_NN_H
#define WENO_NN_H

#include <stddef.h>
#include <stdint.h>

#include "../base/rng.h"

/* 2-D convolution (also max-pooling) geometry for a batch of N images. */
struct nn_conv_shape {
	int N, C, H, W;      /* input  [N,C,H,W] */
	int OC, OH, OW;      /* output [N,OC,OH,OW] (OC unused by pooling) */
	int KH, KW;          /* kernel */
	int SH, SW;          /* stride */
	int PH, PW;          /* zero padding (pooling: -inf padding) */
};

/* Fills OH, OW from the rest: OH = (H + 2PH - KH)/SH + 1. */
void nn_conv_shape_finish(struct nn_conv_shape *s);

/* Floats of scratch conv2d_forward/backward need.  3x3 stride 1 padding 1
 * (Winograd F(2x2,3x3), nn_cpu.c): the transformed filters and, per lane of
 * images, a cache-sized block of transformed tiles.  Other shapes, small
 * batches: the batched im2col matrix C*KH*KW*N*OH*OW + OC*N*OH*OW; larger
 * ones (nn_cpu.c, "convolution"): per lane of images a cache-sized im2col
 * block, its output and a weight-gradient partial.  Never decreases as N
 * grows, but is not proportional to N. */
size_t nn_conv2d_scratch_floats(const struct nn_conv_shape *s);

enum nn_optim_kind { NN_OPTIM_SGD = 0, NN_OPTIM_ADAM = 1 };

/* Hyper-parameters of one optimizer, exactly as torch.optim defines them. */
struct nn_optim_conf {
	int kind;            /* enum nn_optim_kind */
	float lr;
	float momentum;      /* SGD */
	float dampening;     /* SGD */
	int nesterov;        /* SGD */
	float weight_decay;  /* both: L2 added to the gradient (not AdamW) */
	float beta1, beta2, eps; /* Adam */
};

struct nn_backend {
	const char *name;

	/* ---- memory (device buffers; plain malloc on the CPU) ---- */
	float *(*alloc)(size_t nfloats);          /* zeroed; NULL on failure; free with free_ */
	void (*free_)(float *p);
	void (*zero)(float *p, size_t n);
	void (*copy)(float *dst, const float *src, size_t n);          /* device to device */
	void (*upload)(float *dst, const float *host, size_t n);       /* host to device */
	void (*download)(float *host, const float *src, size_t n);     /* device to host */

	/* ---- linear: out = inp Wᵀ + b ---- */
	/* out [N,OC], inp [N,C], weight [OC,C], bias [OC] or NULL */
	void (*linear_forward)(float *out, const float *inp, const float *weight,
	                       const float *bias, int N, int C, int OC);
	/* dinp [N,C], dweight [OC,C], dbias [OC]; dout [N,OC] */
	void (*linear_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
	                        const float *inp, const float *weight, int N, int C, int OC);

	/* ---- 2-D convolution (CPU: Winograd or im2col, sgemm, by blocks of images) ---- */
	/* out [N,OC,OH,OW], inp [N,C,H,W], weight [OC,C,KH,KW], bias [OC] or NULL,
	 * scratch nn_conv2d_scratch_floats(s) */
	void (*conv2d_forward)(float *out, float *scratch, const float *inp, const float *weight,
	                       const float *bias, const struct nn_conv_shape *s);
	/* dinp [N,C,H,W] (NULL for a first layer), dweight [OC,C,KH,KW], dbias [OC];
	 * dout [N,OC,OH,OW]; inp and weight as in forward; scratch as forward */
	void (*conv2d_backward)(float *dinp, float *dweight, float *dbias, float *scratch,
	                        const float *dout, const float *inp, const float *weight,
	                        const struct nn_conv_shape *s);

	/* ---- batch normalisation over [N,C,HW] (BatchNorm1d: HW = 1) ----
	 * train: normalise with the batch mean and biased variance, save mean and
	 * rstd = 1/sqrt(var+eps), and update run_mean/run_var as PyTorch does:
	 * r = (1-momentum) r + momentum x, with the unbiased variance for run_var.
	 * eval: normalise with run_mean/run_var (mean, rstd still written).
	 * relu = 1 fuses the ReLU that follows (out = relu(BN(inp)), as
	 * relu_forward would compute it) and saves a pass over the activations. */
	/* out [N,C,HW], mean [C], rstd [C], run_mean [C], run_var [C], inp [N,C,HW],
	 * gamma [C], beta [C] */
	void (*batchnorm_forward)(float *out, float *mean, float *rstd, float *run_mean,
	                          float *run_var, const float *inp, const float *gamma,
	                          const float *beta, int N, int C, int HW, int train,
	                          float momentum, float eps, int relu);
	/* dinp [N,C,HW], dgamma [C], dbeta [C]; dout [N,C,HW]; inp, mean, rstd,
	 * gamma, beta as forward saw them; train and relu as in forward (eval:
	 * mean/rstd are constants; relu: dout counts only where forward's output
	 * was > 0, which the backward recomputes from inp exactly as forward
	 * computed it, so that the output need not be read) */
	void (*batchnorm_backward)(float *dinp, float *dgamma, float *dbeta, const float *dout,
	                           const float *inp, const float *mean, const float *rstd,
	                           const float *gamma, const float *beta, int N, int C, int HW,
	                           int train, int relu);

	/* ---- elementwise ---- */
	void (*relu_forward)(float *out, const float *inp, size_t n);                  /* [n] */
	void (*relu_backward)(float *dinp, const float *dout, const float *out, size_t n);
	void (*tanh_forward)(float *out, const float *inp, size_t n);
	void (*tanh_backward)(float *dinp, const float *dout, const float *out, size_t n);
	/* out = a + b, [n]; backward: da += dout, db += dout */
	void (*add_forward)(float *out, const float *a, const float *b, size_t n);
	void (*add_backward)(float *da, float *db, const float *dout, size_t n);
	/* x *= a, [n] (forward and backward alike) */
	void (*scale)(float *x, float a, size_t n);
	/* Inverted dropout: mask[i] = 0 with probability p, else 1/(1-p), drawn in
	 * index order from rng (so a seed fixes it on every backend); out = inp*mask.
	 * p = 0 copies and sets mask to 1. */
	void (*dropout_forward)(float *out, float *mask, const float *inp, size_t n, float p,
	                        struct rng *rng);
	void (*dropout_backward)(float *dinp, const float *dout, const float *mask, size_t n);

	/* ---- pooling ---- */
	/* Max-pooling, -inf padding, first maximum wins and a NaN wins (as
	 * PyTorch).  idx saves, for each output, the index of its maximum in its
	 * input plane (h*W + w; -1 for a window wholly in the padding) for the
	 * backward pass; it is device memory of N*C*OH*OW 4-byte words.
	 * out [N,C,OH,OW], idx [N,C,OH,OW], inp [N,C,H,W]; s->OC ignored */
	void (*maxpool_forward)(float *out, int32_t *idx, const float *inp,
	                        const struct nn_conv_shape *s);
	/* dinp [N,C,H,W] += dout scattered through idx; dout, idx [N,C,OH,OW] */
	void (*maxpool_backward)(float *dinp, const float *dout, const int32_t *idx,
	                         const struct nn_conv_shape *s);
	/* Global average pooling: out [N,C], inp [N,C,HW] */
	void (*avgpool_forward)(float *out, const float *inp, int N, int C, int HW);
	void (*avgpool_backward)(float *dinp, const float *dout, int N, int C, int HW);

	/* ---- softmax over the middle axis of [outer, dim, inner] ---- */
	void (*softmax_forward)(float *out, const float *inp, int outer, int dim, int inner);
	/* dinp += out * (dout - sum_dim dout*out) */
	void (*softmax_backward)(float *dinp, const float *dout, const float *out, int outer,
	                         int dim, int inner);

	/* ---- attention pieces (bags) ---- */
	/* Weighted sum over instances: out[k,j] = sum_i a[i,k] h[i,j].
	 * out [K,D], a [n,K], h [n,D] (out = aᵀ h) */
	void (*wsum_forward)(float *out, const float *a, const float *h, int n, int K, int D);
	/* da [n,K], dh [n,D]; dout [K,D] */
	void (*wsum_backward)(float *da, float *dh, const float *dout, const float *a,
	                      const float *h, int n, int K, int D);

	/* ---- losses: return the loss (double) and write dlogits (overwrite),
	 * already scaled by the mean; the losses never allocate ---- */
	/* ABMIL: p = softmax(z)[1]; L = mean_b -(y log(p+eps) + (1-y) log(1-p+eps)).
	 * dlogits [B,2], logits [B,2], y [B] in [0,1] */
	double (*loss_bce2)(float *dlogits, const float *logits, const float *y, int B,
	                    float eps);
	/* Softmax cross-entropy: L = mean_b -log softmax(z_b)[label_b].
	 * dlogits [B,K], logits [B,K], label [B] in [0,K) */
	double (*loss_ce)(float *dlogits, const float *logits, const int *label, int B, int K);
	/* Student: q = softmax(z); L = -mean_b (w(1-y) log(q0+eps) + (1-w) y log(q1+eps)).
	 * dlogits [B,2], logits [B,2], y [B] soft labels */
	double (*loss_soft2)(float *dlogits, const float *logits, const float *y, int B,
	                     float w, float eps);

	/* ---- optimizer steps over one flat buffer (torch.optim semantics) ----
	 * step is the 1-based step count after this update.  SGD uses m as the
	 * momentum buffer (unused when momentum = 0); Adam uses m and v. */
	void (*sgd_step)(float *param, const float *grad, float *m, size_t n,
	                 const struct nn_optim_conf *c, long step);
	void (*adam_step)(float *param, const float *grad, float *m, float *v, size_t n,
	                  const struct nn_optim_conf *c, long step);

	/* ---- optional: NULL where a backend lacks them (kept last: positional
	 * tables that end early leave them NULL) ---- */
	/* Linear backward with a plain SGD step (no momentum, no weight decay)
	 * fused in, for a layer whose gradient feeds nothing but that step:
	 * dinp += dout W (the W of the forward pass), then W += -lr doutᵀ inp and
	 * b += -lr Σ_n dout; no gradient is stored.  Shapes as linear_backward.
	 * The product's rounding may differ from linear_backward + sgd_step in
	 * the last bit (a BLAS may fold -lr into its multiply-add). */
	void (*linear_backward_sgd)(float *dinp, float *weight, float *bias, const float *dout,
	                            const float *inp, int N, int C, int OC, float lr);

	/* ABMIL's attention head after its first Linear, fused: what net.c
	 * computes otherwise with tanh, linear, softmax, wsum and linear and
	 * their backward passes, the same up to the order of the sums.  The CPU
	 * leaves both NULL (that chain is the reference).  n >= 1 instances,
	 * L attention units, D features.
	 * Forward: t = tanh(pre), A = t wᵀ + bw, a = softmax of A over the n
	 * instances, z = aᵀ h, logits = z Cᵀ + bc.
	 * t [n,L] (may be pre: in place), A [n], a [n], z [D], logits [2];
	 * pre [n,L] (h Vᵀ + bV), h [n,D], w [L], bw [1] or NULL, C [2,D],
	 * bc [2] or NULL */
	void (*abmil_attn_forward)(float *t, float *A, float *a, float *z, float *logits,
	                           const float *pre, const float *h, const float *w,
	                           const float *bw, const float *C, const float *bc, int n, int L,
	                           int D);
	/* Backward from dlogits [2] with the forward's t, a, z: dC += dlogitsᵀ z,
	 * dbc += dlogits; dz = dlogits C; da_i = dz·h_i; dh_i += a_i dz;
	 * dA_i = a_i (da_i - Σ_j a_j da_j); dw += Σ_i dA_i t_i, dbw += Σ_i dA_i;
	 * du_i = dA_i w ⊙ (1 - t_i²).  du [n,L] is OVERWRITTEN, not accumulated:
	 * it is the gradient of pre, the dout of the first Linear's
	 * linear_backward.  dh [n,D], dw [L], dbw [1], dC [2,D], dbc [2]
	 * accumulate; any of the six may be NULL.  t, h, a, z, w, C as forward
	 * used them. */
	void (*abmil_attn_backward)(float *du, float *dh, float *dw, float *dbw, float *dC,
	                            float *dbc, const float *dlogits, const float *t,
	                            const float *h, const float *a, const float *z, const float *w,
	                            const float *C, int n, int L, int D);

	/* Recorded sequences of ops, replayed with one call (CUDA graphs).
	 * graph_begin starts a recording (0; -1 when the backend cannot: graphs
	 * off, or a recording already open): the ops called until graph_end
	 * are recorded and NOT run.  Only ops that leave everything on the
	 * device may be recorded: no alloc, free, upload, download, loss, and
	 * no dropout_forward with p > 0 (it advances the host's rng); such an
	 * op, or a backend scratch that would have to grow, spoils the
	 * recording.  graph_end returns the graph, or NULL when the recording
	 * was spoiled or refused (nothing ran: run the ops one by one; the
	 * backend has grown its scratch, so a second recording usually
	 * succeeds).  graph_launch runs the recorded ops with the arguments they
	 * had when recorded (pointers and values alike: the caller must key a
	 * graph by everything the ops were given) and returns 0, or -1 when the
	 * graph is stale (a scratch of the backend's own has moved since): free
	 * it and record again.  graph_free frees a graph (NULL is a no-op). */
	int (*graph_begin)(void);
	void *(*graph_end)(void);
	int (*graph_launch)(void *graph);
	void (*graph_free)(void *graph);

	/* dropout_forward with the generator in device memory: state[0] its
	 * state, state[1] its increment, read when the op runs (so that a
	 * recorded dropout draws new masks at every replay, from what the
	 * caller wrote there before); the masks are dropout_forward's from that
	 * generator.  The caller advances its own generator by n draws
	 * (rng_advance).  p > 0. */
	void (*dropout_forward_at)(float *out, float *mask, const float *inp, size_t n, float p,
	                           const uint64_t *state);
};

/* The CPU backend (always present). */
extern const struct nn_backend nn_cpu;

/* Looks a backend up by name ("cpu"); NULL when not built in. */
const struct nn_backend *nn_backend_get(const char *name);

/* Sets the CPU thread count for OpenMP loops and OpenBLAS (n >= 1). */
void nn_set_threads(int n);

#endif
