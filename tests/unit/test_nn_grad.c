/* test_nn_grad.c - every backward of the CPU backend, and every module,
 * against central finite differences evaluated in double.
 *
 * Ops: L = sum_i r_i out_i (r a fixed random projection) accumulated in
 * double; losses: L is the loss.  Inputs of non-smooth ops (ReLU, max-pool)
 * are drawn away from their kinks and ties.
 * Tolerances (see gradcheck.h): ops h = 1e-3, atol 1e-3 (x max |grad|),
 * rtol 1e-2, one step size; modules h = 1e-2 (conv encoders) or 3e-3 with
 * retries at h/4 and h/16, atol 2e-3 (x max |grad|), rtol 3e-2, float noise
 * 2e-6 relative, on 6 sampled elements per tensor (always including the
 * largest gradient).
 */
#include <stdint.h>

#include "check.h"
#include "gradcheck.h"

#include "../../lib/nn/net.h"
#include "../../lib/nn/nn.h"

static const struct nn_backend *be = &nn_cpu;
static const struct gopts op_opts = {.h = 1e-3, .atol = 1e-3, .rtol = 1e-2, .max_samples = 80};

static void fill(float *x, size_t n, struct rng *r, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = lo + (hi - lo) * rng_float(r);
}

/* values with |x| >= 0.05 and random sign */
static void fill_away(float *x, size_t n, struct rng *r)
{
	for (size_t i = 0; i < n; i++) {
		float v = 0.05f + rng_float(r);
		x[i] = rng_float(r) < 0.5f ? -v : v;
	}
}

/* a shuffled grid of distinct values, spaced 0.01 apart (no pooling ties) */
static void fill_distinct(float *x, size_t n, struct rng *r)
{
	uint32_t *p = malloc(n * sizeof *p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint32_t)i;
	rng_shuffle(r, p, n);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)p[i] * 0.01f - 0.3f;
	free(p);
}

static double dot(const float *a, const float *b, size_t n)
{
	double s = 0.0;
	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* ---------------- one generic context for ops ---------------- */

struct opctx {
	int op;
	float *x, *y, *w, *b;           /* inputs */
	float *dx, *dy, *dw, *db;
	float *out, *r, *scratch, *mask, *mean, *rstd, *rm, *rv;
	int N, C, OC, HW, train, relu, outer, dim, inner, K;
	size_t nout;
	struct nn_conv_shape s;
};

enum { OP_LINEAR, OP_CONV, OP_BN, OP_RELU, OP_TANH, OP_ADD, OP_DROPOUT, OP_MAXPOOL, OP_AVGPOOL,
       OP_SOFTMAX, OP_WSUM, OP_SCALE };

static void op_forward(struct opctx *c)
{
	switch (c->op) {
	case OP_LINEAR:
		be->linear_forward(c->out, c->x, c->w, c->b, c->N, c->C, c->OC);
		break;
	case OP_CONV:
		be->conv2d_forward(c->out, c->scratch, c->x, c->w, c->b, &c->s);
		break;
	case OP_BN:
		/* running stats are not under test here: use copies */
		be->batchnorm_forward(c->out, c->mean, c->rstd, c->rm, c->rv, c->x, c->w, c->b, c->N,
		                      c->C, c->HW, c->train, 0.1f, 1e-5f, c->relu);
		break;
	case OP_RELU:
		be->relu_forward(c->out, c->x, c->nout);
		break;
	case OP_TANH:
		be->tanh_forward(c->out, c->x, c->nout);
		break;
	case OP_ADD:
		be->add_forward(c->out, c->x, c->y, c->nout);
		break;
	case OP_DROPOUT: {
		struct rng r;
		rng_seed(&r, 99, 1);
		be->dropout_forward(c->out, c->mask, c->x, c->nout, 0.4f, &r);
		break;
	}
	case OP_MAXPOOL:
		be->maxpool_forward(c->out, (int32_t *)c->mask, c->x, &c->s);
		break;
	case OP_AVGPOOL:
		be->avgpool_forward(c->out, c->x, c->N, c->C, c->HW);
		break;
	case OP_SOFTMAX:
		be->softmax_forward(c->out, c->x, c->outer, c->dim, c->inner);
		break;
	case OP_WSUM:
		be->wsum_forward(c->out, c->x, c->y, c->N, c->K, c->C);
		break;
	case OP_SCALE:
		be->copy(c->out, c->x, c->nout);
		be->scale(c->out, -1.7f, c->nout);
		break;
	}
}

static double op_loss(void *p)
{
	struct opctx *c = p;
	op_forward(c);
	return dot(c->out, c->r, c->nout);
}

static void op_grad(void *p)
{
	struct opctx *c = p;
	op_forward(c);
	const float *d = c->r;
	switch (c->op) {
	case OP_LINEAR:
		be->linear_backward(c->dx, c->dw, c->db, d, c->x, c->w, c->N, c->C, c->OC);
		break;
	case OP_CONV:
		be->conv2d_backward(c->dx, c->dw, c->db, c->scratch, d, c->x, c->w, &c->s);
		break;
	case OP_BN:
		be->batchnorm_backward(c->dx, c->dw, c->db, d, c->x, c->mean, c->rstd, c->w, c->b,
		                       c->N, c->C, c->HW, c->train, c->relu);
		break;
	case OP_RELU:
		be->relu_backward(c->dx, d, c->out, c->nout);
		break;
	case OP_TANH:
		be->tanh_backward(c->dx, d, c->out, c->nout);
		break;
	case OP_ADD:
		be->add_backward(c->dx, c->dy, d, c->nout);
		break;
	case OP_DROPOUT:
		be->dropout_backward(c->dx, d, c->mask, c->nout);
		break;
	case OP_MAXPOOL:
		be->maxpool_backward(c->dx, d, (const int32_t *)c->mask, &c->s);
		break;
	case OP_AVGPOOL:
		be->avgpool_backward(c->dx, d, c->N, c->C, c->HW);
		break;
	case OP_SOFTMAX:
		be->softmax_backward(c->dx, d, c->out, c->outer, c->dim, c->inner);
		break;
	case OP_WSUM:
		be->wsum_backward(c->dx, c->dy, d, c->x, c->y, c->N, c->K, c->C);
		break;
	case OP_SCALE:
		be->add_backward(c->dx, NULL, d, c->nout);
		be->scale(c->dx, -1.7f, c->nout);
		break;
	}
}

static float *fbuf(size_t n)
{
	return calloc(n ? n : 1, sizeof(float));
}

static void ctx_free(struct opctx *c)
{
	float *p[] = {c->x, c->y, c->w, c->b, c->dx, c->dy, c->dw, c->db, c->out, c->r,
	              c->scratch, c->mask, c->mean, c->rstd, c->rm, c->rv};
	for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
		free(p[i]);
}

static int run_op(struct opctx *c, struct gvar *v, int nv, const char *what, int corrupt)
{
	struct rng r;
	rng_seed(&r, 1234, 5);
	c->r = fbuf(c->nout);
	fill(c->r, c->nout, &r, -1.0f, 1.0f);
	struct gopts o = op_opts;
	o.corrupt = corrupt;
	return gradcheck(what, op_loss, op_grad, c, v, nv, &o);
}

/* ---------------- op cases ---------------- */

static int check_linear(int corrupt)
{
	struct opctx c = {.op = OP_LINEAR, .N = 3, .C = 5, .OC = 4};
	struct rng r;
	rng_seed(&r, 1, 1);
	c.x = fbuf(15), c.w = fbuf(20), c.b = fbuf(4), c.dx = fbuf(15), c.dw = fbuf(20);
	c.db = fbuf(4), c.out = fbuf(12), c.nout = 12;
	fill(c.x, 15, &r, -1, 1), fill(c.w, 20, &r, -1, 1), fill(c.b, 4, &r, -1, 1);
	struct gvar v[] = {{"inp", c.x, c.dx, 15}, {"weight", c.w, c.dw, 20}, {"bias", c.b, c.db, 4}};
	int bad = run_op(&c, v, 3, "linear", corrupt);
	ctx_free(&c);
	return bad;
}

static void test_grad_linear(void)
{
	int bad = check_linear(0);
	CHECK(bad == 0, "%d mismatches", bad);
}

static void test_gradcheck_detects_wrong_gradient(void)
{
	int bad = check_linear(1);
	CHECK(bad > 0, "a gradient off by 10%% was not detected");
}

static int check_conv(int N, int C, int H, int W, int OC, int K, int S, int P, int bias)
{
	struct opctx c = {.op = OP_CONV};
	c.s = (struct nn_conv_shape){.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = K, .KW = K,
	                             .SH = S, .SW = S, .PH = P, .PW = P};
	nn_conv_shape_finish(&c.s);
	size_t nx = (size_t)N * C * H * W, nw = (size_t)OC * C * K * K;
	c.nout = (size_t)N * OC * c.s.OH * c.s.OW;
	struct rng r;
	rng_seed(&r, 2, 1);
	c.x = fbuf(nx), c.dx = fbuf(nx), c.w = fbuf(nw), c.dw = fbuf(nw);
	c.b = bias ? fbuf(OC) : NULL, c.db = bias ? fbuf(OC) : NULL;
	c.out = fbuf(c.nout), c.scratch = fbuf(nn_conv2d_scratch_floats(&c.s));
	fill(c.x, nx, &r, -1, 1), fill(c.w, nw, &r, -1, 1);
	if (bias)
		fill(c.b, OC, &r, -1, 1);
	struct gvar v[] = {{"inp", c.x, c.dx, nx}, {"weight", c.w, c.dw, nw}, {"bias", c.b, c.db, OC}};
	char what[96];
	snprintf(what, sizeof what, "conv N%d C%d %dx%d OC%d K%d S%d P%d", N, C, H, W, OC, K, S, P);
	int bad = run_op(&c, v, bias ? 3 : 2, what, 0);
	ctx_free(&c);
	return bad;
}

static void test_grad_conv2d(void)
{
	int bad = 0;
	bad += check_conv(2, 3, 7, 6, 4, 3, 1, 1, 1);   /* 3x3 pad 1 */
	bad += check_conv(2, 2, 10, 10, 3, 6, 2, 2, 1); /* fmnist's first layer */
	bad += check_conv(2, 3, 9, 9, 2, 7, 2, 3, 0);   /* resnet stem */
	bad += check_conv(2, 3, 5, 5, 4, 1, 2, 0, 0);   /* downsample 1x1 stride 2 */
	bad += check_conv(1, 4, 3, 3, 2, 1, 1, 0, 1);   /* 1x1 single image */
	bad += check_conv(3, 2, 6, 6, 3, 3, 1, 0, 1);   /* no padding */
	CHECK(bad == 0, "%d mismatches", bad);
}

static int check_bn(int N, int C, int HW, int train, int relu)
{
	struct opctx c = {.op = OP_BN, .N = N, .C = C, .HW = HW, .train = train, .relu = relu};
	size_t n = (size_t)N * C * HW;
	struct rng r;
	rng_seed(&r, 3, 1);
	c.x = fbuf(n), c.dx = fbuf(n), c.w = fbuf(C), c.dw = fbuf(C), c.b = fbuf(C), c.db = fbuf(C);
	c.out = fbuf(n), c.nout = n, c.mean = fbuf(C), c.rstd = fbuf(C), c.rm = fbuf(C);
	c.rv = fbuf(C);
	fill(c.x, n, &r, -2, 2), fill(c.w, C, &r, 0.5f, 1.5f), fill(c.b, C, &r, -1, 1);
	fill(c.rm, C, &r, -0.5f, 0.5f), fill(c.rv, C, &r, 0.5f, 2.0f);
	if (train) { /* no running stats: forward must not drift under repetition */
		free(c.rm), free(c.rv);
		c.rm = c.rv = NULL;
	}
	struct gvar v[] = {{"inp", c.x, c.dx, n}, {"gamma", c.w, c.dw, C}, {"beta", c.b, c.db, C}};
	char what[64];
	snprintf(what, sizeof what, "batchnorm N%d C%d HW%d %s%s", N, C, HW, train ? "train" : "eval",
	         relu ? " +relu" : "");
	int bad = run_op(&c, v, 3, what, 0);
	ctx_free(&c);
	return bad;
}

static void test_grad_batchnorm(void)
{
	int bad = check_bn(3, 4, 5, 1, 0) + check_bn(6, 3, 1, 1, 0) + check_bn(2, 3, 4, 0, 0) +
	          check_bn(4, 2, 1, 0, 0) + check_bn(3, 4, 5, 1, 1) + check_bn(2, 3, 4, 0, 1);
	CHECK(bad == 0, "%d mismatches", bad);
}

/* BatchNorm with the ReLU fused gives exactly what BatchNorm then ReLU give,
 * forward and backward (gradients accumulate into non-zero buffers), in
 * training and evaluation mode, on shapes with HW 1, odd and large */
static int bn_relu_case(int N, int C, int HW, int train)
{
	size_t n = (size_t)N * C * HW;
	struct rng r;
	rng_seed(&r, 77, (uint64_t)(N * 131 + C * 7 + HW));
	float *x = fbuf(n), *dy = fbuf(n), *g = fbuf(C), *b = fbuf(C), *y1 = fbuf(n), *y2 = fbuf(n),
	      *y0 = fbuf(n), *d0 = fbuf(n), *dx1 = fbuf(n), *dx2 = fbuf(n), *m1 = fbuf(C),
	      *s1 = fbuf(C), *m2 = fbuf(C), *s2 = fbuf(C), *rm = fbuf(C), *rv = fbuf(C),
	      *rm2 = fbuf(C), *rv2 = fbuf(C), *dg1 = fbuf(C), *dg2 = fbuf(C), *db1 = fbuf(C),
	      *db2 = fbuf(C);
	fill(x, n, &r, -3, 3), fill(dy, n, &r, -1, 1), fill(g, C, &r, 0.5f, 1.5f);
	fill(b, C, &r, -0.5f, 0.5f), fill(rm, C, &r, -0.5f, 0.5f), fill(rv, C, &r, 0.5f, 2);
	fill(dx1, n, &r, -1, 1), fill(dg1, C, &r, -1, 1), fill(db1, C, &r, -1, 1);
	memcpy(rm2, rm, C * sizeof *rm), memcpy(rv2, rv, C * sizeof *rv);
	memcpy(dx2, dx1, n * sizeof *dx1), memcpy(dg2, dg1, C * sizeof *dg1);
	memcpy(db2, db1, C * sizeof *db1);
	/* fused */
	be->batchnorm_forward(y1, m1, s1, rm, rv, x, g, b, N, C, HW, train, 0.1f, 1e-5f, 1);
	be->batchnorm_backward(dx1, dg1, db1, dy, x, m1, s1, g, b, N, C, HW, train, 1);
	/* BN, then ReLU */
	be->batchnorm_forward(y0, m2, s2, rm2, rv2, x, g, b, N, C, HW, train, 0.1f, 1e-5f, 0);
	be->relu_forward(y2, y0, n);
	be->relu_backward(d0, dy, y2, n);
	be->batchnorm_backward(dx2, dg2, db2, d0, x, m2, s2, g, b, N, C, HW, train, 0);
	int bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += y1[i] != y2[i] || dx1[i] != dx2[i];
	for (int c = 0; c < C; c++)
		bad += m1[c] != m2[c] || s1[c] != s2[c] || rm[c] != rm2[c] || rv[c] != rv2[c] ||
		       dg1[c] != dg2[c] || db1[c] != db2[c];
	size_t pos = 0;
	for (size_t i = 0; i < n; i++)
		pos += y1[i] > 0.0f;
	if (pos == 0 || pos == n)
		bad++; /* the ReLU must cut somewhere */
	if (bad)
		printf("     bn+relu N%d C%d HW%d %s: %d values differ\n", N, C, HW,
		       train ? "train" : "eval", bad);
	float *all[] = {x, dy, g, b, y1, y2, y0, d0, dx1, dx2, m1, s1, m2, s2, rm, rv, rm2, rv2,
	                dg1, dg2, db1, db2};
	for (size_t k = 0; k < sizeof all / sizeof *all; k++)
		free(all[k]);
	return bad;
}

static void test_bn_relu_fused(void)
{
	int bad = bn_relu_case(4, 3, 1, 1) + bn_relu_case(3, 5, 7, 1) + bn_relu_case(16, 8, 196, 1) +
	          bn_relu_case(3, 5, 7, 0) + bn_relu_case(2, 4, 36, 0);
	CHECK(bad == 0, "%d values differ", bad);
}

static int check_unary(int op, const char *what)
{
	struct opctx c = {.op = op};
	size_t n = 37;
	struct rng r;
	rng_seed(&r, 4, 1);
	c.x = fbuf(n), c.dx = fbuf(n), c.out = fbuf(n), c.mask = fbuf(n), c.nout = n;
	fill_away(c.x, n, &r);
	struct gvar v[] = {{"inp", c.x, c.dx, n}};
	int bad = run_op(&c, v, 1, what, 0);
	ctx_free(&c);
	return bad;
}

static void test_grad_elementwise(void)
{
	int bad = check_unary(OP_RELU, "relu") + check_unary(OP_TANH, "tanh") +
	          check_unary(OP_DROPOUT, "dropout") + check_unary(OP_SCALE, "scale");
	struct opctx c = {.op = OP_ADD};
	size_t n = 23;
	struct rng r;
	rng_seed(&r, 5, 1);
	c.x = fbuf(n), c.y = fbuf(n), c.dx = fbuf(n), c.dy = fbuf(n), c.out = fbuf(n), c.nout = n;
	fill(c.x, n, &r, -1, 1), fill(c.y, n, &r, -1, 1);
	struct gvar v[] = {{"a", c.x, c.dx, n}, {"b", c.y, c.dy, n}};
	bad += run_op(&c, v, 2, "add", 0);
	ctx_free(&c);
	CHECK(bad == 0, "%d mismatches", bad);
}

static int check_maxpool(int N, int C, int H, int W, int K, int S, int P)
{
	struct opctx c = {.op = OP_MAXPOOL};
	c.s = (struct nn_conv_shape){.N = N, .C = C, .H = H, .W = W, .KH = K, .KW = K, .SH = S,
	                             .SW = S, .PH = P, .PW = P};
	nn_conv_shape_finish(&c.s);
	size_t nx = (size_t)N * C * H * W;
	c.nout = (size_t)N * C * c.s.OH * c.s.OW;
	struct rng r;
	rng_seed(&r, 6, 1);
	c.x = fbuf(nx), c.dx = fbuf(nx), c.out = fbuf(c.nout);
	c.mask = fbuf(c.nout); /* the argmax indices */
	fill_distinct(c.x, nx, &r);
	struct gvar v[] = {{"inp", c.x, c.dx, nx}};
	int bad = run_op(&c, v, 1, "maxpool", 0);
	ctx_free(&c);
	return bad;
}

static void test_grad_pooling(void)
{
	int bad = check_maxpool(2, 2, 7, 7, 3, 2, 0) + check_maxpool(1, 3, 8, 6, 3, 2, 1) +
	          check_maxpool(2, 1, 5, 5, 2, 1, 0);
	struct opctx c = {.op = OP_AVGPOOL, .N = 2, .C = 3, .HW = 5};
	struct rng r;
	rng_seed(&r, 7, 1);
	c.x = fbuf(30), c.dx = fbuf(30), c.out = fbuf(6), c.nout = 6;
	fill(c.x, 30, &r, -1, 1);
	struct gvar v[] = {{"inp", c.x, c.dx, 30}};
	bad += run_op(&c, v, 1, "avgpool", 0);
	ctx_free(&c);
	CHECK(bad == 0, "%d mismatches", bad);
}

/* first maximum wins and a NaN wins at once, in the 3x3 fast path, the
 * padded path and the general unpadded path alike; idx names the input */
static void test_maxpool_ties_nan(void)
{
	/* one 5x5 plane: window (0,0) has a tie 7 at (0,1) and (1,0); window
	 * (0,1) of stride 2 has a NaN at (1,3) after a larger value 9 at (0,2) */
	float x[25] = {1, 7, 9, 0, 0,
	               7, 2, 3, NAN, 0,
	               0, 0, 0, 0, 0,
	               0, 0, 0, 0, 0,
	               0, 0, 0, 0, 5};
	struct { int K, S, P; } cs[] = {{3, 2, 0}, {3, 2, 1}, {2, 2, 0}};
	for (int k = 0; k < 3; k++) {
		struct nn_conv_shape s = {.N = 1, .C = 1, .H = 5, .W = 5, .KH = cs[k].K,
		                          .KW = cs[k].K, .SH = cs[k].S, .SW = cs[k].S,
		                          .PH = cs[k].P, .PW = cs[k].P};
		nn_conv_shape_finish(&s);
		float out[9], dx[25] = {0}, d[9];
		int32_t idx[9];
		be->maxpool_forward(out, idx, x, &s);
		for (int i = 0; i < s.OH * s.OW; i++) {
			CHECK(idx[i] >= 0 && idx[i] < 25, "case %d output %d: idx %d", k, i, idx[i]);
			CHECK(memcmp(&out[i], &x[idx[i]], sizeof(float)) == 0,
			      "case %d output %d is not x[idx]", k, i);
			d[i] = (float)(i + 1);
		}
		be->maxpool_backward(dx, d, idx, &s);
		double sd = 0, sx = 0;
		for (int i = 0; i < s.OH * s.OW; i++)
			sd += d[i];
		for (int i = 0; i < 25; i++)
			sx += dx[i];
		CHECK(sd == sx, "case %d: backward moved %g of %g", k, sx, sd);
		if (k == 0) {
			/* window (0,0) covers rows 0-2, cols 0-2: first 7 loses to 9 */
			CHECK(idx[0] == 2, "3x3: idx %d, expected 2", idx[0]);
			CHECK(idx[1] == 8, "3x3 NaN window: idx %d, expected 8", idx[1]);
		} else if (k == 1) {
			/* padded: window (0,0) covers rows -1..1, cols -1..1: 7 at (0,1) first */
			CHECK(idx[0] == 1, "padded: idx %d, expected 1", idx[0]);
		} else {
			/* 2x2: window (0,0) = {1,7,7,2}: the first 7 */
			CHECK(idx[0] == 1, "2x2: idx %d, expected 1", idx[0]);
			CHECK(idx[1] == 8, "2x2 NaN window: idx %d, expected 8", idx[1]);
		}
	}
}

static void test_grad_softmax_wsum(void)
{
	struct opctx c = {.op = OP_SOFTMAX, .outer = 2, .dim = 5, .inner = 3};
	struct rng r;
	rng_seed(&r, 8, 1);
	c.x = fbuf(30), c.dx = fbuf(30), c.out = fbuf(30), c.nout = 30;
	fill(c.x, 30, &r, -2, 2);
	struct gvar v[] = {{"inp", c.x, c.dx, 30}};
	int bad = run_op(&c, v, 1, "softmax", 0);
	ctx_free(&c);

	struct opctx d = {.op = OP_WSUM, .N = 5, .K = 2, .C = 7};
	d.x = fbuf(10), d.dx = fbuf(10), d.y = fbuf(35), d.dy = fbuf(35), d.out = fbuf(14);
	d.nout = 14;
	fill(d.x, 10, &r, 0, 1), fill(d.y, 35, &r, -1, 1);
	struct gvar w[] = {{"a", d.x, d.dx, 10}, {"h", d.y, d.dy, 35}};
	bad += run_op(&d, w, 2, "wsum", 0);
	ctx_free(&d);
	CHECK(bad == 0, "%d mismatches", bad);
}

/* ---------------- losses ---------------- */

struct lossctx {
	int kind;
	float logits[12], dlogits[12], y[6];
	int label[6];
	int B;
};

static double loss_eval(struct lossctx *c, float *dl)
{
	float tmp[12];
	float *d = dl ? dl : tmp;
	switch (c->kind) {
	case 0:
		return be->loss_bce2(d, c->logits, c->y, c->B, 1e-5f);
	case 1:
		return be->loss_ce(d, c->logits, c->label, c->B, 3);
	default:
		return be->loss_soft2(d, c->logits, c->y, c->B, 0.1f, 1e-5f);
	}
}

static double loss_l(void *p)
{
	return loss_eval(p, NULL);
}

static void loss_g(void *p)
{
	struct lossctx *c = p;
	loss_eval(c, c->dlogits);
}

static void test_grad_losses(void)
{
	int bad = 0;
	for (int kind = 0; kind < 3; kind++) {
		struct lossctx c = {.kind = kind, .B = 4};
		struct rng r;
		rng_seed(&r, 9, (uint64_t)kind);
		fill(c.logits, 12, &r, -2, 2);
		for (int b = 0; b < 4; b++) {
			c.y[b] = b == 0 ? 0.0f : (b == 1 ? 1.0f : rng_float(&r));
			c.label[b] = (int)rng_below(&r, 3);
		}
		int nl = kind == 1 ? 12 : 8;
		struct gvar v[] = {{"logits", c.logits, c.dlogits, (size_t)nl}};
		static const char *names[] = {"loss_bce2", "loss_ce", "loss_soft2"};
		bad += gradcheck(names[kind], loss_l, loss_g, &c, v, 1, &op_opts);
	}
	/* known values: bce2 on logits (0,0), y=1: -log(0.5+1e-5) */
	float z[2] = {0, 0}, d[2], y = 1.0f;
	double l = be->loss_bce2(d, z, &y, 1, 1e-5f);
	CHECK(fabs(l + log(0.5 + 1e-5)) < 1e-12, "bce2 %.12g", l);
	int lab = 1;
	l = be->loss_ce(d, z, &lab, 1, 2);
	CHECK(fabs(l - log(2.0)) < 1e-12, "ce %.12g", l);
	y = 0.3f;
	l = be->loss_soft2(d, z, &y, 1, 0.1f, 1e-5f);
	double want = -(0.1 * (1 - (double)y) * log(0.5 + 1e-5) + 0.9 * (double)y * log(0.5 + 1e-5));
	CHECK(fabs(l - want) < 1e-9, "soft2 %.12g want %.12g", l, want);
	CHECK(bad == 0, "%d mismatches", bad);
}

/* ---------------- modules ---------------- */

struct modctx {
	struct nn_module *enc, *head;
	float *x, *dx;
	int n;
	int label;        /* bag label */
	float ysoft[8];   /* student soft labels */
	float *dfeat;
	float *dscores;
};

/* forward: encoder (optional) then head; returns the WENO loss of the head */
static double mod_run(struct modctx *c, int backward)
{
	struct err e = {0};
	struct rng r;
	rng_seed(&r, 4242, 9); /* same dropout masks at every evaluation */
	const float *feat = c->x;
	if (c->enc) {
		if (nn_encoder_forward(c->enc, &feat, c->x, c->n, &e) < 0)
			return NAN;
	}
	struct nn_module *h = c->head;
	if (nn_head_forward(h, feat, c->n, &r, &e) < 0)
		return NAN;
	double L;
	float dl[16];
	if (h->kind == NN_HEAD_ABMIL) {
		float y = (float)c->label;
		L = be->loss_bce2(dl, h->logits, &y, 1, 1e-5f);
	} else if (h->kind == NN_HEAD_DSMIL) {
		float dc[2];
		int imax = h->crit[1];
		L = 0.5 * be->loss_ce(dl, h->logits, &c->label, 1, 2);
		L += 0.5 * be->loss_ce(dc, h->scores + 2 * imax, &c->label, 1, 2);
		for (int k = 0; k < 2; k++)
			dl[k] *= 0.5f;
		memset(c->dscores, 0, (size_t)c->n * 2 * sizeof(float));
		c->dscores[2 * imax] = 0.5f * dc[0];
		c->dscores[2 * imax + 1] = 0.5f * dc[1];
	} else {
		L = be->loss_soft2(dl, h->logits, c->ysoft, c->n, 0.1f, 1e-5f);
	}
	if (backward) {
		if (c->enc) {
			memset(c->dfeat, 0, (size_t)c->n * c->enc->out_dim * sizeof(float));
			nn_head_backward(h, c->dfeat, dl, h->kind == NN_HEAD_DSMIL ? c->dscores : NULL);
			nn_encoder_backward(c->enc, c->dx, c->dfeat);
		} else {
			nn_head_backward(h, c->dx, dl, h->kind == NN_HEAD_DSMIL ? c->dscores : NULL);
		}
	}
	return L;
}

static double mod_loss(void *p)
{
	return mod_run(p, 0);
}

static void mod_grad(void *p)
{
	mod_run(p, 1);
}

/* parameters of unit scale so that float rounding does not swamp the check */
static void fill_params(struct nn_module *m, struct rng *r)
{
	for (int i = 0; i < m->ntensors; i++) {
		const struct nn_tensor *t = &m->tensors[i];
		float *w = m->w + t->off;
		if (t->ndim >= 2) {
			size_t fan_in = t->n / (size_t)t->shape[0];
			float a = sqrtf(3.0f / (float)fan_in);
			fill(w, t->n, r, -a, a);
		} else if (t->init == NN_INIT_ONE) {
			fill(w, t->n, r, 0.5f, 1.5f);
		} else {
			fill(w, t->n, r, -0.2f, 0.2f);
		}
	}
}

static int check_module(int enc_kind, int c0, int h0, int w0, int head_kind, int n, float drop,
                        double h, int tries, const char *what, int *checked)
{
	struct err e = {0};
	struct nn_module enc, head;
	struct modctx c = {.n = n, .label = 1};
	int d = c0 * h0 * w0;
	if (enc_kind) {
		if (nn_encoder_create(&enc, be, enc_kind, c0, h0, w0, n, &e) < 0) {
			printf("     %s: %s\n", what, e.msg);
			return 1;
		}
		c.enc = &enc;
		d = enc.out_dim;
	}
	if (nn_head_create(&head, be, head_kind, d, drop, n, &e) < 0) {
		printf("     %s: %s\n", what, e.msg);
		return 1;
	}
	c.head = &head;
	struct rng r;
	rng_seed(&r, 77, (uint64_t)head_kind);
	if (c.enc)
		fill_params(c.enc, &r);
	fill_params(&head, &r);
	size_t nx = (size_t)n * (enc_kind ? (size_t)c0 * h0 * w0 : (size_t)d);
	c.x = fbuf(nx), c.dx = fbuf(nx), c.dfeat = fbuf((size_t)n * d), c.dscores = fbuf(2 * (size_t)n);
	fill(c.x, nx, &r, 0, 1);
	for (int i = 0; i < n && i < 8; i++)
		c.ysoft[i] = rng_float(&r);
	struct gvar v[64];
	int nv = 0;
	if (!enc_kind)
		v[nv++] = (struct gvar){"input", c.x, c.dx, nx};
	struct nn_module *mods[2] = {c.enc, &head};
	for (int k = 0; k < 2; k++) {
		struct nn_module *m = mods[k];
		if (!m)
			continue;
		for (int i = 0; i < m->ntensors && nv < 64; i++)
			v[nv++] = (struct gvar){m->tensors[i].name, m->w + m->tensors[i].off,
			                        m->g + m->tensors[i].off, m->tensors[i].n};
	}
	struct gopts o = {.h = h, .atol = 2e-3, .rtol = 3e-2, .noise = 2e-6, .tries = tries,
	                  .max_samples = 6};
	for (int k = 0; k < nv; k++)
		*checked += v[k].n < 6 ? (int)v[k].n : 6;
	int bad = gradcheck(what, mod_loss, mod_grad, &c, v, nv, &o);
	if (c.enc)
		nn_module_free(c.enc);
	nn_module_free(&head);
	free(c.x), free(c.dx), free(c.dfeat), free(c.dscores);
	return bad;
}

static void test_grad_heads(void)
{
	int bad = 0, n = 0;
	bad += check_module(0, 12, 1, 1, NN_HEAD_ABMIL, 5, 0.5f, 3e-3, 3, "abmil", &n);
	bad += check_module(0, 12, 1, 1, NN_HEAD_DSMIL, 5, 0.5f, 3e-3, 3, "dsmil", &n);
	bad += check_module(0, 12, 1, 1, NN_HEAD_STUDENT, 4, 0.0f, 3e-3, 3, "student", &n);
	bad += check_module(0, 12, 1, 1, NN_HEAD_STUDENT, 4, 0.5f, 3e-3, 3, "student+dropout", &n);
	bad += check_module(NN_ENC_MLP, 16, 1, 1, NN_HEAD_ABMIL, 4, 0.0f, 3e-3, 3, "mlp+abmil", &n);
	CHECK(bad == 0, "%d of %d elements mismatch", bad, n);
}

/* Deep ReLU/max-pool/BN stacks in float32 have kinks everywhere: the
 * difference quotient of one element moves with h (see the sweep in the
 * report).  Steps 1e-2 down to 1e-2/4^5 are tried per element and at most 1
 * in 20 sampled elements may disagree at every step; each op is checked
 * strictly above, and the whole encoders against PyTorch in test_nn_golden. */
static void test_grad_encoders(void)
{
	int bad = 0, n = 0;
	bad += check_module(NN_ENC_FMNIST, 1, 28, 28, NN_HEAD_ABMIL, 3, 0.0f, 1e-2, 6,
	                    "fmnist+abmil", &n);
	bad += check_module(NN_ENC_CIFAR, 3, 32, 32, NN_HEAD_STUDENT, 3, 0.0f, 1e-2, 6,
	                    "cifar+student", &n);
	bad += check_module(NN_ENC_RESNET18, 3, 32, 32, NN_HEAD_ABMIL, 3, 0.0f, 1e-2, 6,
	                    "resnet18+abmil", &n);
	CHECK(bad * 20 <= n, "%d of %d elements mismatch", bad, n);
}

/* the scan every max-pool must agree with: the first NaN of the window in
 * row-major order if there is one, else the first position of the maximum
 * (PyTorch's choice); -1 for a window wholly in the padding */
static int pool_ref(const float *x, const struct nn_conv_shape *s, int oh, int ow)
{
	int best = -1, nan = 0;
	for (int kh = 0; kh < s->KH; kh++)
		for (int kw = 0; kw < s->KW; kw++) {
			int h = oh * s->SH - s->PH + kh, w = ow * s->SW - s->PW + kw;
			if (h < 0 || w < 0 || h >= s->H || w >= s->W || nan)
				continue;
			float v = x[h * s->W + w];
			if (v != v)
				nan = 1, best = h * s->W + w;
			else if (best < 0 || v > x[best])
				best = h * s->W + w;
		}
	return best;
}

/* property: on planes full of ties and NaNs, every path of maxpool_forward
 * (the eight-plane 3x3 path with partial last groups, planes too large for
 * it, the padded and general paths) returns the reference scan's choice,
 * bit for bit, and the value at that position */
static void test_maxpool_property(void)
{
	struct { int N, C, H, W, K, S, P; } cs[] = {
		{3, 5, 14, 14, 3, 2, 0}, {2, 64, 6, 6, 3, 2, 0}, {1, 9, 7, 9, 3, 1, 0},
		{2, 3, 11, 8, 3, 3, 0},  {1, 2, 40, 40, 3, 2, 0}, {2, 3, 9, 9, 3, 2, 1},
		{1, 7, 6, 5, 2, 2, 0},   {1, 1, 3, 3, 3, 2, 0},
	};
	struct rng r;
	rng_seed(&r, 77, 1);
	int bad = 0, total = 0;
	for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++) {
		struct nn_conv_shape s = {.N = cs[k].N, .C = cs[k].C, .H = cs[k].H, .W = cs[k].W,
		                          .KH = cs[k].K, .KW = cs[k].K, .SH = cs[k].S,
		                          .SW = cs[k].S, .PH = cs[k].P, .PW = cs[k].P};
		nn_conv_shape_finish(&s);
		int planes = s.N * s.C, HW = s.H * s.W, P = s.OH * s.OW;
		float *x = malloc((size_t)planes * HW * sizeof *x);
		float *o = malloc((size_t)planes * P * sizeof *o);
		int32_t *ix = malloc((size_t)planes * P * sizeof *ix);
		for (int i = 0; i < planes * HW; i++) {
			float u = rng_float(&r);
			/* few distinct values (ties everywhere), some NaN, some -inf */
			x[i] = u < 0.03f ? NAN : u < 0.06f ? -INFINITY : (float)(int)(u * 6) - 2.0f;
		}
		be->maxpool_forward(o, ix, x, &s);
		for (int pl = 0; pl < planes; pl++)
			for (int p = 0; p < P; p++) {
				const float *xp = x + (size_t)pl * HW;
				int want = pool_ref(xp, &s, p / s.OW, p % s.OW);
				int got = ix[(size_t)pl * P + p];
				total++;
				if (got != want ||
				    memcmp(&o[(size_t)pl * P + p], &xp[want], sizeof(float)) != 0) {
					if (bad++ < 5)
						fprintf(stderr, "  case %zu plane %d out %d: idx %d, want %d\n",
						        k, pl, p, got, want);
				}
			}
		free(x), free(o), free(ix);
	}
	CHECK(bad == 0, "%d of %d pooled outputs differ from the reference scan", bad, total);
}

int main(void)
{
	nn_set_threads(2);
	RUN(test_gradcheck_detects_wrong_gradient);
	RUN(test_grad_linear);
	RUN(test_grad_conv2d);
	RUN(test_grad_batchnorm);
	RUN(test_bn_relu_fused);
	RUN(test_grad_elementwise);
	RUN(test_grad_pooling);
	RUN(test_maxpool_ties_nan);
	RUN(test_maxpool_property);
	RUN(test_grad_softmax_wsum);
	RUN(test_grad_losses);
	RUN(test_grad_heads);
	RUN(test_grad_encoders);
	return check_summary();
}
