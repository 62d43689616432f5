/* nn_cpu.c - the CPU backend: OpenBLAS sgemm for every matrix product,
 * OpenMP for loops over independent outputs.  See nn.h for the contract.
 *
 * Determinism: no reduction across OpenMP threads anywhere; every sum runs
 * in a fixed order inside one thread (a channel, a row, an image plane, a
 * convolution lane; "omp simd reduction" only splits a sum over the vector
 * lanes of one thread, a split fixed at compile time), so results are
 * bit-identical for any thread count.  Sums of many terms use double.
 *
 * Speed: elementwise loops are branch-free ("omp simd", keep_if) because the
 * signs of activations are random and a branch there mispredicts half the
 * time; convolutions of large batches work on cache-sized blocks of images
 * (see "convolution").
 */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

void nn_conv_shape_finish(struct nn_conv_shape *s)
{
	s->OH = (s->H + 2 * s->PH - s->KH) / s->SH + 1;
	s->OW = (s->W + 2 * s->PW - s->KW) / s->SW + 1;
}

/* OpenBLAS's pthread build starts a pool of worker threads when it loads;
 * after openblas_set_num_threads(1) they get no work but keep polling
 * (sched_yield), and on 2 cores they steal a core from OpenMP's threads: a
 * 6x6 first convolution measured 5x slower.  blas_thread_shutdown_ (an
 * exported OpenBLAS function, absent from other BLAS builds, hence weak)
 * stops them; single-threaded calls never start them again. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

static void blas_stop_pool(void)
{
	openblas_set_num_threads(1);
	if (blas_thread_shutdown_)
		blas_thread_shutdown_();
}

void nn_set_threads(int n)
{
	if (n < 1)
		n = 1;
	omp_set_num_threads(n);
	blas_stop_pool();
}

/* OpenBLAS runs single-threaded: every sgemm call is one thread's work */
static void blas_single_thread(void)
{
	static int blas_single;
	if (!__atomic_load_n(&blas_single, __ATOMIC_ACQUIRE)) {
		blas_stop_pool();
		__atomic_store_n(&blas_single, 1, __ATOMIC_RELEASE);
	}
}

/* C [M,N] = alpha op(A) op(B) + beta C, row-major, cut into at most one
 * block of rows or of columns of C per OpenMP thread, each one
 * single-threaded sgemm.  The blocks start at multiples of 64 rows or
 * columns, so every element of C falls at the same place of OpenBLAS's
 * micro-tiles whatever the cut, and OpenBLAS blocks K by K alone: an element
 * is the same sum in the same order for any number of threads.  But OpenBLAS
 * computes small products with other kernels (its "small matrix" and
 * "direct" paths, below about 7.3 M multiply-adds on one thread), so a block
 * is never smaller than GEMM_MIN_WORK: a product is either one call for any
 * thread count or cut into blocks that all take the general path.
 * test_nn_train's gemm_threads checks 1 to 5 threads bit for bit.  One
 * block per thread also packs the shared operand once per thread rather
 * than once per small block (the student head's 256x4096x4096 product ran
 * 7 % faster than in blocks of 512).  OpenBLAS's own threads never run:
 * they would compete with OpenMP's (nn_set_threads, blas_single_thread). */
#define GEMM_ALIGN 64
#define GEMM_MIN_WORK 8e6

/* rows or columns [*i0, *i1) of block b of nblk over units of GEMM_ALIGN */
static void gemm_block(int dim, int units, int nblk, int b, int *i0, int *i1)
{
	*i0 = (int)((long)units * b / nblk) * GEMM_ALIGN;
	int e = (int)((long)units * (b + 1) / nblk) * GEMM_ALIGN;
	*i1 = e < dim ? e : dim;
}

static void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc)
{
	enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans;
	enum CBLAS_TRANSPOSE TB = tb ? CblasTrans : CblasNoTrans;
	if (M <= 0 || N <= 0)
		return;
	blas_single_thread();
	double work = (double)M * N * (K > 0 ? K : 1);
	int split_n = N >= M;
	int dim = split_n ? N : M;
	int units = (dim + GEMM_ALIGN - 1) / GEMM_ALIGN;
	int nblk = omp_get_max_threads();
	if (nblk > units)
		nblk = units;
	/* the smallest block (the last one, or any when they are even) */
	for (; nblk > 1; nblk--) {
		int small = dim;
		for (int b = 0; b < nblk; b++) {
			int i0, i1;
			gemm_block(dim, units, nblk, b, &i0, &i1);
			small = i1 - i0 < small ? i1 - i0 : small;
		}
		if (work / dim * small >= GEMM_MIN_WORK)
			break;
	}
	if (nblk <= 1) {
		cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
#pragma omp parallel for schedule(static, 1) num_threads(nblk)
	for (int b = 0; b < nblk; b++) {
		int i0, i1;
		gemm_block(dim, units, nblk, b, &i0, &i1);
		int len = i1 - i0;
		if (split_n) {
			/* columns i0.. of C: columns of op(B) */
			const float *Bb = tb ? B + (size_t)i0 * ldb : B + i0;
			cblas_sgemm(CblasRowMajor, TA, TB, M, len, K, alpha, A, lda, Bb, ldb, beta,
			            C + i0, ldc);
		} else {
			/* rows i0.. of C: rows of op(A) */
			const float *Ab = ta ? A + i0 : A + (size_t)i0 * lda;
			cblas_sgemm(CblasRowMajor, TA, TB, len, N, K, alpha, Ab, lda, B, ldb, beta,
			            C + (size_t)i0 * ldc, ldc);
		}
	}
}

/* ---------------- memory ---------------- */

static float *cpu_alloc(size_t n)
{
	return calloc(n ? n : 1, sizeof(float));
}

static void cpu_free(float *p)
{
	free(p);
}

static void cpu_zero(float *p, size_t n)
{
	if (n < ((size_t)1 << 20)) {
		if (n)
			memset(p, 0, n * sizeof *p);
		return;
	}
	/* gradient buffers of tens of MB: both cores' store bandwidth */
	size_t chunk = (size_t)1 << 18, nchunk = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
	for (size_t c = 0; c < nchunk; c++) {
		size_t i0 = c * chunk, len = n - i0 < chunk ? n - i0 : chunk;
		memset(p + i0, 0, len * sizeof *p);
	}
}

static void cpu_copy(float *dst, const float *src, size_t n)
{
	if (n && dst != src)
		memmove(dst, src, n * sizeof *dst);
}

/* ---------------- linear ---------------- */

static void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                           int N, int C, int OC)
{
	gemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C,
	            0.0f, out, OC);
	if (bias) {
#pragma omp parallel for schedule(static)
		for (int n = 0; n < N; n++) {
			float *o = out + (size_t)n * OC;
			for (int j = 0; j < OC; j++)
				o[j] += bias[j];
		}
	}
}

/* column sums of dout [N,OC] in double, in blocks of 64 columns (each
 * thread owns its columns); dbias += the sums, or with step a plain SGD
 * step with them: dbias = dbias + (-lr)·sum, as sgd_step computes it */
static void bias_grad(float *dbias, const float *dout, int N, int OC, int step, float lr)
{
	int nblk = (OC + 63) / 64;
#pragma omp parallel for schedule(static)
	for (int b = 0; b < nblk; b++) {
		double acc[64] = {0};
		int j0 = b * 64, j1 = j0 + 64 < OC ? j0 + 64 : OC;
		for (int n = 0; n < N; n++) {
			const float *d = dout + (size_t)n * OC;
			for (int j = j0; j < j1; j++)
				acc[j - j0] += d[j];
		}
		for (int j = j0; j < j1; j++) {
			float g = (float)acc[j - j0];
			dbias[j] = step ? dbias[j] + (-lr) * g : dbias[j] + g;
		}
	}
}

static void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int C, int OC)
{
	if (dinp)
		gemm(0, 0, N, C, OC, 1.0f, dout, OC,
		            weight, C, 1.0f, dinp, C);
	if (dweight)
		gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp,
		            C, 1.0f, dweight, C);
	if (dbias)
		bias_grad(dbias, dout, N, OC, 0, 0.0f);
}

/* the weight's gradient goes straight into the weight (OpenBLAS folds alpha
 * = -lr into its multiply-add: C + (-lr)·Σ in one rounding, where the
 * unfused path rounds Σ, then -lr·Σ, then the sum) */
static void linear_backward_sgd(float *dinp, float *weight, float *bias, const float *dout,
                                const float *inp, int N, int C, int OC, float lr)
{
	if (dinp)
		gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
	gemm(1, 0, OC, C, N, -lr, dout, OC, inp, C, 1.0f, weight, C);
	if (bias)
		bias_grad(bias, dout, N, OC, 1, lr);
}

/* ---------------- convolution ----------------
 *
 * The batch is cut into up to CONV_LANES contiguous lanes of images; a lane
 * walks its images in blocks of at most G, G chosen from the shape so that a
 * block's im2col matrix and output stay in the core's cache.  A block is
 * im2col, one single-threaded sgemm and a scatter into NCHW; the lanes run
 * on OpenMP threads.  The weight gradient of a lane accumulates over its
 * blocks in order, in the lane's own part of scratch, and the lanes are
 * added in lane order at the end.  Lanes and blocks depend on the shape
 * only, never on the thread count, so results are bit-identical for any
 * number of threads.
 */
#define CONV_LANES 4
#define CONV_BLOCK_FLOATS 196608 /* im2col + output floats of one block (768 KiB) */
/* Smaller batches take one im2col of the whole batch and one sgemm split
 * over output columns (the blocks would be tiny); they round exactly as
 * before the blocked path existed. */
#define CONV_MIN_BLOCKED 8

struct conv_plan {
	int blocked;        /* 0: one im2col and one (column-split) sgemm over the batch */
	int lanes;          /* lanes with images */
	int G;              /* most images in one block */
	int K, P;           /* C*KH*KW, OH*OW */
	int pointwise;      /* 1x1, stride 1, no padding: an image is its own im2col */
	size_t lane_floats; /* scratch of one lane: col [K,G*P], outT [OC,G*P], dW [OC,K] */
};

static struct conv_plan conv_plan(const struct nn_conv_shape *s)
{
	struct conv_plan p;
	p.K = s->C * s->KH * s->KW;
	p.P = s->OH * s->OW;
	p.lanes = s->N < CONV_LANES ? s->N : CONV_LANES;
	if (p.lanes < 1)
		p.lanes = 1;
	int per = (s->N + p.lanes - 1) / p.lanes;
	size_t img = (size_t)p.P * ((size_t)p.K + (size_t)s->OC);
	size_t g = img ? CONV_BLOCK_FLOATS / img : 1;
	if (g < 1)
		g = 1;
	p.G = (size_t)per < g ? per : (int)g;
	if (p.G < 1)
		p.G = 1;
	p.pointwise = s->KH == 1 && s->KW == 1 && s->SH == 1 && s->SW == 1 && s->PH == 0 &&
	              s->PW == 0;
	p.lane_floats = (size_t)p.G * p.P * ((size_t)p.K + (size_t)s->OC) +
	                (size_t)s->OC * p.K;
	p.blocked = s->N >= CONV_MIN_BLOCKED;
	return p;
}

static int wino_applies(const struct nn_conv_shape *s);
static size_t wino_scratch_floats(const struct nn_conv_shape *s);

size_t nn_conv2d_scratch_floats(const struct nn_conv_shape *s)
{
	if (wino_applies(s))
		return wino_scratch_floats(s);
	struct conv_plan p = conv_plan(s);
	if (!p.blocked) /* col [K, N*P] + outT [OC, N*P] */
		return (size_t)s->N * p.P * ((size_t)p.K + (size_t)s->OC);
	return (size_t)p.lanes * p.lane_floats;
}

/* images [n0, n1) of lane l and its block size */
static void conv_lane(int lanes, int G, int N, int l, int *n0, int *n1, int *bs)
{
	*n0 = (int)((long)l * N / lanes);
	*n1 = (int)((long)(l + 1) * N / lanes);
	int cnt = *n1 - *n0;
	int nb = (cnt + G - 1) / G;
	*bs = nb > 0 ? (cnt + nb - 1) / nb : 1;
}

/* first and one-past-last output column whose input column o*S - P + k is
 * inside [0, W) */
static void valid_range(int OW, int W, int S, int P, int k, int *lo, int *hi)
{
	int a = P - k;                            /* o*S >= a */
	int l = a <= 0 ? 0 : (a + S - 1) / S;
	int b = W + P - k;                        /* o*S < b */
	int h = b <= 0 ? 0 : (b + S - 1) / S;
	if (h > OW)
		h = OW;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

/* image n of inp into columns [i*P, (i+1)*P) of col [K, ld] */
static void im2col_image(float *restrict col, size_t ld, const float *restrict inp,
                         const struct nn_conv_shape *s, int n, int i)
{
	int C = s->C, H = s->H, W = s->W, KH = s->KH, KW = s->KW;
	int OH = s->OH, OW = s->OW, P = OH * OW, SH = s->SH, SW = s->SW;
	const float *img = inp + (size_t)n * C * H * W;
	for (int c = 0; c < C; c++) {
		const float *src = img + (size_t)c * H * W;
		for (int kh = 0; kh < KH; kh++) {
			for (int kw = 0; kw < KW; kw++) {
				int r = (c * KH + kh) * KW + kw, lo, hi;
				valid_range(OW, W, SW, s->PW, kw, &lo, &hi);
				float *dst = col + (size_t)r * ld + (size_t)i * P;
				for (int oh = 0; oh < OH; oh++) {
					int ih = oh * SH - s->PH + kh;
					float *d = dst + (size_t)oh * OW;
					if (ih < 0 || ih >= H) {
						memset(d, 0, (size_t)OW * sizeof *d);
						continue;
					}
					const float *srow = src + (size_t)ih * W - s->PW + kw;
					for (int ow = 0; ow < lo; ow++)
						d[ow] = 0.0f;
					if (SW == 1) {
						memcpy(d + lo, srow + lo, (size_t)(hi - lo) * sizeof *d);
					} else {
						for (int ow = lo; ow < hi; ow++)
							d[ow] = srow[(size_t)ow * SW];
					}
					for (int ow = hi; ow < OW; ow++)
						d[ow] = 0.0f;
				}
			}
		}
	}
}

/* col [K, g*P] from the g images of inp starting at image n0 */
static void im2col_block(float *col, const float *inp, const struct nn_conv_shape *s, int n0,
                         int g)
{
	size_t ld = (size_t)g * s->OH * s->OW;
	for (int i = 0; i < g; i++)
		im2col_image(col, ld, inp, s, n0 + i, i);
}

/* dinp image n += col2im of columns [i*P, (i+1)*P) of dcol [K, ld]; a fixed
 * (c,kh,kw,oh,ow) order for every input element */
static void col2im_image_add(float *restrict dinp, const float *restrict dcol, size_t ld,
                             const struct nn_conv_shape *s, int n, int i)
{
	int C = s->C, H = s->H, W = s->W, KH = s->KH, KW = s->KW;
	int OH = s->OH, OW = s->OW, P = OH * OW, SH = s->SH, SW = s->SW;
	for (int c = 0; c < C; c++) {
		float *dst = dinp + ((size_t)n * C + c) * H * W;
		for (int kh = 0; kh < KH; kh++) {
			for (int kw = 0; kw < KW; kw++) {
				int r = (c * KH + kh) * KW + kw, lo, hi;
				valid_range(OW, W, SW, s->PW, kw, &lo, &hi);
				const float *src = dcol + (size_t)r * ld + (size_t)i * P;
				for (int oh = 0; oh < OH; oh++) {
					int ih = oh * SH - s->PH + kh;
					if (ih < 0 || ih >= H)
						continue;
					float *drow = dst + (size_t)ih * W - s->PW + kw;
					const float *srow = src + (size_t)oh * OW;
					if (SW == 1) {
						for (int ow = lo; ow < hi; ow++)
							drow[ow] += srow[ow];
					} else {
						for (int ow = lo; ow < hi; ow++)
							drow[(size_t)ow * SW] += srow[ow];
					}
				}
			}
		}
	}
}

/* ---------------- Winograd F(2x2, 3x3) ----------------
 *
 * 3x3 convolutions with stride 1 and padding 1 (the fmnist encoder's
 * second to fourth layers, ResNet-18's basic blocks) cost 2.25x fewer
 * multiplications this way (Lavin and Gray, 2016).  The output is cut into
 * 2x2 tiles; each tile's 4x4 input patch d and each 3x3 filter g are
 * transformed, V = Bᵀ d B and U = G g Gᵀ; for each of the 16 positions xi
 * of the transformed tile the channel sum is one sgemm, M_xi [T,OC] = V_xi
 * [T,C] x U_xiᵀ [C,OC]; and the output tile is Aᵀ M A.  The backward pass is
 * the exact adjoint of these steps: dM = A dY Aᵀ, dU_xi = dM_xiᵀ V_xi,
 * dV_xi = dM_xi U_xi, dd = B dV Bᵀ added into the input over the
 * overlapping patches, dg = Gᵀ dU G.  Images go in lanes and blocks as in
 * the im2col path (shape-only, so results do not depend on the number of
 * threads); the weight gradient of the lanes is summed in lane order.
 *
 * The transforms run on WV channels at once: a plane group of WV channels
 * of one image is first packed channel-last ([y][x][WV], zero border), so
 * that every value a transform touches is one vector of WV channels and a
 * tile's 16 transformed vectors store contiguously into V [16][T][Cp] (a
 * tile's channels contiguous, Cp = C rounded up to WV; the lanes past C
 * hold leftovers that the sgemms, whose leading dimension is Cp but whose
 * width is C, never read, and that the output side computes but drops).  M and dM are [16][T][OCp] alike; outputs are
 * unpacked from channel-last tiles back to NCHW.  Every element is computed
 * by the same sequence of operations as one channel at a time would.
 *
 *   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G  = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   Aᵀ = [1 1 1 0; 0 1 -1 -1]
 */
#define WINO_BLOCK_FLOATS 393216 /* V + M of one block (1.5 MiB, inside a 2 MiB L2) */
#define WV 8                     /* channels per vector */

typedef float wvec __attribute__((vector_size(WV * sizeof(float))));
#if defined(__GNUC__) && !defined(__clang__)
/* wvec crosses no ABI boundary (static inline helpers only) */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
/* The Winograd transforms and BatchNorm are built for AVX2 as well as the
 * baseline, picked at load time.  -std=c11 contracts no a*b+c into an FMA,
 * so the transforms (elementwise) give the same bits on both; BatchNorm's
 * statistics are "omp simd" reductions in double, whose order follows the
 * vector width, so the two clones agree to rounding, not to the bit (as
 * OpenBLAS's per-CPU kernels do).  On one machine every result stays
 * deterministic and independent of the thread count. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SIMD_CLONES
#endif

static inline wvec wld(const float *p)
{
	wvec v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline void wst(float *p, wvec v)
{
	memcpy(p, &v, sizeof v);
}

typedef int32_t wivec __attribute__((vector_size(WV * sizeof(int32_t))));
#define WINLINE static inline __attribute__((always_inline))

/* r[0..7] transposed in place: lane j of r[i] becomes lane i of r[j] (the
 * unpack, shuffle, swap-halves sequence; pure data movement) */
WINLINE void wtranspose8(wvec r[WV])
{
	const wivec lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
	const wivec s44 = {0, 1, 8, 9, 4, 5, 12, 13}, see = {2, 3, 10, 11, 6, 7, 14, 15};
	const wivec h20 = {0, 1, 2, 3, 8, 9, 10, 11}, h31 = {4, 5, 6, 7, 12, 13, 14, 15};
	wvec t0 = __builtin_shuffle(r[0], r[1], lo), t1 = __builtin_shuffle(r[0], r[1], hi);
	wvec t2 = __builtin_shuffle(r[2], r[3], lo), t3 = __builtin_shuffle(r[2], r[3], hi);
	wvec t4 = __builtin_shuffle(r[4], r[5], lo), t5 = __builtin_shuffle(r[4], r[5], hi);
	wvec t6 = __builtin_shuffle(r[6], r[7], lo), t7 = __builtin_shuffle(r[6], r[7], hi);
	wvec u0 = __builtin_shuffle(t0, t2, s44), u1 = __builtin_shuffle(t0, t2, see);
	wvec u2 = __builtin_shuffle(t1, t3, s44), u3 = __builtin_shuffle(t1, t3, see);
	wvec u4 = __builtin_shuffle(t4, t6, s44), u5 = __builtin_shuffle(t4, t6, see);
	wvec u6 = __builtin_shuffle(t5, t7, s44), u7 = __builtin_shuffle(t5, t7, see);
	r[0] = __builtin_shuffle(u0, u4, h20), r[4] = __builtin_shuffle(u0, u4, h31);
	r[1] = __builtin_shuffle(u1, u5, h20), r[5] = __builtin_shuffle(u1, u5, h31);
	r[2] = __builtin_shuffle(u2, u6, h20), r[6] = __builtin_shuffle(u2, u6, h31);
	r[3] = __builtin_shuffle(u3, u7, h20), r[7] = __builtin_shuffle(u3, u7, h31);
}

/* the pack offsets (in floats) of the next WV pixels from (y, x) on */
WINLINE void wpack_offsets(size_t off[WV], size_t o, size_t rs, int W, int *y, int *x)
{
#pragma GCC unroll 8
	for (int i = 0; i < WV; i++) {
		off[i] = (o + (size_t)*y * rs + (size_t)*x) * WV;
		if (++*x == W)
			*x = 0, ++*y;
	}
}

/* nc <= WV planes [H][W] (plane c at src + c*ps) into a channel-last pack:
 * pixel (y, x) of plane c to pk[(o + y*rs + x)*WV + c] (lanes past nc are
 * left alone).  A full group moves eight pixels at a time by a transpose;
 * the last HW mod 8 pixels, and a partial group, one value at a time. */
WINLINE void wpack(float *pk, size_t o, size_t rs, const float *src, size_t ps, int H, int W,
                   int nc)
{
	int HW = H * W, q = 0, y = 0, x = 0;
	for (; nc == WV && q + WV <= HW; q += WV) {
		wvec r[WV];
		size_t off[WV];
#pragma GCC unroll 8
		for (int c = 0; c < WV; c++)
			r[c] = wld(src + (size_t)c * ps + q);
		wtranspose8(r);
		wpack_offsets(off, o, rs, W, &y, &x);
#pragma GCC unroll 8
		for (int i = 0; i < WV; i++)
			wst(pk + off[i], r[i]);
	}
	for (; q < HW; q++) {
		for (int c = 0; c < nc; c++)
			pk[(o + (size_t)y * rs + x) * WV + c] = src[(size_t)c * ps + q];
		if (++x == W)
			x = 0, y++;
	}
}

/* the reverse of wpack: dst[c*ps + y*W + x] = (or, with add, +=) the pack's
 * pixel (y, x) lane c, for the nc <= WV planes */
WINLINE void wunpack(float *dst, size_t ps, const float *pk, size_t o, size_t rs, int H, int W,
                     int nc, int add)
{
	int HW = H * W, q = 0, y = 0, x = 0;
	for (; nc == WV && q + WV <= HW; q += WV) {
		wvec r[WV];
		size_t off[WV];
		wpack_offsets(off, o, rs, W, &y, &x);
#pragma GCC unroll 8
		for (int i = 0; i < WV; i++)
			r[i] = wld(pk + off[i]);
		wtranspose8(r);
#pragma GCC unroll 8
		for (int c = 0; c < WV; c++) {
			float *d = dst + (size_t)c * ps + q;
			wst(d, add ? wld(d) + r[c] : r[c]);
		}
	}
	for (; q < HW; q++) {
		for (int c = 0; c < nc; c++) {
			float v = pk[(o + (size_t)y * rs + x) * WV + c];
			float *d = dst + (size_t)c * ps + q;
			*d = add ? *d + v : v;
		}
		if (++x == W)
			x = 0, y++;
	}
}

struct wino_plan {
	int lanes, G;       /* lanes of images, most images in a block */
	int TH, TW, tpi;    /* tiles per column, row, image */
	int PH, PW;         /* the padded plane: (2 TH + 2) x (2 TW + 2) */
	int Cp, OCp;        /* C and OC rounded up to WV: the row strides of V and M */
	size_t lane_floats; /* V [16,G*tpi,Cp], M [16,G*tpi,OCp], dU [16,OC,C], pack [PH,PW,WV] */
	size_t u_floats;    /* U [16,OC,C], ahead of the lanes */
};

/* Where it pays: the filter transform costs about as much as 3 tiles of
 * sgemm work per filter, so tiny batches of tiny maps (ResNet-18's last
 * layers on small inputs) stay with im2col, as do maps under 4x4, where
 * most of a 2x2 tile is padding. */
static int wino_applies(const struct nn_conv_shape *s)
{
	long tiles = (long)s->N * ((s->OH + 1) / 2) * ((s->OW + 1) / 2);
	return s->KH == 3 && s->KW == 3 && s->SH == 1 && s->SW == 1 && s->PH == 1 &&
	       s->PW == 1 && s->OH == s->H && s->OW == s->W && s->OH >= 4 && s->OW >= 4 &&
	       tiles >= 32;
}

static struct wino_plan wino_plan(const struct nn_conv_shape *s)
{
	struct wino_plan p;
	p.TH = (s->OH + 1) / 2;
	p.TW = (s->OW + 1) / 2;
	p.tpi = p.TH * p.TW;
	p.PH = 2 * p.TH + 2;
	p.PW = 2 * p.TW + 2;
	p.Cp = (s->C + WV - 1) / WV * WV;
	p.OCp = (s->OC + WV - 1) / WV * WV;
	p.lanes = s->N < CONV_LANES ? s->N : CONV_LANES;
	if (p.lanes < 1)
		p.lanes = 1;
	int per = (s->N + p.lanes - 1) / p.lanes;
	size_t img = (size_t)16 * ((size_t)p.Cp + p.OCp) * p.tpi;
	size_t g = WINO_BLOCK_FLOATS / img;
	if (g < 1)
		g = 1;
	p.G = (size_t)per < g ? per : (int)g;
	if (p.G < 1)
		p.G = 1;
	p.u_floats = (size_t)16 * s->OC * s->C;
	p.lane_floats = (size_t)p.G * img + p.u_floats + (size_t)p.PH * p.PW * WV;
	return p;
}

static size_t wino_scratch_floats(const struct nn_conv_shape *s)
{
	struct wino_plan p = wino_plan(s);
	return p.u_floats + (size_t)p.lanes * p.lane_floats;
}

/* U [16,OC,C] = G g Gᵀ for every filter g of weight [OC,C,3,3]; transposed:
 * U [16,C,OC], which makes the forward sgemms plain products (no transpose:
 * measured 1.4x faster at the fmnist encoder's small shapes) */
static void wino_weights(float *U, const float *weight, int OC, int C, int transposed)
{
	size_t plane = (size_t)OC * C;
#pragma omp parallel for schedule(static)
	for (int oc = 0; oc < OC; oc++) {
		for (int c = 0; c < C; c++) {
			const float *g = weight + ((size_t)oc * C + c) * 9;
			float t[4][3], u[4][4];
			for (int j = 0; j < 3; j++) {
				t[0][j] = g[j];
				t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
				t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
				t[3][j] = g[6 + j];
			}
			for (int i = 0; i < 4; i++) {
				u[i][0] = t[i][0];
				u[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
				u[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
				u[i][3] = t[i][2];
			}
			size_t at = transposed ? (size_t)c * OC + oc : (size_t)oc * C + c;
			for (int x = 0; x < 16; x++)
				U[(size_t)x * plane + at] = u[x / 4][x % 4];
		}
	}
}

/* dweight [OC,C,3,3] += Gᵀ dU G */
static void wino_weights_adjoint(float *dweight, const float *dU, int OC, int C)
{
	size_t plane = (size_t)OC * C;
#pragma omp parallel for schedule(static)
	for (int oc = 0; oc < OC; oc++) {
		for (int c = 0; c < C; c++) {
			float d[4][4], t[3][4];
			for (int x = 0; x < 16; x++)
				d[x / 4][x % 4] = dU[(size_t)x * plane + (size_t)oc * C + c];
			for (int j = 0; j < 4; j++) {
				t[0][j] = d[0][j] + 0.5f * (d[1][j] + d[2][j]);
				t[1][j] = 0.5f * (d[1][j] - d[2][j]);
				t[2][j] = 0.5f * (d[1][j] + d[2][j]) + d[3][j];
			}
			float *g = dweight + ((size_t)oc * C + c) * 9;
			for (int k = 0; k < 3; k++) {
				g[k * 3 + 0] += t[k][0] + 0.5f * (t[k][1] + t[k][2]);
				g[k * 3 + 1] += 0.5f * (t[k][1] - t[k][2]);
				g[k * 3 + 2] += 0.5f * (t[k][1] + t[k][2]) + t[k][3];
			}
		}
	}
}

/* V [16,T,Cp] of the g images from n0: V = Bᵀ d B per tile and channel.
 * pk: [PH,PW,WV], the plane group being transformed, channel-last, with the
 * zero border (zeroed once: only the inside is ever written). */
SIMD_CLONES
static void wino_input(float *V, float *pk, const float *inp, const struct nn_conv_shape *s,
                       const struct wino_plan *p, int n0, int g)
{
	int C = s->C, H = s->H, W = s->W, PW = p->PW, TW = p->TW, Cp = p->Cp;
	size_t plane = (size_t)g * p->tpi * Cp;
	memset(pk, 0, (size_t)p->PH * PW * WV * sizeof *pk);
	for (int i = 0; i < g; i++) {
		for (int c0 = 0; c0 < C; c0 += WV) {
			int nc = C - c0 < WV ? C - c0 : WV;
			wpack(pk, (size_t)PW + 1, (size_t)PW, inp + ((size_t)(n0 + i) * C + c0) * H * W,
			      (size_t)H * W, H, W, nc);
			float *v = V + (size_t)i * p->tpi * Cp + c0;
			for (int ty = 0; ty < p->TH; ty++) {
				for (int tx = 0; tx < TW; tx++) {
					const float *a = pk + ((size_t)(2 * ty) * PW + 2 * tx) * WV;
					float *o = v + (size_t)(ty * TW + tx) * Cp;
					/* row r of Bᵀ d (d0 - d2, d1 + d2, d2 - d1, d1 - d3),
					 * then its row transform: four stores */
#pragma GCC unroll 4
					for (int r = 0; r < 4; r++) {
						static const int ia[4] = {0, 1, 2, 1}, ib[4] = {2, 2, 1, 3};
						const float *ra = a + (size_t)ia[r] * PW * WV;
						const float *rb = a + (size_t)ib[r] * PW * WV;
						wvec t[4];
#pragma GCC unroll 4
						for (int k = 0; k < 4; k++) {
							wvec x0 = wld(ra + (size_t)k * WV), x1 = wld(rb + (size_t)k * WV);
							t[k] = r == 1 ? x0 + x1 : x0 - x1;
						}
						float *q = o + (size_t)(4 * r) * plane;
						wst(q, t[0] - t[2]);
						wst(q + plane, t[1] + t[2]);
						wst(q + 2 * plane, t[2] - t[1]);
						wst(q + 3 * plane, t[1] - t[3]);
					}
				}
			}
		}
	}
}

/* out images n0.. [OC,OH,OW] = Aᵀ M A per tile (+ bias); M [16,T,OCp].
 * pk: [2TH,2TW,WV], one plane group of output tiles, channel-last. */
SIMD_CLONES
static void wino_output(float *out, float *pk, const float *M, const float *bias,
                        const struct nn_conv_shape *s, const struct wino_plan *p, int n0, int g)
{
	int OC = s->OC, OH = s->OH, OW = s->OW, TW = p->TW, W2 = 2 * p->TW, OCp = p->OCp;
	size_t plane = (size_t)g * p->tpi * OCp;
	for (int i = 0; i < g; i++) {
		for (int oc0 = 0; oc0 < OC; oc0 += WV) {
			int nc = OC - oc0 < WV ? OC - oc0 : WV;
			wvec b = {0};
			for (int cc = 0; cc < nc && bias; cc++)
				b[cc] = bias[oc0 + cc];
			const float *m = M + (size_t)i * p->tpi * OCp + oc0;
			for (int ty = 0; ty < p->TH; ty++) {
				for (int tx = 0; tx < TW; tx++) {
					const float *q = m + (size_t)(ty * TW + tx) * OCp;
					wvec s0[4], s1[4];
#pragma GCC unroll 4
					for (int j = 0; j < 4; j++) {
						wvec m0 = wld(q + (size_t)j * plane);
						wvec m1 = wld(q + (size_t)(4 + j) * plane);
						wvec m2 = wld(q + (size_t)(8 + j) * plane);
						wvec m3 = wld(q + (size_t)(12 + j) * plane);
						s0[j] = m0 + m1 + m2;
						s1[j] = m1 - m2 - m3;
					}
					float *y = pk + ((size_t)(2 * ty) * W2 + 2 * tx) * WV;
					wst(y, s0[0] + s0[1] + s0[2] + b);
					wst(y + WV, s0[1] - s0[2] - s0[3] + b);
					wst(y + (size_t)W2 * WV, s1[0] + s1[1] + s1[2] + b);
					wst(y + ((size_t)W2 + 1) * WV, s1[1] - s1[2] - s1[3] + b);
				}
			}
			wunpack(out + ((size_t)(n0 + i) * OC + oc0) * OH * OW, (size_t)OH * OW, pk, 0,
			        (size_t)W2, OH, OW, nc, 0);
		}
	}
}

/* dM [16,T,OCp] = A dY Aᵀ per tile, from dout images n0..; pk [2TH,2TW,WV]
 * holds one plane group of dout channel-last, zero past the edge */
SIMD_CLONES
static void wino_output_adjoint(float *dM, float *pk, const float *dout,
                                const struct nn_conv_shape *s, const struct wino_plan *p, int n0,
                                int g)
{
	int OC = s->OC, OH = s->OH, OW = s->OW, TW = p->TW, W2 = 2 * p->TW, OCp = p->OCp;
	size_t plane = (size_t)g * p->tpi * OCp;
	memset(pk, 0, (size_t)2 * p->TH * W2 * WV * sizeof *pk);
	for (int i = 0; i < g; i++) {
		for (int oc0 = 0; oc0 < OC; oc0 += WV) {
			int nc = OC - oc0 < WV ? OC - oc0 : WV;
			wpack(pk, 0, (size_t)W2, dout + ((size_t)(n0 + i) * OC + oc0) * OH * OW,
			      (size_t)OH * OW, OH, OW, nc);
			float *m = dM + (size_t)i * p->tpi * OCp + oc0;
			for (int ty = 0; ty < p->TH; ty++) {
				for (int tx = 0; tx < TW; tx++) {
					const float *a = pk + ((size_t)(2 * ty) * W2 + 2 * tx) * WV;
					wvec a0 = wld(a), a1 = wld(a + WV);
					wvec c0 = wld(a + (size_t)W2 * WV), c1 = wld(a + ((size_t)W2 + 1) * WV);
					/* the rows of A dY: dY0, dY0 + dY1, dY0 - dY1, -dY1, each
					 * then times Aᵀ on the right */
					float *o = m + (size_t)(ty * TW + tx) * OCp;
#define WINO_DM_ROW(r, qa, qb)                                                               \
	do {                                                                                 \
		wvec qa_ = (qa), qb_ = (qb);                                                 \
		float *z = o + (size_t)(4 * (r)) * plane;                                    \
		wst(z, qa_);                                                                 \
		wst(z + plane, qa_ + qb_);                                                   \
		wst(z + 2 * plane, qa_ - qb_);                                               \
		wst(z + 3 * plane, -qb_);                                                    \
	} while (0)
					WINO_DM_ROW(0, a0, a1);
					WINO_DM_ROW(1, a0 + c0, a1 + c1);
					WINO_DM_ROW(2, a0 - c0, a1 - c1);
					WINO_DM_ROW(3, -c0, -c1);
#undef WINO_DM_ROW
				}
			}
		}
	}
}

/* dinp images n0.. += B dV Bᵀ over the overlapping patches, dV [16,T,Cp].
 * Per tile row, the row adjoint of each column pair (column 2x takes tile
 * x's first and tile x-1's third; 2x+1 tile x's second and tile x-1's
 * fourth), then the column adjoint into pk [PH,PW,WV] (tile rows overlap by
 * two rows, added in order), whose inside is added into dinp. */
SIMD_CLONES
static void wino_input_adjoint(float *dinp, float *pk, const float *dV,
                               const struct nn_conv_shape *s, const struct wino_plan *p,
                               int n0, int g)
{
	int C = s->C, H = s->H, W = s->W, PW = p->PW, TW = p->TW, Cp = p->Cp;
	size_t plane = (size_t)g * p->tpi * Cp;
	for (int i = 0; i < g; i++) {
		for (int c0 = 0; c0 < C; c0 += WV) {
			int nc = C - c0 < WV ? C - c0 : WV;
			memset(pk, 0, (size_t)p->PH * PW * WV * sizeof *pk);
			const float *v = dV + (size_t)i * p->tpi * Cp + c0;
			for (int ty = 0; ty < p->TH; ty++) {
				const float *vr = v + (size_t)ty * TW * Cp;
				float *a = pk + (size_t)(2 * ty) * PW * WV;
				for (int x = 0; x <= TW; x++) {
					wvec u[4][2];
#pragma GCC unroll 4
					for (int r = 0; r < 4; r++) {
						const float *q = vr + (size_t)(4 * r) * plane;
						wvec e = {0}, o = {0};
						if (x < TW) {
							const float *t = q + (size_t)x * Cp;
							e = wld(t);
							o = wld(t + plane) - wld(t + 2 * plane) + wld(t + 3 * plane);
						}
						if (x > 0) {
							const float *t = q + (size_t)(x - 1) * Cp;
							e += wld(t + plane) + wld(t + 2 * plane) - wld(t);
							o += -wld(t + 3 * plane);
						}
						u[r][0] = e;
						u[r][1] = o;
					}
#pragma GCC unroll 2
					for (int k = 0; k < 2; k++) {
						float *a0 = a + (size_t)(2 * x + k) * WV, *a1 = a0 + (size_t)PW * WV,
						      *a2 = a1 + (size_t)PW * WV, *a3 = a2 + (size_t)PW * WV;
						wst(a0, wld(a0) + u[0][k]);
						wst(a1, wld(a1) + (u[1][k] - u[2][k] + u[3][k]));
						wst(a2, wld(a2) + (u[1][k] + u[2][k] - u[0][k]));
						wst(a3, wld(a3) + -u[3][k]);
					}
				}
			}
			wunpack(dinp + ((size_t)(n0 + i) * C + c0) * H * W, (size_t)H * W, pk,
			        (size_t)PW + 1, (size_t)PW, H, W, nc, 1);
		}
	}
}

/* lane l's part of scratch: V (dV), M (dM), dU, the channel-last pack */
struct wino_lane {
	float *V, *M, *dU, *pk;
};

static struct wino_lane wino_lane(const struct wino_plan *p, float *scratch, int l)
{
	struct wino_lane w;
	w.V = scratch + p->u_floats + (size_t)l * p->lane_floats;
	w.M = w.V + (size_t)16 * p->Cp * p->G * p->tpi;
	w.dU = w.M + (size_t)16 * p->OCp * p->G * p->tpi;
	w.pk = w.dU + p->u_floats;
	return w;
}

static void wino_forward(float *out, float *scratch, const float *inp, const float *weight,
                         const float *bias, const struct nn_conv_shape *s)
{
	struct wino_plan p = wino_plan(s);
	int C = s->C, OC = s->OC, N = s->N, Cp = p.Cp, OCp = p.OCp;
	float *U = scratch;
	wino_weights(U, weight, OC, C, 1);
	blas_single_thread();
#pragma omp parallel for schedule(static, 1)
	for (int l = 0; l < p.lanes; l++) {
		struct wino_lane w = wino_lane(&p, scratch, l);
		int n0, n1, bs;
		conv_lane(p.lanes, p.G, N, l, &n0, &n1, &bs);
		for (int b0 = n0; b0 < n1; b0 += bs) {
			int g = n1 - b0 < bs ? n1 - b0 : bs, T = g * p.tpi;
			wino_input(w.V, w.pk, inp, s, &p, b0, g);
			/* M_xi [T,OC] = V_xi [T,C] x U_xiᵀ [C,OC] (stored as such) */
			for (int x = 0; x < 16; x++)
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, OC, C, 1.0f,
				            w.V + (size_t)x * T * Cp, Cp, U + (size_t)x * OC * C, OC, 0.0f,
				            w.M + (size_t)x * T * OCp, OCp);
			wino_output(out, w.pk, w.M, bias, s, &p, b0, g);
		}
	}
}

static void wino_backward(float *dinp, float *dweight, float *scratch, const float *dout,
                          const float *inp, const float *weight, const struct nn_conv_shape *s)
{
	struct wino_plan p = wino_plan(s);
	int C = s->C, OC = s->OC, N = s->N, Cp = p.Cp, OCp = p.OCp;
	float *U = scratch;
	if (dinp)
		wino_weights(U, weight, OC, C, 0);
	blas_single_thread();
#pragma omp parallel for schedule(static, 1)
	for (int l = 0; l < p.lanes; l++) {
		struct wino_lane w = wino_lane(&p, scratch, l);
		float *V = w.V, *dM = w.M, *dU = w.dU;
		int n0, n1, bs;
		conv_lane(p.lanes, p.G, N, l, &n0, &n1, &bs);
		for (int b0 = n0; b0 < n1; b0 += bs) {
			int g = n1 - b0 < bs ? n1 - b0 : bs, T = g * p.tpi;
			wino_output_adjoint(dM, w.pk, dout, s, &p, b0, g);
			if (dweight) {
				wino_input(V, w.pk, inp, s, &p, b0, g);
				/* dU_xi [OC,C] (+)= dM_xiᵀ [OC,T] x V_xi [T,C] */
				for (int x = 0; x < 16; x++)
					cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, T, 1.0f,
					            dM + (size_t)x * T * OCp, OCp, V + (size_t)x * T * Cp, Cp,
					            b0 == n0 ? 0.0f : 1.0f, dU + (size_t)x * OC * C, C);
			}
			if (dinp) {
				/* dV_xi [T,C] = dM_xi [T,OC] x U_xi [OC,C], over V */
				for (int x = 0; x < 16; x++)
					cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, C, OC, 1.0f,
					            dM + (size_t)x * T * OCp, OCp, U + (size_t)x * OC * C, C,
					            0.0f, V + (size_t)x * T * Cp, Cp);
				wino_input_adjoint(dinp, w.pk, V, s, &p, b0, g);
			}
		}
	}
	if (dweight) {
		/* the lanes' dU in lane order, into lane 0's */
		float *dU0 = wino_lane(&p, scratch, 0).dU;
#pragma omp parallel for schedule(static) if (p.u_floats > 65536)
		for (size_t j = 0; j < p.u_floats; j++) {
			float acc = dU0[j];
			for (int l = 1; l < p.lanes; l++)
				acc += dU0[(size_t)l * p.lane_floats + j];
			dU0[j] = acc;
		}
		wino_weights_adjoint(dweight, dU0, OC, C);
	}
}
static void conv2d_forward(float *out, float *scratch, const float *inp, const float *weight,
                           const float *bias, const struct nn_conv_shape *s)
{
	if (wino_applies(s)) {
		wino_forward(out, scratch, inp, weight, bias, s);
		return;
	}
	struct conv_plan pl = conv_plan(s);
	int OC = s->OC, K = pl.K, P = pl.P, N = s->N;
	size_t img_in = (size_t)s->C * s->H * s->W, img_out = (size_t)OC * P;
	if (!pl.blocked) {
		int NP = N * P;
		float *outT = scratch + (size_t)K * NP;
		const float *B = scratch;
		if (pl.pointwise && N == 1) {
			B = inp; /* a 1x1 convolution of one image is a plain product */
		} else {
#pragma omp parallel for schedule(static)
			for (int n = 0; n < N; n++)
				im2col_image(scratch, (size_t)NP, inp, s, n, n);
		}
		/* outT [OC, N*P] = W [OC,K] x col [K, N*P] */
		gemm(0, 0, OC, NP, K, 1.0f, weight, K, B, NP, 0.0f, outT, NP);
#pragma omp parallel for collapse(2) schedule(static)
		for (int n = 0; n < N; n++) {
			for (int oc = 0; oc < OC; oc++) {
				const float *src = outT + (size_t)oc * NP + (size_t)n * P;
				float *dst = out + (size_t)n * img_out + (size_t)oc * P;
				float b = bias ? bias[oc] : 0.0f;
				for (int p = 0; p < P; p++)
					dst[p] = src[p] + b;
			}
		}
		return;
	}
	blas_single_thread();
#pragma omp parallel for schedule(static, 1)
	for (int l = 0; l < pl.lanes; l++) {
		float *col = scratch + (size_t)l * pl.lane_floats;
		float *outT = col + (size_t)pl.G * P * K;
		int n0, n1, bs;
		conv_lane(pl.lanes, pl.G, N, l, &n0, &n1, &bs);
		for (int b0 = n0; b0 < n1; b0 += bs) {
			int g = n1 - b0 < bs ? n1 - b0 : bs, GP = g * P;
			const float *B = col;
			if (pl.pointwise && g == 1)
				B = inp + (size_t)b0 * img_in;
			else
				im2col_block(col, inp, s, b0, g);
			/* [OC, g*P] = W [OC,K] x col [K, g*P]; one image is NCHW already */
			float *C = g == 1 ? out + (size_t)b0 * img_out : outT;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, GP, K, 1.0f, weight,
			            K, B, GP, 0.0f, C, GP);
			for (int i = 0; i < g; i++) {
				for (int oc = 0; oc < OC; oc++) {
					const float *src = C + (size_t)oc * GP + (size_t)i * P;
					float *dst = out + (size_t)(b0 + i) * img_out + (size_t)oc * P;
					float b = bias ? bias[oc] : 0.0f;
					if (g == 1) {
						if (bias)
							for (int p = 0; p < P; p++)
								dst[p] += b;
					} else {
						for (int p = 0; p < P; p++)
							dst[p] = src[p] + b;
					}
				}
			}
		}
	}
}

/* dbias[oc] += the sum of dout over images and positions (in double) */
static void conv_bias_backward(float *dbias, const float *dout, int N, int OC, int P)
{
	size_t img_out = (size_t)OC * P;
#pragma omp parallel for schedule(static)
	for (int oc = 0; oc < OC; oc++) {
		double acc = 0.0;
		for (int n = 0; n < N; n++) {
			const float *d = dout + (size_t)n * img_out + (size_t)oc * P;
			for (int p = 0; p < P; p++)
				acc += d[p];
		}
		dbias[oc] += (float)acc;
	}
}

/* the whole batch at once: dout transposed to [OC, N*P], one im2col of
 * every image, two products */
static void conv_backward_whole(float *dinp, float *dweight, float *scratch, const float *dout,
                                const float *inp, const float *weight, const struct nn_conv_shape *s,
                                const struct conv_plan *pl)
{
	int OC = s->OC, K = pl->K, P = pl->P, N = s->N, NP = N * P;
	size_t img_out = (size_t)OC * P;
	float *col = scratch, *doutT = scratch + (size_t)K * NP;
#pragma omp parallel for collapse(2) schedule(static)
	for (int n = 0; n < N; n++)
		for (int oc = 0; oc < OC; oc++)
			memcpy(doutT + (size_t)oc * NP + (size_t)n * P, dout + (size_t)n * img_out + (size_t)oc * P,
			       (size_t)P * sizeof *col);
	if (dweight) {
#pragma omp parallel for schedule(static)
		for (int n = 0; n < N; n++)
			im2col_image(col, (size_t)NP, inp, s, n, n);
		/* dW [OC,K] += doutT [OC,NP] x colᵀ [NP,K] */
		gemm(0, 1, OC, K, NP, 1.0f, doutT, NP, col, NP, 1.0f, dweight, K);
	}
	if (dinp) {
		/* dcol [K,NP] = Wᵀ [K,OC] x doutT [OC,NP], written over col */
		gemm(1, 0, K, NP, OC, 1.0f, weight, K, doutT, NP, 0.0f, col, NP);
#pragma omp parallel for schedule(static)
		for (int n = 0; n < N; n++)
			col2im_image_add(dinp, col, (size_t)NP, s, n, n);
	}
}

/* one lane's block of g images from b0: its dW into the lane's dw (set
 * on the lane's first block, then added), its dinp added */
static void conv_backward_block(float *dinp, float *dweight, float *col, float *doutT, float *dw,
                                const float *dout, const float *inp, const float *weight,
                                const struct nn_conv_shape *s, const struct conv_plan *pl, int b0, int g,
                                int first)
{
	int OC = s->OC, K = pl->K, P = pl->P, GP = g * P;
	size_t img_in = (size_t)s->C * s->H * s->W, img_out = (size_t)OC * P;
	/* D [OC, g*P]: one image's dout is that already */
	const float *D = dout + (size_t)b0 * img_out;
	if (g > 1) {
		for (int i = 0; i < g; i++)
			for (int oc = 0; oc < OC; oc++)
				memcpy(doutT + (size_t)oc * GP + (size_t)i * P,
				       dout + (size_t)(b0 + i) * img_out + (size_t)oc * P, (size_t)P * sizeof *doutT);
		D = doutT;
	}
	if (dweight) {
		const float *B = col;
		if (pl->pointwise && g == 1)
			B = inp + (size_t)b0 * img_in;
		else
			im2col_block(col, inp, s, b0, g);
		/* dW_lane [OC,K] (+)= D [OC,GP] x colᵀ [GP,K] */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, K, GP, 1.0f, D, GP, B, GP,
		            first ? 0.0f : 1.0f, dw, K);
	}
	if (!dinp)
		return;
	if (pl->pointwise && g == 1) {
		/* dinp image [C,P] += Wᵀ [K,OC] x D [OC,P] */
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, GP, OC, 1.0f, weight, K, D, GP, 1.0f,
		            dinp + (size_t)b0 * img_in, GP);
	} else {
		/* dcol [K,GP] = Wᵀ [K,OC] x D [OC,GP], over col */
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, GP, OC, 1.0f, weight, K, D, GP, 0.0f,
		            col, GP);
		for (int i = 0; i < g; i++)
			col2im_image_add(dinp, col, (size_t)GP, s, b0 + i, i);
	}
}

/* blocks of images in lanes, one thread a lane with single-threaded
 * BLAS, each lane's dW in its own scratch, summed in lane order at the
 * end (the same sums for any thread count) */
static void conv_backward_lanes(float *dinp, float *dweight, float *scratch, const float *dout,
                                const float *inp, const float *weight, const struct nn_conv_shape *s,
                                const struct conv_plan *pl)
{
	int OC = s->OC, K = pl->K, P = pl->P;
	blas_single_thread();
#pragma omp parallel for schedule(static, 1)
	for (int l = 0; l < pl->lanes; l++) {
		float *col = scratch + (size_t)l * pl->lane_floats;
		float *doutT = col + (size_t)pl->G * P * K;
		float *dw = doutT + (size_t)pl->G * P * OC;
		int n0, n1, bs;
		conv_lane(pl->lanes, pl->G, s->N, l, &n0, &n1, &bs);
		for (int b0 = n0; b0 < n1; b0 += bs)
			conv_backward_block(dinp, dweight, col, doutT, dw, dout, inp, weight, s, pl, b0,
			                    n1 - b0 < bs ? n1 - b0 : bs, b0 == n0);
	}
	if (!dweight)
		return;
	size_t nw = (size_t)OC * K, off = (size_t)pl->G * P * ((size_t)K + OC);
#pragma omp parallel for schedule(static) if (nw > 65536)
	for (size_t j = 0; j < nw; j++) {
		float acc = scratch[off + j];
		for (int l = 1; l < pl->lanes; l++)
			acc += scratch[(size_t)l * pl->lane_floats + off + j];
		dweight[j] += acc;
	}
}

static void conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                            const float *dout, const float *inp, const float *weight,
                            const struct nn_conv_shape *s)
{
	struct conv_plan pl = conv_plan(s);
	if (dbias)
		conv_bias_backward(dbias, dout, s->N, s->OC, pl.P);
	if (!dweight && !dinp)
		return;
	if (wino_applies(s))
		wino_backward(dinp, dweight, scratch, dout, inp, weight, s);
	else if (!pl.blocked)
		conv_backward_whole(dinp, dweight, scratch, dout, inp, weight, s, &pl);
	else
		conv_backward_lanes(dinp, dweight, scratch, dout, inp, weight, s, &pl);
}

/* ---------------- batch normalisation ---------------- */

/* x where keep, else +0, without a branch (signs of activations are random:
 * a branch mispredicts half the time) */
static inline float keep_if(float x, int keep)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	u &= -(uint32_t)keep;
	memcpy(&x, &u, sizeof x);
	return x;
}

/* Both directions work on blocks of channels, a block per OpenMP task, and
 * walk a block image by image: each image's part of the block is one
 * contiguous run of memory (a channel alone is N short rows far apart, which
 * measured up to twice as slow).  Each channel's sums still run in image
 * order, one sum per channel, so the blocks (sized here from the thread
 * count: one block per thread, at most BN_CB channels) change no bit. */
#define BN_CB 32

static int bn_block(int C)
{
	int cb = C / omp_get_max_threads();
	return cb < 1 ? 1 : cb > BN_CB ? BN_CB : cb;
}

SIMD_CLONES
static void batchnorm_forward(float *out, float *mean, float *rstd, float *run_mean,
                              float *run_var, const float *inp, const float *gamma,
                              const float *beta, int N, int C, int HW, int train,
                              float momentum, float eps, int relu)
{
	size_t m = (size_t)N * HW;
	int cb = bn_block(C), nb = (C + cb - 1) / cb;
#pragma omp parallel for schedule(static)
	for (int bi = 0; bi < nb; bi++) {
		int c0 = bi * cb, c1 = c0 + cb < C ? c0 + cb : C;
		/* one pass: sum and sum of squares in double (53 bits leave
		 * E[x^2] - E[x]^2 exact enough for float activations) */
		double sums[BN_CB] = {0}, sqs[BN_CB] = {0};
		for (int n = 0; train && n < N; n++) {
			for (int c = c0; c < c1; c++) {
				const float *x = inp + ((size_t)n * C + c) * HW;
				double sum = sums[c - c0], sq = sqs[c - c0];
#pragma omp simd reduction(+ : sum, sq)
				for (int i = 0; i < HW; i++) {
					double v = x[i];
					sum += v;
					sq += v * v;
				}
				sums[c - c0] = sum, sqs[c - c0] = sq;
			}
		}
		for (int c = c0; c < c1; c++) {
			float mu, rs;
			if (train) {
				double sum = sums[c - c0], sq = sqs[c - c0];
				double dmu = sum / (double)m;
				double ss = sq - sum * dmu;
				if (ss < 0.0)
					ss = 0.0;
				double var = ss / (double)m;
				double uvar = m > 1 ? ss / (double)(m - 1) : var;
				mu = (float)dmu;
				rs = (float)(1.0 / sqrt(var + (double)eps));
				if (run_mean)
					run_mean[c] = (1.0f - momentum) * run_mean[c] + momentum * mu;
				if (run_var)
					run_var[c] =
						(1.0f - momentum) * run_var[c] + momentum * (float)uvar;
			} else {
				mu = run_mean[c];
				rs = (float)(1.0 / sqrt((double)run_var[c] + (double)eps));
			}
			mean[c] = mu;
			rstd[c] = rs;
		}
		for (int n = 0; n < N; n++) {
			for (int c = c0; c < c1; c++) {
				float mu = mean[c], rs = rstd[c];
				float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
				const float *x = inp + ((size_t)n * C + c) * HW;
				float *o = out + ((size_t)n * C + c) * HW;
				/* keep_if(y, 1) is y itself: one loop for both */
#pragma omp simd
				for (int i = 0; i < HW; i++) {
					float y = (x[i] - mu) * rs * g + b;
					o[i] = keep_if(y, !relu | (y > 0.0f));
				}
			}
		}
	}
}

SIMD_CLONES
static void batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                               const float *inp, const float *mean, const float *rstd,
                               const float *gamma, const float *beta, int N, int C, int HW,
                               int train, int relu)
{
	double m = (double)N * HW;
	int cb = bn_block(C), nb = (C + cb - 1) / cb;
#pragma omp parallel for schedule(static)
	for (int bi = 0; bi < nb; bi++) {
		int c0 = bi * cb, c1 = c0 + cb < C ? c0 + cb : C;
		double sds[BN_CB] = {0}, sdxs[BN_CB] = {0};
		for (int n = 0; n < N; n++) {
			for (int c = c0; c < c1; c++) {
				float mu = mean[c], rs = rstd[c], g = gamma ? gamma[c] : 1.0f;
				float b = beta ? beta[c] : 0.0f;
				size_t p0 = ((size_t)n * C + c) * HW;
				const float *x = inp + p0, *d = dout + p0;
				double sd = sds[c - c0], sdx = sdxs[c - c0];
				/* with the ReLU fused, dout counts where it let the value
				 * through: forward's output, recomputed by the same
				 * expression */
#pragma omp simd reduction(+ : sd, sdx)
				for (int i = 0; i < HW; i++) {
					float xh = (x[i] - mu) * rs, y = xh * g + b;
					float di = keep_if(d[i], !relu | (y > 0.0f));
					sd += di;
					sdx += (double)di * xh;
				}
				sds[c - c0] = sd, sdxs[c - c0] = sdx;
			}
		}
		for (int c = c0; c < c1; c++) {
			if (dgamma)
				dgamma[c] += (float)sdxs[c - c0];
			if (dbeta)
				dbeta[c] += (float)sds[c - c0];
		}
		if (!dinp)
			continue;
		for (int n = 0; n < N; n++) {
			for (int c = c0; c < c1; c++) {
				float mu = mean[c], rs = rstd[c], g = gamma ? gamma[c] : 1.0f;
				float b = beta ? beta[c] : 0.0f;
				float k = g * rs;
				float a = train ? (float)(sds[c - c0] / m) : 0.0f;
				float bb = train ? (float)(sdxs[c - c0] / m) : 0.0f;
				size_t p0 = ((size_t)n * C + c) * HW;
				const float *x = inp + p0, *d = dout + p0;
				float *o = dinp + p0;
#pragma omp simd
				for (int i = 0; i < HW; i++) {
					float xh = (x[i] - mu) * rs, y = xh * g + b;
					o[i] += k * (keep_if(d[i], !relu | (y > 0.0f)) - a - xh * bb);
				}
			}
		}
	}
}

/* ---------------- elementwise ---------------- */

static void relu_forward(float *out, const float *inp, size_t n)
{
#pragma omp parallel for simd schedule(simd : static) if (n > 65536)
	for (size_t i = 0; i < n; i++)
		out[i] = keep_if(inp[i], inp[i] > 0.0f);
}

static void relu_backward(float *dinp, const float *dout, const float *out, size_t n)
{
#pragma omp parallel for simd schedule(simd : static) if (n > 65536)
	for (size_t i = 0; i < n; i++)
		dinp[i] += keep_if(dout[i], out[i] > 0.0f);
}

static void tanh_forward(float *out, const float *inp, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 16384)
	for (size_t i = 0; i < n; i++)
		out[i] = tanhf(inp[i]);
}

static void tanh_backward(float *dinp, const float *dout, const float *out, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
	for (size_t i = 0; i < n; i++)
		dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

static void add_forward(float *out, const float *a, const float *b, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] + b[i];
}

static void add_backward(float *da, float *db, const float *dout, size_t n)
{
	if (da) {
#pragma omp parallel for schedule(static) if (n > 65536)
		for (size_t i = 0; i < n; i++)
			da[i] += dout[i];
	}
	if (db) {
#pragma omp parallel for schedule(static) if (n > 65536)
		for (size_t i = 0; i < n; i++)
			db[i] += dout[i];
	}
}

static void scale(float *x, float a, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
	for (size_t i = 0; i < n; i++)
		x[i] *= a;
}

static void dropout_forward(float *out, float *mask, const float *inp, size_t n, float p,
                            struct rng *rng)
{
	if (p <= 0.0f) {
		for (size_t i = 0; i < n; i++) {
			mask[i] = 1.0f;
			out[i] = inp[i];
		}
		return;
	}
	float scale = 1.0f / (1.0f - p);
	for (size_t i = 0; i < n; i++)  /* sequential: the draw order is the contract */
		mask[i] = rng_float(rng) < p ? 0.0f : scale;
	for (size_t i = 0; i < n; i++)
		out[i] = inp[i] * mask[i];
}

static void dropout_backward(float *dinp, const float *dout, const float *mask, size_t n)
{
#pragma omp parallel for schedule(static) if (n > 65536)
	for (size_t i = 0; i < n; i++)
		dinp[i] += dout[i] * mask[i];
}

/* ---------------- pooling ---------------- */

/* index into the input plane of the maximum of output (oh,ow), first
 * maximum wins and a NaN wins at once (as PyTorch); -1 if the window is
 * empty.  Branch-free selects: window maxima are unpredictable. */
static int pool_argmax(const float *x, const struct nn_conv_shape *s, int oh, int ow)
{
	int h0 = oh * s->SH - s->PH, w0 = ow * s->SW - s->PW;
	int kh0 = h0 < 0 ? -h0 : 0, kw0 = w0 < 0 ? -w0 : 0;
	int kh1 = s->H - h0 < s->KH ? s->H - h0 : s->KH;
	int kw1 = s->W - w0 < s->KW ? s->W - w0 : s->KW;
	if (kh0 >= kh1 || kw0 >= kw1)
		return -1;
	int best = (h0 + kh0) * s->W + w0 + kw0;
	float m = x[best];
	int nan = m != m;
	for (int kh = kh0; kh < kh1; kh++) {
		const int row = (h0 + kh) * s->W + w0;
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

/* The 3x3 unpadded windows (every max-pool of the fmnist and cifar
 * encoders), eight planes at a time: the planes are packed channel-last into
 * pk [HW][WV], each window is nine vector loads, and the result per lane is
 * what the scalar scan gives: the first NaN of the window in row-major
 * order if there is one, else the first position holding the maximum.
 * Lanes past the last plane compute on zeros and are not stored. */
#define POOL_PACK_MAX 1024 /* input plane floats packed on the stack (32 KiB) */

static inline wvec wsel(wivec keep, wvec a, wvec b)
{
	return (wvec)((keep & (wivec)a) | (~keep & (wivec)b));
}

static inline wvec wmax_first(wvec a, wvec b)
{
	return wsel(a > b, a, b); /* a > b ? a : b, lane by lane */
}

SIMD_CLONES
static void maxpool33_planes(float *out, int32_t *idx, const float *inp,
                             const struct nn_conv_shape *s, int pl0, int np)
{
	int HWi = s->H * s->W, P = s->OH * s->OW, W = s->W, OW = s->OW;
	float pk[POOL_PACK_MAX * WV] __attribute__((aligned(32)));
	float po[POOL_PACK_MAX / 4 * WV] __attribute__((aligned(32)));
	int32_t pi[POOL_PACK_MAX / 4 * WV] __attribute__((aligned(32)));
	if (np < WV)
		memset(pk, 0, (size_t)HWi * WV * sizeof *pk);
	wpack(pk, 0, (size_t)W, inp + (size_t)pl0 * HWi, (size_t)HWi, s->H, W, np);
	const int off[9] = {0, 1, 2, W, W + 1, W + 2, 2 * W, 2 * W + 1, 2 * W + 2};
	for (int p = 0; p < P; p++) {
		int base = (p / OW) * s->SH * W + (p % OW) * s->SW;
		wvec v[9];
		for (int j = 0; j < 9; j++)
			v[j] = wld(pk + (size_t)(base + off[j]) * WV);
		/* the maximum by the scalar path's tree, lane by lane */
		wvec ma = wmax_first(wmax_first(v[0], v[1]), wmax_first(v[2], v[3]));
		wvec mb = wmax_first(wmax_first(v[4], v[5]), wmax_first(v[6], v[7]));
		wvec m = wmax_first(wmax_first(ma, mb), v[8]);
		/* backwards, so the first hit is the last one written */
		wivec bi = {0}, ni = {0}, anynan = {0};
		wvec bv = v[0], nv = v[0];
		for (int j = 8; j >= 0; j--) {
			wivec eq = v[j] == m, nan = v[j] != v[j];
			bi = (eq & (base + off[j])) | (~eq & bi);
			bv = wsel(eq, v[j], bv);
			ni = (nan & (base + off[j])) | (~nan & ni);
			nv = wsel(nan, v[j], nv);
			anynan |= nan;
		}
		bi = (anynan & ni) | (~anynan & bi);
		bv = wsel(anynan, nv, bv);
		wst(po + (size_t)p * WV, bv);
		memcpy(pi + (size_t)p * WV, &bi, sizeof bi);
	}
	for (int l = 0; l < np; l++) {
		float *o = out + (size_t)(pl0 + l) * P;
		int32_t *ix = idx + (size_t)(pl0 + l) * P;
		for (int p = 0; p < P; p++) {
			o[p] = po[(size_t)p * WV + l];
			ix[p] = pi[(size_t)p * WV + l];
		}
	}
}

static void maxpool_forward(float *out, int32_t *idx, const float *inp,
                            const struct nn_conv_shape *s)
{
	int planes = s->N * s->C, HWi = s->H * s->W, P = s->OH * s->OW;
	if (s->PH == 0 && s->PW == 0 && s->KH == 3 && s->KW == 3 && HWi <= POOL_PACK_MAX &&
	    P <= POOL_PACK_MAX / 4) {
		int groups = (planes + WV - 1) / WV;
#pragma omp parallel for schedule(static)
		for (int gi = 0; gi < groups; gi++) {
			int pl0 = gi * WV;
			maxpool33_planes(out, idx, inp, s, pl0, planes - pl0 < WV ? planes - pl0 : WV);
		}
		return;
	}
#pragma omp parallel for schedule(static)
	for (int pl = 0; pl < planes; pl++) {
		const float *x = inp + (size_t)pl * HWi;
		float *o = out + (size_t)pl * P;
		int32_t *ix = idx + (size_t)pl * P;
		for (int oh = 0; oh < s->OH; oh++)
			for (int ow = 0; ow < s->OW; ow++) {
				int i = pool_argmax(x, s, oh, ow);
				o[oh * s->OW + ow] = i < 0 ? -INFINITY : x[i];
				ix[oh * s->OW + ow] = i;
			}
	}
}

static void maxpool_backward(float *dinp, const float *dout, const int32_t *idx,
                             const struct nn_conv_shape *s)
{
	int planes = s->N * s->C, HWi = s->H * s->W, P = s->OH * s->OW;
#pragma omp parallel for schedule(static)
	for (int pl = 0; pl < planes; pl++) {
		const float *d = dout + (size_t)pl * P;
		const int32_t *ix = idx + (size_t)pl * P;
		float *dx = dinp + (size_t)pl * HWi;
		for (int p = 0; p < P; p++)
			if (ix[p] >= 0)
				dx[ix[p]] += d[p];
	}
}

static void avgpool_forward(float *out, const float *inp, int N, int C, int HW)
{
	int planes = N * C;
#pragma omp parallel for schedule(static)
	for (int pl = 0; pl < planes; pl++) {
		const float *x = inp + (size_t)pl * HW;
		double acc = 0.0;
		for (int i = 0; i < HW; i++)
			acc += x[i];
		out[pl] = (float)(acc / HW);
	}
}

static void avgpool_backward(float *dinp, const float *dout, int N, int C, int HW)
{
	int planes = N * C;
#pragma omp parallel for schedule(static)
	for (int pl = 0; pl < planes; pl++) {
		float g = dout[pl] / (float)HW;
		float *dx = dinp + (size_t)pl * HW;
		for (int i = 0; i < HW; i++)
			dx[i] += g;
	}
}

/* ---------------- softmax ---------------- */

static void softmax_forward(float *out, const float *inp, int outer, int dim, int inner)
{
	int cnt = outer * inner;
#pragma omp parallel for schedule(static) if (cnt > 64)
	for (int t = 0; t < cnt; t++) {
		int o = t / inner, i = t % inner;
		const float *x = inp + (size_t)o * dim * inner + i;
		float *y = out + (size_t)o * dim * inner + i;
		float mx = -INFINITY;
		for (int k = 0; k < dim; k++)
			if (x[(size_t)k * inner] > mx)
				mx = x[(size_t)k * inner];
		double sum = 0.0;
		for (int k = 0; k < dim; k++) {
			float e = expf(x[(size_t)k * inner] - mx);
			y[(size_t)k * inner] = e;
			sum += e;
		}
		float r = (float)(1.0 / sum);
		for (int k = 0; k < dim; k++)
			y[(size_t)k * inner] *= r;
	}
}

static void softmax_backward(float *dinp, const float *dout, const float *out, int outer,
                             int dim, int inner)
{
	int cnt = outer * inner;
#pragma omp parallel for schedule(static) if (cnt > 64)
	for (int t = 0; t < cnt; t++) {
		int o = t / inner, i = t % inner;
		size_t base = (size_t)o * dim * inner + i;
		double dot = 0.0;
		for (int k = 0; k < dim; k++)
			dot += (double)dout[base + (size_t)k * inner] * out[base + (size_t)k * inner];
		float fd = (float)dot;
		for (int k = 0; k < dim; k++) {
			size_t j = base + (size_t)k * inner;
			dinp[j] += out[j] * (dout[j] - fd);
		}
	}
}

/* ---------------- attention pieces ---------------- */

static void wsum_forward(float *out, const float *a, const float *h, int n, int K, int D)
{
	gemm(1, 0, K, D, n, 1.0f, a, K, h, D, 0.0f,
	            out, D);
}

static void wsum_backward(float *da, float *dh, const float *dout, const float *a,
                          const float *h, int n, int K, int D)
{
	if (da)
		gemm(0, 1, n, K, D, 1.0f, h, D, dout, D,
		            1.0f, da, K);
	if (dh)
		gemm(0, 0, n, D, K, 1.0f, a, K, dout, D,
		            1.0f, dh, D);
}

/* ---------------- losses ---------------- */

/* softmax of one row of two logits, in double */
static void softmax2(double *q0, double *q1, const float *z)
{
	double m = z[0] > z[1] ? z[0] : z[1];
	double e0 = exp(z[0] - m), e1 = exp(z[1] - m);
	*q0 = e0 / (e0 + e1);
	*q1 = e1 / (e0 + e1);
}

static double loss_bce2(float *dlogits, const float *logits, const float *y, int B, float eps)
{
	double loss = 0.0;
	for (int b = 0; b < B; b++) {
		double q0, p;
		softmax2(&q0, &p, logits + 2 * b);
		double Y = y[b];
		loss += -(Y * log(p + eps) + (1.0 - Y) * log(1.0 - p + eps));
		double dp = (-Y / (p + eps) + (1.0 - Y) / (1.0 - p + eps)) / B;
		double g = dp * p * (1.0 - p);
		dlogits[2 * b] = (float)-g;
		dlogits[2 * b + 1] = (float)g;
	}
	return loss / B;
}

static double loss_ce(float *dlogits, const float *logits, const int *label, int B, int K)
{
	double loss = 0.0;
	for (int b = 0; b < B; b++) {
		const float *z = logits + (size_t)b * K;
		double m = z[0];
		for (int k = 1; k < K; k++)
			if (z[k] > m)
				m = z[k];
		double sum = 0.0;
		for (int k = 0; k < K; k++)
			sum += exp(z[k] - m);
		double lse = m + log(sum);
		loss += lse - z[label[b]];
		for (int k = 0; k < K; k++) {
			double q = exp(z[k] - lse);
			dlogits[(size_t)b * K + k] = (float)((q - (k == label[b])) / B);
		}
	}
	return loss / B;
}

static double loss_soft2(float *dlogits, const float *logits, const float *y, int B, float w,
                         float eps)
{
	double loss = 0.0;
	for (int b = 0; b < B; b++) {
		double q0, q1;
		softmax2(&q0, &q1, logits + 2 * b);
		double Y = y[b];
		double a0 = w * (1.0 - Y), a1 = (1.0 - w) * Y;
		loss += -(a0 * log(q0 + eps) + a1 * log(q1 + eps));
		double dq0 = -a0 / (q0 + eps) / B, dq1 = -a1 / (q1 + eps) / B;
		double dot = dq0 * q0 + dq1 * q1;
		dlogits[2 * b] = (float)(q0 * (dq0 - dot));
		dlogits[2 * b + 1] = (float)(q1 * (dq1 - dot));
	}
	return loss / B;
}

/* ---------------- optimizers ---------------- */

static void sgd_step(float *param, const float *grad, float *m, size_t n,
                     const struct nn_optim_conf *c, long step)
{
	float lr = c->lr, wd = c->weight_decay, mom = c->momentum, damp = 1.0f - c->dampening;
	if (wd == 0.0f && mom == 0.0f) {
		/* plain SGD: the same arithmetic as below, vectorised */
#pragma omp parallel for simd schedule(simd : static) if (n > 65536)
		for (size_t i = 0; i < n; i++)
			param[i] = param[i] + (-lr) * grad[i];
		return;
	}
#pragma omp parallel for schedule(static) if (n > 65536)
	for (size_t i = 0; i < n; i++) {
		float d = grad[i];
		if (wd != 0.0f)
			d = d + wd * param[i];
		if (mom != 0.0f) {
			float b = step <= 1 ? d : m[i] * mom + damp * d;
			m[i] = b;
			d = c->nesterov ? d + mom * b : b;
		}
		param[i] = param[i] + (-lr) * d;
	}
}

static void adam_step(float *param, const float *grad, float *m, float *v, size_t n,
                      const struct nn_optim_conf *c, long step)
{
	float b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay, eps = c->eps;
	double bc1 = 1.0 - pow((double)b1, (double)step);
	double bc2 = 1.0 - pow((double)b2, (double)step);
	float step_size = (float)((double)c->lr / bc1);
	float bc2s = (float)sqrt(bc2);
#pragma omp parallel for schedule(static) if (n > 65536)
	for (size_t i = 0; i < n; i++) {
		float g = grad[i];
		if (wd != 0.0f)
			g = g + wd * param[i];
		m[i] = m[i] * b1 + (1.0f - b1) * g;
		v[i] = v[i] * b2 + (1.0f - b2) * (g * g);
		float denom = sqrtf(v[i]) / bc2s + eps;
		param[i] = param[i] + (-step_size) * (m[i] / denom);
	}
}

const struct nn_backend nn_cpu = {
	.name = "cpu",
	.alloc = cpu_alloc,
	.free_ = cpu_free,
	.zero = cpu_zero,
	.copy = cpu_copy,
	.upload = cpu_copy,
	.download = cpu_copy,
	.linear_forward = linear_forward,
	.linear_backward = linear_backward,
	.conv2d_forward = conv2d_forward,
	.conv2d_backward = conv2d_backward,
	.batchnorm_forward = batchnorm_forward,
	.batchnorm_backward = batchnorm_backward,
	.relu_forward = relu_forward,
	.relu_backward = relu_backward,
	.tanh_forward = tanh_forward,
	.tanh_backward = tanh_backward,
	.add_forward = add_forward,
	.add_backward = add_backward,
	.scale = scale,
	.dropout_forward = dropout_forward,
	.dropout_backward = dropout_backward,
	.maxpool_forward = maxpool_forward,
	.maxpool_backward = maxpool_backward,
	.avgpool_forward = avgpool_forward,
	.avgpool_backward = avgpool_backward,
	.softmax_forward = softmax_forward,
	.softmax_backward = softmax_backward,
	.wsum_forward = wsum_forward,
	.wsum_backward = wsum_backward,
	.loss_bce2 = loss_bce2,
	.loss_ce = loss_ce,
	.loss_soft2 = loss_soft2,
	.sgd_step = sgd_step,
	.adam_step = adam_step,
	.linear_backward_sgd = linear_backward_sgd,
};
