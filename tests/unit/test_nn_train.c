/* test_nn_train.c - training-level properties of lib/nn: results do not
 * depend on the thread count, initialisation follows lib/mil/README.md, the arenas
 * grow, a few steps lower the loss. */
#include <math.h>
#include <stdint.h>

#include "check.h"

#include "../../lib/nn/net.h"

static const struct nn_backend *be = &nn_cpu;

struct run {
	struct nn_module enc, abmil, student;
	struct nn_optim oe, oa, os;
};

/* plain: SGD without momentum and weight decay; fuse: its step fused into
 * the heads' backward (nn_module_fuse_sgd) */
static int run_create_plain(struct run *r, int optim_kind, int plain, int fuse, struct err *e)
{
	memset(r, 0, sizeof *r);
	struct rng g;
	rng_seed(&g, 42, 0);
	int rc = nn_encoder_create(&r->enc, be, NN_ENC_FMNIST, 1, 28, 28, 16, e);
	if (rc == 0)
		rc = nn_head_create(&r->abmil, be, NN_HEAD_ABMIL, r->enc.out_dim, 0.5f, 16, e);
	if (rc == 0)
		rc = nn_head_create(&r->student, be, NN_HEAD_STUDENT, r->enc.out_dim, 0.5f, 16, e);
	if (rc < 0)
		return rc;
	nn_module_init(&r->enc, &g);
	nn_module_init(&r->abmil, &g);
	nn_module_init(&r->student, &g);
	struct nn_optim_conf c;
	nn_optim_conf_default(&c, optim_kind);
	c.lr = 1e-2f;
	c.momentum = optim_kind == NN_OPTIM_SGD && !plain ? 0.9f : 0.0f;
	c.weight_decay = plain ? 0.0f : 1e-4f;
	if ((rc = nn_optim_create(&r->oe, be, &c, r->enc.nparams, e)) < 0)
		return rc;
	if ((rc = nn_optim_create(&r->oa, be, &c, r->abmil.nparams, e)) < 0)
		return rc;
	if ((rc = nn_optim_create(&r->os, be, &c, r->student.nparams, e)) < 0)
		return rc;
	if (fuse && (nn_module_fuse_sgd(&r->abmil, &r->oa) != 1 ||
	             nn_module_fuse_sgd(&r->student, &r->os) != 1))
		return err_set(e, ERR_USAGE, "plain SGD was not fused");
	return 0;
}

static int run_create(struct run *r, int optim_kind, struct err *e)
{
	return run_create_plain(r, optim_kind, 0, 0, e);
}

static void run_free(struct run *r)
{
	nn_module_free(&r->enc), nn_module_free(&r->abmil), nn_module_free(&r->student);
	nn_optim_free(&r->oe), nn_optim_free(&r->oa), nn_optim_free(&r->os);
}

/* `steps` teacher steps on bags of 12 and student steps on batches of 16 */
static int run_steps(struct run *r, int steps, uint64_t seed, double *last_loss, struct err *e)
{
	struct rng g;
	rng_seed(&g, seed, 1);
	float x[16 * 784], dfeat[16 * 512], y[16], dl[32];
	for (int s = 0; s < steps; s++) {
		for (int i = 0; i < 12 * 784; i++)
			x[i] = rng_float(&g);
		const float *feat;
		int rc = nn_encoder_forward(&r->enc, &feat, x, 12, e);
		if (rc == 0)
			rc = nn_head_forward(&r->abmil, feat, 12, &g, e);
		if (rc < 0)
			return rc;
		float Y = (float)(s & 1);
		double L = be->loss_bce2(dl, r->abmil.logits, &Y, 1, 1e-5f);
		nn_module_zero_grad(&r->enc);
		nn_module_zero_grad(&r->abmil);
		memset(dfeat, 0, sizeof dfeat);
		nn_head_backward(&r->abmil, dfeat, dl, NULL);
		nn_encoder_backward(&r->enc, NULL, dfeat);
		nn_optim_step(&r->oe, &r->enc);
		nn_optim_step(&r->oa, &r->abmil);

		for (int i = 0; i < 16 * 784; i++)
			x[i] = rng_float(&g);
		if ((rc = nn_encoder_forward(&r->enc, &feat, x, 16, e)) < 0)
			return rc;
		float sc[16];
		if ((rc = nn_head_scores(&r->abmil, sc, feat, 16, &g, e)) < 0)
			return rc;
		for (int i = 0; i < 16; i++)
			y[i] = 1.0f / (1.0f + expf(-sc[i] * 100.0f));
		if ((rc = nn_head_forward(&r->student, feat, 16, &g, e)) < 0)
			return rc;
		L = be->loss_soft2(dl, r->student.logits, y, 16, 0.1f, 1e-5f);
		nn_module_zero_grad(&r->enc);
		nn_module_zero_grad(&r->student);
		memset(dfeat, 0, sizeof dfeat);
		nn_head_backward(&r->student, dfeat, dl, NULL);
		nn_encoder_backward(&r->enc, NULL, dfeat);
		nn_optim_step(&r->oe, &r->enc);
		nn_optim_step(&r->os, &r->student);
		*last_loss = L;
	}
	return 0;
}

static int same_bits(const float *a, const float *b, size_t n, size_t *first)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(&a[i], &b[i], sizeof(float))) {
			*first = i;
			return 0;
		}
	return 1;
}

static void threads_case(int optim_kind)
{
	struct err e = {0};
	struct run a, b;
	double la = 0, lb = 0;
	nn_set_threads(1);
	REQUIRE(run_create(&a, optim_kind, &e) == 0, "%s", e.msg);
	REQUIRE(run_steps(&a, 3, 5, &la, &e) == 0, "%s", e.msg);
	nn_set_threads(2);
	REQUIRE(run_create(&b, optim_kind, &e) == 0, "%s", e.msg);
	REQUIRE(run_steps(&b, 3, 5, &lb, &e) == 0, "%s", e.msg);
	size_t i = 0;
	CHECK(same_bits(a.enc.w, b.enc.w, a.enc.nparams, &i), "encoder differs at %zu: %.9g %.9g",
	      i, a.enc.w[i], b.enc.w[i]);
	CHECK(same_bits(a.enc.state, b.enc.state, a.enc.nstate, &i), "BN state differs at %zu", i);
	CHECK(same_bits(a.abmil.w, b.abmil.w, a.abmil.nparams, &i), "abmil differs at %zu", i);
	CHECK(same_bits(a.student.w, b.student.w, a.student.nparams, &i), "student differs at %zu",
	      i);
	CHECK(same_bits(a.oe.m, b.oe.m, a.oe.n, &i), "encoder moments differ at %zu", i);
	CHECK(la == lb, "losses %.17g and %.17g", la, lb);
	run_free(&a);
	run_free(&b);
}

/* the matrix products alone: Linear forward and backward (three sgemm
 * layouts, cut by rows and by columns, with ragged last blocks, into zeroed
 * and into pre-filled gradients) give the same bits on 1 to 5 threads */
static void test_gemm_threads(void)
{
	static const int shapes[][3] = {{300, 515, 1000}, {1000, 70, 130}, {64, 4096, 300}, {7, 33, 5}};
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		int N = shapes[k][0], C = shapes[k][1], OC = shapes[k][2];
		struct rng r;
		rng_seed(&r, 5, (uint64_t)k);
		size_t nx = (size_t)N * C, nw = (size_t)OC * C, ny = (size_t)N * OC;
		float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *dy = malloc(ny * sizeof *dy);
		float *ref = malloc((ny + nx + nw) * sizeof *ref), *got = malloc((ny + nx + nw) * sizeof *got);
		for (size_t i = 0; i < nx; i++)
			x[i] = rng_float(&r) - 0.5f;
		for (size_t i = 0; i < nw; i++)
			w[i] = rng_float(&r) - 0.5f;
		for (size_t i = 0; i < ny; i++)
			dy[i] = rng_float(&r) - 0.5f;
		for (int t = 1; t <= 5; t++) {
			nn_set_threads(t);
			float *o = t == 1 ? ref : got;
			nn_cpu.linear_forward(o, x, w, NULL, N, C, OC);
			for (size_t i = 0; i < nx + nw; i++)
				o[ny + i] = 0.01f * (float)(i % 7); /* backward accumulates */
			nn_cpu.linear_backward(o + ny, o + ny + nx, NULL, dy, x, w, N, C, OC);
			size_t i = 0;
			if (t > 1)
				CHECK(same_bits(ref, got, ny + nx + nw, &i),
				      "%dx%d -> %d on %d threads: element %zu of %s differs", N, C, OC, t,
				      i < ny ? i : i < ny + nx ? i - ny : i - ny - nx,
				      i < ny ? "out" : i < ny + nx ? "dinp" : "dweight");
		}
		free(x), free(w), free(dy), free(ref), free(got);
	}
	nn_set_threads(2);
}

/* the op: dinp as linear_backward gives it, bit for bit; the bias as
 * linear_backward + sgd_step, bit for bit; the weight within the one
 * rounding the fused multiply-add saves */
static void test_linear_backward_sgd_op(void)
{
	int N = 300, C = 515, OC = 1000;
	struct rng r;
	rng_seed(&r, 8, 0);
	size_t nx = (size_t)N * C, nw = (size_t)OC * C, ny = (size_t)N * OC;
	float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
	float *w0 = malloc(nw * sizeof *w0), *w1 = malloc(nw * sizeof *w1), *g = calloc(nw, sizeof *g);
	float *wb = malloc(nw * sizeof *wb);
	float *d0 = calloc(nx, sizeof *d0), *d1 = calloc(nx, sizeof *d1);
	float b0[1000], b1[1000], gb[1000] = {0};
	for (size_t i = 0; i < nx; i++)
		x[i] = rng_float(&r) - 0.5f;
	for (size_t i = 0; i < ny; i++)
		dy[i] = rng_float(&r) - 0.5f;
	for (size_t i = 0; i < nw; i++)
		w0[i] = w1[i] = wb[i] = rng_float(&r) - 0.5f;
	for (int j = 0; j < OC; j++)
		b0[j] = b1[j] = rng_float(&r) - 0.5f;
	struct nn_optim_conf c;
	nn_optim_conf_default(&c, NN_OPTIM_SGD);
	c.lr = 0.05f;
	nn_cpu.linear_backward(d0, g, gb, dy, x, w0, N, C, OC);
	nn_cpu.sgd_step(w0, g, NULL, nw, &c, 1);
	nn_cpu.sgd_step(b0, gb, NULL, (size_t)OC, &c, 1);
	nn_cpu.linear_backward_sgd(d1, w1, b1, dy, x, N, C, OC, c.lr);
	size_t i = 0;
	CHECK(same_bits(d0, d1, nx, &i), "dinp differs at %zu: %.9g %.9g", i, d0[i], d1[i]);
	CHECK(same_bits(b0, b1, (size_t)OC, &i), "bias differs at %zu: %.9g %.9g", i, b0[i], b1[i]);
	double worst = 0;
	size_t moved = 0, at = 0;
	for (size_t k = 0; k < nw; k++) {
		/* the step is lr * |g| (g up to ~N/4): one ulp of the weight plus one
		 * of the step covers both roundings the unfused path makes */
		double tol = 1.2e-7 * (fabs((double)w0[k]) + c.lr * fabs((double)g[k])) + 1e-12;
		double err = fabs((double)w0[k] - (double)w1[k]) / tol;
		if (err > worst)
			worst = err, at = k;
		moved += w1[k] != wb[k];
	}
	CHECK(worst <= 1.0, "weight %zu: fused %.9g, unfused %.9g (%.2f x tolerance)", at, w1[at],
	      w0[at], worst);
	CHECK(moved > nw / 2, "the fused step left %zu of %zu weights where they were", nw - moved,
	      nw);
	free(x), free(dy), free(w0), free(w1), free(wb), free(g), free(d0), free(d1);
}

/* three steps of the encoder and both heads with plain SGD, fused and not:
 * the same training within the fused rounding; the fused run on 1 and 2
 * threads bit for bit */
static void test_fused_sgd_training(void)
{
	struct err e = {0};
	struct run a, b, c;
	double la = 0, lb = 0, lc = 0;
	nn_set_threads(2);
	REQUIRE(run_create_plain(&a, NN_OPTIM_SGD, 1, 0, &e) == 0, "%s", e.msg);
	REQUIRE(run_steps(&a, 3, 9, &la, &e) == 0, "%s", e.msg);
	REQUIRE(run_create_plain(&b, NN_OPTIM_SGD, 1, 1, &e) == 0, "%s", e.msg);
	REQUIRE(run_steps(&b, 3, 9, &lb, &e) == 0, "%s", e.msg);
	nn_set_threads(1);
	REQUIRE(run_create_plain(&c, NN_OPTIM_SGD, 1, 1, &e) == 0, "%s", e.msg);
	REQUIRE(run_steps(&c, 3, 9, &lc, &e) == 0, "%s", e.msg);
	nn_set_threads(2);
	struct nn_module *ma[3] = {&a.enc, &a.abmil, &a.student}, *mb[3] = {&b.enc, &b.abmil, &b.student};
	struct nn_module *mc[3] = {&c.enc, &c.abmil, &c.student};
	for (int k = 0; k < 3; k++) {
		double worst = 0, scale = 0;
		size_t at = 0, i = 0;
		for (size_t j = 0; j < ma[k]->nparams; j++) {
			double d = fabs((double)ma[k]->w[j] - (double)mb[k]->w[j]);
			scale = fmax(scale, fabs((double)ma[k]->w[j]));
			if (d > worst)
				worst = d, at = j;
		}
		CHECK(worst <= 1e-5 * scale, "%s: parameter %zu fused %.9g, unfused %.9g",
		      nn_module_kind_name(ma[k]->kind), at, mb[k]->w[at], ma[k]->w[at]);
		CHECK(same_bits(mb[k]->w, mc[k]->w, mb[k]->nparams, &i),
		      "%s fused: 1 and 2 threads differ at %zu", nn_module_kind_name(mb[k]->kind), i);
	}
	CHECK(fabs(la - lb) <= 1e-5 * fabs(la), "losses %.9g unfused, %.9g fused", la, lb);
	CHECK(lb == lc, "fused losses %.17g (2 threads), %.17g (1)", lb, lc);
	/* nothing else fuses: momentum, Adam */
	struct nn_optim o;
	struct nn_optim_conf oc;
	nn_optim_conf_default(&oc, NN_OPTIM_SGD);
	oc.momentum = 0.9f;
	REQUIRE(nn_optim_create(&o, be, &oc, a.student.nparams, &e) == 0, "%s", e.msg);
	CHECK(nn_module_fuse_sgd(&a.student, &o) == 0, "SGD with momentum fused");
	nn_optim_free(&o);
	nn_optim_conf_default(&oc, NN_OPTIM_ADAM);
	REQUIRE(nn_optim_create(&o, be, &oc, a.student.nparams, &e) == 0, "%s", e.msg);
	CHECK(nn_module_fuse_sgd(&a.student, &o) == 0, "Adam fused");
	nn_optim_free(&o);
	run_free(&a), run_free(&b), run_free(&c);
}

static void test_threads_bit_identical_sgd(void)
{
	threads_case(NN_OPTIM_SGD);
}

static void test_threads_bit_identical_adam(void)
{
	threads_case(NN_OPTIM_ADAM);
}

static void test_init_follows_weno(void)
{
	struct err e = {0};
	struct nn_module enc, head;
	struct rng g;
	rng_seed(&g, 1, 0);
	REQUIRE(nn_encoder_create(&enc, be, NN_ENC_FMNIST, 1, 28, 28, 1, &e) == 0, "%s", e.msg);
	REQUIRE(nn_head_create(&head, be, NN_HEAD_ABMIL, 512, 0.5f, 1, &e) == 0, "%s", e.msg);
	nn_module_init(&enc, &g);
	nn_module_init(&head, &g);
	/* conv weights within +-1/sqrt(fan_in), spread over the range */
	const struct nn_tensor *t = nn_module_tensor(&enc, "features.3.weight");
	REQUIRE(t, "no features.3.weight");
	double bound = 1.0 / sqrt(32.0 * 9.0), mx = 0, s2 = 0;
	for (size_t i = 0; i < t->n; i++) {
		double v = enc.w[t->off + i];
		mx = fmax(mx, fabs(v));
		s2 += v * v;
	}
	CHECK(mx <= bound && mx > 0.99 * bound, "max |w| %.6g, bound %.6g", mx, bound);
	double var = s2 / t->n, want = bound * bound / 3.0;
	CHECK(fabs(var - want) < 0.05 * want, "variance %.6g, uniform gives %.6g", var, want);
	t = nn_module_tensor(&enc, "features.3.bias");
	for (size_t i = 0; i < t->n; i++)
		CHECK(fabs(enc.w[t->off + i]) <= bound, "bias %zu", i);
	t = nn_module_tensor(&enc, "features.4.weight");
	CHECK(enc.w[t->off] == 1.0f && enc.w[t->off + 63] == 1.0f, "BN gamma not 1");
	t = nn_module_tensor(&enc, "features.4.bias");
	CHECK(enc.w[t->off] == 0.0f, "BN beta not 0");
	CHECK(enc.nstate_tensors == 8 && enc.state[enc.state_tensors[1].off] == 1.0f,
	      "running_var not 1");
	/* head Linears N(0, 0.01), zero bias */
	t = nn_module_tensor(&head, "fc2.weight");
	double s = 0;
	s2 = 0;
	for (size_t i = 0; i < t->n; i++) {
		s += head.w[t->off + i];
		s2 += (double)head.w[t->off + i] * head.w[t->off + i];
	}
	double sd = sqrt(s2 / t->n - (s / t->n) * (s / t->n));
	CHECK(fabs(sd - 0.01) < 2e-4, "std %.6g", sd);
	CHECK(fabs(s / t->n) < 1e-4, "mean %.6g", s / t->n);
	t = nn_module_tensor(&head, "fc2.bias");
	CHECK(head.w[t->off] == 0.0f, "bias not 0");
	CHECK(enc.out_dim == 512 && enc.nparams == 32 * 36 + 32 + 64 + 64 * 32 * 9 + 64 + 128 +
	                                             128 * 64 * 9 + 128 + 256 + 128 * 128 * 9 +
	                                             128 + 256,
	      "fmnist has %zu parameters", enc.nparams);
	nn_module_free(&enc);
	nn_module_free(&head);
}

static void test_encoder_shapes(void)
{
	struct err e = {0};
	struct nn_module m;
	REQUIRE(nn_encoder_create(&m, be, NN_ENC_CIFAR, 3, 32, 32, 1, &e) == 0, "%s", e.msg);
	CHECK(m.out_dim == 1728, "cifar out %d", m.out_dim);
	nn_module_free(&m);
	REQUIRE(nn_encoder_create(&m, be, NN_ENC_RESNET18, 3, 224, 224, 1, &e) == 0, "%s", e.msg);
	CHECK(m.out_dim == 512, "resnet18 out %d", m.out_dim);
	CHECK(m.nparams == 11176512, "resnet18 has %zu parameters (torchvision without fc: "
	      "11176512)", m.nparams);
	nn_module_free(&m);
	REQUIRE(nn_encoder_create(&m, be, NN_ENC_MLP, 1024, 1, 1, 1, &e) == 0, "%s", e.msg);
	CHECK(m.out_dim == 512 && m.nparams == 1024 * 512 + 512 + 1024, "mlp %zu", m.nparams);
	nn_module_free(&m);
	err_clear(&e);
	CHECK(nn_encoder_create(&m, be, NN_ENC_FMNIST, 3, 28, 28, 1, &e) == ERR_USAGE,
	      "bad input accepted");
	CHECK(strstr(e.msg, "1x28x28") != NULL, "message: %s", e.msg);
}

static void test_training_lowers_loss(void)
{
	/* a separable toy: instances of a positive bag carry a bright square */
	struct err e = {0};
	struct run r;
	REQUIRE(run_create(&r, NN_OPTIM_ADAM, &e) == 0, "%s", e.msg);
	r.oe.conf.lr = r.oa.conf.lr = 1e-4f;
	nn_module_set_train(&r.abmil, 1);
	float x[8 * 784], dfeat[8 * 512], dl[2];
	double first = 0, last = 0;
	for (int s = 0; s < 16; s++) {
		for (int b = 0; b < 2; b++) {
			struct rng g;
			rng_seed(&g, (uint64_t)b, 3);
			for (int i = 0; i < 8 * 784; i++)
				x[i] = 0.5f * rng_float(&g);
			if (b)
				for (int k = 0; k < 100; k++)
					x[3 * 784 + 300 + k] = 1.0f;
			const float *feat;
			REQUIRE(nn_encoder_forward(&r.enc, &feat, x, 8, &e) == 0, "%s", e.msg);
			REQUIRE(nn_head_forward(&r.abmil, feat, 8, NULL, &e) == 0, "%s", e.msg);
			float Y = (float)b;
			double L = be->loss_bce2(dl, r.abmil.logits, &Y, 1, 1e-5f);
			if (s == 0)
				first += L;
			if (s == 15)
				last += L;
			nn_module_zero_grad(&r.enc);
			nn_module_zero_grad(&r.abmil);
			memset(dfeat, 0, sizeof dfeat);
			nn_head_backward(&r.abmil, dfeat, dl, NULL);
			nn_encoder_backward(&r.enc, NULL, dfeat);
			nn_optim_step(&r.oe, &r.enc);
			nn_optim_step(&r.oa, &r.abmil);
		}
	}
	CHECK(last < 0.5 * first, "loss %.4f -> %.4f", first, last);
	/* a bag larger than the arenas grows them */
	float *big = calloc(40 * 784, sizeof(float));
	const float *feat;
	CHECK(nn_encoder_forward(&r.enc, &feat, big, 40, &e) == 0 && r.enc.cap >= 40, "%s", e.msg);
	free(big);
	run_free(&r);
}

int main(void)
{
	RUN(test_gemm_threads);
	RUN(test_linear_backward_sgd_op);
	RUN(test_fused_sgd_training);
	RUN(test_threads_bit_identical_sgd);
	RUN(test_threads_bit_identical_adam);
	RUN(test_init_follows_weno);
	RUN(test_encoder_shapes);
	RUN(test_training_lowers_loss);
	return check_summary();
}
