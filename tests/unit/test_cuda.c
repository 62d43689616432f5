/* test_cuda.c - the CUDA backend against its CPU twin (nn_cpu, the
 * reference) on seeded inputs, op by op (the fused attention head, which
 * the CPU lacks, against the chain of CPU ops it replaces) and module by
 * module, and its determinism.  Without a usable GPU (or in a build without CUDA) every
 * case that needs one prints "SKIP <case>: <why>"; test_cuda_selection
 * runs everywhere.
 *
 * Tolerances (all multiplied by 100 under WENO_CUDA_FAST=1, where cuBLAS
 * and cuDNN may use TF32).  An element passes when
 *     |gpu - cpu| <= rel * |cpu| + norm * scale,
 * scale being the largest |cpu| of the tensor (for gradients, the largest
 * |cpu - prefill|: the gradient's own size, not the prefill's):
 *   - exact ops (ReLU, add, scale, dropout masks and outputs, max-pooling
 *     indices and values and its backward gather, average pooling, memory):
 *     bit-identical;
 *   - other elementwise ops (tanh, products with a mask, optimizer steps):
 *     rel 1e-5, norm 1e-6;
 *   - reductions over K terms (GEMMs, convolutions, batch norm, softmax,
 *     wsum): rel 1e-5, norm 1e-5 * sqrt(K), K the reduced length (for
 *     K = 4096: 6.4e-4 of the tensor's largest value; float summation in
 *     another order typically differs by 1e-7 * sqrt(K), so the margin is
 *     about 100x, while an indexing bug gives errors of order 1); the
 *     fused attention head against the CPU's unfused chain alike, K being
 *     L for A, n for a, z, dw and dbw, D for the logits and for du
 *     (through da), with t, dh and dC elementwise;
 *   - losses: the loss to 1e-9 relative (double on both sides), dlogits
 *     rel 1e-6, norm 1e-7;
 *   - modules (encoder + head, a few SGD/Adam steps on both backends from
 *     the same initialisation and data): first-step outputs and losses
 *     norm 1e-4; first-step gradients norm 1e-3, or, where a ReLU mask or
 *     max-pool argmax flipped on a near-tie, at most 2 % of the elements
 *     out and a relative L2 distance of at most 2e-2; after three steps
 *     the losses (the largest difference over the steps), the parameter
 *     change (w - w0) and the running statistics (relative L2) at most 4x
 *     as far from the CPU as the CPU itself from
 *     a start perturbed by 1e-6 of every parameter, plus 1e-4: training
 *     amplifies rounding (near-ties, batch norm over four instances,
 *     Adam's sign-like first steps), and the tests/emu run showed
 *     resnet18 at batch 4 diverging as far from a 1e-7 perturbation of
 *     its own start as from the other backend;
 *   - determinism: the same steps twice on the GPU give bit-identical
 *     parameters, running statistics, optimizer moments and losses.
 * Accumulation: every backward runs with gradients pre-filled with nonzero
 * values (both backends alike) and must add to them; a second run with
 * NULL gradient pointers checks that the others are still right.
 */
#include <stdint.h>

#include "check.h"

#include "../../lib/nn/net.h"
#include "../../lib/nn/nn.h"
#include "../../lib/nn/nn_cuda.h"

static const struct nn_backend *cpu = &nn_cpu, *gpu;
static char no_gpu[256];
static double tmul = 1.0; /* tolerance multiplier: 100 in fast (TF32) mode */

#define NEED_GPU()                                                                    \
	do {                                                                          \
		if (!gpu)                                                             \
			SKIP("%s", no_gpu);                                           \
	} while (0)

/* the sticky error of the CUDA backend, checked at the end of every case */
#define GPU_OK()                                                                      \
	do {                                                                          \
		char msg_[512];                                                       \
		CHECK(!nn_cuda_error(msg_, sizeof msg_), "CUDA backend error: %s", msg_); \
	} while (0)

struct tol {
	double rel, norm;
};

static struct tol ew(void)
{
	return (struct tol){1e-5 * tmul, 1e-6 * tmul};
}

static struct tol red(double K)
{
	return (struct tol){1e-5 * tmul, 1e-5 * sqrt(K > 1 ? K : 1) * tmul};
}

static struct tol loose(double norm)
{
	return (struct tol){1e-5 * tmul, norm * tmul};
}

/* ---------------- buffers ---------------- */

static float *hbuf(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof *p);
	if (!p) {
		printf("FAIL %s: out of host memory for %zu floats\n", check_case_name, n);
		exit(1);
	}
	return p;
}

static float *hcopy(const float *x, size_t n)
{
	float *p = hbuf(n);
	memcpy(p, x, n * sizeof *p);
	return p;
}

/* a device buffer holding host x (zeros when x is NULL) */
static float *dbuf(const float *x, size_t n)
{
	float *d = gpu->alloc(n);
	if (!d) {
		printf("FAIL %s: cannot allocate %zu floats on the GPU\n", check_case_name, n);
		exit(1);
	}
	if (x && n)
		gpu->upload(d, x, n);
	return d;
}

static float *download(const float *d, size_t n)
{
	float *h = hbuf(n);
	gpu->download(h, d, n);
	return h;
}

static void fill(float *x, size_t n, struct rng *r, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = lo + (hi - lo) * rng_float(r);
}

static float *rand_buf(size_t n, struct rng *r, float lo, float hi)
{
	float *x = hbuf(n);
	fill(x, n, r, lo, hi);
	return x;
}

/* ---------------- comparisons ---------------- */

/* GPU result d (device, n floats) against CPU result c; base (host, may be
 * NULL): the prefill both started from.  See the header for the rule. */
static int close_to(const char *what, const float *d, const float *c, const float *base,
                    size_t n, struct tol t)
{
	float *g = download(d, n);
	double scale = 0.0;
	for (size_t i = 0; i < n; i++) {
		double s = fabs((double)c[i] - (base ? base[i] : 0.0));
		scale = s > scale ? s : scale;
	}
	size_t bad = 0, worst = 0;
	double worst_q = -1.0, maxerr = 0.0;
	for (size_t i = 0; i < n; i++) {
		double err = fabs((double)g[i] - c[i]);
		double lim = t.rel * fabs(c[i]) + t.norm * scale;
		double q = err / (lim > 0 ? lim : 1e-300);
		if (!(err <= lim))
			bad++;
		if (!(q <= worst_q)) { /* NaN counts as worst */
			worst_q = q;
			worst = i;
		}
		if (err > maxerr)
			maxerr = err;
	}
	CHECK(bad == 0,
	      "%s: %zu of %zu values out of tolerance (rel %.1e, norm %.1e of %.4g); worst [%zu]: "
	      "gpu %.9g cpu %.9g err %.3g = %.3gx allowed; max |err| %.3g",
	      what, bad, n, t.rel, t.norm, scale, worst, g[worst], c[worst],
	      fabs((double)g[worst] - c[worst]), worst_q, maxerr);
	free(g);
	return bad == 0;
}

/* bit-identical (floats or int32 words) */
static int same_bits(const char *what, const float *d, const float *c, size_t n)
{
	float *g = download(d, n);
	size_t bad = 0, first = 0;
	for (size_t i = 0; i < n; i++)
		if (memcmp(&g[i], &c[i], sizeof(float))) {
			if (!bad)
				first = i;
			bad++;
		}
	if (bad) {
		uint32_t a, b;
		memcpy(&a, &g[first], 4), memcpy(&b, &c[first], 4);
		CHECK(bad == 0, "%s: %zu of %zu values differ in their bits; first [%zu]: gpu %.9g "
		      "(0x%08x) cpu %.9g (0x%08x)", what, bad, n, first, g[first], a, c[first], b);
	}
	free(g);
	return bad == 0;
}

/* ---------------- selection (runs everywhere) ---------------- */

static void test_cuda_selection(void)
{
	char why[256];
	int avail = nn_cuda_available(why, sizeof why);
	CHECK(nn_backend_get("cpu") == &nn_cpu && nn_backend_get(NULL) == &nn_cpu, "cpu backend");
	CHECK(nn_backend_get("tpu") == NULL, "an unknown name gives NULL");
	if (!avail) {
		CHECK(why[0] != '\0', "no GPU but no reason given");
		CHECK(nn_backend_get("cuda") == NULL, "cuda without a GPU must be NULL");
		CHECK(nn_backend_get("auto") == &nn_cpu, "auto without a GPU must be the CPU");
		CHECK(!nn_cuda_error(NULL, 0), "a sticky error without a GPU");
		printf("# no GPU: %s\n", why);
		return;
	}
	const struct nn_backend *g = nn_backend_get("cuda");
	CHECK(g && !strcmp(g->name, "cuda"), "cuda backend missing although available");
	CHECK(nn_backend_get("auto") == g, "auto must pick the GPU when one is usable");
	printf("# GPU: %s\n", nn_cuda_describe());
}

/* ---------------- memory ---------------- */

static void test_cuda_memory(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 1, 1);
	size_t n = 100003;
	float *d = dbuf(NULL, n), *zero = hbuf(n);
	same_bits("alloc is zeroed", d, zero, n);
	float *x = rand_buf(n, &r, -1, 1);
	gpu->upload(d, x, n);
	same_bits("upload/download round trip", d, x, n);
	float *e = dbuf(NULL, n);
	gpu->copy(e, d, n);
	same_bits("copy", e, x, n);
	gpu->zero(e + 10, 100);
	float *want = hcopy(x, n);
	memset(want + 10, 0, 100 * sizeof *want);
	same_bits("zero of a sub-range", e, want, n);
	/* overlapping copies: memmove semantics, both directions */
	gpu->copy(d + 7, d, 1000);
	memmove(x + 7, x, 1000 * sizeof *x);
	same_bits("overlapping copy forward", d, x, n);
	gpu->copy(d, d + 5, 2000);
	memmove(x, x + 5, 2000 * sizeof *x);
	same_bits("overlapping copy backward", d, x, n);
	/* staged uploads (nn_cuda_core.cu): the host buffer is reusable as soon
	 * as upload returns, through more uploads than the ring has slots, and
	 * one larger than a slot travels in pieces */
	enum { K = 9 };
	float *dk[K], *hk[K];
	float *hb = hbuf(n);
	for (int k = 0; k < K; k++) {
		fill(hb, n, &r, -1, 1);
		hk[k] = hcopy(hb, n);
		dk[k] = dbuf(NULL, n);
		gpu->upload(dk[k], hb, n);
		memset(hb, 0xff, n * sizeof *hb); /* NaNs, at once */
	}
	for (int k = 0; k < K; k++) {
		char what[64];
		snprintf(what, sizeof what, "upload %d of %d, host buffer reused at once", k + 1, K);
		same_bits(what, dk[k], hk[k], n);
		gpu->free_(dk[k]);
		free(hk[k]);
	}
	free(hb);
	size_t big = ((size_t)32 << 20) / sizeof(float) * 2 + 12345; /* over two slots */
	float *hbig = rand_buf(big, &r, -1, 1), *dbig = dbuf(NULL, big);
	gpu->upload(dbig, hbig, big);
	same_bits("an upload larger than a staging slot", dbig, hbig, big);
	gpu->free_(dbig);
	free(hbig);
	float *one = gpu->alloc(0);
	CHECK(one != NULL, "alloc(0) must give a buffer");
	gpu->free_(one), gpu->free_(d), gpu->free_(e);
	free(zero), free(x), free(want);
	GPU_OK();
}

/* ---------------- linear ---------------- */

static void linear_case(int N, int C, int OC, int bias, struct rng *r)
{
	char what[96];
	size_t ni = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
	float *x = rand_buf(ni, r, -1, 1), *w = rand_buf(nw, r, -1, 1);
	float *b = bias ? rand_buf((size_t)OC, r, -1, 1) : NULL;
	float *dy = rand_buf(no, r, -1, 1);
	float *px = rand_buf(ni, r, -0.5f, 0.5f), *pw = rand_buf(nw, r, -0.5f, 0.5f);
	float *pb = rand_buf((size_t)OC, r, -0.5f, 0.5f);
	float *y = hbuf(no), *gx = hcopy(px, ni), *gw = hcopy(pw, nw), *gb = hcopy(pb, (size_t)OC);
	float *X = dbuf(x, ni), *W = dbuf(w, nw), *B = b ? dbuf(b, (size_t)OC) : NULL;
	float *DY = dbuf(dy, no), *Y = dbuf(NULL, no);
	float *GX = dbuf(px, ni), *GW = dbuf(pw, nw), *GB = dbuf(pb, (size_t)OC);

	cpu->linear_forward(y, x, w, b, N, C, OC);
	gpu->linear_forward(Y, X, W, B, N, C, OC);
	snprintf(what, sizeof what, "linear %dx%d->%d%s forward", N, C, OC, bias ? "" : " (no bias)");
	close_to(what, Y, y, NULL, no, red(C));

	cpu->linear_backward(gx, gw, gb, dy, x, w, N, C, OC);
	gpu->linear_backward(GX, GW, GB, DY, X, W, N, C, OC);
	snprintf(what, sizeof what, "linear %dx%d->%d dinp (accumulated)", N, C, OC);
	close_to(what, GX, gx, px, ni, red(OC));
	snprintf(what, sizeof what, "linear %dx%d->%d dweight (accumulated)", N, C, OC);
	close_to(what, GW, gw, pw, nw, red(N));
	snprintf(what, sizeof what, "linear %dx%d->%d dbias (accumulated)", N, C, OC);
	close_to(what, GB, gb, pb, (size_t)OC, red(N));

	/* NULL dinp and dbias: dweight accumulates a second time, the others
	 * stay as they were */
	float *gx1 = download(GX, ni), *gb1 = download(GB, (size_t)OC);
	cpu->linear_backward(NULL, gw, NULL, dy, x, w, N, C, OC);
	gpu->linear_backward(NULL, GW, NULL, DY, X, W, N, C, OC);
	snprintf(what, sizeof what, "linear %dx%d->%d dweight with NULL dinp, dbias", N, C, OC);
	close_to(what, GW, gw, pw, nw, red(N));
	snprintf(what, sizeof what, "linear %dx%d->%d dinp, dbias untouched by NULL", N, C, OC);
	same_bits(what, GX, gx1, ni);
	same_bits(what, GB, gb1, (size_t)OC);
	free(gx1), free(gb1);

	/* the fused SGD step (nn.h linear_backward_sgd): dinp with the old
	 * weights, then the weights and bias move by -lr times their gradient */
	if (cpu->linear_backward_sgd && gpu->linear_backward_sgd) {
		float lr = 0.25f;
		float *w2 = hcopy(w, nw), *b2 = b ? hcopy(b, (size_t)OC) : NULL, *gx2 = hcopy(px, ni);
		float *W2 = dbuf(w, nw), *B2 = b ? dbuf(b, (size_t)OC) : NULL, *GX2 = dbuf(px, ni);
		cpu->linear_backward_sgd(gx2, w2, b2, dy, x, N, C, OC, lr);
		gpu->linear_backward_sgd(GX2, W2, B2, DY, X, N, C, OC, lr);
		snprintf(what, sizeof what, "linear %dx%d->%d fused SGD: dinp with the old weights", N, C, OC);
		close_to(what, GX2, gx2, px, ni, red(OC));
		snprintf(what, sizeof what, "linear %dx%d->%d fused SGD: weights", N, C, OC);
		close_to(what, W2, w2, w, nw, red(N));
		if (b) {
			snprintf(what, sizeof what, "linear %dx%d->%d fused SGD: bias", N, C, OC);
			close_to(what, B2, b2, b, (size_t)OC, red(N));
		}
		/* NULL dinp and bias: the weights still step */
		gpu->upload(W2, w, nw);
		memcpy(w2, w, nw * sizeof *w2);
		cpu->linear_backward_sgd(NULL, w2, NULL, dy, x, N, C, OC, lr);
		gpu->linear_backward_sgd(NULL, W2, NULL, DY, X, N, C, OC, lr);
		snprintf(what, sizeof what, "linear %dx%d->%d fused SGD with NULL dinp, bias", N, C, OC);
		close_to(what, W2, w2, w, nw, red(N));
		free(w2), free(b2), free(gx2);
		gpu->free_(W2), gpu->free_(GX2);
		if (B2)
			gpu->free_(B2);
	} else {
		CHECK(cpu->linear_backward_sgd && gpu->linear_backward_sgd,
		      "both backends have linear_backward_sgd");
	}

	float *hs[] = {x, w, b, dy, px, pw, pb, y, gx, gw, gb};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		free(hs[i]);
	float *ds[] = {X, W, B, DY, Y, GX, GW, GB};
	for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
		if (ds[i])
			gpu->free_(ds[i]);
}

static void test_cuda_linear(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 2, 1);
	linear_case(7, 5, 3, 1, &r);
	linear_case(1, 1024, 2, 1, &r);       /* ABMIL classifier on the bag vector */
	linear_case(100, 1024, 512, 1, &r);   /* ABMIL attention V on a bag of 100 */
	linear_case(100, 512, 1, 1, &r);      /* attention w */
	linear_case(64, 512, 4096, 1, &r);    /* student fc1 */
	linear_case(64, 4096, 2, 1, &r);      /* student fc2 */
	linear_case(37, 1024, 1024, 1, &r);   /* DSMIL Q/V */
	linear_case(33, 17, 2, 0, &r);        /* DSMIL S = Q qmᵀ: no bias */
	GPU_OK();
}

/* ---------------- convolution ---------------- */

static void conv_case(int N, int C, int H, int W, int OC, int KH, int KW, int SH, int SW, int PH,
                      int PW, int bias, int null_scratch, struct rng *r)
{
	struct nn_conv_shape s = {.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = KH, .KW = KW,
	                          .SH = SH, .SW = SW, .PH = PH, .PW = PW};
	nn_conv_shape_finish(&s);
	char tag[96], what[160];
	snprintf(tag, sizeof tag, "conv N%d %dx%dx%d->%d k%dx%d s%dx%d p%dx%d%s", N, C, H, W, OC, KH,
	         KW, SH, SW, PH, PW, null_scratch ? " (own workspace)" : "");
	size_t ni = (size_t)N * C * H * W, nw = (size_t)OC * C * KH * KW;
	size_t no = (size_t)N * OC * s.OH * s.OW, ns = nn_conv2d_scratch_floats(&s);
	int K = C * KH * KW, NP = N * s.OH * s.OW;
	float *x = rand_buf(ni, r, -1, 1), *w = rand_buf(nw, r, -1, 1);
	float *b = bias ? rand_buf((size_t)OC, r, -1, 1) : NULL, *dy = rand_buf(no, r, -1, 1);
	float *px = rand_buf(ni, r, -0.5f, 0.5f), *pw = rand_buf(nw, r, -0.5f, 0.5f);
	float *pb = rand_buf((size_t)OC, r, -0.5f, 0.5f);
	float *y = hbuf(no), *scr = hbuf(ns), *gx = hcopy(px, ni), *gw = hcopy(pw, nw);
	float *gb = hcopy(pb, (size_t)OC);
	float *X = dbuf(x, ni), *Wd = dbuf(w, nw), *B = b ? dbuf(b, (size_t)OC) : NULL;
	float *DY = dbuf(dy, no), *Y = dbuf(NULL, no), *S = null_scratch ? NULL : dbuf(NULL, ns);
	float *GX = dbuf(px, ni), *GW = dbuf(pw, nw), *GB = dbuf(pb, (size_t)OC);

	cpu->conv2d_forward(y, scr, x, w, b, &s);
	gpu->conv2d_forward(Y, S, X, Wd, B, &s);
	snprintf(what, sizeof what, "%s forward", tag);
	close_to(what, Y, y, NULL, no, red(K));

	cpu->conv2d_backward(gx, gw, gb, scr, dy, x, w, &s);
	gpu->conv2d_backward(GX, GW, GB, S, DY, X, Wd, &s);
	snprintf(what, sizeof what, "%s dinp (accumulated)", tag);
	close_to(what, GX, gx, px, ni, red((double)OC * KH * KW));
	snprintf(what, sizeof what, "%s dweight (accumulated)", tag);
	close_to(what, GW, gw, pw, nw, red(NP));
	snprintf(what, sizeof what, "%s dbias (accumulated)", tag);
	close_to(what, GB, gb, pb, (size_t)OC, red(NP));

	/* a first layer: no dinp; dweight and dbias accumulate again */
	cpu->conv2d_backward(NULL, gw, gb, scr, dy, x, w, &s);
	gpu->conv2d_backward(NULL, GW, GB, S, DY, X, Wd, &s);
	snprintf(what, sizeof what, "%s dweight, dbias twice with NULL dinp", tag);
	close_to(what, GW, gw, pw, nw, red(NP));
	close_to(what, GB, gb, pb, (size_t)OC, red(NP));
	/* no dweight: dinp alone */
	cpu->conv2d_backward(gx, NULL, NULL, scr, dy, x, w, &s);
	gpu->conv2d_backward(GX, NULL, NULL, S, DY, X, Wd, &s);
	snprintf(what, sizeof what, "%s dinp twice with NULL dweight, dbias", tag);
	close_to(what, GX, gx, px, ni, red((double)OC * KH * KW));

	float *hs[] = {x, w, b, dy, px, pw, pb, y, scr, gx, gw, gb};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		free(hs[i]);
	float *ds[] = {X, Wd, B, DY, Y, S, GX, GW, GB};
	for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
		if (ds[i])
			gpu->free_(ds[i]);
}

static void test_cuda_conv2d(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 3, 1);
	/* the fmnist encoder (batches below and above nn_cpu's blocked path) */
	conv_case(9, 1, 28, 28, 32, 6, 6, 2, 2, 2, 2, 1, 0, &r);
	conv_case(3, 1, 28, 28, 32, 6, 6, 2, 2, 2, 2, 1, 0, &r);
	conv_case(8, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 0, &r);
	conv_case(8, 64, 6, 6, 128, 3, 3, 1, 1, 1, 1, 1, 0, &r);
	conv_case(8, 128, 6, 6, 128, 3, 3, 1, 1, 1, 1, 1, 0, &r);
	/* resnet18: the 7x7 s2 p3 stem, a 3x3 s2 and the 1x1 s2 shortcut, no bias */
	conv_case(2, 3, 112, 112, 64, 7, 7, 2, 2, 3, 3, 0, 0, &r);
	conv_case(4, 64, 28, 28, 128, 3, 3, 2, 2, 1, 1, 0, 0, &r);
	conv_case(4, 64, 28, 28, 128, 1, 1, 2, 2, 0, 0, 0, 0, &r);
	conv_case(1, 256, 7, 7, 512, 1, 1, 1, 1, 0, 0, 1, 0, &r); /* pointwise, one image */
	/* odd shapes: rectangular kernel, unequal strides and paddings */
	conv_case(3, 2, 7, 5, 4, 3, 2, 2, 1, 1, 0, 1, 0, &r);
	conv_case(10, 3, 9, 11, 5, 2, 3, 1, 2, 0, 1, 1, 0, &r);
	/* no caller scratch: the backend's own workspace */
	conv_case(8, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, &r);
	GPU_OK();
}

/* ---------------- batch normalisation ---------------- */

/* relu = 1: the fused ReLU (both backends round BatchNorm's output step by
 * step, so the recomputed ReLU masks agree) */
static void bn_case(int N, int C, int HW, int train, int affine, int relu, struct rng *r)
{
	char tag[96], what[160];
	snprintf(tag, sizeof tag, "batchnorm N%d C%d HW%d %s%s%s", N, C, HW,
	         train ? "train" : "eval", affine ? "" : " (no gamma/beta)", relu ? " +relu" : "");
	size_t n = (size_t)N * C * HW;
	double m = (double)N * HW;
	float *x = rand_buf(n, r, -2, 3), *dy = rand_buf(n, r, -1, 1);
	float *g = rand_buf((size_t)C, r, 0.5f, 1.5f), *b = rand_buf((size_t)C, r, -1, 1);
	float *rm = rand_buf((size_t)C, r, -0.5f, 0.5f), *rv = rand_buf((size_t)C, r, 0.5f, 2);
	float *px = rand_buf(n, r, -0.5f, 0.5f), *pg = rand_buf((size_t)C, r, -0.5f, 0.5f);
	float *pb = rand_buf((size_t)C, r, -0.5f, 0.5f);
	float *y = hbuf(n), *mean = hbuf((size_t)C), *rstd = hbuf((size_t)C);
	float *crm = hcopy(rm, (size_t)C), *crv = hcopy(rv, (size_t)C);
	float *gx = hcopy(px, n), *gg = hcopy(pg, (size_t)C), *gb = hcopy(pb, (size_t)C);
	float *X = dbuf(x, n), *DY = dbuf(dy, n), *G = affine ? dbuf(g, (size_t)C) : NULL;
	float *Bt = affine ? dbuf(b, (size_t)C) : NULL, *RM = dbuf(rm, (size_t)C);
	float *RV = dbuf(rv, (size_t)C), *Y = dbuf(NULL, n), *MEAN = dbuf(NULL, (size_t)C);
	float *RSTD = dbuf(NULL, (size_t)C), *GX = dbuf(px, n), *GG = dbuf(pg, (size_t)C);
	float *GB = dbuf(pb, (size_t)C);
	const float *cg = affine ? g : NULL, *cb = affine ? b : NULL;

	cpu->batchnorm_forward(y, mean, rstd, crm, crv, x, cg, cb, N, C, HW, train, 0.1f, 1e-5f,
	                       relu);
	gpu->batchnorm_forward(Y, MEAN, RSTD, RM, RV, X, G, Bt, N, C, HW, train, 0.1f, 1e-5f,
	                       relu);
	struct tol t = train ? red(m) : ew();
	snprintf(what, sizeof what, "%s out", tag);
	close_to(what, Y, y, NULL, n, t);
	snprintf(what, sizeof what, "%s mean", tag);
	close_to(what, MEAN, mean, NULL, (size_t)C, t);
	snprintf(what, sizeof what, "%s rstd", tag);
	close_to(what, RSTD, rstd, NULL, (size_t)C, t);
	snprintf(what, sizeof what, "%s running mean, var", tag);
	close_to(what, RM, crm, NULL, (size_t)C, t);
	close_to(what, RV, crv, NULL, (size_t)C, t);

	cpu->batchnorm_backward(gx, affine ? gg : NULL, affine ? gb : NULL, dy, x, mean, rstd, cg, cb,
	                        N, C, HW, train, relu);
	gpu->batchnorm_backward(GX, affine ? GG : NULL, affine ? GB : NULL, DY, X, MEAN, RSTD, G, Bt,
	                        N, C, HW, train, relu);
	snprintf(what, sizeof what, "%s dinp (accumulated)", tag);
	close_to(what, GX, gx, px, n, red(m));
	if (affine) {
		snprintf(what, sizeof what, "%s dgamma, dbeta (accumulated)", tag);
		close_to(what, GG, gg, pg, (size_t)C, red(m));
		close_to(what, GB, gb, pb, (size_t)C, red(m));
		/* NULL dinp: the parameter gradients alone */
		cpu->batchnorm_backward(NULL, gg, gb, dy, x, mean, rstd, cg, cb, N, C, HW, train, relu);
		gpu->batchnorm_backward(NULL, GG, GB, DY, X, MEAN, RSTD, G, Bt, N, C, HW, train, relu);
		snprintf(what, sizeof what, "%s dgamma, dbeta twice with NULL dinp", tag);
		close_to(what, GG, gg, pg, (size_t)C, red(m));
		close_to(what, GB, gb, pb, (size_t)C, red(m));
	}

	float *hs[] = {x, dy, g, b, rm, rv, px, pg, pb, y, mean, rstd, crm, crv, gx, gg, gb};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		free(hs[i]);
	float *ds[] = {X, DY, G, Bt, RM, RV, Y, MEAN, RSTD, GX, GG, GB};
	for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
		if (ds[i])
			gpu->free_(ds[i]);
}

static void test_cuda_batchnorm(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 4, 1);
	for (int train = 1; train >= 0; train--) {
		bn_case(16, 512, 1, train, 1, 0, &r);     /* BatchNorm1d of the mlp encoder */
		bn_case(256, 512, 1, train, 1, 0, &r);
		bn_case(8, 32, 196, train, 1, 0, &r);     /* fmnist */
		bn_case(8, 128, 36, train, 1, 0, &r);
		bn_case(64, 8, 1024, train, 1, 0, &r);    /* many chunks per channel */
		bn_case(3, 5, 7, train, 1, 0, &r);
		bn_case(2, 4, 1, train, 0, 0, &r);
		bn_case(8, 32, 196, train, 1, 1, &r);     /* fmnist, the ReLU fused */
		bn_case(8, 128, 36, train, 1, 1, &r);
		bn_case(3, 5, 7, train, 0, 1, &r);
	}
	GPU_OK();
}

/* ---------------- elementwise and dropout ---------------- */

/* ReLU inputs with exact zeros, -0, and NaN mixed in */
static float *relu_input(size_t n, struct rng *r)
{
	float *x = rand_buf(n, r, -1, 1);
	for (size_t i = 0; i < n; i += 7)
		x[i] = i % 3 == 0 ? 0.0f : (i % 3 == 1 ? -0.0f : NAN);
	return x;
}

static void elementwise_case(size_t n, struct rng *r)
{
	char what[96];
	float *x = relu_input(n, r), *a = rand_buf(n, r, -3, 3), *dy = rand_buf(n, r, -1, 1);
	float *p1 = rand_buf(n, r, -0.5f, 0.5f), *p2 = rand_buf(n, r, -0.5f, 0.5f);
	float *y = hbuf(n), *g1 = hcopy(p1, n), *g2 = hcopy(p2, n);
	float *X = dbuf(x, n), *A = dbuf(a, n), *DY = dbuf(dy, n), *Y = dbuf(NULL, n);
	float *G1 = dbuf(p1, n), *G2 = dbuf(p2, n);

	cpu->relu_forward(y, x, n), gpu->relu_forward(Y, X, n);
	snprintf(what, sizeof what, "relu_forward n=%zu", n);
	same_bits(what, Y, y, n);
	cpu->relu_backward(g1, dy, y, n), gpu->relu_backward(G1, DY, Y, n);
	snprintf(what, sizeof what, "relu_backward n=%zu", n);
	same_bits(what, G1, g1, n);

	cpu->tanh_forward(y, a, n), gpu->tanh_forward(Y, A, n);
	snprintf(what, sizeof what, "tanh_forward n=%zu", n);
	close_to(what, Y, y, NULL, n, ew());
	gpu->upload(Y, y, n); /* the backward from identical outputs */
	cpu->tanh_backward(g2, dy, y, n), gpu->tanh_backward(G2, DY, Y, n);
	snprintf(what, sizeof what, "tanh_backward n=%zu", n);
	close_to(what, G2, g2, p2, n, ew());
	cpu->tanh_forward(y, y, n), gpu->tanh_forward(Y, Y, n); /* in place, as the ABMIL head */
	snprintf(what, sizeof what, "tanh_forward in place n=%zu", n);
	close_to(what, Y, y, NULL, n, ew());

	cpu->add_forward(y, a, dy, n), gpu->add_forward(Y, A, DY, n);
	snprintf(what, sizeof what, "add_forward n=%zu", n);
	same_bits(what, Y, y, n);
	cpu->add_forward(y, y, a, n), gpu->add_forward(Y, Y, A, n);
	snprintf(what, sizeof what, "add_forward in place n=%zu", n);
	same_bits(what, Y, y, n);
	cpu->add_backward(g1, g2, dy, n), gpu->add_backward(G1, G2, DY, n);
	cpu->add_backward(NULL, g2, dy, n), gpu->add_backward(NULL, G2, DY, n);
	cpu->add_backward(g1, NULL, dy, n), gpu->add_backward(G1, NULL, DY, n);
	snprintf(what, sizeof what, "add_backward with NULLs n=%zu", n);
	same_bits(what, G1, g1, n);
	same_bits(what, G2, g2, n);

	cpu->scale(y, -1.7f, n), gpu->scale(Y, -1.7f, n);
	snprintf(what, sizeof what, "scale n=%zu", n);
	same_bits(what, Y, y, n);

	float *hs[] = {x, a, dy, p1, p2, y, g1, g2};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		free(hs[i]);
	float *ds[] = {X, A, DY, Y, G1, G2};
	for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
		gpu->free_(ds[i]);
}

static void test_cuda_elementwise(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 5, 1);
	elementwise_case(1, &r);
	elementwise_case(17, &r);
	elementwise_case(((size_t)1 << 20) + 3, &r);
	GPU_OK();
}

static void dropout_case(size_t n, float p, struct rng *r)
{
	char what[96];
	float *x = rand_buf(n, r, -1, 1), *dy = rand_buf(n, r, -1, 1);
	float *pg = rand_buf(n, r, -0.5f, 0.5f), *y = hbuf(n), *mask = hbuf(n), *gx = hcopy(pg, n);
	float *X = dbuf(x, n), *DY = dbuf(dy, n), *Y = dbuf(NULL, n), *M = dbuf(NULL, n);
	float *GX = dbuf(pg, n);
	struct rng rc, rg;
	rng_seed(&rc, 77, 3);
	rng_seed(&rg, 77, 3);
	for (int round = 0; round < 2; round++) { /* the second continues the stream */
		cpu->dropout_forward(y, mask, x, n, p, &rc);
		gpu->dropout_forward(Y, M, X, n, p, &rg);
		snprintf(what, sizeof what, "dropout p=%g n=%zu round %d mask", p, n, round);
		same_bits(what, M, mask, n);
		snprintf(what, sizeof what, "dropout p=%g n=%zu round %d out", p, n, round);
		same_bits(what, Y, y, n);
		CHECK(rc.state == rg.state && rc.inc == rg.inc,
		      "dropout p=%g n=%zu: the rng after the draws differs (cpu %llx, gpu %llx)", p, n,
		      (unsigned long long)rc.state, (unsigned long long)rg.state);
	}
	cpu->dropout_backward(gx, dy, mask, n), gpu->dropout_backward(GX, DY, M, n);
	snprintf(what, sizeof what, "dropout_backward p=%g n=%zu", p, n);
	close_to(what, GX, gx, pg, n, ew());
	free(x), free(dy), free(pg), free(y), free(mask), free(gx);
	gpu->free_(X), gpu->free_(DY), gpu->free_(Y), gpu->free_(M), gpu->free_(GX);
}

static void test_cuda_dropout(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 6, 1);
	dropout_case(1, 0.5f, &r);
	dropout_case(1000, 0.0f, &r);
	dropout_case(1000003, 0.4f, &r); /* not a multiple of the per-thread run */
	dropout_case(100 * 512, 0.5f, &r); /* the ABMIL head's dropout on a bag of 100 */
	/* dropout_forward_at: the generator from device memory, the CPU's masks */
	if (gpu->dropout_forward_at) {
		size_t sizes[2] = {1000003, 100 * 512};
		for (int k = 0; k < 2; k++) {
			size_t n = sizes[k];
			float *x = rand_buf(n, &r, -1, 1), *y = hbuf(n), *mk = hbuf(n);
			float *X = dbuf(x, n), *Y = dbuf(NULL, n), *M = dbuf(NULL, n);
			uint64_t st[2] = {r.state, r.inc};
			float *S = dbuf((const float *)st, 4);
			struct rng c = r;
			cpu->dropout_forward(y, mk, x, n, 0.3f, &c);
			gpu->dropout_forward_at(Y, M, X, n, 0.3f, (const uint64_t *)S);
			same_bits("dropout_forward_at mask", M, mk, n);
			same_bits("dropout_forward_at output", Y, y, n);
			rng_advance(&r, n);
			CHECK(r.state == c.state, "rng_advance(%zu) is not where %zu draws leave it", n, n);
			gpu->free_(X), gpu->free_(Y), gpu->free_(M), gpu->free_(S);
			free(x), free(y), free(mk);
		}
	}
	GPU_OK();
}

/* ---------------- pooling ---------------- */

/* distinct values (no ties); ties = 1: few levels (many ties) and NaNs */
static float *pool_input(size_t n, int ties, struct rng *r)
{
	float *x = hbuf(n);
	uint32_t *p = malloc(n * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint32_t)i;
	rng_shuffle(r, p, n);
	for (size_t i = 0; i < n; i++)
		x[i] = ties ? (float)(p[i] % 4) : (float)p[i] * 1e-3f - 0.5f;
	if (ties)
		for (size_t i = 5; i < n; i += 97)
			x[i] = NAN;
	free(p);
	return x;
}

static void maxpool_case(int N, int C, int H, int W, int K, int S, int P, int ties,
                         struct rng *r)
{
	struct nn_conv_shape s = {.N = N, .C = C, .H = H, .W = W, .KH = K, .KW = K, .SH = S,
	                          .SW = S, .PH = P, .PW = P};
	nn_conv_shape_finish(&s);
	char what[128];
	size_t ni = (size_t)N * C * H * W, no = (size_t)N * C * s.OH * s.OW;
	float *x = pool_input(ni, ties, r), *dy = rand_buf(no, r, -1, 1);
	float *px = rand_buf(ni, r, -0.5f, 0.5f), *y = hbuf(no), *idx = hbuf(no);
	float *gx = hcopy(px, ni);
	float *X = dbuf(x, ni), *DY = dbuf(dy, no), *Y = dbuf(NULL, no), *I = dbuf(NULL, no);
	float *GX = dbuf(px, ni);
	cpu->maxpool_forward(y, (int32_t *)idx, x, &s);
	gpu->maxpool_forward(Y, (int32_t *)I, X, &s);
	snprintf(what, sizeof what, "maxpool N%d C%d %dx%d k%d s%d p%d%s", N, C, H, W, K, S, P,
	         ties ? " ties+NaN" : "");
	char w2[224];
	snprintf(w2, sizeof w2, "%s indices", what);
	same_bits(w2, I, idx, no);
	snprintf(w2, sizeof w2, "%s out", what);
	same_bits(w2, Y, y, no);
	if (!ties) { /* NaN gradients would not compare; the gather order is the CPU's */
		cpu->maxpool_backward(gx, dy, (const int32_t *)idx, &s);
		gpu->maxpool_backward(GX, DY, (const int32_t *)I, &s);
		snprintf(w2, sizeof w2, "%s backward (accumulated, bit-identical gather)", what);
		same_bits(w2, GX, gx, ni);
	}
	free(x), free(dy), free(px), free(y), free(idx), free(gx);
	gpu->free_(X), gpu->free_(DY), gpu->free_(Y), gpu->free_(I), gpu->free_(GX);
}

static void avgpool_case(int N, int C, int HW, struct rng *r)
{
	char what[96];
	size_t ni = (size_t)N * C * HW, no = (size_t)N * C;
	float *x = rand_buf(ni, r, -1, 1), *dy = rand_buf(no, r, -1, 1);
	float *px = rand_buf(ni, r, -0.5f, 0.5f), *y = hbuf(no), *gx = hcopy(px, ni);
	float *X = dbuf(x, ni), *DY = dbuf(dy, no), *Y = dbuf(NULL, no), *GX = dbuf(px, ni);
	cpu->avgpool_forward(y, x, N, C, HW), gpu->avgpool_forward(Y, X, N, C, HW);
	snprintf(what, sizeof what, "avgpool N%d C%d HW%d forward", N, C, HW);
	same_bits(what, Y, y, no);
	cpu->avgpool_backward(gx, dy, N, C, HW), gpu->avgpool_backward(GX, DY, N, C, HW);
	snprintf(what, sizeof what, "avgpool N%d C%d HW%d backward (accumulated)", N, C, HW);
	same_bits(what, GX, gx, ni);
	free(x), free(dy), free(px), free(y), free(gx);
	gpu->free_(X), gpu->free_(DY), gpu->free_(Y), gpu->free_(GX);
}

static void test_cuda_pooling(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 7, 1);
	maxpool_case(8, 64, 14, 14, 3, 2, 0, 0, &r);  /* fmnist */
	maxpool_case(8, 128, 6, 6, 3, 2, 0, 0, &r);
	maxpool_case(2, 64, 56, 56, 3, 2, 1, 0, &r);  /* resnet18 stem pool */
	maxpool_case(3, 5, 7, 9, 2, 2, 0, 0, &r);
	maxpool_case(2, 3, 8, 8, 3, 1, 1, 0, &r);     /* heavy overlap */
	maxpool_case(4, 8, 14, 14, 3, 2, 0, 1, &r);
	maxpool_case(4, 8, 15, 15, 3, 2, 1, 1, &r);
	avgpool_case(8, 512, 49, &r);                /* resnet18 head */
	avgpool_case(4, 3, 1, &r);
	avgpool_case(2, 7, 1000, &r);
	GPU_OK();
}

/* ---------------- softmax and wsum ---------------- */

static void softmax_case(int outer, int dim, int inner, struct rng *r)
{
	char what[96];
	size_t n = (size_t)outer * dim * inner;
	float *x = rand_buf(n, r, -5, 5), *dy = rand_buf(n, r, -1, 1);
	float *px = rand_buf(n, r, -0.5f, 0.5f), *y = hbuf(n), *gx = hcopy(px, n);
	float *X = dbuf(x, n), *DY = dbuf(dy, n), *Y = dbuf(NULL, n), *GX = dbuf(px, n);
	cpu->softmax_forward(y, x, outer, dim, inner);
	gpu->softmax_forward(Y, X, outer, dim, inner);
	snprintf(what, sizeof what, "softmax [%d,%d,%d] forward", outer, dim, inner);
	close_to(what, Y, y, NULL, n, red(dim));
	gpu->upload(Y, y, n);
	cpu->softmax_backward(gx, dy, y, outer, dim, inner);
	gpu->softmax_backward(GX, DY, Y, outer, dim, inner);
	snprintf(what, sizeof what, "softmax [%d,%d,%d] backward (accumulated)", outer, dim, inner);
	close_to(what, GX, gx, px, n, red(dim));
	free(x), free(dy), free(px), free(y), free(gx);
	gpu->free_(X), gpu->free_(DY), gpu->free_(Y), gpu->free_(GX);
}

static void wsum_case(int n, int K, int D, struct rng *r)
{
	char what[96];
	size_t na = (size_t)n * K, nh = (size_t)n * D, no = (size_t)K * D;
	float *a = rand_buf(na, r, 0, 1), *h = rand_buf(nh, r, -1, 1), *dy = rand_buf(no, r, -1, 1);
	float *pa = rand_buf(na, r, -0.5f, 0.5f), *ph = rand_buf(nh, r, -0.5f, 0.5f);
	float *y = hbuf(no), *ga = hcopy(pa, na), *gh = hcopy(ph, nh);
	float *A = dbuf(a, na), *Hd = dbuf(h, nh), *DY = dbuf(dy, no), *Y = dbuf(NULL, no);
	float *GA = dbuf(pa, na), *GH = dbuf(ph, nh);
	cpu->wsum_forward(y, a, h, n, K, D), gpu->wsum_forward(Y, A, Hd, n, K, D);
	snprintf(what, sizeof what, "wsum n%d K%d D%d forward", n, K, D);
	close_to(what, Y, y, NULL, no, red(n));
	cpu->wsum_backward(ga, gh, dy, a, h, n, K, D), gpu->wsum_backward(GA, GH, DY, A, Hd, n, K, D);
	snprintf(what, sizeof what, "wsum n%d K%d D%d da, dh (accumulated)", n, K, D);
	close_to(what, GA, ga, pa, na, red(D));
	close_to(what, GH, gh, ph, nh, red(K));
	cpu->wsum_backward(NULL, gh, dy, a, h, n, K, D), gpu->wsum_backward(NULL, GH, DY, A, Hd, n, K, D);
	cpu->wsum_backward(ga, NULL, dy, a, h, n, K, D), gpu->wsum_backward(GA, NULL, DY, A, Hd, n, K, D);
	snprintf(what, sizeof what, "wsum n%d K%d D%d with NULL da / dh", n, K, D);
	close_to(what, GA, ga, pa, na, red(D));
	close_to(what, GH, gh, ph, nh, red(K));
	float *hs[] = {a, h, dy, pa, ph, y, ga, gh};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		free(hs[i]);
	gpu->free_(A), gpu->free_(Hd), gpu->free_(DY), gpu->free_(Y), gpu->free_(GA), gpu->free_(GH);
}

static void test_cuda_softmax_wsum(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 8, 1);
	softmax_case(1, 100, 1, &r);    /* ABMIL attention over a bag of 100 */
	softmax_case(1, 5000, 1, &r);   /* a slide-sized bag */
	softmax_case(1, 37, 2, &r);     /* DSMIL: over instances of [n,2] */
	softmax_case(3, 10, 7, &r);
	softmax_case(300, 1, 1, &r);
	wsum_case(100, 1, 1024, &r);
	wsum_case(37, 2, 1024, &r);
	wsum_case(1, 1, 5, &r);
	wsum_case(5000, 1, 512, &r);
	GPU_OK();
}

/* ---------------- the fused ABMIL attention head ---------------- */

/* the CPU's unfused chain, as net.c runs it */
static void attn_chain_forward(float *t, float *A, float *a, float *z, float *logits,
                               const float *pre, const float *h, const float *w, const float *bw,
                               const float *C, const float *bc, int n, int L, int D)
{
	cpu->tanh_forward(t, pre, (size_t)n * L);
	cpu->linear_forward(A, t, w, bw, n, L, 1);
	cpu->softmax_forward(a, A, 1, n, 1);
	cpu->wsum_forward(z, a, h, n, 1, D);
	cpu->linear_forward(logits, z, C, bc, 1, D, 2);
}

/* its backward from zeroed intermediates; du (when not NULL) overwritten */
static void attn_chain_backward(float *du, float *dh, float *dw, float *dbw, float *dC,
                                float *dbc, const float *dl, const float *t, const float *h,
                                const float *a, const float *z, const float *w, const float *C,
                                int n, int L, int D)
{
	size_t nl = (size_t)n * L;
	float *dz = hbuf((size_t)D), *da = hbuf((size_t)n), *dA = hbuf((size_t)n);
	float *dt = hbuf(nl), *u = hbuf(nl);
	cpu->linear_backward(dz, dC, dbc, dl, z, C, 1, D, 2);
	cpu->wsum_backward(da, dh, dz, a, h, n, 1, D);
	cpu->softmax_backward(dA, da, a, 1, n, 1);
	cpu->linear_backward(dt, dw, dbw, dA, t, w, n, L, 1);
	cpu->tanh_backward(u, dt, t, nl);
	if (du)
		memcpy(du, u, nl * sizeof *u);
	free(dz), free(da), free(dA), free(dt), free(u);
}

static void attn_case(int n, int L, int D, struct rng *r)
{
	char what[128], tag[48];
	size_t nl = (size_t)n * L, nh = (size_t)n * D, nc = 2 * (size_t)D;
	snprintf(tag, sizeof tag, "abmil_attn n%d L%d D%d", n, L, D);
	/* w at 4/sqrt(L): scores of order 1, a softmax neither flat nor one-hot */
	float ws = 4.0f / sqrtf((float)L);
	float *pre = rand_buf(nl, r, -2, 2), *h = rand_buf(nh, r, -1, 1);
	float *w = rand_buf((size_t)L, r, -ws, ws), *bw = rand_buf(1, r, -1, 1);
	float *C = rand_buf(nc, r, -1, 1), *bc = rand_buf(2, r, -1, 1), *dl = rand_buf(2, r, -1, 1);
	float *t = hbuf(nl), *A = hbuf((size_t)n), *a = hbuf((size_t)n), *z = hbuf((size_t)D);
	float *lg = hbuf(2);
	float *Pre = dbuf(pre, nl), *Hd = dbuf(h, nh), *W = dbuf(w, (size_t)L), *BW = dbuf(bw, 1);
	float *Cd = dbuf(C, nc), *BC = dbuf(bc, 2), *DL = dbuf(dl, 2);
	float *T = dbuf(NULL, nl), *Ad = dbuf(NULL, (size_t)n), *Ap = dbuf(NULL, (size_t)n);
	float *Z = dbuf(NULL, (size_t)D), *LG = dbuf(NULL, 2);

	/* forward: t in place over pre but for n = 7 */
	int inplace = n != 7;
	attn_chain_forward(t, A, a, z, lg, pre, h, w, bw, C, bc, n, L, D);
	gpu->abmil_attn_forward(inplace ? Pre : T, Ad, Ap, Z, LG, Pre, Hd, W, BW, Cd, BC, n, L, D);
	snprintf(what, sizeof what, "%s forward t%s", tag, inplace ? " (in place)" : "");
	close_to(what, inplace ? Pre : T, t, NULL, nl, ew());
	if (!inplace) {
		snprintf(what, sizeof what, "%s forward: pre untouched", tag);
		same_bits(what, Pre, pre, nl);
	}
	snprintf(what, sizeof what, "%s forward A", tag);
	close_to(what, Ad, A, NULL, (size_t)n, red(L));
	snprintf(what, sizeof what, "%s forward a", tag);
	close_to(what, Ap, a, NULL, (size_t)n, red(n));
	snprintf(what, sizeof what, "%s forward z", tag);
	close_to(what, Z, z, NULL, (size_t)D, red(n));
	snprintf(what, sizeof what, "%s forward logits", tag);
	close_to(what, LG, lg, NULL, 2, red(D));
	if (!inplace) { /* and without the biases */
		attn_chain_forward(t, A, a, z, lg, pre, h, w, NULL, C, NULL, n, L, D);
		gpu->abmil_attn_forward(T, Ad, Ap, Z, LG, Pre, Hd, W, NULL, Cd, NULL, n, L, D);
		snprintf(what, sizeof what, "%s forward without biases: A, a, logits", tag);
		close_to(what, Ad, A, NULL, (size_t)n, red(L));
		close_to(what, Ap, a, NULL, (size_t)n, red(n));
		close_to(what, LG, lg, NULL, 2, red(D));
		attn_chain_forward(t, A, a, z, lg, pre, h, w, bw, C, bc, n, L, D);
	}

	/* backward from the CPU's t, a, z on both; du pre-filled too (it is
	 * overwritten), the gradients pre-filled to check that they add */
	gpu->upload(T, t, nl), gpu->upload(Ap, a, (size_t)n), gpu->upload(Z, z, (size_t)D);
	float *pu = rand_buf(nl, r, -0.5f, 0.5f), *ph = rand_buf(nh, r, -0.5f, 0.5f);
	float *pw = rand_buf((size_t)L, r, -0.5f, 0.5f), *pbw = rand_buf(1, r, -0.5f, 0.5f);
	float *pC = rand_buf(nc, r, -0.5f, 0.5f), *pbc = rand_buf(2, r, -0.5f, 0.5f);
	float *gu = hcopy(pu, nl), *gh = hcopy(ph, nh), *gw = hcopy(pw, (size_t)L);
	float *gbw = hcopy(pbw, 1), *gC = hcopy(pC, nc), *gbc = hcopy(pbc, 2);
	float *GU = dbuf(pu, nl), *GH = dbuf(ph, nh), *GW = dbuf(pw, (size_t)L), *GBW = dbuf(pbw, 1);
	float *GC = dbuf(pC, nc), *GBC = dbuf(pbc, 2);
	attn_chain_backward(gu, gh, gw, gbw, gC, gbc, dl, t, h, a, z, w, C, n, L, D);
	gpu->abmil_attn_backward(GU, GH, GW, GBW, GC, GBC, DL, T, Hd, Ap, Z, W, Cd, n, L, D);
	snprintf(what, sizeof what, "%s backward du (overwritten)", tag);
	close_to(what, GU, gu, NULL, nl, red(D));
	snprintf(what, sizeof what, "%s backward dh (accumulated)", tag);
	close_to(what, GH, gh, ph, nh, ew());
	snprintf(what, sizeof what, "%s backward dw (accumulated)", tag);
	close_to(what, GW, gw, pw, (size_t)L, red(n));
	snprintf(what, sizeof what, "%s backward dbw (accumulated)", tag);
	close_to(what, GBW, gbw, pbw, 1, red(n));
	snprintf(what, sizeof what, "%s backward dC (accumulated)", tag);
	close_to(what, GC, gC, pC, nc, ew());
	snprintf(what, sizeof what, "%s backward dbc (accumulated)", tag);
	close_to(what, GBC, gbc, pbc, 2, ew());

	/* NULL dh, dw, dC: du again, dbw and dbc add a second time, the others
	 * stay as they were; then NULL du, dbw, dbc: the reverse */
	float *gh1 = download(GH, nh), *gw1 = download(GW, (size_t)L), *gC1 = download(GC, nc);
	attn_chain_backward(gu, NULL, NULL, gbw, NULL, gbc, dl, t, h, a, z, w, C, n, L, D);
	gpu->abmil_attn_backward(GU, NULL, NULL, GBW, NULL, GBC, DL, T, Hd, Ap, Z, W, Cd, n, L, D);
	snprintf(what, sizeof what, "%s backward du, dbw, dbc with NULL dh, dw, dC", tag);
	close_to(what, GU, gu, NULL, nl, red(D));
	close_to(what, GBW, gbw, pbw, 1, red(n));
	close_to(what, GBC, gbc, pbc, 2, ew());
	snprintf(what, sizeof what, "%s backward dh, dw, dC untouched by NULL", tag);
	same_bits(what, GH, gh1, nh);
	same_bits(what, GW, gw1, (size_t)L);
	same_bits(what, GC, gC1, nc);
	float *gu1 = download(GU, nl), *gbw1 = download(GBW, 1), *gbc1 = download(GBC, 2);
	attn_chain_backward(NULL, gh, gw, NULL, gC, NULL, dl, t, h, a, z, w, C, n, L, D);
	gpu->abmil_attn_backward(NULL, GH, GW, NULL, GC, NULL, DL, T, Hd, Ap, Z, W, Cd, n, L, D);
	snprintf(what, sizeof what, "%s backward dh, dw, dC with NULL du, dbw, dbc", tag);
	close_to(what, GH, gh, ph, nh, ew());
	close_to(what, GW, gw, pw, (size_t)L, red(n));
	close_to(what, GC, gC, pC, nc, ew());
	snprintf(what, sizeof what, "%s backward du, dbw, dbc untouched by NULL", tag);
	same_bits(what, GU, gu1, nl);
	same_bits(what, GBW, gbw1, 1);
	same_bits(what, GBC, gbc1, 2);

	float *hs[] = {pre, h, w, bw, C, bc, dl, t, A, a, z, lg, pu, ph, pw, pbw, pC, pbc,
	               gu, gh, gw, gbw, gC, gbc, gh1, gw1, gC1, gu1, gbw1, gbc1};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
		free(hs[i]);
	float *ds[] = {Pre, Hd, W, BW, Cd, BC, DL, T, Ad, Ap, Z, LG, GU, GH, GW, GBW, GC, GBC};
	for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++)
		gpu->free_(ds[i]);
}

static void test_cuda_abmil_attn(void)
{
	NEED_GPU();
	REQUIRE(gpu->abmil_attn_forward && gpu->abmil_attn_backward,
	        "the CUDA backend has the fused attention head");
	static const int ns[] = {1, 2, 7, 100, 3000};
	static const int LD[][2] = {{512, 1024}, {5, 3}, {33, 70}};
	struct rng r;
	rng_seed(&r, 13, 1);
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
		for (size_t j = 0; j < sizeof LD / sizeof LD[0]; j++)
			attn_case(ns[i], LD[j][0], LD[j][1], &r);
	/* more rows than the row blocks and chunks hold at one a row: several
	 * rows a block, several tiles a chunk */
	attn_case(70001, 5, 3, &r);
	GPU_OK();
}

/* ---------------- losses ---------------- */

static void loss_case(int kind, int B, int K, struct rng *r)
{
	static const char *names[] = {"loss_bce2", "loss_ce", "loss_soft2"};
	char what[96];
	size_t nl = (size_t)B * K;
	float *z = rand_buf(nl, r, -4, 4), *y = hbuf((size_t)B), *d = hbuf(nl);
	int *lab = malloc((size_t)B * sizeof *lab);
	z[0] = 30.0f; /* a saturated row */
	if (nl > 3)
		z[3] = -30.0f;
	for (int b = 0; b < B; b++) {
		y[b] = b % 3 == 0 ? 0.0f : (b % 3 == 1 ? 1.0f : rng_float(r));
		lab[b] = (int)rng_below(r, (uint32_t)K);
	}
	float *Z = dbuf(z, nl), *Yd = dbuf(y, (size_t)B), *D = dbuf(NULL, nl);
	float *L = dbuf(NULL, (size_t)B);
	gpu->upload(L, (const float *)lab, (size_t)B); /* ints travel as 4-byte words */
	double lc, lg;
	if (kind == 0) {
		lc = cpu->loss_bce2(d, z, y, B, 1e-5f);
		lg = gpu->loss_bce2(D, Z, Yd, B, 1e-5f);
	} else if (kind == 1) {
		lc = cpu->loss_ce(d, z, lab, B, K);
		lg = gpu->loss_ce(D, Z, (const int *)L, B, K);
	} else {
		lc = cpu->loss_soft2(d, z, y, B, 0.1f, 1e-5f);
		lg = gpu->loss_soft2(D, Z, Yd, B, 0.1f, 1e-5f);
	}
	CHECK(check_close(lg, lc, 0, 1e-9 * tmul), "%s B=%d K=%d: loss gpu %.17g cpu %.17g",
	      names[kind], B, K, lg, lc);
	snprintf(what, sizeof what, "%s B=%d K=%d dlogits", names[kind], B, K);
	close_to(what, D, d, NULL, nl, (struct tol){1e-6 * tmul, 1e-7 * tmul});
	free(z), free(y), free(d), free(lab);
	gpu->free_(Z), gpu->free_(Yd), gpu->free_(D), gpu->free_(L);
}

static void test_cuda_losses(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 9, 1);
	for (int kind = 0; kind < 3; kind++) {
		int K = kind == 1 ? 10 : 2;
		loss_case(kind, 1, 2, &r);    /* a bag's loss */
		loss_case(kind, 13, K, &r);
		loss_case(kind, 256, 2, &r);  /* a student batch */
		loss_case(kind, 1000, K, &r); /* more rows than the block has threads */
	}
	GPU_OK();
}

/* ---------------- optimizers ---------------- */

static void optim_case(const struct nn_optim_conf *c, size_t n, const char *tag, struct rng *r)
{
	char what[128];
	float *w = rand_buf(n, r, -1, 1), *m = hbuf(n), *v = hbuf(n), *g = hbuf(n);
	float *W = dbuf(w, n), *M = dbuf(NULL, n), *V = dbuf(NULL, n), *G = dbuf(NULL, n);
	for (long step = 1; step <= 3; step++) {
		fill(g, n, r, -1, 1);
		gpu->upload(G, g, n);
		if (c->kind == NN_OPTIM_ADAM) {
			cpu->adam_step(w, g, m, v, n, c, step);
			gpu->adam_step(W, G, M, V, n, c, step);
		} else {
			cpu->sgd_step(w, g, m, n, c, step);
			gpu->sgd_step(W, G, M, n, c, step);
		}
	}
	snprintf(what, sizeof what, "%s n=%zu, 3 steps: parameters", tag, n);
	close_to(what, W, w, NULL, n, ew());
	if (c->kind == NN_OPTIM_ADAM || c->momentum != 0.0f) {
		snprintf(what, sizeof what, "%s n=%zu, 3 steps: moments", tag, n);
		close_to(what, M, m, NULL, n, ew());
	}
	if (c->kind == NN_OPTIM_ADAM) {
		snprintf(what, sizeof what, "%s n=%zu, 3 steps: second moments", tag, n);
		close_to(what, V, v, NULL, n, ew());
	}
	free(w), free(m), free(v), free(g);
	gpu->free_(W), gpu->free_(M), gpu->free_(V), gpu->free_(G);
}

static void test_cuda_optim(void)
{
	NEED_GPU();
	struct rng r;
	rng_seed(&r, 10, 1);
	size_t sizes[] = {1000, ((size_t)1 << 20) + 5};
	for (int k = 0; k < 2; k++) {
		size_t n = sizes[k];
		struct nn_optim_conf c;
		nn_optim_conf_default(&c, NN_OPTIM_SGD);
		c.lr = 0.05f;
		optim_case(&c, n, "sgd plain", &r);
		c.momentum = 0.9f, c.weight_decay = 1e-4f, c.nesterov = 1;
		optim_case(&c, n, "sgd momentum+wd+nesterov", &r);
		c.nesterov = 0, c.dampening = 0.1f;
		optim_case(&c, n, "sgd momentum+dampening", &r);
		nn_optim_conf_default(&c, NN_OPTIM_ADAM);
		c.lr = 1e-3f;
		optim_case(&c, n, "adam", &r);
		c.weight_decay = 1e-4f;
		optim_case(&c, n, "adam+wd", &r);
	}
	GPU_OK();
}

/* ---------------- whole modules ---------------- */

/* An encoder with a bag head (ABMIL or DSMIL) and the student head, each
 * with its optimizer, on one backend; every buffer the steps touch is the
 * backend's memory. */
struct trio {
	const struct nn_backend *be;
	struct nn_module enc, bag, student;
	struct nn_optim oe, ob, os;
	float *x, *dfeat, *dl, *y, *lab, *w0;
	size_t w0n;
	double losses[32];
	int nloss;
};

struct trio_conf {
	int enc, c, h, w;        /* encoder and its input */
	int bag_head;            /* NN_HEAD_ABMIL or NN_HEAD_DSMIL */
	int bag_n, batch;        /* instances per bag, per student batch */
	int optim;               /* NN_OPTIM_* */
	const char *name;
};

static int trio_create(struct trio *t, const struct nn_backend *be, const struct trio_conf *k,
                       struct err *e)
{
	memset(t, 0, sizeof *t);
	t->be = be;
	struct rng g;
	rng_seed(&g, 42, 0);
	int rc = nn_encoder_create(&t->enc, be, k->enc, k->c, k->h, k->w, k->batch, e);
	if (rc == 0)
		rc = nn_head_create(&t->bag, be, k->bag_head, t->enc.out_dim, 0.5f, k->batch, e);
	if (rc == 0)
		rc = nn_head_create(&t->student, be, NN_HEAD_STUDENT, t->enc.out_dim, 0.5f, k->batch,
		                    e);
	if (rc < 0)
		return rc;
	nn_module_init(&t->enc, &g);
	nn_module_init(&t->bag, &g);
	nn_module_init(&t->student, &g);
	struct nn_optim_conf c;
	nn_optim_conf_default(&c, k->optim);
	c.lr = k->optim == NN_OPTIM_SGD ? 1e-2f : 1e-3f;
	c.momentum = k->optim == NN_OPTIM_SGD ? 0.9f : 0.0f;
	c.weight_decay = 1e-4f;
	/* Adam's first step is lr * g / (|g| + eps): with eps 1e-8 every weight
	 * whose gradient is rounding noise (1e-10 and less, where a convolution
	 * summed in another order differs in sign) takes a full step either way,
	 * and 6 % of the fmnist encoder's weights differed by over 1e-4 after 3
	 * steps between two correct backends (2026-12, AVX-512 OpenBLAS).  With
	 * 1e-6 those weights barely move and the rest is compared as for SGD. */
	if (k->optim == NN_OPTIM_ADAM)
		c.eps = 1e-6f;
	if ((rc = nn_optim_create(&t->oe, be, &c, t->enc.nparams, e)) < 0 ||
	    (rc = nn_optim_create(&t->ob, be, &c, t->bag.nparams, e)) < 0 ||
	    (rc = nn_optim_create(&t->os, be, &c, t->student.nparams, e)) < 0)
		return rc;
	size_t nb = (size_t)(k->bag_n > k->batch ? k->bag_n : k->batch);
	t->x = be->alloc(nb * t->enc.in_dim);
	t->dfeat = be->alloc(nb * t->enc.out_dim);
	t->dl = be->alloc(2 * nb);
	t->y = be->alloc(nb);
	t->lab = be->alloc(2 * nb);
	if (!t->x || !t->dfeat || !t->dl || !t->y || !t->lab)
		return err_set(e, ERR_NOMEM, "out of memory for the step buffers");
	return 0;
}

static void trio_free(struct trio *t)
{
	nn_module_free(&t->enc), nn_module_free(&t->bag), nn_module_free(&t->student);
	nn_optim_free(&t->oe), nn_optim_free(&t->ob), nn_optim_free(&t->os);
	float *bufs[] = {t->x, t->dfeat, t->dl, t->y, t->lab};
	for (int i = 0; i < 5; i++)
		if (bufs[i])
			t->be->free_(bufs[i]);
}

/* host copy of n floats of the trio's backend memory */
static float *trio_get(const struct trio *t, const float *p, size_t n)
{
	float *h = hbuf(n);
	t->be->download(h, p, n);
	return h;
}

/* One teacher step (a bag) and one student step (a batch with soft labels
 * from the teacher's instance scores), as weno.c does them.  grads_only:
 * stop after the teacher's backward (for the gradient comparison). */
static int trio_step(struct trio *t, const struct trio_conf *k, struct rng *data,
                     struct rng *drop, int step, int grads_only, struct err *e)
{
	const struct nn_backend *be = t->be;
	size_t in = (size_t)t->enc.in_dim;
	int most = k->bag_n > k->batch ? k->bag_n : k->batch;
	float *x = hbuf((size_t)most * in), sc[512], y[512];
	fill(x, (size_t)k->bag_n * in, data, 0, 1);
	be->upload(t->x, x, (size_t)k->bag_n * in);
	const float *feat;
	int rc = nn_encoder_forward(&t->enc, &feat, t->x, k->bag_n, e);
	if (rc == 0)
		rc = nn_head_forward(&t->bag, feat, k->bag_n, drop, e);
	if (rc < 0)
		goto out;
	float Y = (float)(step & 1);
	be->upload(t->y, &Y, 1);
	t->losses[t->nloss++] = be->loss_bce2(t->dl, t->bag.logits, t->y, 1, 1e-5f);
	nn_module_zero_grad(&t->enc), nn_module_zero_grad(&t->bag);
	be->zero(t->dfeat, (size_t)k->bag_n * t->enc.out_dim);
	/* DSMIL: the instance-classifier loss too (dscores = its dlogits) */
	float *dsc = NULL;
	if (k->bag_head == NN_HEAD_DSMIL) {
		int lab[512];
		for (int i = 0; i < k->bag_n; i++)
			lab[i] = step & 1;
		be->upload(t->lab, (const float *)lab, (size_t)k->bag_n); /* 4-byte words */
		be->loss_ce(t->dl + 2, t->bag.scores, (const int *)t->lab, k->bag_n, 2);
		dsc = t->dl + 2;
	}
	nn_head_backward(&t->bag, t->dfeat, t->dl, dsc);
	nn_encoder_backward(&t->enc, NULL, t->dfeat);
	if (grads_only)
		goto out;
	nn_optim_step(&t->oe, &t->enc), nn_optim_step(&t->ob, &t->bag);

	fill(x, (size_t)k->batch * in, data, 0, 1);
	be->upload(t->x, x, (size_t)k->batch * in);
	if ((rc = nn_encoder_forward(&t->enc, &feat, t->x, k->batch, e)) < 0 ||
	    (rc = nn_head_scores(&t->bag, sc, feat, k->batch, drop, e)) < 0 ||
	    (rc = nn_head_forward(&t->student, feat, k->batch, drop, e)) < 0)
		goto out;
	/* soft labels from the teacher, rounded to 1/64 so that tiny score
	 * differences between the backends do not move them */
	for (int i = 0; i < k->batch; i++)
		y[i] = roundf(64.0f / (1.0f + expf(-sc[i] * 10.0f))) / 64.0f;
	be->upload(t->y, y, (size_t)k->batch);
	t->losses[t->nloss++] = be->loss_soft2(t->dl, t->student.logits, t->y, k->batch, 0.1f,
	                                       1e-5f);
	nn_module_zero_grad(&t->enc), nn_module_zero_grad(&t->student);
	be->zero(t->dfeat, (size_t)k->batch * t->enc.out_dim);
	nn_head_backward(&t->student, t->dfeat, t->dl, NULL);
	nn_encoder_backward(&t->enc, NULL, t->dfeat);
	nn_optim_step(&t->oe, &t->enc), nn_optim_step(&t->os, &t->student);
out:
	free(x);
	return rc;
}

static int trio_run(struct trio *t, const struct trio_conf *k, int steps, int grads_only,
                    struct err *e)
{
	struct rng data, drop;
	rng_seed(&data, 7, 1);
	rng_seed(&drop, 8, 2);
	for (int s = 0; s < steps; s++) {
		int rc = trio_step(t, k, &data, &drop, s, grads_only, e);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* How far a run is from the CPU's: the relative L2 distance of x from c
 * (both taken as changes from base; NULL: 0) and the share of elements out
 * of the elementwise tolerance t (the header's rule). */
struct dist {
	double rel2, out;
};

static struct dist distance(const float *x, const float *c, const float *base, size_t n,
                            struct tol t)
{
	double scale = 0.0, num = 0.0, den = 0.0;
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		double s = fabs((double)c[i] - (base ? base[i] : 0.0));
		scale = s > scale ? s : scale;
	}
	for (size_t i = 0; i < n; i++) {
		double err = fabs((double)x[i] - c[i]), dc = (double)c[i] - (base ? base[i] : 0.0);
		if (!(err <= t.rel * fabs(c[i]) + t.norm * scale))
			bad++;
		num += err * err;
		den += dc * dc;
	}
	struct dist d = {den > 0 ? sqrt(num / den) : sqrt(num), n ? (double)bad / (double)n : 0.0};
	if (num != num)
		d.rel2 = INFINITY;
	return d;
}

/* First-step gradients of a module: elementwise within loose(1e-3), or,
 * where a ReLU mask or a max-pool argmax flipped on a near-tie (a value
 * within rounding of zero or of its neighbour: the two backends then send
 * a gradient down different paths, and batch norm spreads it over a
 * channel), at most 2 % of the elements out and a relative L2 distance of
 * at most 2e-2.  An indexing or wiring bug moves most elements. */
static void close_grads(const char *what, const float *d, const float *c, size_t n)
{
	float *g = download(d, n);
	struct dist s = distance(g, c, NULL, n, loose(1e-3));
	printf("# %s: relative L2 distance %.3g, %.4f %% out of the elementwise tolerance\n", what,
	       s.rel2, 100 * s.out);
	CHECK(s.out == 0 || (s.rel2 <= 2e-2 * tmul && s.out <= 0.02),
	      "%s: relative L2 distance %.3g (at most 2e-2), %.4f %% of the elements out of the "
	      "elementwise tolerance (at most 2 %%)", what, s.rel2, 100 * s.out);
	free(g);
}

/* Several training steps amplify the backends' rounding differences
 * (1e-7..1e-6 of a value) by however much the training is sensitive to
 * its inputs: a ReLU or a max-pool near-tie flips, batch norm over a few
 * instances divides by a small spread, Adam's first steps move every
 * weight by the learning rate times the sign of its gradient, whatever
 * the gradient's size.  So after the steps the GPU is compared with the
 * CPU on the same scale as the CPU with itself when its initial
 * parameters are perturbed by 1e-6 of their value (PERTURB, times 100 in
 * fast mode): the GPU's relative L2 distance from the CPU may be at most
 * 4 times the perturbed CPU's, plus 1e-4. */
#define PERTURB 1e-6

static void perturb(struct trio *t)
{
	struct rng r;
	rng_seed(&r, 77, 7);
	struct nn_module *ms[] = {&t->enc, &t->bag, &t->student};
	for (int k = 0; k < 3; k++) {
		float *w = trio_get(t, ms[k]->w, ms[k]->nparams);
		for (size_t i = 0; i < ms[k]->nparams; i++)
			w[i] *= (float)(1.0 + PERTURB * tmul * (2.0 * rng_float(&r) - 1.0));
		t->be->upload(ms[k]->w, w, ms[k]->nparams);
		free(w);
	}
}

static void calibrated(const char *what, const float *gd, const float *cd, const float *pd,
                       const struct trio *b, const float *base, size_t n)
{
	float *g = download(gd, n), *c = trio_get(b, cd, n), *p = trio_get(b, pd, n);
	struct dist dg = distance(g, c, base, n, loose(1e-2)), dp = distance(p, c, base, n, loose(1e-2));
	double lim = 4 * dp.rel2 + 1e-4 * tmul;
	printf("# %s: relative L2 distance from the CPU %.3g (perturbed CPU %.3g, limit %.3g), %.4f %% "
	       "out of the elementwise tolerance (perturbed CPU %.4f %%)\n", what, dg.rel2, dp.rel2, lim,
	       100 * dg.out, 100 * dp.out);
	CHECK(dg.rel2 <= lim, "%s: relative L2 distance from the CPU %.3g, over 4 x the perturbed CPU's "
	      "%.3g + 1e-4", what, dg.rel2, dp.rel2);
	free(g), free(c), free(p);
}

/* module ma of the GPU's trio against mb of the CPU's b and mp of the
 * perturbed CPU's: the change of the parameters since w0 (host copy of the
 * common initial values), the running statistics */
static void compare_module(const char *what, const struct nn_module *ma, const struct trio *b,
                           const struct nn_module *mb, const struct nn_module *mp, const float *w0)
{
	char w2[160];
	snprintf(w2, sizeof w2, "%s parameters (change since init)", what);
	calibrated(w2, ma->w, mb->w, mp->w, b, w0, mb->nparams);
	if (mb->nstate) {
		snprintf(w2, sizeof w2, "%s BN running statistics", what);
		calibrated(w2, ma->state, mb->state, mp->state, b, NULL, mb->nstate);
	}
}

static void module_case(const struct trio_conf *k)
{
	struct err e = {0};
	struct trio g, c, p;
	char what[160];
	REQUIRE(trio_create(&g, gpu, k, &e) == 0, "%s on the GPU: %s", k->name, e.msg);
	REQUIRE(trio_create(&c, cpu, k, &e) == 0, "%s on the CPU: %s", k->name, e.msg);
	/* the same initial parameters on both */
	float *w0e = trio_get(&c, c.enc.w, c.enc.nparams);
	float *w0b = trio_get(&c, c.bag.w, c.bag.nparams);
	float *w0s = trio_get(&c, c.student.w, c.student.nparams);
	snprintf(what, sizeof what, "%s: initial encoder parameters", k->name);
	same_bits(what, g.enc.w, w0e, c.enc.nparams);

	/* one teacher forward/backward: logits, loss, gradients */
	REQUIRE(trio_run(&g, k, 1, 1, &e) == 0, "%s GPU step: %s", k->name, e.msg);
	REQUIRE(trio_run(&c, k, 1, 1, &e) == 0, "%s CPU step: %s", k->name, e.msg);
	snprintf(what, sizeof what, "%s: bag logits", k->name);
	close_to(what, g.bag.logits, c.bag.logits, NULL, 2, loose(1e-4));
	CHECK(check_close(g.losses[0], c.losses[0], 0, 1e-4 * tmul), "%s: bag loss gpu %.9g cpu %.9g",
	      k->name, g.losses[0], c.losses[0]);
	float *cg = trio_get(&c, c.enc.g, c.enc.nparams);
	snprintf(what, sizeof what, "%s: encoder gradients", k->name);
	close_grads(what, g.enc.g, cg, c.enc.nparams);
	free(cg);
	cg = trio_get(&c, c.bag.g, c.bag.nparams);
	snprintf(what, sizeof what, "%s: %s gradients", k->name, nn_module_kind_name(k->bag_head));
	close_grads(what, g.bag.g, cg, c.bag.nparams);
	free(cg);
	trio_free(&g), trio_free(&c);

	/* three full steps (teacher + student) from the start, and the CPU
	 * from a perturbed start for the scale */
	REQUIRE(trio_create(&g, gpu, k, &e) == 0, "%s on the GPU: %s", k->name, e.msg);
	REQUIRE(trio_create(&c, cpu, k, &e) == 0, "%s on the CPU: %s", k->name, e.msg);
	REQUIRE(trio_create(&p, cpu, k, &e) == 0, "%s on the CPU: %s", k->name, e.msg);
	perturb(&p);
	REQUIRE(trio_run(&g, k, 3, 0, &e) == 0, "%s GPU steps: %s", k->name, e.msg);
	REQUIRE(trio_run(&c, k, 3, 0, &e) == 0, "%s CPU steps: %s", k->name, e.msg);
	REQUIRE(trio_run(&p, k, 3, 0, &e) == 0, "%s perturbed CPU steps: %s", k->name, e.msg);
	/* the losses: the largest difference over the steps, on the same scale */
	double dg = 0, dp = 0;
	int worst = 0;
	for (int i = 0; i < c.nloss; i++) {
		double a = fabs(g.losses[i] - c.losses[i]) / (1 + fabs(c.losses[i]));
		double b = fabs(p.losses[i] - c.losses[i]) / (1 + fabs(c.losses[i]));
		worst = a > dg ? i : worst;
		dg = a > dg ? a : dg;
		dp = b > dp ? b : dp;
	}
	printf("# %s, 3 steps: losses at most %.3g from the CPU's (perturbed CPU %.3g), relative to 1 + "
	       "|loss|\n", k->name, dg, dp);
	CHECK(dg <= 4 * dp + 1e-5 * tmul, "%s: loss %d gpu %.9g cpu %.9g: %.3g from the CPU, over 4 x "
	      "the perturbed CPU's largest %.3g + 1e-5", k->name, worst, g.losses[worst], c.losses[worst],
	      dg, dp);
	snprintf(what, sizeof what, "%s, 3 steps: encoder", k->name);
	compare_module(what, &g.enc, &c, &c.enc, &p.enc, w0e);
	snprintf(what, sizeof what, "%s, 3 steps: %s", k->name, nn_module_kind_name(k->bag_head));
	compare_module(what, &g.bag, &c, &c.bag, &p.bag, w0b);
	snprintf(what, sizeof what, "%s, 3 steps: student", k->name);
	compare_module(what, &g.student, &c, &c.student, &p.student, w0s);
	trio_free(&g), trio_free(&c), trio_free(&p);
	free(w0e), free(w0b), free(w0s);
}

static const struct trio_conf confs[] = {
	{NN_ENC_FMNIST, 1, 28, 28, NN_HEAD_ABMIL, 12, 16, NN_OPTIM_SGD, "fmnist+abmil+student sgd"},
	{NN_ENC_FMNIST, 1, 28, 28, NN_HEAD_ABMIL, 100, 64, NN_OPTIM_ADAM,
	 "fmnist+abmil+student adam (bag 100)"},
	{NN_ENC_FMNIST, 1, 28, 28, NN_HEAD_DSMIL, 10, 16, NN_OPTIM_SGD, "fmnist+dsmil+student sgd"},
	{NN_ENC_MLP, 64, 1, 1, NN_HEAD_ABMIL, 30, 32, NN_OPTIM_SGD, "mlp+abmil+student sgd"},
	{NN_ENC_RESNET18, 3, 32, 32, NN_HEAD_ABMIL, 4, 4, NN_OPTIM_SGD,
	 "resnet18(32x32)+abmil+student sgd"},
};

static void test_cuda_modules(void)
{
	NEED_GPU();
	for (size_t i = 0; i < sizeof confs / sizeof confs[0]; i++)
		module_case(&confs[i]);
	GPU_OK();
}

/* ---------------- determinism ---------------- */

static void same_module(const char *what, const struct nn_module *ma, const struct trio *b,
                        const struct nn_module *mb)
{
	char w2[160];
	float *hb = trio_get(b, mb->w, mb->nparams);
	snprintf(w2, sizeof w2, "%s parameters", what);
	same_bits(w2, ma->w, hb, mb->nparams);
	free(hb);
	if (mb->nstate) {
		hb = trio_get(b, mb->state, mb->nstate);
		snprintf(w2, sizeof w2, "%s running statistics", what);
		same_bits(w2, ma->state, hb, mb->nstate);
		free(hb);
	}
}

static void determinism_case(const struct trio_conf *k, int steps)
{
	struct err e = {0};
	struct trio a, b;
	char what[160];
	REQUIRE(trio_create(&a, gpu, k, &e) == 0, "%s: %s", k->name, e.msg);
	REQUIRE(trio_run(&a, k, steps, 0, &e) == 0, "%s: %s", k->name, e.msg);
	REQUIRE(trio_create(&b, gpu, k, &e) == 0, "%s: %s", k->name, e.msg);
	REQUIRE(trio_run(&b, k, steps, 0, &e) == 0, "%s: %s", k->name, e.msg);
	for (int i = 0; i < a.nloss; i++)
		CHECK(a.losses[i] == b.losses[i], "%s: loss %d differs run to run: %.17g %.17g",
		      k->name, i, a.losses[i], b.losses[i]);
	snprintf(what, sizeof what, "%s run twice: encoder", k->name);
	same_module(what, &a.enc, &b, &b.enc);
	snprintf(what, sizeof what, "%s run twice: bag head", k->name);
	same_module(what, &a.bag, &b, &b.bag);
	snprintf(what, sizeof what, "%s run twice: student", k->name);
	same_module(what, &a.student, &b, &b.student);
	float *m = trio_get(&b, b.oe.m, b.oe.n);
	snprintf(what, sizeof what, "%s run twice: encoder optimizer moments", k->name);
	same_bits(what, a.oe.m, m, b.oe.n);
	free(m);
	trio_free(&a), trio_free(&b);
}

static void test_cuda_deterministic(void)
{
	NEED_GPU();
	determinism_case(&confs[0], 5);
	determinism_case(&confs[1], 3);
	determinism_case(&confs[2], 3);
	determinism_case(&confs[4], 3);
	GPU_OK();
}

/* ---------------- graphs ---------------- */

/* Makes the backend's scratch move: overlapping copies (which go through
 * it) of doubling sizes until a graph recorded before is stale.  0 when it
 * moved, with the size of the copy that moved it in *moved (floats; NULL:
 * not wanted). */
static int move_scratch(size_t *moved)
{
	float *p = dbuf(NULL, 1);
	if (gpu->graph_begin() < 0) {
		gpu->free_(p);
		return -1;
	}
	gpu->scale(p, 1.0f, 1);
	void *probe = gpu->graph_end();
	int rc = -1;
	for (size_t n = (size_t)1 << 20; probe && n <= (size_t)1 << 28; n *= 2) {
		float *b = dbuf(NULL, n + 1);
		gpu->copy(b + 1, b, n);
		gpu->free_(b);
		if (gpu->graph_launch(probe) < 0) {
			rc = 0;
			if (moved)
				*moved = n;
			break;
		}
	}
	gpu->graph_free(probe);
	gpu->free_(p);
	return rc;
}

/* the two trios alike: losses, parameters, running statistics */
static void same_trios(const char *when, const struct trio_conf *k, const struct trio *a,
                       const struct trio *b)
{
	char what[200];
	for (int i = 0; i < a->nloss; i++)
		CHECK(a->losses[i] == b->losses[i], "%s %s: loss %d with graphs %.17g, without %.17g",
		      k->name, when, i, a->losses[i], b->losses[i]);
	snprintf(what, sizeof what, "%s %s, graphs against none: encoder", k->name, when);
	same_module(what, &a->enc, b, &b->enc);
	snprintf(what, sizeof what, "%s %s, graphs against none: bag head", k->name, when);
	same_module(what, &a->bag, b, &b->bag);
	snprintf(what, sizeof what, "%s %s, graphs against none: student", k->name, when);
	same_module(what, &a->student, b, &b->student);
}

/* the two trios' next count steps, each from its own copy of the streams */
struct pair {
	struct trio a, b;
	struct rng da, pa, db, pb;
	int s;
};

static void pair_steps(struct pair *p, const struct trio_conf *k, int count)
{
	struct err e = {0};
	for (int i = 0; i < count; i++, p->s++) {
		REQUIRE(trio_step(&p->a, k, &p->da, &p->pa, p->s, 0, &e) == 0, "%s: %s", k->name, e.msg);
		REQUIRE(trio_step(&p->b, k, &p->db, &p->pb, p->s, 0, &e) == 0, "%s: %s", k->name, e.msg);
	}
}

/* the student head without dropout (weno-fit's default), as a graph
 * records it: the same initialisation on both trios */
static void student_without_dropout(struct trio *t)
{
	struct err e = {0};
	struct rng g;
	rng_seed(&g, 43, 0);
	nn_module_free(&t->student);
	REQUIRE(nn_head_create(&t->student, t->be, NN_HEAD_STUDENT, t->enc.out_dim, 0.0f, 16, &e) ==
	        0, "%s", e.msg);
	nn_module_init(&t->student, &g);
}

/* the passes a trio's step asks for: the encoder's four (bag and batch,
 * forward and backward), the ABMIL head's two and the student's two (the
 * heads': as many recorded and replayed) */
static void graph_counts(const char *when, const struct trio_conf *k, const struct trio *t,
                         long enc_rec, long enc_runs, long h_rec, long h_runs)
{
	printf("# %s%s: encoder %ld passes replayed, %ld recorded; ABMIL %ld, %ld; student %ld, "
	       "%ld\n", k->name, when, t->enc.graph_runs, t->enc.graph_records, t->bag.graph_runs,
	       t->bag.graph_records, t->student.graph_runs, t->student.graph_records);
	CHECK(t->enc.graph_records == enc_rec && t->enc.graph_runs == enc_runs &&
	      t->bag.graph_records == h_rec && t->bag.graph_runs == h_runs &&
	      t->student.graph_records == h_rec && t->student.graph_runs == h_runs,
	      "%s%s: encoder %ld passes recorded (%ld expected), %ld replayed (%ld); ABMIL %ld, %ld; "
	      "student %ld, %ld (%ld, %ld expected); see stderr for why graphs are off", k->name,
	      when, t->enc.graph_records, enc_rec, t->enc.graph_runs, enc_runs, t->bag.graph_records,
	      t->bag.graph_runs, t->student.graph_records, t->student.graph_runs, h_rec, h_runs);
}

/* The passes of the encoder, the ABMIL head (dropout 0.5: its masks drawn
 * from generators the host writes before each replay) and the student head
 * (without dropout) recorded and replayed (nn.h graph_begin, net.c
 * "recorded passes") against the same steps op by op: bit-identical, as
 * the same kernels run with the same arguments.  A step asks for eight
 * passes, each recorded the second time it is seen and replayed from then
 * on.  Then the backend's
 * scratch moves (move_scratch): every graph is stale and recorded again.
 * Then the encoder's arenas move (a larger capacity): its table is cleared
 * and its passes recorded anew, and the heads', whose input moved with
 * them, are new passes.  (resnet18 is left out for time:
 * test_cuda_modules and test_cuda_deterministic replay its passes.) */
static void graphs_case(const struct trio_conf *k, int steps)
{
	struct err e = {0};
	struct pair p = {0};
	REQUIRE(trio_create(&p.a, gpu, k, &e) == 0, "%s: %s", k->name, e.msg);
	REQUIRE(trio_create(&p.b, gpu, k, &e) == 0, "%s: %s", k->name, e.msg);
	student_without_dropout(&p.a);
	student_without_dropout(&p.b);
	p.b.enc.no_graphs = p.b.bag.no_graphs = p.b.student.no_graphs = 1;
	rng_seed(&p.da, 7, 1), rng_seed(&p.pa, 8, 2), rng_seed(&p.db, 7, 1), rng_seed(&p.pb, 8, 2);
	pair_steps(&p, k, steps);
	same_trios("", k, &p.a, &p.b);
	const char *env = getenv("WENO_CUDA_GRAPHS");
	int want = gpu->graph_begin && !(env && !strcmp(env, "0"));
	CHECK(p.b.enc.graph_runs == 0 && p.b.bag.graph_runs == 0 && p.b.student.graph_runs == 0,
	      "no_graphs: %ld, %ld, %ld passes replayed", p.b.enc.graph_runs, p.b.bag.graph_runs,
	      p.b.student.graph_runs);
	if (want)
		graph_counts("", k, &p.a, 4, 4L * (steps - 1), 2, 2L * (steps - 1));

	/* the scratch moves */
	if (want)
		REQUIRE(move_scratch(NULL) == 0, "the backend's scratch did not move");
	pair_steps(&p, k, 2);
	same_trios("after the scratch moved", k, &p.a, &p.b);
	if (want) /* every pass recorded again */
		graph_counts(" after the scratch moved", k, &p.a, 8, 4L * (steps + 1), 4,
		             2L * (steps + 1));

	/* the arenas move */
	REQUIRE(nn_module_reserve(&p.a.enc, 2 * p.a.enc.cap, &e) == 0, "%s", e.msg);
	REQUIRE(nn_module_reserve(&p.b.enc, 2 * p.b.enc.cap, &e) == 0, "%s", e.msg);
	pair_steps(&p, k, 3);
	same_trios("after the arenas moved", k, &p.a, &p.b);
	if (want) /* seen once, then recorded and replayed */
		graph_counts(" after the arenas moved", k, &p.a, 12, 4L * (steps + 3), 6,
		             2L * (steps + 3));
	trio_free(&p.a), trio_free(&p.b);
}

static void test_cuda_graphs(void)
{
	NEED_GPU();
	graphs_case(&confs[0], 4);
	graphs_case(&confs[3], 4);
	GPU_OK();
}

/* nn.h's graph calls themselves: a recording runs nothing until launched,
 * and each launch runs it once more; a download inside one spoils it (no
 * graph, nothing ran, no error); a scratch that would have to grow spoils
 * it, grows after, and a second recording succeeds, while graphs recorded
 * before the growth are stale (-1) */
static void test_cuda_graph_calls(void)
{
	NEED_GPU();
	if (!gpu->graph_begin)
		SKIP("this backend records no graphs");
	const char *env = getenv("WENO_CUDA_GRAPHS");
	if (env && !strcmp(env, "0")) {
		CHECK(gpu->graph_begin() < 0, "WENO_CUDA_GRAPHS=0: graph_begin did not refuse");
		return;
	}
	size_t n = 1000;
	float *x = hbuf(n), *w = hbuf(n);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)i - 300.0f;
	float *d = dbuf(x, n);
	REQUIRE(gpu->graph_begin() == 0, "graph_begin refused");
	CHECK(gpu->graph_begin() < 0, "a second graph_begin inside a recording was not refused");
	gpu->scale(d, 2.0f, n);
	gpu->relu_forward(d, d, n);
	void *g = gpu->graph_end();
	REQUIRE(g, "a recording of scale and relu gave no graph");
	same_bits("after recording (nothing ran)", d, x, n);
	for (int k = 1; k <= 2; k++) {
		CHECK(gpu->graph_launch(g) == 0, "launch %d refused", k);
		for (size_t i = 0; i < n; i++)
			x[i] = x[i] * 2.0f > 0.0f ? x[i] * 2.0f : 0.0f;
		same_bits(k == 1 ? "after one launch" : "after two launches", d, x, n);
	}

	/* a download inside: spoiled */
	REQUIRE(gpu->graph_begin() == 0, "graph_begin refused");
	gpu->scale(d, 3.0f, n);
	gpu->download(w, d, n);
	gpu->scale(d, 3.0f, n);
	CHECK(gpu->graph_end() == NULL, "a recording with a download gave a graph");
	same_bits("after a spoiled recording (nothing ran)", d, x, n);
	GPU_OK();

	/* the scratch moves: the graph is stale; then a recording whose
	 * scratch must grow (a copy larger than it) is spoiled, and the next
	 * one succeeds */
	size_t moved = 0;
	REQUIRE(move_scratch(&moved) == 0, "the backend's scratch did not move");
	CHECK(gpu->graph_launch(g) < 0, "a graph recorded before the scratch moved was not stale");
	size_t big = 2 * moved; /* more than the scratch (1.5 times the copy) */
	float *b = dbuf(NULL, big + 1);
	REQUIRE(gpu->graph_begin() == 0, "graph_begin refused");
	gpu->copy(b + 1, b, big);
	CHECK(gpu->graph_end() == NULL, "a recording whose scratch had to grow gave a graph");
	REQUIRE(gpu->graph_begin() == 0, "graph_begin refused");
	gpu->copy(b + 1, b, big);
	void *g2 = gpu->graph_end();
	CHECK(g2 != NULL, "the second recording, after the scratch grew, gave no graph");
	CHECK(g2 && gpu->graph_launch(g2) == 0, "the new graph did not launch");
	gpu->graph_free(g), gpu->graph_free(g2), gpu->graph_free(NULL);
	gpu->free_(b), gpu->free_(d);
	free(x), free(w);
	GPU_OK();
}

/* A library call that fails inside a recording (here cuDNN refusing a
 * shape) does not set the sticky error: graphs go off for the run, with a
 * note, and the op, run again outside, fails there.  Last but one: it
 * turns graphs off. */
static void test_cuda_graph_refused(void)
{
	NEED_GPU();
	if (!gpu->graph_begin)
		SKIP("this backend records no graphs");
	float *d = dbuf(NULL, 64);
	if (gpu->graph_begin() < 0) {
		gpu->free_(d);
		SKIP("graphs are off");
	}
	struct nn_conv_shape s = {.N = 1, .C = 1, .H = 4, .W = 4, .OC = 1, .OH = 9, .OW = 9, .KH = 3,
	                          .KW = 3, .SH = 1, .SW = 1, .PH = 0, .PW = 0};
	printf("# a note that graphs are off follows; it is expected\n");
	fflush(stdout);
	gpu->conv2d_forward(d, NULL, d, d, NULL, &s);
	CHECK(gpu->graph_end() == NULL, "a recording with a refused convolution gave a graph");
	GPU_OK();
	CHECK(gpu->graph_begin() < 0, "graphs are still on after a refused recording");
	gpu->free_(d);
	GPU_OK();
}

/* ---------------- the sticky error (last: it disables the backend) ---------------- */

static void test_cuda_sticky_error(void)
{
	NEED_GPU();
	float *d = dbuf(NULL, 64);
	/* a shape whose OH/OW disagree with the geometry: cuDNN refuses it */
	struct nn_conv_shape s = {.N = 1, .C = 1, .H = 4, .W = 4, .OC = 1, .OH = 9, .OW = 9, .KH = 3,
	                          .KW = 3, .SH = 1, .SW = 1, .PH = 0, .PW = 0};
	printf("# an error message from the CUDA backend follows; it is expected\n");
	fflush(stdout);
	gpu->conv2d_forward(d, NULL, d, d, NULL, &s);
	char msg[512];
	CHECK(nn_cuda_error(msg, sizeof msg) && strstr(msg, "conv"),
	      "a bad convolution shape did not set the sticky error ('%s')", msg);
	float h[4] = {1, 2, 3, 4};
	gpu->download(h, d, 4);
	CHECK(isnan(h[0]) && isnan(h[3]), "downloads after an error must be NaN, got %g", h[0]);
	double l = gpu->loss_bce2(d, d, d, 1, 1e-5f);
	CHECK(isnan(l), "losses after an error must be NaN, got %g", l);
}

int main(void)
{
	gpu = nn_backend_get("cuda");
	if (!gpu)
		nn_cuda_available(no_gpu, sizeof no_gpu);
	const char *fast = getenv("WENO_CUDA_FAST");
	if (fast && !strcmp(fast, "1"))
		tmul = 100.0;
	RUN(test_cuda_selection);
	RUN(test_cuda_memory);
	RUN(test_cuda_linear);
	RUN(test_cuda_conv2d);
	RUN(test_cuda_batchnorm);
	RUN(test_cuda_elementwise);
	RUN(test_cuda_dropout);
	RUN(test_cuda_pooling);
	RUN(test_cuda_softmax_wsum);
	RUN(test_cuda_abmil_attn);
	RUN(test_cuda_losses);
	RUN(test_cuda_optim);
	RUN(test_cuda_modules);
	RUN(test_cuda_deterministic);
	RUN(test_cuda_graph_calls);
	RUN(test_cuda_graphs);
	RUN(test_cuda_graph_refused);
	RUN(test_cuda_sticky_error);
	return check_summary();
}
