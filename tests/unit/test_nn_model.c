/* test_nn_model.c - the model file: round trip, resume bit for bit, and a
 * clear error for every kind of bad file (truncated, corrupt, newer version,
 * another architecture, sizes beyond limits or beyond the file).
 *
 * With WENO_WRITE_FUZZ_SEEDS=DIR it also writes the fuzz seeds (tiny mlp
 * models) into DIR. */
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#include "check.h"

#include "../../lib/nn/model_io.h"

static const struct nn_backend *be = &nn_cpu;

/* ---- a small training setup: mlp encoder + ABMIL + student ---- */

struct setup {
	struct nn_module enc, head, student;
	struct nn_optim oe, oh, os;
	struct rng rng;
	int D;
};

static int setup_create(struct setup *s, int D, int with_heads, struct err *e)
{
	memset(s, 0, sizeof *s);
	s->D = D;
	rng_seed(&s->rng, 11, 2);
	int rc = nn_encoder_create(&s->enc, be, NN_ENC_MLP, D, 1, 1, 8, e);
	if (rc == 0 && with_heads)
		rc = nn_head_create(&s->head, be, NN_HEAD_ABMIL, 512, 0.5f, 8, e);
	if (rc == 0 && with_heads)
		rc = nn_head_create(&s->student, be, NN_HEAD_STUDENT, 512, 0.0f, 8, e);
	if (rc < 0)
		return rc;
	nn_module_init(&s->enc, &s->rng);
	struct nn_optim_conf a, b;
	nn_optim_conf_default(&a, NN_OPTIM_ADAM);
	nn_optim_conf_default(&b, NN_OPTIM_SGD);
	b.momentum = 0.9f;
	b.lr = 1e-2f;
	if ((rc = nn_optim_create(&s->oe, be, &a, s->enc.nparams, e)) < 0)
		return rc;
	if (!with_heads)
		return 0;
	nn_module_init(&s->head, &s->rng);
	nn_module_init(&s->student, &s->rng);
	if ((rc = nn_optim_create(&s->oh, be, &b, s->head.nparams, e)) < 0)
		return rc;
	return nn_optim_create(&s->os, be, &b, s->student.nparams, e);
}

static void setup_free(struct setup *s)
{
	nn_module_free(&s->enc), nn_module_free(&s->head), nn_module_free(&s->student);
	nn_optim_free(&s->oe), nn_optim_free(&s->oh), nn_optim_free(&s->os);
}

/* one teacher and one student step on data drawn from s->rng */
static int train_step(struct nn_module *enc, struct nn_module *head, struct nn_module *student,
                      struct nn_optim *oe, struct nn_optim *oh, struct nn_optim *os,
                      struct rng *rng, int D, struct err *e)
{
	float x[8 * 64], dfeat[8 * 512], dl[16], y[8];
	for (int i = 0; i < 8 * D; i++)
		x[i] = rng_float(rng);
	const float *feat;
	int rc = nn_encoder_forward(enc, &feat, x, 8, e);
	if (rc == 0)
		rc = nn_head_forward(head, feat, 8, rng, e);
	if (rc < 0)
		return rc;
	float Y = rng_float(rng) < 0.5f ? 0.0f : 1.0f;
	be->loss_bce2(dl, head->logits, &Y, 1, 1e-5f);
	nn_module_zero_grad(enc), nn_module_zero_grad(head);
	memset(dfeat, 0, sizeof dfeat);
	nn_head_backward(head, dfeat, dl, NULL);
	nn_encoder_backward(enc, NULL, dfeat);
	nn_optim_step(oe, enc), nn_optim_step(oh, head);
	if ((rc = nn_encoder_forward(enc, &feat, x, 8, e)) < 0 ||
	    (rc = nn_head_forward(student, feat, 8, rng, e)) < 0)
		return rc;
	for (int i = 0; i < 8; i++)
		y[i] = rng_float(rng);
	be->loss_soft2(dl, student->logits, y, 8, 0.1f, 1e-5f);
	nn_module_zero_grad(enc), nn_module_zero_grad(student);
	memset(dfeat, 0, sizeof dfeat);
	nn_head_backward(student, dfeat, dl, NULL);
	nn_encoder_backward(enc, NULL, dfeat);
	nn_optim_step(oe, enc), nn_optim_step(os, student);
	return 0;
}

static void view(struct nn_model *m, struct setup *s, uint64_t epoch)
{
	memset(m, 0, sizeof *m);
	m->config = "encoder=mlp\nhead=abmil\nlr=0.001\nseed=11\n";
	m->nmodules = 3;
	m->mods[0] = &s->enc, m->mods[1] = &s->head, m->mods[2] = &s->student;
	m->opts[0] = &s->oe, m->opts[1] = &s->oh, m->opts[2] = &s->os;
	m->nrngs = 1;
	m->rngs[0] = s->rng;
	m->epoch = epoch;
	static const char extra[] = "teacher-min=-1.5 teacher-max=2.5";
	m->extra = (void *)extra;
	m->extra_size = sizeof extra;
}

static char *path_in_tmp(const char *name)
{
	static char buf[4][600];
	static int k;
	char *p = buf[k++ & 3];
	snprintf(p, 600, "%s/%s", check_tmpdir(), name);
	return p;
}

static int bits_equal(const float *a, const float *b, size_t n)
{
	return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

/* A model with a NaN or Inf weight (checksums intact, as a crafted or
 * diverged file would have) is refused at load, naming the tensor. */
static void test_non_finite_refused(void)
{
	struct err e = {0};
	struct setup s;
	REQUIRE(setup_create(&s, 16, 1, &e) == 0, "%s", e.msg);
	struct nn_model m, l;
	view(&m, &s, 3);
	const char *p = path_in_tmp("nan.model");
	/* a NaN in the student's last tensor, an Inf in the encoder's first */
	struct nn_module *st = m.mods[2], *en = m.mods[0];
	const struct nn_tensor *t = &st->tensors[st->ntensors - 1];
	float bad = NAN, was;
	be->download(&was, st->w + t->off + 1, 1);
	be->upload(st->w + t->off + 1, &bad, 1);
	REQUIRE(nn_model_save(p, &m, &e) == 0, "%s", e.msg);
	int rc = nn_model_load(p, be, &l, &e);
	char want[160];
	snprintf(want, sizeof want, "module 2, tensor '%s', element 1: NaN, expected a finite number", t->name);
	CHECK(rc == ERR_FORMAT && strstr(e.msg, want), "%d %s", rc, e.msg);
	be->upload(st->w + t->off + 1, &was, 1);
	bad = -INFINITY;
	be->upload(en->w, &bad, 1);
	REQUIRE(nn_model_save(p, &m, &e) == 0, "%s", e.msg);
	err_clear(&e);
	rc = nn_model_load(p, be, &l, &e);
	snprintf(want, sizeof want, "module 0, tensor '%s', element 0: Inf", en->tensors[0].name);
	CHECK(rc == ERR_FORMAT && strstr(e.msg, want), "%d %s", rc, e.msg);
	setup_free(&s);
}

static void test_roundtrip(void)
{
	struct err e = {0};
	struct setup s;
	REQUIRE(setup_create(&s, 16, 1, &e) == 0, "%s", e.msg);
	for (int i = 0; i < 2; i++)
		REQUIRE(train_step(&s.enc, &s.head, &s.student, &s.oe, &s.oh, &s.os, &s.rng, 16, &e) ==
		        0, "%s", e.msg);
	struct nn_model m, l;
	view(&m, &s, 7);
	const char *p = path_in_tmp("a.model");
	REQUIRE(nn_model_save(p, &m, &e) == 0, "%s", e.msg);
	REQUIRE(nn_model_load(p, be, &l, &e) == 0, "%s", e.msg);
	CHECK(l.nmodules == 3 && l.epoch == 7 && l.nrngs == 1, "%d modules, epoch %llu", l.nmodules,
	      (unsigned long long)l.epoch);
	CHECK(l.rngs[0].state == s.rng.state && l.rngs[0].inc == s.rng.inc, "rng differs");
	CHECK(!strcmp(l.config, m.config), "config differs: %s", l.config);
	char buf[32];
	CHECK(nn_model_config_get(&l, "lr", buf, sizeof buf) && !strcmp(buf, "0.001"), "lr");
	CHECK(!nn_model_config_get(&l, "l", buf, sizeof buf), "prefix matched");
	CHECK(l.extra_size == m.extra_size && !memcmp(l.extra, m.extra, m.extra_size), "extra");
	for (int i = 0; i < 3; i++) {
		struct nn_module *a = m.mods[i], *b = l.mods[i];
		CHECK(a->kind == b->kind && a->nparams == b->nparams, "module %d", i);
		CHECK(bits_equal(a->w, b->w, a->nparams), "module %d weights", i);
		CHECK(bits_equal(a->state, b->state, a->nstate), "module %d state", i);
		CHECK(l.opts[i] && l.opts[i]->step == m.opts[i]->step, "optimizer %d step", i);
		CHECK(bits_equal(a->w, b->w, a->nparams), "module %d", i);
		CHECK(bits_equal(m.opts[i]->m, l.opts[i]->m, a->nparams), "optimizer %d m", i);
	}
	CHECK(bits_equal(m.opts[0]->v, l.opts[0]->v, s.enc.nparams), "adam v");
	nn_model_free(&l);
	setup_free(&s);
}

static void test_resume_is_bit_identical(void)
{
	struct err e = {0};
	struct setup a, b;
	REQUIRE(setup_create(&a, 16, 1, &e) == 0, "%s", e.msg);
	for (int i = 0; i < 4; i++)
		REQUIRE(train_step(&a.enc, &a.head, &a.student, &a.oe, &a.oh, &a.os, &a.rng, 16, &e) ==
		        0, "%s", e.msg);
	REQUIRE(setup_create(&b, 16, 1, &e) == 0, "%s", e.msg);
	for (int i = 0; i < 2; i++)
		REQUIRE(train_step(&b.enc, &b.head, &b.student, &b.oe, &b.oh, &b.os, &b.rng, 16, &e) ==
		        0, "%s", e.msg);
	struct nn_model m, l;
	view(&m, &b, 2);
	const char *p = path_in_tmp("resume.model");
	REQUIRE(nn_model_save(p, &m, &e) == 0, "%s", e.msg);
	setup_free(&b);
	REQUIRE(nn_model_load(p, be, &l, &e) == 0, "%s", e.msg);
	struct rng r = l.rngs[0];
	for (int i = 0; i < 2; i++)
		REQUIRE(train_step(l.mods[0], l.mods[1], l.mods[2], l.opts[0], l.opts[1], l.opts[2], &r,
		                   16, &e) == 0, "%s", e.msg);
	struct nn_module *am[3] = {&a.enc, &a.head, &a.student};
	for (int i = 0; i < 3; i++) {
		CHECK(bits_equal(am[i]->w, l.mods[i]->w, am[i]->nparams), "module %d weights", i);
		CHECK(bits_equal(am[i]->state, l.mods[i]->state, am[i]->nstate), "module %d state", i);
	}
	nn_model_free(&l);
	setup_free(&a);
}

/* ---- bad files ---- */

static uint8_t *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(*n);
	if (fread(b, 1, *n, f) != *n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	return b;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* recomputes the header and every section checksum (to test the checks behind them) */
static void refresh_crcs(uint8_t *b, size_t n)
{
	wr32(b + 32, (uint32_t)crc32(0, b, 32));
	size_t off = 40;
	while (off + 16 <= n) {
		uint64_t len = rd32(b + off + 8) | (uint64_t)rd32(b + off + 12) << 32;
		if (len > n - off - 16)
			break;
		wr32(b + off + 4, (uint32_t)crc32(0, b + off + 16, (uInt)len));
		off += 16 + (size_t)len;
	}
}

/* offset of the first section with this tag */
static size_t find_section(const uint8_t *b, size_t n, const char *tag)
{
	size_t off = 40;
	while (off + 16 <= n) {
		if (!memcmp(b + off, tag, 4))
			return off;
		uint64_t len = rd32(b + off + 8) | (uint64_t)rd32(b + off + 12) << 32;
		off += 16 + (size_t)len;
	}
	return 0;
}

static int load_buf(const uint8_t *b, size_t n, struct err *e)
{
	struct nn_model l;
	err_clear(e);
	int rc = nn_model_load_mem(b, n, "bad.model", be, &l, e);
	if (rc == 0)
		nn_model_free(&l);
	return rc;
}

static int write_small(const char *p, int D, int nopt, struct err *e)
{
	struct setup s;
	int rc = setup_create(&s, D, 0, e);
	if (rc < 0)
		return rc;
	struct nn_model m;
	memset(&m, 0, sizeof m);
	m.config = "encoder=mlp\nD=4\n";
	m.nmodules = 1;
	m.mods[0] = &s.enc;
	m.opts[0] = nopt ? NULL : &s.oe;
	m.nrngs = 1;
	m.rngs[0] = s.rng;
	m.epoch = 3;
	rc = nn_model_save(p, &m, e);
	setup_free(&s);
	return rc;
}

static void test_bad_files(void)
{
	struct err e = {0};
	const char *p = path_in_tmp("small.model");
	REQUIRE(write_small(p, 4, 0, &e) == 0, "%s", e.msg);
	size_t n;
	uint8_t *orig = slurp(p, &n), *b = malloc(n);
	REQUIRE(orig && b, "cannot read back");
	CHECK(load_buf(orig, n, &e) == 0, "the good file fails: %s", e.msg);

	/* truncated at every interesting length */
	size_t cuts[] = {0, 7, 39, 40, 50, 56, 100, n / 2, n - 9, n - 1};
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		int rc = load_buf(orig, cuts[i], &e);
		CHECK(rc == ERR_FORMAT && strstr(e.msg, "bad.model: byte "), "cut at %zu: %d %s",
		      cuts[i], rc, e.msg);
	}
	CHECK(load_buf(orig, n - 1, &e) < 0 && strstr(e.msg, "truncated"), "%s", e.msg);

	/* a flipped bit in the weights: the MODL checksum */
	memcpy(b, orig, n);
	b[n / 2] ^= 0x10;
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "checksum"), "%s", e.msg);
	/* in the header */
	memcpy(b, orig, n);
	b[20] ^= 1;
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "header crc"), "%s", e.msg);
	/* not a model */
	memcpy(b, orig, n);
	b[0] = 'X';
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "magic"), "%s", e.msg);

	/* newer version */
	memcpy(b, orig, n);
	wr32(b + 8, 2);
	refresh_crcs(b, n);
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "byte 8: version") &&
	      strstr(e.msg, "newer"), "%s", e.msg);

	/* another architecture: the encoder input D changed from 4 to 5 */
	memcpy(b, orig, n);
	size_t mo = find_section(b, n, "MODL");
	REQUIRE(mo > 0, "no MODL");
	CHECK(rd32(b + mo + 16 + 8) == 4, "D at %zu is %u", mo + 24, rd32(b + mo + 24));
	wr32(b + mo + 16 + 8, 5);
	refresh_crcs(b, n);
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "another architecture") &&
	      strstr(e.msg, "fc.weight"), "%s", e.msg);
	/* an unknown module kind */
	memcpy(b, orig, n);
	wr32(b + mo + 16 + 4, 99);
	refresh_crcs(b, n);
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "module kind"), "%s", e.msg);
	/* a kind that cannot take this input */
	memcpy(b, orig, n);
	wr32(b + mo + 16 + 4, NN_ENC_CIFAR);
	refresh_crcs(b, n);
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "cifar"), "%s", e.msg);

	/* sizes beyond the file or the limits, before any allocation */
	memcpy(b, orig, n);
	wr32(b + mo + 8, 0xFFFFFFF0u);
	wr32(b + mo + 12, 0x0FFFFFFFu);
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "section length"), "%s", e.msg);
	memcpy(b, orig, n);
	wr32(b + mo + 16 + 24, 1u << 30);
	refresh_crcs(b, n);
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "tensor count"), "%s", e.msg);
	memcpy(b, orig, n);
	wr32(b + 40 + 8, 1u << 30); /* CONF length */
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "section length"), "%s", e.msg);
	/* the file size in the header */
	memcpy(b, orig, n);
	wr32(b + 16, (uint32_t)n + 1);
	refresh_crcs(b, n);
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "file size"), "%s", e.msg);
	/* optimizer of the wrong size */
	memcpy(b, orig, n);
	size_t oo = find_section(b, n, "OPTM");
	REQUIRE(oo > 0, "no OPTM");
	wr32(b + oo + 16 + 48, 12345);
	refresh_crcs(b, n);
	CHECK(load_buf(b, n, &e) == ERR_FORMAT && strstr(e.msg, "optimizer size"), "%s", e.msg);

	/* the file loader names the path */
	struct nn_model l;
	err_clear(&e);
	CHECK(nn_model_load(path_in_tmp("missing.model"), be, &l, &e) == ERR_IO &&
	      strstr(e.msg, "missing.model"), "%s", e.msg);
	free(orig);
	free(b);
}

static void test_atomic_save(void)
{
	/* saving over an existing file into a directory that vanished fails
	 * without touching anything; a good save replaces the file whole */
	struct err e = {0};
	const char *p = path_in_tmp("atomic.model");
	REQUIRE(write_small(p, 3, 0, &e) == 0, "%s", e.msg);
	size_t n1, n2;
	uint8_t *a = slurp(p, &n1);
	REQUIRE(write_small(p, 5, 1, &e) == 0, "%s", e.msg);
	uint8_t *b = slurp(p, &n2);
	CHECK(a && b && n1 != n2, "file not replaced (%zu, %zu)", n1, n2);
	CHECK(load_buf(b, n2, &e) == 0, "%s", e.msg);
	err_clear(&e);
	CHECK(write_small(path_in_tmp("no/such/dir/x.model"), 3, 0, &e) == ERR_IO, "%s", e.msg);
	free(a);
	free(b);
}

static void test_write_fuzz_seeds(void)
{
	const char *dir = getenv("WENO_WRITE_FUZZ_SEEDS");
	struct err e = {0};
	char p[600];
	snprintf(p, sizeof p, "%s/mlp1-adam.model", dir);
	CHECK(write_small(p, 1, 0, &e) == 0, "%s", e.msg);
	snprintf(p, sizeof p, "%s/mlp2-noopt.model", dir);
	CHECK(write_small(p, 2, 1, &e) == 0, "%s", e.msg);
}

int main(void)
{
	nn_set_threads(2);
	RUN(test_roundtrip);
	RUN(test_non_finite_refused);
	RUN(test_resume_is_bit_identical);
	RUN(test_bad_files);
	RUN(test_atomic_save);
	if (getenv("WENO_WRITE_FUZZ_SEEDS"))
		RUN(test_write_fuzz_seeds);
	return check_summary();
}
