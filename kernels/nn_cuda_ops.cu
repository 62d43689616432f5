/* nn_cuda_ops.cu - the CUDA kernels of the CUDA backend: bias, batch
 * normalisation, elementwise ops, dropout, pooling, softmax, ABMIL's fused
 * attention head, losses and the optimizer steps.  nn.h has the contracts,
 * nn_cpu.c the reference whose arithmetic these kernels follow (the same
 * float/double split, the same order where the order is cheap to keep).
 *
 * Determinism: no atomics.  Sums over many terms are double, reduced by a
 * fixed partition of the work (per-thread strided partials, then a fixed
 * shared-memory tree); the partition depends only on the shape.  Where a
 * sum is short, one thread walks it in the CPU's order: column sums of
 * linear biases, average pooling, the max-pooling backward gather, whose
 * results are then bit-identical to the CPU's.
 */
#include "nn_cuda.cuh"

#include <math.h>

#define THREADS 256

/* ---------------- reductions ---------------- */

/* v summed over each group of `group` consecutive threads (a power of two
 * dividing THREADS) by a fixed tree; every thread gets its group's sum.
 * sh: THREADS doubles of shared memory. */
__device__ static double group_sum(double v, double *sh, int group)
{
	int t = threadIdx.x, lane = t % group;
	sh[t] = v;
	__syncthreads();
	for (int s = group / 2; s > 0; s >>= 1) {
		if (lane < s)
			sh[t] += sh[t + s];
		__syncthreads();
	}
	double r = sh[t - lane];
	__syncthreads();
	return r;
}

/* sum of v over the block (THREADS threads), a fixed tree; all threads
 * get the result.  sh: THREADS doubles of shared memory. */
__device__ static double block_sum(double v, double *sh)
{
	return group_sum(v, sh, THREADS);
}

__device__ static float block_max(float v, float *sh)
{
	int t = threadIdx.x;
	sh[t] = v;
	__syncthreads();
	for (int s = THREADS / 2; s > 0; s >>= 1) {
		if (t < s)
			sh[t] = fmaxf(sh[t], sh[t + s]);
		__syncthreads();
	}
	float r = sh[0];
	__syncthreads();
	return r;
}

/* ---------------- bias ---------------- */

__global__ static void bias_rows_kernel(float *x, const float *bias, size_t n, int C)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		x[i] += bias[i % C];
}

void cu_bias_rows(float *x, const float *bias, int rows, int C)
{
	size_t n = (size_t)rows * C;
	if (!cu_live() || !n)
		return;
	bias_rows_kernel<<<cu_grid(n, THREADS), THREADS, 0, cu.stream>>>(x, bias, n, C);
	CU_LAUNCHED("linear bias");
}

__global__ static void bias_planes_kernel(float *x, const float *bias, size_t n, int C, int HW)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		x[i] += bias[i / HW % C];
}

void cu_bias_planes(float *x, const float *bias, int N, int C, int HW)
{
	size_t n = (size_t)N * C * HW;
	if (!cu_live() || !n)
		return;
	bias_planes_kernel<<<cu_grid(n, THREADS), THREADS, 0, cu.stream>>>(x, bias, n, C, HW);
	CU_LAUNCHED("conv bias");
}

/* one thread per column, rows in order in double: the CPU's sum exactly;
 * step: dbias += alpha * sum (rounded as nn_cpu.c's bias_grad, no FMA),
 * else dbias += sum */
__global__ static void colsum_kernel(float *dbias, const float *dout, int N, int C, int step,
                                     float alpha)
{
	int j = blockIdx.x * blockDim.x + threadIdx.x;
	if (j >= C)
		return;
	double acc = 0.0;
	for (int n = 0; n < N; n++)
		acc += dout[(size_t)n * C + j];
	float g = (float)acc;
	dbias[j] = step ? __fadd_rn(dbias[j], __fmul_rn(alpha, g)) : dbias[j] + g;
}

void cu_colsum_add(float *dbias, const float *dout, int N, int C)
{
	if (!cu_live() || C <= 0)
		return;
	colsum_kernel<<<(C + THREADS - 1) / THREADS, THREADS, 0, cu.stream>>>(dbias, dout, N, C, 0,
	                                                                      0.0f);
	CU_LAUNCHED("linear dbias");
}

void cu_colsum_axpy(float *bias, const float *dout, int N, int C, float alpha)
{
	if (!cu_live() || C <= 0)
		return;
	colsum_kernel<<<(C + THREADS - 1) / THREADS, THREADS, 0, cu.stream>>>(bias, dout, N, C, 1,
	                                                                      alpha);
	CU_LAUNCHED("linear bias step");
}

/* ---------------- per-channel sums over [N, C, HW] ----------------
 *
 * Channel c's m = N*HW values are cut into `chunks` contiguous ranges (the
 * count depends on m only); block (k, c) sums range k with strided
 * per-thread partials and a fixed tree into part[c*chunks + k]; a second
 * kernel adds a channel's chunks in order.  Two sums at once (s1, s2): the
 * batch-norm backward needs both, the mean and the bias need one.
 */
enum { SUM_X, SUM_SQDEV, SUM_BN_BWD };

#define CHUNK_ELEMS 4096
#define MAX_CHUNKS 512

static int chan_chunks(size_t m)
{
	size_t k = (m + CHUNK_ELEMS - 1) / CHUNK_ELEMS;
	return k < 1 ? 1 : k > MAX_CHUNKS ? MAX_CHUNKS : (int)k;
}

/* BatchNorm's output before the ReLU, rounded step by step as the CPU
 * computes it (no contraction into an FMA): forward and the backward's
 * recomputed ReLU mask agree bit for bit */
__device__ static float bn_y(float x, float mu, float rs, float g, float b)
{
	return __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(x, mu), rs), g), b);
}

/* mode SUM_X: s1 = sum x.  SUM_SQDEV: s1 = sum (x - c0[c])² with c0 double
 * means.  SUM_BN_BWD: s1 = sum d, s2 = sum d*((x - mu)*rs) with mu, rs from
 * f0, f1 (float, as the CPU), d counted only where the fused ReLU let the
 * value through when relu (gamma, beta: that BN's, NULL for 1 and 0). */
__global__ static void chan_partial_kernel(double *part1, double *part2, int mode,
                                          const float *x, const float *d, const float *gam,
                                          const float *bet, int relu, const double *c0,
                                          const float *f0, const float *f1, int N, int C,
                                          int HW, int chunks)
{
	__shared__ double sh[THREADS];
	int c = blockIdx.x, k = blockIdx.y; /* C on x: y is limited to 65535, chunks to 512 */
	size_t m = (size_t)N * HW, len = (m + chunks - 1) / chunks;
	size_t j0 = (size_t)k * len, j1 = j0 + len < m ? j0 + len : m;
	double a = 0.0, b = 0.0;
	double mu_d = mode == SUM_SQDEV ? c0[c] : 0.0;
	float mu = mode == SUM_BN_BWD ? f0[c] : 0.0f, rs = mode == SUM_BN_BWD ? f1[c] : 0.0f;
	float g = gam ? gam[c] : 1.0f, bb = bet ? bet[c] : 0.0f;
	for (size_t j = j0 + threadIdx.x; j < j1; j += THREADS) {
		size_t n = j / HW, i = j % HW, at = (n * C + c) * HW + i;
		if (mode == SUM_X) {
			a += x[at];
		} else if (mode == SUM_SQDEV) {
			double dv = x[at] - mu_d;
			a += dv * dv;
		} else {
			float dd = relu && !(bn_y(x[at], mu, rs, g, bb) > 0.0f) ? 0.0f : d[at];
			a += dd;
			b += (double)dd * ((x[at] - mu) * rs);
		}
	}
	a = block_sum(a, sh);
	if (mode == SUM_BN_BWD)
		b = block_sum(b, sh);
	if (threadIdx.x == 0) {
		part1[(size_t)c * chunks + k] = a;
		if (mode == SUM_BN_BWD)
			part2[(size_t)c * chunks + k] = b;
	}
}

/* part [C, chunks] -> tot [C], chunks in order */
__global__ static void chan_total_kernel(double *tot, const double *part, int C, int chunks)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= C)
		return;
	double s = 0.0;
	for (int k = 0; k < chunks; k++)
		s += part[(size_t)c * chunks + k];
	tot[c] = s;
}

/* tot1 [C] (and tot2 [C] for SUM_BN_BWD) from the partition; tmp holds
 * 2*C*chunks doubles of partials */
static int chan_sums(double *tot1, double *tot2, double *tmp, int mode, const float *x,
                     const float *d, const float *gam, const float *bet, int relu,
                     const double *c0, const float *f0, const float *f1, int N, int C, int HW,
                     const char *what)
{
	int chunks = chan_chunks((size_t)N * HW);
	double *p1 = tmp, *p2 = tmp + (size_t)C * chunks;
	dim3 grid((unsigned)C, (unsigned)chunks);
	chan_partial_kernel<<<grid, THREADS, 0, cu.stream>>>(p1, p2, mode, x, d, gam, bet, relu, c0,
	                                                     f0, f1, N, C, HW, chunks);
	unsigned b = (unsigned)((C + THREADS - 1) / THREADS);
	chan_total_kernel<<<b, THREADS, 0, cu.stream>>>(tot1, p1, C, chunks);
	if (mode == SUM_BN_BWD)
		chan_total_kernel<<<b, THREADS, 0, cu.stream>>>(tot2, p2, C, chunks);
	return CU_LAUNCHED(what);
}

/* doubles of scratch chan_sums needs, plus `extra` doubles after them */
static size_t chan_tmp_doubles(int N, int C, int HW, size_t extra)
{
	return 2 * (size_t)C * chan_chunks((size_t)N * HW) + extra;
}

__global__ static void add_total_kernel(float *dst, const double *tot, int C)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c < C)
		dst[c] += (float)tot[c];
}

void cu_chansum_add(float *dbias, const float *dout, int N, int C, int HW)
{
	if (!cu_live() || C <= 0)
		return;
	double *tmp = (double *)cu_tmp(chan_tmp_doubles(N, C, HW, C) * sizeof(double));
	if (!tmp)
		return;
	double *tot = tmp + chan_tmp_doubles(N, C, HW, 0);
	if (chan_sums(tot, NULL, tmp, SUM_X, dout, NULL, NULL, NULL, 0, NULL, NULL, NULL, N, C, HW,
	              "conv dbias"))
		return;
	add_total_kernel<<<(C + THREADS - 1) / THREADS, THREADS, 0, cu.stream>>>(dbias, tot, C);
	CU_LAUNCHED("conv dbias");
}

/* ---------------- batch normalisation ---------------- */

/* train: the CPU's statistics from the two sums; eval: from the running
 * statistics.  One thread per channel. */
__global__ static void bn_stats_kernel(float *mean, float *rstd, float *run_mean, float *run_var,
                                       const double *sum, const double *ss, size_t m, int C,
                                       int train, float momentum, float eps)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= C)
		return;
	float mu, rs;
	if (train) {
		double dmu = sum[c] / (double)m, var = ss[c] / (double)m;
		double uvar = m > 1 ? ss[c] / (double)(m - 1) : var;
		mu = (float)dmu;
		rs = (float)(1.0 / sqrt(var + (double)eps));
		if (run_mean)
			run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mu;
		if (run_var)
			run_var[c] = (1.0f - momentum) * run_var[c] + momentum * (float)uvar;
	} else {
		mu = run_mean[c];
		rs = (float)(1.0 / sqrt((double)run_var[c] + (double)eps));
	}
	mean[c] = mu;
	rstd[c] = rs;
}

/* sum [C] / m as the double mean for the squared deviations */
__global__ static void div_kernel(double *dst, const double *src, double m, int C)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c < C)
		dst[c] = src[c] / m;
}

__global__ static void bn_norm_kernel(float *out, const float *inp, const float *mean,
                                      const float *rstd, const float *gamma, const float *beta,
                                      size_t n, int C, int HW, int relu)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		int c = (int)(i / HW % C);
		float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
		float y = bn_y(inp[i], mean[c], rstd[c], g, b);
		out[i] = relu && !(y > 0.0f) ? 0.0f : y;
	}
}

void cu_batchnorm_forward(float *out, float *mean, float *rstd, float *run_mean,
                          float *run_var, const float *inp, const float *gamma,
                          const float *beta, int N, int C, int HW, int train, float momentum,
                          float eps, int relu)
{
	if (!cu_live() || C <= 0)
		return;
	size_t m = (size_t)N * HW;
	unsigned cb = (unsigned)((C + THREADS - 1) / THREADS);
	if (train) {
		size_t base = chan_tmp_doubles(N, C, HW, 0);
		double *tmp = (double *)cu_tmp((base + 3 * (size_t)C) * sizeof(double));
		if (!tmp)
			return;
		double *sum = tmp + base, *dmu = sum + C, *ss = dmu + C;
		if (chan_sums(sum, NULL, tmp, SUM_X, inp, NULL, NULL, NULL, 0, NULL, NULL, NULL, N, C, HW,
		              "batchnorm mean"))
			return;
		div_kernel<<<cb, THREADS, 0, cu.stream>>>(dmu, sum, (double)m, C);
		if (chan_sums(ss, NULL, tmp, SUM_SQDEV, inp, NULL, NULL, NULL, 0, dmu, NULL, NULL, N, C, HW,
		              "batchnorm variance"))
			return;
		bn_stats_kernel<<<cb, THREADS, 0, cu.stream>>>(mean, rstd, run_mean, run_var, sum, ss,
		                                               m, C, 1, momentum, eps);
	} else {
		bn_stats_kernel<<<cb, THREADS, 0, cu.stream>>>(mean, rstd, run_mean, run_var, NULL,
		                                               NULL, m, C, 0, momentum, eps);
	}
	size_t n = m * C;
	if (n)
		bn_norm_kernel<<<cu_grid(n, THREADS), THREADS, 0, cu.stream>>>(out, inp, mean, rstd,
		                                                                gamma, beta, n, C, HW,
		                                                                relu);
	CU_LAUNCHED("batchnorm_forward");
}

/* dgamma, dbeta += the sums; per-channel coefficients for dinp */
__global__ static void bn_bwd_coef_kernel(float *dgamma, float *dbeta, float *coef,
                                          const double *sd, const double *sdx,
                                          const float *rstd, const float *gamma, double m, int C,
                                          int train)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= C)
		return;
	if (dgamma)
		dgamma[c] += (float)sdx[c];
	if (dbeta)
		dbeta[c] += (float)sd[c];
	float g = gamma ? gamma[c] : 1.0f;
	coef[3 * c] = g * rstd[c];
	coef[3 * c + 1] = train ? (float)(sd[c] / m) : 0.0f;
	coef[3 * c + 2] = train ? (float)(sdx[c] / m) : 0.0f;
}

__global__ static void bn_bwd_dx_kernel(float *dinp, const float *dout, const float *inp,
                                        const float *mean, const float *rstd,
                                        const float *gamma, const float *beta, int relu,
                                        const float *coef, size_t n, int C, int HW)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		int c = (int)(i / HW % C);
		float xh = (inp[i] - mean[c]) * rstd[c];
		float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
		float d = relu && !(bn_y(inp[i], mean[c], rstd[c], g, b) > 0.0f) ? 0.0f : dout[i];
		dinp[i] += coef[3 * c] * (d - coef[3 * c + 1] - xh * coef[3 * c + 2]);
	}
}

void cu_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *mean, const float *rstd,
                           const float *gamma, const float *beta, int N, int C, int HW,
                           int train, int relu)
{
	if (!cu_live() || C <= 0 || (!dinp && !dgamma && !dbeta))
		return;
	size_t base = chan_tmp_doubles(N, C, HW, 0);
	/* partials, sd [C], sdx [C], then 3C floats of coefficients */
	double *tmp = (double *)cu_tmp((base + 2 * (size_t)C + 2 * (size_t)C) * sizeof(double));
	if (!tmp)
		return;
	double *sd = tmp + base, *sdx = sd + C;
	float *coef = (float *)(sdx + C);
	if (chan_sums(sd, sdx, tmp, SUM_BN_BWD, inp, dout, gamma, beta, relu, NULL, mean, rstd, N,
	              C, HW,
	              "batchnorm_backward sums"))
		return;
	double m = (double)N * HW;
	unsigned cb = (unsigned)((C + THREADS - 1) / THREADS);
	bn_bwd_coef_kernel<<<cb, THREADS, 0, cu.stream>>>(dgamma, dbeta, coef, sd, sdx, rstd, gamma,
	                                                  m, C, train);
	size_t n = (size_t)N * C * HW;
	if (dinp && n)
		bn_bwd_dx_kernel<<<cu_grid(n, THREADS), THREADS, 0, cu.stream>>>(
			dinp, dout, inp, mean, rstd, gamma, beta, relu, coef, n, C, HW);
	CU_LAUNCHED("batchnorm_backward");
}

/* ---------------- elementwise ---------------- */

#define FOR_EACH(i, n)                                                                \
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n);      \
	     i += (size_t)gridDim.x * blockDim.x)

#define LAUNCH(kernel, n, what, ...)                                                  \
	do {                                                                          \
		if (!cu_live() || !(n))                                               \
			return;                                                       \
		kernel<<<cu_grid((n), THREADS), THREADS, 0, cu.stream>>>(__VA_ARGS__); \
		CU_LAUNCHED(what);                                                    \
	} while (0)

/* x > 0 keeps x (NaN and -0 give +0, as the CPU's keep_if) */
__global__ static void relu_fwd_kernel(float *out, const float *inp, size_t n)
{
	FOR_EACH(i, n) { out[i] = inp[i] > 0.0f ? inp[i] : 0.0f; }
}

__global__ static void relu_bwd_kernel(float *dinp, const float *dout, const float *out,
                                       size_t n)
{
	FOR_EACH(i, n) { dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f; }
}

__global__ static void tanh_fwd_kernel(float *out, const float *inp, size_t n)
{
	FOR_EACH(i, n) { out[i] = tanhf(inp[i]); }
}

__global__ static void tanh_bwd_kernel(float *dinp, const float *dout, const float *out,
                                       size_t n)
{
	FOR_EACH(i, n) { dinp[i] += dout[i] * (1.0f - out[i] * out[i]); }
}

__global__ static void add_fwd_kernel(float *out, const float *a, const float *b, size_t n)
{
	FOR_EACH(i, n) { out[i] = a[i] + b[i]; }
}

/* da += dout and db += dout in one pass; either may be NULL */
__global__ static void add_bwd_kernel(float *da, float *db, const float *dout, size_t n)
{
	FOR_EACH(i, n)
	{
		float d = dout[i];
		if (da)
			da[i] += d;
		if (db)
			db[i] += d;
	}
}

__global__ static void scale_kernel(float *x, float a, size_t n)
{
	FOR_EACH(i, n) { x[i] *= a; }
}

__global__ static void mul_add_kernel(float *dinp, const float *dout, const float *mask, size_t n)
{
	FOR_EACH(i, n) { dinp[i] += dout[i] * mask[i]; }
}

void cu_relu_forward(float *out, const float *inp, size_t n)
{
	LAUNCH(relu_fwd_kernel, n, "relu_forward", out, inp, n);
}

void cu_relu_backward(float *dinp, const float *dout, const float *out, size_t n)
{
	LAUNCH(relu_bwd_kernel, n, "relu_backward", dinp, dout, out, n);
}

void cu_tanh_forward(float *out, const float *inp, size_t n)
{
	LAUNCH(tanh_fwd_kernel, n, "tanh_forward", out, inp, n);
}

void cu_tanh_backward(float *dinp, const float *dout, const float *out, size_t n)
{
	LAUNCH(tanh_bwd_kernel, n, "tanh_backward", dinp, dout, out, n);
}

void cu_add_forward(float *out, const float *a, const float *b, size_t n)
{
	LAUNCH(add_fwd_kernel, n, "add_forward", out, a, b, n);
}

void cu_add_backward(float *da, float *db, const float *dout, size_t n)
{
	if (!da && !db)
		return;
	LAUNCH(add_bwd_kernel, n, "add_backward", da, db, dout, n);
}

void cu_scale(float *x, float a, size_t n)
{
	LAUNCH(scale_kernel, n, "scale", x, a, n);
}

void cu_dropout_backward(float *dinp, const float *dout, const float *mask, size_t n)
{
	LAUNCH(mul_add_kernel, n, "dropout_backward", dinp, dout, mask, n);
}

/* ---------------- dropout: the host's PCG32 stream on the device ----------------
 *
 * nn.h's contract: mask[i] comes from the i-th rng_float draw of the
 * caller's rng.  PCG32's state is a linear congruential generator, so the
 * state before draw i is reachable in O(log i) steps (Brown, "Random Number
 * Generation with Arbitrary Strides", 1994; pcg32_advance_r): each thread
 * jumps to its first element and steps from there, and the host's rng is
 * advanced by n draws the same way.  The masks are the CPU's bit for bit.
 */
#define PCG_MULT 6364136223846793005ULL
#define DROP_PER_THREAD 16

__host__ __device__ static uint64_t pcg_advance(uint64_t state, uint64_t inc, uint64_t delta)
{
	uint64_t cur_mult = PCG_MULT, cur_plus = inc, acc_mult = 1, acc_plus = 0;
	while (delta) {
		if (delta & 1) {
			acc_mult *= cur_mult;
			acc_plus = acc_plus * cur_mult + cur_plus;
		}
		cur_plus = (cur_mult + 1) * cur_plus;
		cur_mult *= cur_mult;
		delta >>= 1;
	}
	return acc_mult * state + acc_plus;
}

/* rng_u32 then rng_float of lib/base/rng.c */
__device__ static float pcg_float(uint64_t *state, uint64_t inc)
{
	uint64_t old = *state;
	*state = old * PCG_MULT + inc;
	uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
	uint32_t rot = (uint32_t)(old >> 59);
	uint32_t u = (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
	return (float)(u >> 8) * (1.0f / 16777216.0f);
}

__device__ static void dropout_body(float *out, float *mask, const float *inp, size_t n,
                                    float p, float scale, uint64_t state, uint64_t inc)
{
	size_t nt = (n + DROP_PER_THREAD - 1) / DROP_PER_THREAD;
	for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < nt;
	     t += (size_t)gridDim.x * blockDim.x) {
		size_t i0 = t * DROP_PER_THREAD, i1 = i0 + DROP_PER_THREAD < n ? i0 + DROP_PER_THREAD : n;
		uint64_t st = pcg_advance(state, inc, i0);
		for (size_t i = i0; i < i1; i++) {
			float mk = pcg_float(&st, inc) < p ? 0.0f : scale;
			mask[i] = mk;
			out[i] = inp[i] * mk;
		}
	}
}

__global__ static void dropout_kernel(float *out, float *mask, const float *inp, size_t n,
                                      float p, float scale, uint64_t state, uint64_t inc)
{
	dropout_body(out, mask, inp, n, p, scale, state, inc);
}

/* the generator read from device memory when the kernel runs */
__global__ static void dropout_at_kernel(float *out, float *mask, const float *inp, size_t n,
                                         float p, float scale, const uint64_t *st)
{
	dropout_body(out, mask, inp, n, p, scale, st[0], st[1]);
}

__global__ static void dropout_off_kernel(float *out, float *mask, const float *inp, size_t n)
{
	FOR_EACH(i, n)
	{
		mask[i] = 1.0f;
		out[i] = inp[i];
	}
}

void cu_dropout_forward(float *out, float *mask, const float *inp, size_t n, float p,
                        struct rng *rng)
{
	if (!cu_live() || !n)
		return;
	if (p <= 0.0f) {
		dropout_off_kernel<<<cu_grid(n, THREADS), THREADS, 0, cu.stream>>>(out, mask, inp, n);
		CU_LAUNCHED("dropout_forward");
		return;
	}
	if (cu_spoil("dropout_forward")) /* a recording would replay one mask */
		return;
	float scale = 1.0f / (1.0f - p);
	size_t nt = (n + DROP_PER_THREAD - 1) / DROP_PER_THREAD;
	dropout_kernel<<<cu_grid(nt, THREADS), THREADS, 0, cu.stream>>>(out, mask, inp, n, p, scale,
	                                                                rng->state, rng->inc);
	CU_LAUNCHED("dropout_forward");
	rng->state = pcg_advance(rng->state, rng->inc, n); /* n draws taken */
}

void cu_dropout_forward_at(float *out, float *mask, const float *inp, size_t n, float p,
                           const uint64_t *state)
{
	if (!cu_live() || !n)
		return;
	float scale = 1.0f / (1.0f - p);
	size_t nt = (n + DROP_PER_THREAD - 1) / DROP_PER_THREAD;
	dropout_at_kernel<<<cu_grid(nt, THREADS), THREADS, 0, cu.stream>>>(out, mask, inp, n, p, scale,
	                                                                   state);
	CU_LAUNCHED("dropout_forward_at");
}

/* ---------------- pooling ---------------- */

/* nn_cpu.c's pool_argmax: the first maximum wins, the first NaN wins at
 * once; -1 for a window wholly in the padding */
__device__ static int pool_argmax(const float *x, const struct nn_conv_shape s, int oh, int ow)
{
	int h0 = oh * s.SH - s.PH, w0 = ow * s.SW - s.PW;
	int kh0 = h0 < 0 ? -h0 : 0, kw0 = w0 < 0 ? -w0 : 0;
	int kh1 = s.H - h0 < s.KH ? s.H - h0 : s.KH;
	int kw1 = s.W - w0 < s.KW ? s.W - w0 : s.KW;
	if (kh0 >= kh1 || kw0 >= kw1)
		return -1;
	int best = (h0 + kh0) * s.W + w0 + kw0;
	float m = x[best];
	int nan = m != m;
	for (int kh = kh0; kh < kh1; kh++) {
		int row = (h0 + kh) * s.W + w0;
		for (int kw = kw0; kw < kw1; kw++) {
			float v = x[row + kw];
			int take = (nan == 0) & ((v > m) | (v != v));
			best = take ? row + kw : best;
			m = take ? v : m;
			nan |= v != v;
		}
	}
	return best;
}

__global__ static void maxpool_fwd_kernel(float *out, int32_t *idx, const float *inp,
                                          const struct nn_conv_shape s, size_t n)
{
	int P = s.OH * s.OW;
	FOR_EACH(o, n)
	{
		size_t pl = o / P;
		int p = (int)(o % P);
		const float *x = inp + pl * (size_t)s.H * s.W;
		int i = pool_argmax(x, s, p / s.OW, p % s.OW);
		out[o] = i < 0 ? -INFINITY : x[i];
		idx[o] = i;
	}
}

/* one thread per input element gathers the outputs whose argmax it is, in
 * the CPU's output order: no atomics, the CPU's sum bit for bit */
__global__ static void maxpool_bwd_kernel(float *dinp, const float *dout, const int32_t *idx,
                                          const struct nn_conv_shape s, size_t n)
{
	int HW = s.H * s.W, P = s.OH * s.OW;
	FOR_EACH(e, n)
	{
		size_t pl = e / HW;
		int j = (int)(e % HW), h = j / s.W, w = j % s.W;
		int lo_h = h + s.PH - s.KH + 1, lo_w = w + s.PW - s.KW + 1;
		int oh0 = lo_h <= 0 ? 0 : (lo_h + s.SH - 1) / s.SH;
		int ow0 = lo_w <= 0 ? 0 : (lo_w + s.SW - 1) / s.SW;
		int oh1 = (h + s.PH) / s.SH, ow1 = (w + s.PW) / s.SW;
		oh1 = oh1 < s.OH - 1 ? oh1 : s.OH - 1;
		ow1 = ow1 < s.OW - 1 ? ow1 : s.OW - 1;
		const float *d = dout + pl * P;
		const int32_t *ix = idx + pl * P;
		float acc = dinp[e];
		for (int oh = oh0; oh <= oh1; oh++)
			for (int ow = ow0; ow <= ow1; ow++) {
				int p = oh * s.OW + ow;
				if (ix[p] == j)
					acc += d[p];
			}
		dinp[e] = acc;
	}
}

void cu_maxpool_forward(float *out, int32_t *idx, const float *inp, const struct nn_conv_shape *s)
{
	size_t n = (size_t)s->N * s->C * s->OH * s->OW;
	LAUNCH(maxpool_fwd_kernel, n, "maxpool_forward", out, idx, inp, *s, n);
}

void cu_maxpool_backward(float *dinp, const float *dout, const int32_t *idx,
                         const struct nn_conv_shape *s)
{
	size_t n = (size_t)s->N * s->C * s->H * s->W;
	LAUNCH(maxpool_bwd_kernel, n, "maxpool_backward", dinp, dout, idx, *s, n);
}

/* one thread per plane, in order in double: the CPU's sum exactly */
__global__ static void avgpool_fwd_kernel(float *out, const float *inp, size_t planes, int HW)
{
	FOR_EACH(pl, planes)
	{
		const float *x = inp + pl * HW;
		double acc = 0.0;
		for (int i = 0; i < HW; i++)
			acc += x[i];
		out[pl] = (float)(acc / HW);
	}
}

__global__ static void avgpool_bwd_kernel(float *dinp, const float *dout, size_t n, int HW)
{
	FOR_EACH(i, n) { dinp[i] += dout[i / HW] / (float)HW; }
}

void cu_avgpool_forward(float *out, const float *inp, int N, int C, int HW)
{
	size_t planes = (size_t)N * C;
	LAUNCH(avgpool_fwd_kernel, planes, "avgpool_forward", out, inp, planes, HW);
}

void cu_avgpool_backward(float *dinp, const float *dout, int N, int C, int HW)
{
	size_t n = (size_t)N * C * HW;
	LAUNCH(avgpool_bwd_kernel, n, "avgpool_backward", dinp, dout, n, HW);
}

/* ---------------- softmax over the middle axis ----------------
 * One block per (outer, inner) column: the max (exact in any order), the
 * sum of exponentials in double by the fixed tree, then y = e / sum as the
 * CPU (e * (float)(1/sum)). */
__global__ static void softmax_fwd_kernel(float *out, const float *inp, int dim, int inner)
{
	__shared__ double sh[THREADS];
	int col = blockIdx.x, o = col / inner, in = col % inner;
	size_t base = (size_t)o * dim * inner + in;
	float mx = -INFINITY;
	for (int k = threadIdx.x; k < dim; k += THREADS)
		mx = fmaxf(mx, inp[base + (size_t)k * inner]);
	mx = block_max(mx, (float *)sh);
	double sum = 0.0;
	for (int k = threadIdx.x; k < dim; k += THREADS) {
		float e = expf(inp[base + (size_t)k * inner] - mx);
		out[base + (size_t)k * inner] = e;
		sum += e;
	}
	sum = block_sum(sum, sh);
	float r = (float)(1.0 / sum);
	for (int k = threadIdx.x; k < dim; k += THREADS)
		out[base + (size_t)k * inner] *= r;
}

__global__ static void softmax_bwd_kernel(float *dinp, const float *dout, const float *out,
                                          int dim, int inner)
{
	__shared__ double sh[THREADS];
	int col = blockIdx.x, o = col / inner, in = col % inner;
	size_t base = (size_t)o * dim * inner + in;
	double dot = 0.0;
	for (int k = threadIdx.x; k < dim; k += THREADS) {
		size_t j = base + (size_t)k * inner;
		dot += (double)dout[j] * out[j];
	}
	float fd = (float)block_sum(dot, sh);
	for (int k = threadIdx.x; k < dim; k += THREADS) {
		size_t j = base + (size_t)k * inner;
		dinp[j] += out[j] * (dout[j] - fd);
	}
}

void cu_softmax_forward(float *out, const float *inp, int outer, int dim, int inner)
{
	int cols = outer * inner;
	if (!cu_live() || cols <= 0 || dim <= 0)
		return;
	softmax_fwd_kernel<<<cols, THREADS, 0, cu.stream>>>(out, inp, dim, inner);
	CU_LAUNCHED("softmax_forward");
}

void cu_softmax_backward(float *dinp, const float *dout, const float *out, int outer, int dim,
                         int inner)
{
	int cols = outer * inner;
	if (!cu_live() || cols <= 0 || dim <= 0)
		return;
	softmax_bwd_kernel<<<cols, THREADS, 0, cu.stream>>>(dinp, dout, out, dim, inner);
	CU_LAUNCHED("softmax_backward");
}

/* ---------------- ABMIL attention head, fused ----------------
 *
 * After the first Linear (pre = h Vᵀ + bV, one cuBLAS product) the rest of
 * ABMIL's head in three kernels each way, where the chain of ops launches
 * seven forward and ten backward (net.c then also skips zeroing the
 * chain's gradient buffers).  Rows (instances) are split two ways, both
 * fixed by n:
 *   - row blocks: G = min(ceil(n / ATTN_ROWS), ATTN_ROW_BLOCKS) blocks take
 *     ATTN_ROWS rows at a time, block b rows from b*ATTN_ROWS, then G*
 *     ATTN_ROWS further on, ...; a group of ATTN_GROUP threads takes a row
 *     and sums its L or D products in double by a fixed tree (the scores
 *     A, the backward's da);
 *   - chunks: attn_chunks(n) contiguous ranges of rows; block (x, k) takes
 *     THREADS columns from x*THREADS and the rows of chunk k, one column a
 *     thread in row order, into double partials [chunk, column] that the
 *     last kernel adds in chunk order (z, dw).
 * The softmax over the bag has no pass of its own: each row block saves
 * the maximum m_b of its scores and s_b = Σ expf(A_i - m_b) (double); each
 * block of the next kernel takes M = max m_b and S = Σ s_b exp(m_b - M)
 * from them and a_i = expf(A_i - M) * (float)(1/S) as nn_cpu.c's softmax,
 * whose S sums expf(A_i - M) directly (the same to a few units in the
 * last place).  Likewise the backward's Σ_j a_j da_j: one double per row
 * block, added by the next kernel's blocks.
 */
#define ATTN_GROUP 32                    /* threads a row */
#define ATTN_ROWS (THREADS / ATTN_GROUP) /* rows a block at a time */
#define ATTN_ROW_BLOCKS 1024
#define ATTN_CHUNK_ROWS 64
#define ATTN_MAX_CHUNKS 256

static int attn_row_blocks(int n)
{
	int g = (n + ATTN_ROWS - 1) / ATTN_ROWS;
	return g < ATTN_ROW_BLOCKS ? g : ATTN_ROW_BLOCKS;
}

static int attn_chunks(int n)
{
	int k = (n + ATTN_CHUNK_ROWS - 1) / ATTN_CHUNK_ROWS;
	return k < 1 ? 1 : k > ATTN_MAX_CHUNKS ? ATTN_MAX_CHUNKS : k;
}

/* rows [*i0, *i1) of chunk k: balanced, none empty (chunks <= n) */
__device__ static void attn_chunk(int n, int chunks, int k, int *i0, int *i1)
{
	*i0 = (int)((long long)n * k / chunks);
	*i1 = (int)((long long)n * (k + 1) / chunks);
}

/* t = tanh(pre) (t may be pre), A_i = (float)Σ_l t_il w_l + bw (the
 * product's float, then the bias, as linear_forward); stat[2b], stat[2b+1]:
 * the maximum of block b's scores and Σ expf(A_i - maximum) over them */
__global__ static void attn_score_kernel(float *t, float *A, double *stat, const float *pre,
                                         const float *w, const float *bw, int n, int L)
{
	__shared__ double sh[THREADS];
	int lane = threadIdx.x % ATTN_GROUP, step = gridDim.x * ATTN_ROWS;
	float b0 = bw ? bw[0] : 0.0f, mx = -INFINITY;
	for (int i0 = blockIdx.x * ATTN_ROWS; i0 < n; i0 += step) {
		int i = i0 + threadIdx.x / ATTN_GROUP;
		double acc = 0.0;
		if (i < n)
			for (int l = lane; l < L; l += ATTN_GROUP) {
				size_t at = (size_t)i * L + l;
				float v = tanhf(pre[at]);
				t[at] = v;
				acc += (double)v * w[l];
			}
		float Ai = (float)group_sum(acc, sh, ATTN_GROUP) + b0;
		if (i < n) {
			if (lane == 0)
				A[i] = Ai;
			mx = Ai > mx ? Ai : mx; /* as the CPU: a NaN never becomes the maximum */
		}
	}
	mx = block_max(mx, (float *)sh); /* its barriers also publish A */
	double s = 0.0;
	for (int q = threadIdx.x;; q += THREADS) {
		int i0 = blockIdx.x * ATTN_ROWS + q / ATTN_ROWS * step, i = i0 + q % ATTN_ROWS;
		if (i0 >= n)
			break;
		if (i < n)
			s += expf(A[i] - mx);
	}
	s = block_sum(s, sh);
	if (threadIdx.x == 0) {
		stat[2 * blockIdx.x] = mx;
		stat[2 * blockIdx.x + 1] = s;
	}
}

/* M and 1/S of the bag's softmax from the G row blocks' stat, in every
 * thread (a block whose scores are all -inf adds nothing, as on the CPU) */
__device__ static void attn_softmax_stat(float *mx, float *r, const double *stat, int G,
                                         double *sh)
{
	float m = -INFINITY;
	for (int b = threadIdx.x; b < G; b += THREADS)
		m = fmaxf(m, (float)stat[2 * b]);
	m = block_max(m, (float *)sh);
	double s = 0.0;
	for (int b = threadIdx.x; b < G; b += THREADS)
		if (stat[2 * b] > -INFINITY)
			s += stat[2 * b + 1] * exp(stat[2 * b] - (double)m);
	*r = (float)(1.0 / block_sum(s, sh));
	*mx = m;
}

/* block (x, k): a_i of chunk k's rows (written by x = 0) and, for the
 * block's columns j, part[k, j] = Σ_i a_i h_ij over them */
__global__ static void attn_pool_kernel(float *a, double *part, const float *A,
                                        const double *stat, const float *h, int n, int D, int G,
                                        int chunks)
{
	__shared__ double sh[THREADS];
	__shared__ float sa[THREADS];
	int k = blockIdx.y, j = blockIdx.x * THREADS + threadIdx.x, i0, i1;
	float mx, r;
	attn_softmax_stat(&mx, &r, stat, G, sh);
	attn_chunk(n, chunks, k, &i0, &i1);
	double acc = 0.0;
	for (int r0 = i0; r0 < i1; r0 += THREADS) {
		int i = r0 + threadIdx.x, cnt = i1 - r0 < THREADS ? i1 - r0 : THREADS;
		if (i < i1) {
			float e = expf(A[i] - mx) * r;
			sa[threadIdx.x] = e;
			if (blockIdx.x == 0)
				a[i] = e;
		}
		__syncthreads();
		if (j < D)
			for (int q = 0; q < cnt; q++)
				acc += (double)sa[q] * h[(size_t)(r0 + q) * D + j];
		__syncthreads();
	}
	if (j < D)
		part[(size_t)k * D + j] = acc;
}

/* one block: z_j = (float)Σ_k part[k, j] in chunk order, logits_c =
 * (float)Σ_j z_j C_cj + bc_c */
__global__ static void attn_logits_kernel(float *z, float *logits, const double *part,
                                          const float *C, const float *bc, int D, int chunks)
{
	__shared__ double sh[THREADS];
	double l0 = 0.0, l1 = 0.0;
	for (int j = threadIdx.x; j < D; j += THREADS) {
		double s = 0.0;
		for (int k = 0; k < chunks; k++)
			s += part[(size_t)k * D + j];
		float zj = (float)s;
		z[j] = zj;
		l0 += (double)zj * C[j];
		l1 += (double)zj * C[(size_t)D + j];
	}
	l0 = block_sum(l0, sh);
	l1 = block_sum(l1, sh);
	if (threadIdx.x == 0) {
		logits[0] = (float)l0 + (bc ? bc[0] : 0.0f);
		logits[1] = (float)l1 + (bc ? bc[1] : 0.0f);
	}
}

void cu_abmil_attn_forward(float *t, float *A, float *a, float *z, float *logits,
                           const float *pre, const float *h, const float *w, const float *bw,
                           const float *C, const float *bc, int n, int L, int D)
{
	if (!cu_live() || n <= 0 || L <= 0 || D <= 0)
		return;
	int G = attn_row_blocks(n), chunks = attn_chunks(n);
	/* stat [G, 2], part [chunks, D] */
	double *tmp = (double *)cu_tmp((2 * (size_t)G + (size_t)chunks * D) * sizeof(double));
	if (!tmp)
		return;
	double *stat = tmp, *part = tmp + 2 * (size_t)G;
	dim3 grid((unsigned)((D + THREADS - 1) / THREADS), (unsigned)chunks);
	attn_score_kernel<<<G, THREADS, 0, cu.stream>>>(t, A, stat, pre, w, bw, n, L);
	attn_pool_kernel<<<grid, THREADS, 0, cu.stream>>>(a, part, A, stat, h, n, D, G, chunks);
	attn_logits_kernel<<<1, THREADS, 0, cu.stream>>>(z, logits, part, C, bc, D, chunks);
	CU_LAUNCHED("abmil_attn_forward");
}

/* dC += dlogitsᵀ z and dbc += dlogits (grid-stride); block b's rows, a
 * group of threads each: da_i = (float)Σ_j h_ij dz_j by the group's tree
 * and dh_i += a_i dz, dz_j = dl_0 C_0j + dl_1 C_1j recomputed where used;
 * stat[b] = Σ (double)da_i a_i over them */
__global__ static void attn_da_kernel(float *da, double *stat, float *dh, float *dC, float *dbc,
                                      const float *dl, const float *h, const float *a,
                                      const float *z, const float *C, int n, int D)
{
	__shared__ double sh[THREADS];
	int lane = threadIdx.x % ATTN_GROUP, step = gridDim.x * ATTN_ROWS;
	float d0 = dl[0], d1 = dl[1];
	if (dC)
		FOR_EACH(e, 2 * (size_t)D) { dC[e] += dl[e / D] * z[e % D]; }
	if (dbc && blockIdx.x == 0 && threadIdx.x < 2)
		dbc[threadIdx.x] += dl[threadIdx.x];
	double dot = 0.0; /* the group's rows */
	for (int i0 = blockIdx.x * ATTN_ROWS; i0 < n; i0 += step) {
		int i = i0 + threadIdx.x / ATTN_GROUP;
		float ai = i < n ? a[i] : 0.0f;
		double acc = 0.0;
		if (i < n)
			for (int j = lane; j < D; j += ATTN_GROUP) {
				size_t at = (size_t)i * D + j;
				float dz = d0 * C[j] + d1 * C[(size_t)D + j];
				acc += (double)h[at] * dz;
				if (dh)
					dh[at] += ai * dz;
			}
		float dai = (float)group_sum(acc, sh, ATTN_GROUP);
		if (i < n) {
			if (lane == 0)
				da[i] = dai;
			dot += (double)dai * ai;
		}
	}
	dot = block_sum(lane == 0 ? dot : 0.0, sh);
	if (threadIdx.x == 0)
		stat[blockIdx.x] = dot;
}

/* block (x, k), rows of chunk k: dA_i = a_i (da_i - fd), fd = (float)Σ_b
 * stat[b] (softmax_backward's); for the block's columns l, du_il = dA_i
 * w_l (1 - t_il²) rounded step by step as linear_backward then
 * tanh_backward round it, and part_w[k, l] = Σ_i dA_i t_il; x = 0's thread
 * 0: part_b[k] = Σ_i dA_i.  du, part_w, part_b may be NULL. */
__global__ static void attn_du_kernel(float *du, double *part_w, double *part_b, const float *da,
                                      const double *stat, const float *a, const float *t,
                                      const float *w, int n, int L, int G, int chunks)
{
	__shared__ double sh[THREADS];
	__shared__ float sd[THREADS];
	int k = blockIdx.y, l = blockIdx.x * THREADS + threadIdx.x, i0, i1;
	double s = 0.0;
	for (int b = threadIdx.x; b < G; b += THREADS)
		s += stat[b];
	float fd = (float)block_sum(s, sh), wl = l < L ? w[l] : 0.0f;
	attn_chunk(n, chunks, k, &i0, &i1);
	double acc = 0.0, accb = 0.0;
	for (int r0 = i0; r0 < i1; r0 += THREADS) {
		int i = r0 + threadIdx.x, cnt = i1 - r0 < THREADS ? i1 - r0 : THREADS;
		if (i < i1)
			sd[threadIdx.x] = a[i] * (da[i] - fd);
		__syncthreads();
		if (l < L)
			for (int q = 0; q < cnt; q++) {
				size_t at = (size_t)(r0 + q) * L + l;
				float dA = sd[q], tv = t[at];
				if (du)
					du[at] = __fmul_rn(__fmul_rn(dA, wl),
					                   __fsub_rn(1.0f, __fmul_rn(tv, tv)));
				acc += (double)dA * tv;
			}
		if (blockIdx.x == 0 && threadIdx.x == 0)
			for (int q = 0; q < cnt; q++)
				accb += sd[q];
		__syncthreads();
	}
	if (part_w && l < L)
		part_w[(size_t)k * L + l] = acc;
	if (part_b && blockIdx.x == 0 && threadIdx.x == 0)
		part_b[k] = accb;
}

/* dw_l += (float)Σ_k part_w[k, l], dbw += (float)Σ_k part_b[k], in chunk
 * order; either may be NULL */
__global__ static void attn_dw_kernel(float *dw, float *dbw, const double *part_w,
                                      const double *part_b, int L, int chunks)
{
	int l = blockIdx.x * blockDim.x + threadIdx.x;
	if (dw && l < L) {
		double s = 0.0;
		for (int k = 0; k < chunks; k++)
			s += part_w[(size_t)k * L + l];
		dw[l] += (float)s;
	}
	if (dbw && l == 0) {
		double s = 0.0;
		for (int k = 0; k < chunks; k++)
			s += part_b[k];
		dbw[0] += (float)s;
	}
}

void cu_abmil_attn_backward(float *du, float *dh, float *dw, float *dbw, float *dC, float *dbc,
                            const float *dlogits, const float *t, const float *h, const float *a,
                            const float *z, const float *w, const float *C, int n, int L, int D)
{
	if (!cu_live() || n <= 0 || L <= 0 || D <= 0)
		return;
	int need_da = du || dw || dbw;
	if (!need_da && !dh && !dC && !dbc)
		return;
	int G = attn_row_blocks(n), chunks = attn_chunks(n);
	/* stat [G], part_w [chunks, L], part_b [chunks] doubles, then da [n] */
	size_t nd = (size_t)G + (size_t)chunks * L + chunks;
	double *tmp = (double *)cu_tmp(nd * sizeof(double) + (size_t)n * sizeof(float));
	if (!tmp)
		return;
	double *stat = tmp, *part_w = stat + G, *part_b = part_w + (size_t)chunks * L;
	float *da = (float *)(tmp + nd);
	attn_da_kernel<<<G, THREADS, 0, cu.stream>>>(da, stat, dh, dC, dbc, dlogits, h, a, z, C, n,
	                                             D);
	if (need_da) {
		dim3 grid((unsigned)((L + THREADS - 1) / THREADS), (unsigned)chunks);
		attn_du_kernel<<<grid, THREADS, 0, cu.stream>>>(du, dw ? part_w : NULL,
		                                                dbw ? part_b : NULL, da, stat, a,
		                                                t, w, n, L, G, chunks);
	}
	if (dw || dbw)
		attn_dw_kernel<<<(L + THREADS - 1) / THREADS, THREADS, 0, cu.stream>>>(
			dw, dbw, part_w, part_b, L, chunks);
	CU_LAUNCHED("abmil_attn_backward");
}

/* ---------------- losses ----------------
 * One block: each thread takes rows b = t, t+THREADS, ..., computes the
 * row's loss and dlogits in double as nn_cpu.c does, and the block sums
 * the row losses by the fixed tree into *loss (divided by B). */

__device__ static void softmax2(double *q0, double *q1, const float *z)
{
	double m = z[0] > z[1] ? z[0] : z[1];
	double e0 = exp(z[0] - m), e1 = exp(z[1] - m);
	*q0 = e0 / (e0 + e1);
	*q1 = e1 / (e0 + e1);
}

__global__ static void bce2_kernel(double *loss, float *dlogits, const float *logits,
                                   const float *y, int B, float eps)
{
	__shared__ double sh[THREADS];
	double acc = 0.0;
	for (int b = threadIdx.x; b < B; b += THREADS) {
		double q0, p;
		softmax2(&q0, &p, logits + 2 * b);
		double Y = y[b];
		acc += -(Y * log(p + eps) + (1.0 - Y) * log(1.0 - p + eps));
		double dp = (-Y / (p + eps) + (1.0 - Y) / (1.0 - p + eps)) / B;
		double g = dp * p * (1.0 - p);
		dlogits[2 * b] = (float)-g;
		dlogits[2 * b + 1] = (float)g;
	}
	acc = block_sum(acc, sh);
	if (threadIdx.x == 0)
		*loss = acc / B;
}

__global__ static void ce_kernel(double *loss, float *dlogits, const float *logits,
                                 const int *label, int B, int K)
{
	__shared__ double sh[THREADS];
	double acc = 0.0;
	for (int b = threadIdx.x; b < B; b += THREADS) {
		const float *z = logits + (size_t)b * K;
		double m = z[0];
		for (int k = 1; k < K; k++)
			if (z[k] > m)
				m = z[k];
		double sum = 0.0;
		for (int k = 0; k < K; k++)
			sum += exp(z[k] - m);
		double lse = m + log(sum);
		acc += lse - z[label[b]];
		for (int k = 0; k < K; k++) {
			double q = exp(z[k] - lse);
			dlogits[(size_t)b * K + k] = (float)((q - (k == label[b])) / B);
		}
	}
	acc = block_sum(acc, sh);
	if (threadIdx.x == 0)
		*loss = acc / B;
}

__global__ static void soft2_kernel(double *loss, float *dlogits, const float *logits,
                                    const float *y, int B, float w, float eps)
{
	__shared__ double sh[THREADS];
	double acc = 0.0;
	for (int b = threadIdx.x; b < B; b += THREADS) {
		double q0, q1;
		softmax2(&q0, &q1, logits + 2 * b);
		double Y = y[b];
		double a0 = w * (1.0 - Y), a1 = (1.0 - w) * Y;
		acc += -(a0 * log(q0 + eps) + a1 * log(q1 + eps));
		double dq0 = -a0 / (q0 + eps) / B, dq1 = -a1 / (q1 + eps) / B;
		double dot = dq0 * q0 + dq1 * q1;
		dlogits[2 * b] = (float)(q0 * (dq0 - dot));
		dlogits[2 * b + 1] = (float)(q1 * (dq1 - dot));
	}
	acc = block_sum(acc, sh);
	if (threadIdx.x == 0)
		*loss = acc / B;
}

/* the loss word to the host (one small download; waits for the kernel) */
static double loss_result(const char *what)
{
	if (CU_LAUNCHED(what) < 0 ||
	    cu_check(cudaMemcpyAsync(cu.hloss, cu.dloss, sizeof(double), cudaMemcpyDeviceToHost,
	                             cu.stream), what) < 0 ||
	    cu_check(cudaStreamSynchronize(cu.stream), what) < 0)
		return NAN;
	return *cu.hloss;
}

double cu_loss_bce2(float *dlogits, const float *logits, const float *y, int B, float eps)
{
	if (!cu_live() || B <= 0 || cu_spoil("loss_bce2"))
		return NAN;
	bce2_kernel<<<1, THREADS, 0, cu.stream>>>(cu.dloss, dlogits, logits, y, B, eps);
	return loss_result("loss_bce2");
}

double cu_loss_ce(float *dlogits, const float *logits, const int *label, int B, int K)
{
	if (!cu_live() || B <= 0 || K <= 0 || cu_spoil("loss_ce"))
		return NAN;
	ce_kernel<<<1, THREADS, 0, cu.stream>>>(cu.dloss, dlogits, logits, label, B, K);
	return loss_result("loss_ce");
}

double cu_loss_soft2(float *dlogits, const float *logits, const float *y, int B, float w,
                     float eps)
{
	if (!cu_live() || B <= 0 || cu_spoil("loss_soft2"))
		return NAN;
	soft2_kernel<<<1, THREADS, 0, cu.stream>>>(cu.dloss, dlogits, logits, y, B, w, eps);
	return loss_result("loss_soft2");
}

/* ---------------- optimizers (torch.optim, as nn_cpu.c) ---------------- */

__global__ static void sgd_kernel(float *param, const float *grad, float *m, size_t n, float lr,
                                  float wd, float mom, float damp, int nesterov, int first)
{
	FOR_EACH(i, n)
	{
		float d = grad[i];
		if (wd != 0.0f)
			d = d + wd * param[i];
		if (mom != 0.0f) {
			float b = first ? d : m[i] * mom + damp * d;
			m[i] = b;
			d = nesterov ? d + mom * b : b;
		}
		param[i] = param[i] + (-lr) * d;
	}
}

__global__ static void adam_kernel(float *param, const float *grad, float *m, float *v, size_t n,
                                   float b1, float b2, float wd, float eps, float step_size,
                                   float bc2s)
{
	FOR_EACH(i, n)
	{
		float g = grad[i];
		if (wd != 0.0f)
			g = g + wd * param[i];
		float mi = m[i] * b1 + (1.0f - b1) * g;
		float vi = v[i] * b2 + (1.0f - b2) * (g * g);
		m[i] = mi;
		v[i] = vi;
		float denom = sqrtf(vi) / bc2s + eps;
		param[i] = param[i] + (-step_size) * (mi / denom);
	}
}

void cu_sgd_step(float *param, const float *grad, float *m, size_t n,
                 const struct nn_optim_conf *c, long step)
{
	LAUNCH(sgd_kernel, n, "sgd_step", param, grad, m, n, c->lr, c->weight_decay, c->momentum,
	       1.0f - c->dampening, c->nesterov, step <= 1);
}

void cu_adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                  const struct nn_optim_conf *c, long step)
{
	/* the bias corrections on the host, in double, exactly as the CPU */
	double bc1 = 1.0 - pow((double)c->beta1, (double)step);
	double bc2 = 1.0 - pow((double)c->beta2, (double)step);
	float step_size = (float)((double)c->lr / bc1);
	float bc2s = (float)sqrt(bc2);
	LAUNCH(adam_kernel, n, "adam_step", param, grad, m, v, n, c->beta1, c->beta2,
	       c->weight_decay, c->eps, step_size, bc2s);
}

/* ---------------- start-up probe ---------------- */

cudaError_t cu_probe_kernels(void)
{
	cudaFuncAttributes a;
	return cudaFuncGetAttributes(&a, scale_kernel);
}
