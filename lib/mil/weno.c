/* weno.c - the WENO trainer and scorer, see weno.h and README.md here */
#include "weno.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../base/afile.h"
#include "metrics.h"
#include "weno_test.h"
#include "../base/progress.h"
#include "../base/rng.h"
#include "../base/version.h"

#define EPS 1e-5
#define EVAL_CHUNK 512
#define EXTRA_MAGIC 0x574e4f31u  /* "WNO1" */
#define EXTRA2_MAGIC 0x574e4f32u /* "WNO2": with the --keep-best metrics */

/* RNG streams: (epoch + 1) * 16 + purpose; stream 0 initialises the nets. */
enum { RS_TEACHER_ORDER = 1, RS_TEACHER_DROP = 2, RS_STUDENT_ORDER = 3, RS_STUDENT_DROP = 4 };

static void epoch_rng(struct rng *r, const struct weno_conf *c, int epoch, int purpose)
{
	rng_seed(r, c->seed, (uint64_t)(epoch + 1) * 16 + (uint64_t)purpose);
}

/* ---------------- configuration ---------------- */

static const char *METHODS[] = {"weno", "teacher", "supervised", "meanpool", "maxpool"};
static const char *HPMS[] = {"off", "threshold", "topk"};
static const char *SELECTS[] = {"student_bag", "teacher_bag", "student_inst", "teacher_inst", "last"};

const char *weno_method_name(int m)
{
	return m >= 0 && m <= WENO_MAXPOOL ? METHODS[m] : "?";
}

int weno_method_parse(const char *s)
{
	for (int i = 0; i <= WENO_MAXPOOL; i++)
		if (!strcmp(s, METHODS[i]))
			return i;
	return -1;
}

void weno_conf_default(struct weno_conf *c)
{
	memset(c, 0, sizeof *c);
	c->method = WENO_WENO;
	c->teacher = NN_HEAD_ABMIL;
	c->encoder = NN_ENC_FMNIST;
	c->shared = 1;
	c->epochs = 50;
	c->w = 0.1f;
	c->hpm = WENO_HPM_OFF;
	c->hpm_tau = 0.5f;
	c->hpm_epoch = 10;
	c->hpm_k = 10;
	c->pl_dropout = 1;
	c->head_dropout = 0.5f;
	c->batch = 256;
	c->accum = 1;
	nn_optim_conf_default(&c->opt, NN_OPTIM_SGD);
	c->select = WENO_SEL_STUDENT_BAG;
	c->pos_threshold = 0.5;
}

/* shortest text that reads back as the same float */
static void fmt_float(char *buf, size_t n, double v, int is_float)
{
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, n, "%.*g", p, v);
		double back = strtod(buf, NULL);
		if (is_float ? (float)back == (float)v : back == v)
			return;
	}
}

static int pick(const char *const *names, int count, const char *v);

size_t weno_conf_format(const struct weno_conf *c, char *buf, size_t cap)
{
	char f[8][40];
	fmt_float(f[0], 40, c->w, 1);
	fmt_float(f[1], 40, c->hpm_tau, 1);
	fmt_float(f[2], 40, c->head_dropout, 1);
	fmt_float(f[3], 40, c->student_dropout, 1);
	fmt_float(f[4], 40, c->opt.lr, 1);
	fmt_float(f[5], 40, c->opt.momentum, 1);
	fmt_float(f[6], 40, c->opt.weight_decay, 1);
	fmt_float(f[7], 40, c->pos_threshold, 0);
	int n = snprintf(buf, cap,
	                 "method=%s\nteacher=%s\nencoder=%s\nshared=%d\nepochs=%d\nseed=%llu\nw=%s\nhpm=%s\n"
	                 "hpm_tau=%s\nhpm_epoch=%d\nhpm_k=%d\npl_dropout=%d\nhead_dropout=%s\nstudent_dropout=%s\n"
	                 "batch=%d\naccum=%d\noptim=%s\nlr=%s\nmomentum=%s\nweight_decay=%s\nselect=%s\n"
	                 "eval_test=%d\npos_threshold=%s\n",
	                 weno_method_name(c->method), nn_module_kind_name(c->teacher), nn_module_kind_name(c->encoder),
	                 c->shared, c->epochs, (unsigned long long)c->seed, f[0], HPMS[c->hpm], f[1], c->hpm_epoch,
	                 c->hpm_k, c->pl_dropout, f[2], f[3], c->batch, c->accum,
	                 c->opt.kind == NN_OPTIM_ADAM ? "adam" : "sgd", f[4], f[5], f[6], SELECTS[c->select],
	                 c->eval_test, f[7]);
	if (n < 0)
		return 0;
	/* written only when set: models of runs without it keep their bytes */
	for (int i = 0, first = 1; i < WENO_SEL_LAST && c->keep && (size_t)n < cap; i++)
		if (c->keep & (1u << i)) {
			int k = snprintf(buf + n, cap - (size_t)n, "%s%s", first ? "keep=" : ",", SELECTS[i]);
			n += k > 0 ? k : 0;
			first = 0;
		}
	if (c->keep && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, "\n");
	if (c->eval_teacher_early && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, "eval_teacher_early=1\n");
	return (size_t)n < cap ? (size_t)n : cap - 1;
}

int weno_select_parse(const char *s)
{
	return pick(SELECTS, 5, s);
}

const char *weno_select_name(int sel)
{
	return sel >= 0 && sel < 5 ? SELECTS[sel] : NULL;
}

int weno_keep_parse(const char *s, unsigned *mask, const char **bad, int *badlen)
{
	*mask = 0;
	while (*s) {
		const char *end = strchr(s, ',');
		int len = end ? (int)(end - s) : (int)strlen(s);
		int i;
		for (i = 0; i < WENO_SEL_LAST; i++)
			if ((int)strlen(SELECTS[i]) == len && !strncmp(SELECTS[i], s, (size_t)len))
				break;
		if (i == WENO_SEL_LAST) {
			*bad = s;
			*badlen = len;
			return -1;
		}
		*mask |= 1u << i;
		s += len + (end != NULL);
	}
	return 0;
}

static int pick(const char *const *names, int count, const char *v)
{
	for (int i = 0; i < count; i++)
		if (!strcmp(names[i], v))
			return i;
	return -1;
}

int weno_conf_parse(struct weno_conf *c, const char *text, struct err *e)
{
	weno_conf_default(c);
	const char *p = text;
	while (p && *p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[512];
		snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
		p = nl ? nl + 1 : NULL;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		const char *k = line, *v = eq + 1;
		int bad = 0;
		if (!strcmp(k, "method"))
			bad = (c->method = weno_method_parse(v)) < 0;
		else if (!strcmp(k, "teacher"))
			bad = (c->teacher = nn_module_kind_parse(v)) != NN_HEAD_ABMIL && c->teacher != NN_HEAD_DSMIL;
		else if (!strcmp(k, "encoder"))
			bad = (c->encoder = nn_module_kind_parse(v)) < NN_ENC_FMNIST || c->encoder > NN_ENC_MLP;
		else if (!strcmp(k, "shared"))
			c->shared = atoi(v);
		else if (!strcmp(k, "epochs"))
			c->epochs = atoi(v);
		else if (!strcmp(k, "seed"))
			c->seed = strtoull(v, NULL, 10);
		else if (!strcmp(k, "w"))
			c->w = strtof(v, NULL);
		else if (!strcmp(k, "hpm"))
			bad = (c->hpm = pick(HPMS, 3, v)) < 0;
		else if (!strcmp(k, "hpm_tau"))
			c->hpm_tau = strtof(v, NULL);
		else if (!strcmp(k, "hpm_epoch"))
			c->hpm_epoch = atoi(v);
		else if (!strcmp(k, "hpm_k"))
			c->hpm_k = atoi(v);
		else if (!strcmp(k, "pl_dropout"))
			c->pl_dropout = atoi(v);
		else if (!strcmp(k, "head_dropout"))
			c->head_dropout = strtof(v, NULL);
		else if (!strcmp(k, "student_dropout"))
			c->student_dropout = strtof(v, NULL);
		else if (!strcmp(k, "batch"))
			c->batch = atoi(v);
		else if (!strcmp(k, "accum"))
			c->accum = atoi(v);
		else if (!strcmp(k, "optim")) {
			int kind = !strcmp(v, "adam") ? NN_OPTIM_ADAM : !strcmp(v, "sgd") ? NN_OPTIM_SGD : -1;
			bad = kind < 0;
			if (!bad) {
				struct nn_optim_conf o = c->opt;
				nn_optim_conf_default(&c->opt, kind);
				c->opt.lr = o.lr;
				c->opt.momentum = o.momentum;
				c->opt.weight_decay = o.weight_decay;
			}
		} else if (!strcmp(k, "lr"))
			c->opt.lr = strtof(v, NULL);
		else if (!strcmp(k, "momentum"))
			c->opt.momentum = strtof(v, NULL);
		else if (!strcmp(k, "weight_decay"))
			c->opt.weight_decay = strtof(v, NULL);
		else if (!strcmp(k, "select"))
			bad = (c->select = pick(SELECTS, 5, v)) < 0;
		else if (!strcmp(k, "keep")) {
			const char *b;
			int bl;
			bad = weno_keep_parse(v, &c->keep, &b, &bl) < 0;
		} else if (!strcmp(k, "eval_test"))
			c->eval_test = atoi(v);
		else if (!strcmp(k, "pos_threshold"))
			c->pos_threshold = strtod(v, NULL);
		else if (!strcmp(k, "eval_teacher_early"))
			c->eval_teacher_early = atoi(v);
		else if (!strncmp(k, "fit.", 4) || !strcmp(k, "in_c") || !strcmp(k, "in_h") || !strcmp(k, "in_w") ||
		         !strcmp(k, "modules") || !strcmp(k, "version") || !strcmp(k, "tool"))
			continue; /* read elsewhere, or provenance */
		else
			return err_set(e, ERR_FORMAT, "model configuration: unknown key '%s'", k);
		if (bad)
			return err_set(e, ERR_FORMAT, "model configuration: bad value '%s' for '%s'", v, k);
	}
	return 0;
}

/* ---------------- shared state: networks and buffers ---------------- */

struct nets {
	const struct nn_backend *be;
	int method, teacher_kind;
	struct nn_module *enc_s, *enc_t, *teacher, *student; /* enc_t == enc_s when shared */
	/* device buffers */
	float *dx, *feat_s, *feat_t, *dfeat, *featk, *dfeatk, *dlog, *dsc, *dy;
	size_t dx_cap, feat_s_cap, feat_t_cap, dfeat_cap, featk_cap, dfeatk_cap, dlog_cap, dsc_cap, dy_cap;
	/* host buffers */
	float *h1, *h2;
	size_t h1_cap, h2_cap;
};

static int dgrow(const struct nn_backend *be, float **p, size_t *cap, size_t n, struct err *e)
{
	if (n <= *cap && *p)
		return 0;
	if (*p)
		be->free_(*p);
	*p = be->alloc(n ? n : 1);
	*cap = *p ? n : 0;
	if (!*p)
		return err_set(e, ERR_NOMEM, "out of memory allocating %zu floats", n);
	return 0;
}

static int hgrow(float **p, size_t *cap, size_t n, struct err *e)
{
	if (n <= *cap && *p)
		return 0;
	float *q = realloc(*p, (n ? n : 1) * sizeof *q);
	if (!q)
		return err_set(e, ERR_NOMEM, "out of memory allocating %zu floats", n);
	*p = q;
	*cap = n;
	return 0;
}

static void nets_free_buffers(struct nets *t)
{
	float **d[] = {&t->dx, &t->feat_s, &t->feat_t, &t->dfeat, &t->featk, &t->dfeatk, &t->dlog, &t->dsc, &t->dy};
	for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
		if (*d[i]) {
			t->be->free_(*d[i]);
			*d[i] = NULL;
		}
	free(t->h1);
	free(t->h2);
	t->h1 = t->h2 = NULL;
}

/* Encoder features of n instances in evaluation chunks: out [n, d] (device). */
static int encode_eval(struct nets *t, struct nn_module *enc, float **out, size_t *cap, const float *x,
                       uint64_t n, struct err *e)
{
	int d = enc->out_dim, in = enc->in_dim;
	int rc = dgrow(t->be, out, cap, (size_t)n * d, e);
	if (!rc)
		rc = dgrow(t->be, &t->dx, &t->dx_cap, (size_t)EVAL_CHUNK * in, e);
	for (uint64_t i = 0; !rc && i < n; i += EVAL_CHUNK) {
		int m = (int)(n - i < EVAL_CHUNK ? n - i : EVAL_CHUNK);
		t->be->upload(t->dx, x + i * in, (size_t)m * in);
		const float *f;
		rc = nn_encoder_forward(enc, &f, t->dx, m, e);
		if (!rc)
			t->be->copy(*out + i * d, f, (size_t)m * d);
	}
	return rc;
}

static double softmax1(const float z[2])
{
	double mx = z[0] > z[1] ? z[0] : z[1];
	double e0 = exp(z[0] - mx), e1 = exp(z[1] - mx);
	return e1 / (e0 + e1);
}

enum { SCORE_STUDENT = 1, SCORE_TEACHER = 2, SCORE_BOTH = 3 };

/* Evaluation-mode scores of one bag by the heads in which (SCORE_*); see
 * weno_score_bag. */
static int score_bag(struct nets *t, int which, const float *x, uint64_t n, float *inst_s, float *inst_t,
                     double *bag_s, double *bag_t, struct err *e)
{
	*bag_s = *bag_t = NAN;
	for (uint64_t i = 0; i < n; i++)
		inst_s[i] = inst_t[i] = NAN;
	if (!n)
		return 0;
	int rc = 0, student = t->student && (which & SCORE_STUDENT);
	if (student) {
		nn_module_set_train(t->enc_s, 0);
		nn_module_set_train(t->student, 0);
		rc = encode_eval(t, t->enc_s, &t->feat_s, &t->feat_s_cap, x, n, e);
		for (uint64_t i = 0; !rc && i < n; i += EVAL_CHUNK) {
			int m = (int)(n - i < EVAL_CHUNK ? n - i : EVAL_CHUNK);
			rc = nn_head_scores(t->student, inst_s + i, t->feat_s + i * t->enc_s->out_dim, m, NULL, e);
		}
		if (!rc) {
			double mx = 0, mean = 0;
			for (uint64_t i = 0; i < n; i++) {
				mx = i == 0 || inst_s[i] > mx ? inst_s[i] : mx;
				mean += inst_s[i];
			}
			mean /= (double)n;
			*bag_s = t->method == WENO_MEANPOOL ? mean : mx;
		}
	}
	if (!rc && t->teacher && (which & SCORE_TEACHER)) {
		nn_module_set_train(t->enc_t, 0);
		nn_module_set_train(t->teacher, 0);
		const float *feat = t->feat_s;
		if (t->enc_t != t->enc_s || !student) {
			rc = encode_eval(t, t->enc_t, &t->feat_t, &t->feat_t_cap, x, n, e);
			feat = t->feat_t;
		}
		if (!rc)
			rc = nn_head_forward(t->teacher, feat, (int)n, NULL, e);
		if (!rc) {
			float z[2];
			t->be->download(z, t->teacher->logits, 2);
			*bag_t = softmax1(z);
			if (t->teacher_kind == NN_HEAD_ABMIL) {
				t->be->download(inst_t, t->teacher->scores, n);
			} else {
				rc = hgrow(&t->h1, &t->h1_cap, 2 * n, e);
				if (!rc) {
					t->be->download(t->h1, t->teacher->scores, 2 * n);
					for (uint64_t i = 0; i < n; i++)
						inst_t[i] = t->h1[2 * i + 1];
				}
			}
		}
	}
	return rc;
}

/* ---------------- the trainer ---------------- */

struct trainer {
	struct nets n;
	const struct weno_conf *c;
	struct dataset *ds;
	struct nn_optim *o_enc_s, *o_enc_t, *o_teacher, *o_student;
	struct nn_model model;      /* modules and optimizers, for saving */
	int owned;                  /* modules created here (else loaded) */
	float *xbuf;
	size_t xbuf_cap;
	struct bag_inst *ibuf;
	size_t ibuf_cap;
	const struct weno_fit_opts *o;
	double best_metric;
	int best_epoch;
	double keep_metric[WENO_SEL_LAST]; /* the best of each --keep-best metric */
	int keep_epoch[WENO_SEL_LAST];
	struct progress pr;
	uint64_t done_units;
	struct weno_conf conf;      /* c's copy, that the test hooks may change */
	struct weno_order order;    /* WENO_TEST_ORDER */
	FILE *trace;                /* WENO_TEST_TRACE */
};

static void trace(const struct trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* a line of the test trace (weno.h), when one is kept */
static void trace(const struct trainer *t, const char *fmt, ...)
{
	if (!t->trace)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(t->trace, fmt, ap);
	va_end(ap);
}

static int stop_requested(const struct trainer *t, struct err *e)
{
	if (t->o->stop && *t->o->stop)
		return err_set(e, ERR_INTERRUPTED, "interrupted: stopped before the epoch ended; the last checkpoint "
		               "is intact\nhint: continue with --resume");
	return 0;
}

static int load_bag(struct trainer *t, uint32_t b, const float **x, const struct bag_inst **inst, uint64_t *n,
                    struct err *e)
{
	return dataset_load_bag(t->ds, b, x, inst, n, &t->xbuf, &t->xbuf_cap, &t->ibuf, &t->ibuf_cap, e);
}

static int check_finite(double v, const char *what, int epoch, long step, const char *bag, struct err *e)
{
	if (isfinite(v))
		return 0;
	return err_set(e, ERR_NUMERIC, "epoch %d, %s step %ld (bag '%s'): the loss is %s; training stopped, "
	               "the last good checkpoint is kept\nhint: lower --lr", epoch + 1, what, step, bag,
	               isnan(v) ? "NaN" : "infinite");
}

struct idx_score {
	float s;
	int i;
};

static int cmp_idx_score(const void *a, const void *b)
{
	const struct idx_score *x = a, *y = b;
	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	return x->i - y->i;
}

/* Hard positive mining: which instances of a positive bag the teacher sees.
 * q [n] student positive probabilities; keep [n] out; returns the count. */
static int hpm_select(const struct weno_conf *c, const float *q, int n, int *keep, struct idx_score *tmp)
{
	int k = 0;
	if (c->hpm == WENO_HPM_THRESHOLD) {
		int most = 0;
		for (int i = 0; i < n; i++) {
			if (q[i] <= c->hpm_tau)
				keep[k++] = i;
			if (q[i] > q[most])
				most = i;
		}
		if (!k)
			keep[k++] = most; /* all would go: keep the single most positive */
		return k;
	}
	for (int i = 0; i < n; i++)
		tmp[i] = (struct idx_score){q[i], i};
	qsort(tmp, (size_t)n, sizeof *tmp, cmp_idx_score);
	k = c->hpm_k < n ? c->hpm_k : n;
	for (int i = 0; i < k; i++)
		keep[i] = tmp[i].i;
	/* keep the bag's order */
	for (int a = 1; a < k; a++)
		for (int b = a; b > 0 && keep[b - 1] > keep[b]; b--) {
			int s = keep[b];
			keep[b] = keep[b - 1];
			keep[b - 1] = s;
		}
	return k;
}

/* Teacher loss and its gradient on the host (README.md here).  z: bag
 * logits [2]; c: DSMIL instance logits [m,2] (NULL for ABMIL); dz [2] and
 * dc [m,2] (DSMIL) written. */
static double teacher_loss(int kind, int Y, const float *z, const float *c, int m, float *dz, float *dc,
                           int *crit)
{
	if (kind == NN_HEAD_ABMIL) {
		double p = softmax1(z);
		double L = -(Y * log(p + EPS) + (1 - Y) * log(1 - p + EPS));
		double dp = -(Y / (p + EPS)) + (1 - Y) / (1 - p + EPS);
		dz[1] = (float)(dp * p * (1 - p));
		dz[0] = -dz[1];
		return L;
	}
	/* DSMIL: 0.5 CE(bag logits, Y) + 0.5 CE(c[i*], Y), i* = argmax c[:,1] */
	int is = 0;
	for (int i = 1; i < m; i++)
		if (c[2 * i + 1] > c[2 * is + 1])
			is = i;
	*crit = is;
	double p = softmax1(z), q = softmax1(c + 2 * is);
	double L = 0.5 * -log(Y ? p : 1 - p) + 0.5 * -log(Y ? q : 1 - q);
	dz[1] = (float)(0.5 * (p - Y));
	dz[0] = -dz[1];
	memset(dc, 0, (size_t)m * 2 * sizeof *dc);
	dc[2 * is + 1] = (float)(0.5 * (q - Y));
	dc[2 * is] = -dc[2 * is + 1];
	return L;
}

/* The training bags in this epoch's order (one bag a step), and the
 * dropout stream of the pass.  *bags: the caller frees it. */
static int bag_order(const struct trainer *t, int epoch, uint32_t **bags, uint32_t *nb, struct rng *drop,
                     struct err *e)
{
	*bags = dataset_split(t->ds, SPLIT_TRAIN, nb);
	epoch_rng(drop, t->c, epoch, RS_TEACHER_DROP);
	if (!*bags)
		return err_set(e, ERR_NOMEM, "out of memory");
	if (t->o->test && t->o->test->order) {
		uint32_t *pos = malloc((*nb + 1) * sizeof *pos);
		int rc = pos ? weno_order_get(&t->order, t->o->test->order, 0, epoch, pos, *nb, e)
		             : err_set(e, ERR_NOMEM, "out of memory");
		for (uint32_t i = 0; !rc && i < *nb; i++)
			pos[i] = (*bags)[pos[i]];
		if (!rc)
			memcpy(*bags, pos, *nb * sizeof *pos);
		free(pos);
		return rc;
	}
	struct rng order;
	epoch_rng(&order, t->c, epoch, RS_TEACHER_ORDER);
	rng_shuffle(&order, *bags, *nb);
	return 0;
}

/* A teacher pass's running state: its dropout stream, what it adds up, and
 * the mining buffers. */
struct tpass {
	int epoch, hpm_on, pending;
	struct rng drop;
	double loss, mn, mx;
	uint64_t kept, pos_total, mined, mined_kept;
	int *keep;
	struct idx_score *tmp;
	size_t keep_cap;
};

/* Hard positive mining of one positive bag: the student scores the bag's
 * instances (features feat of x, n rows), and the rows the teacher sees
 * are copied to featk; *m set to their count. */
static int mine_bag(struct trainer *t, struct tpass *p, const float *x, const float *feat, int n, int *m,
                    struct err *e)
{
	struct nets *N = &t->n;
	int d = N->enc_t->out_dim;
	if ((size_t)n > p->keep_cap) {
		int *nk = realloc(p->keep, (size_t)n * sizeof *nk);
		if (nk)
			p->keep = nk;
		struct idx_score *nt = realloc(p->tmp, (size_t)n * sizeof *nt);
		if (nt)
			p->tmp = nt;
		if (!nk || !nt)
			return err_set(e, ERR_NOMEM, "out of memory");
		p->keep_cap = (size_t)n;
	}
	const float *fs = feat;
	int rc = 0;
	if (N->enc_s != N->enc_t) {
		rc = encode_eval(N, N->enc_s, &N->feat_s, &N->feat_s_cap, x, (uint64_t)n, e);
		fs = N->feat_s;
	}
	if (!rc)
		rc = hgrow(&N->h1, &N->h1_cap, (size_t)n, e);
	if (!rc)
		rc = nn_head_scores(N->student, N->h1, fs, n, NULL, e);
	if (!rc)
		*m = hpm_select(t->c, N->h1, n, p->keep, p->tmp);
	if (!rc)
		rc = dgrow(N->be, &N->featk, &N->featk_cap, (size_t)*m * d, e);
	for (int i = 0; !rc && i < *m; i++)
		N->be->copy(N->featk + (size_t)i * d, feat + (size_t)p->keep[i] * d, (size_t)d);
	return rc;
}

/* The teacher head on hin (m rows; the featk rows of mining or the whole
 * bag's n), the instance scores into the pass's range, the loss, and the
 * gradients down to the encoder (into its n rows). */
static int teacher_backward(struct trainer *t, struct tpass *p, int Y, const float *hin, int n, int m,
                            long step, const char *id, struct err *e)
{
	struct nets *N = &t->n;
	const struct nn_backend *be = N->be;
	int d = N->enc_t->out_dim, rc;
	if ((rc = nn_head_forward(N->teacher, hin, m, &p->drop, e)))
		return rc;
	/* instance scores before the step, for the pseudo-label range */
	size_t ns = N->teacher_kind == NN_HEAD_ABMIL ? (size_t)m : 2 * (size_t)m;
	if ((rc = hgrow(&N->h1, &N->h1_cap, ns, e)) || (rc = hgrow(&N->h2, &N->h2_cap, 2 * (size_t)m + 2, e)))
		return rc;
	be->download(N->h1, N->teacher->scores, ns);
	for (int i = 0; i < m; i++) {
		float s = N->teacher_kind == NN_HEAD_ABMIL ? N->h1[i] : N->h1[2 * i + 1];
		p->mn = s < p->mn ? s : p->mn;
		p->mx = s > p->mx ? s : p->mx;
	}
	float z[2], dz[2];
	be->download(z, N->teacher->logits, 2);
	int crit = 0;
	double L = teacher_loss(N->teacher_kind, Y, z, N->h1, m, dz, N->h2, &crit);
	if ((rc = check_finite(L, "teacher", p->epoch, step, id, e)))
		return rc;
	p->loss += L;
	trace(t, "tloss %d %ld %.9g %d\n", p->epoch + 1, step, L, m);
	float inv = 1.0f / (float)t->c->accum;
	dz[0] *= inv;
	dz[1] *= inv;
	if ((rc = dgrow(be, &N->dlog, &N->dlog_cap, 2, e)))
		return rc;
	be->upload(N->dlog, dz, 2);
	float *dsc = NULL;
	if (N->teacher_kind == NN_HEAD_DSMIL) {
		for (int i = 0; i < 2 * m; i++)
			N->h2[i] *= inv;
		if ((rc = dgrow(be, &N->dsc, &N->dsc_cap, 2 * (size_t)m, e)))
			return rc;
		be->upload(N->dsc, N->h2, 2 * (size_t)m);
		dsc = N->dsc;
	}
	if ((rc = dgrow(be, &N->dfeat, &N->dfeat_cap, (size_t)n * d, e)))
		return rc;
	be->zero(N->dfeat, (size_t)n * d);
	if (hin == N->featk) {
		if ((rc = dgrow(be, &N->dfeatk, &N->dfeatk_cap, (size_t)m * d, e)))
			return rc;
		be->zero(N->dfeatk, (size_t)m * d);
		nn_head_backward(N->teacher, N->dfeatk, N->dlog, dsc);
		for (int i = 0; i < m; i++)
			be->copy(N->dfeat + (size_t)p->keep[i] * d, N->dfeatk + (size_t)i * d, (size_t)d);
	} else {
		nn_head_backward(N->teacher, N->dfeat, N->dlog, dsc);
	}
	nn_encoder_backward(N->enc_t, NULL, N->dfeat);
	return 0;
}

/* One training bag through the encoder (mined when HPM is on and the bag
 * is positive) and the teacher, gradients accumulated; 1 when the bag is
 * empty (nothing done). */
static int teacher_bag(struct trainer *t, struct tpass *p, uint32_t b, long step, struct err *e)
{
	struct nets *N = &t->n;
	const char *id = t->ds->man.rows[b].bag_id;
	int Y = t->ds->man.rows[b].label;
	const float *x;
	const struct bag_inst *inst;
	uint64_t n64;
	int rc = load_bag(t, b, &x, &inst, &n64, e);
	int n = (int)n64;
	if (rc || n < 1)
		return rc ? rc : 1;
	if ((rc = dgrow(N->be, &N->dx, &N->dx_cap, (size_t)n * N->enc_t->in_dim, e)))
		return rc;
	N->be->upload(N->dx, x, (size_t)n * N->enc_t->in_dim);
	const float *feat, *hin;
	if ((rc = nn_encoder_forward(N->enc_t, &feat, N->dx, n, e)))
		return rc;
	hin = feat;
	int m = n;
	if (p->hpm_on && Y == 1) {
		if ((rc = mine_bag(t, p, x, feat, n, &m, e)))
			return rc;
		hin = N->featk;
		p->mined++;
		p->mined_kept += (uint64_t)m;
	}
	if (Y == 1) {
		p->kept += (uint64_t)m;
		p->pos_total += (uint64_t)n;
	}
	return teacher_backward(t, p, Y, hin, n, m, step, id, e);
}

static int teacher_pass(struct trainer *t, int epoch, struct weno_epoch_stats *st, struct err *e)
{
	const struct weno_conf *c = t->c;
	struct nets *N = &t->n;
	struct tpass p = {.epoch = epoch, .mn = INFINITY, .mx = -INFINITY};
	uint32_t nb, *bags;
	int rc = bag_order(t, epoch, &bags, &nb, &p.drop, e);
	if (rc) {
		free(bags);
		return rc;
	}
	nn_module_set_train(N->enc_t, 1);
	nn_module_set_train(N->teacher, 1);
	p.hpm_on = c->method == WENO_WENO && c->hpm != WENO_HPM_OFF && epoch > c->hpm_epoch;
	if (N->student)
		nn_module_set_train(N->student, 0);
	if (p.hpm_on && N->enc_s != N->enc_t)
		nn_module_set_train(N->enc_s, 0);
	/* a step per bag: the per-instance MLP steps inside its backward */
	if (c->accum == 1)
		nn_module_fuse_sgd(N->teacher, t->o_teacher);
	nn_module_zero_grad(N->enc_t);
	nn_module_zero_grad(N->teacher);
	for (uint32_t k = 0; !rc && k < nb; k++) {
		if ((rc = stop_requested(t, e)) || (rc = teacher_bag(t, &p, bags[k], (long)k + 1, e)) < 0)
			break;
		if (rc == 1) {
			rc = 0;
			continue;
		}
		if (++p.pending == c->accum || k + 1 == nb) {
			nn_optim_step(t->o_enc_t, N->enc_t);
			nn_optim_step(t->o_teacher, N->teacher);
			nn_module_zero_grad(N->enc_t);
			nn_module_zero_grad(N->teacher);
			p.pending = 0;
		}
		progress_update(&t->pr, ++t->done_units);
	}
	nn_module_unfuse_sgd(N->teacher);
	free(p.keep);
	free(p.tmp);
	free(bags);
	st->teacher_loss = nb ? p.loss / nb : NAN;
	st->pl_min = p.mn;
	st->pl_max = p.mx;
	st->kept = p.pos_total ? (double)p.kept / (double)p.pos_total : NAN;
	st->kept_bag = p.mined ? (double)p.mined_kept / (double)p.mined : NAN;
	trace(t, "bank %d %.9g %.9g\n", epoch + 1, p.mn, p.mx);
	return rc;
}

/* A student pass's state: every training instance's bag and index, the
 * epoch's order of them, the mini-batch on the host, and the sums. */
struct spass {
	int epoch, weno;
	uint32_t *ib, *ii, *perm;
	uint64_t k;
	float *xb, *yb;              /* [B, in_dim] pixels or features; [B] labels */
	int *lab;                    /* [B] true instance labels */
	struct rng drop;
	double loss;
	long steps;
};

static void spass_free(struct spass *s)
{
	free(s->ib);
	free(s->ii);
	free(s->perm);
	free(s->xb);
	free(s->yb);
	free(s->lab);
}

/* Every training instance once, shuffled across all training bags. */
static int instance_order(struct trainer *t, struct spass *s, struct err *e)
{
	uint32_t nb;
	uint32_t *bags = dataset_split(t->ds, SPLIT_TRAIN, &nb);
	uint64_t total = dataset_split_instances(t->ds, SPLIT_TRAIN);
	int in = t->n.enc_s->in_dim, B = t->c->batch;
	s->ib = malloc((total + 1) * sizeof *s->ib);
	s->ii = malloc((total + 1) * sizeof *s->ii);
	s->perm = malloc((total + 1) * sizeof *s->perm);
	s->xb = malloc((size_t)B * in * sizeof *s->xb);
	s->yb = malloc((size_t)B * sizeof *s->yb);
	s->lab = malloc((size_t)B * sizeof *s->lab);
	if (!bags || !s->ib || !s->ii || !s->perm || !s->xb || !s->yb || !s->lab) {
		free(bags);
		return err_set(e, ERR_NOMEM, "out of memory for %llu instances", (unsigned long long)total);
	}
	s->k = 0;
	for (uint32_t j = 0; j < nb; j++)
		for (uint64_t i = 0; i < t->ds->n[bags[j]]; i++) {
			s->ib[s->k] = bags[j];
			s->ii[s->k++] = (uint32_t)i;
		}
	free(bags);
	epoch_rng(&s->drop, t->c, s->epoch, RS_STUDENT_DROP);
	if (t->o->test && t->o->test->order)
		return weno_order_get(&t->order, t->o->test->order, 1, s->epoch, s->perm, s->k, e);
	for (uint64_t i = 0; i < s->k; i++)
		s->perm[i] = (uint32_t)i;
	struct rng order;
	epoch_rng(&order, t->c, s->epoch, RS_STUDENT_ORDER);
	rng_shuffle(&order, s->perm, s->k);
	return 0;
}

/* Instances s0 .. s0+m-1 of the order into xb, their labels into lab and
 * their bags' labels into yb. */
static int gather_batch(struct trainer *t, struct spass *s, uint64_t s0, int m, struct err *e)
{
	int in = t->n.enc_s->in_dim;
	for (int q = 0; q < m; q++) {
		uint32_t p = s->perm[s0 + (uint64_t)q];
		const float *x;
		const struct bag_inst *inst;
		uint64_t n;
		int rc = load_bag(t, s->ib[p], &x, &inst, &n, e);
		if (rc)
			return rc;
		memcpy(s->xb + (size_t)q * in, x + (size_t)s->ii[p] * in, (size_t)in * sizeof *s->xb);
		float l = inst[s->ii[p]].label;
		s->lab[q] = l >= t->c->pos_threshold;
		s->yb[q] = t->ds->man.rows[s->ib[p]].label; /* bag label, for pseudo labels */
		if (!s->weno && l < 0)
			return err_set(e, ERR_FORMAT, "%s: instance %u has no label; the supervised baseline needs "
			               "instance labels", t->ds->man.rows[s->ib[p]].path, s->ii[p]);
	}
	return 0;
}

/* Soft pseudo labels of the batch (features feat, m rows) from the
 * teacher's instance scores and the last teacher pass's range, in place of
 * the bag labels in yb; 0 in negative bags. */
static int pseudo_labels(struct trainer *t, struct spass *s, const float *feat, int m,
                         const struct weno_epoch_stats *st, struct err *e)
{
	struct nets *N = &t->n;
	const float *ft = feat;
	int rc = 0;
	if (N->enc_t != N->enc_s) {
		rc = encode_eval(N, N->enc_t, &N->feat_t, &N->feat_t_cap, s->xb, (uint64_t)m, e);
		ft = N->feat_t;
	}
	if (!rc)
		rc = nn_head_scores(N->teacher, N->h1, ft, m, &s->drop, e);
	if (rc)
		return rc;
	double range = st->pl_max - st->pl_min;
	for (int q = 0; q < m; q++) {
		double y = 0;
		if (s->yb[q] > 0.5f) {
			y = range > 0 ? (N->h1[q] - st->pl_min) / range : 0.5;
			y = y < EPS ? EPS : y > 1 - EPS ? 1 - EPS : y;
		}
		s->yb[q] = (float)y;
	}
	return 0;
}

/* One mini-batch of m instances from s0 on: forward, labels, loss,
 * backward and a step on the encoder and the student head. */
static int student_batch(struct trainer *t, struct spass *s, uint64_t s0, int m,
                         const struct weno_epoch_stats *st, struct err *e)
{
	const struct weno_conf *c = t->c;
	struct nets *N = &t->n;
	const struct nn_backend *be = N->be;
	int rc = gather_batch(t, s, s0, m, e);
	if (rc)
		return rc;
	be->upload(N->dx, s->xb, (size_t)m * N->enc_s->in_dim);
	const float *feat;
	if ((rc = nn_encoder_forward(N->enc_s, &feat, N->dx, m, e)))
		return rc;
	if (s->weno && (rc = pseudo_labels(t, s, feat, m, st, e)))
		return rc;
	if (!s->weno)
		for (int q = 0; q < m; q++)
			s->yb[q] = (float)s->lab[q];
	if ((rc = nn_head_forward(N->student, feat, m, &s->drop, e)))
		return rc;
	be->upload(N->dy, s->yb, (size_t)m);
	double L;
	if (s->weno) {
		L = be->loss_soft2(N->dlog, N->student->logits, N->dy, m, c->w, (float)EPS);
	} else {
		/* supervised: cross-entropy on the true labels (loss_soft2 with
		 * w = 0.5 is half of it, weighted equally; use CE directly) */
		float *dlab = N->dy;
		memcpy(N->h1, s->lab, (size_t)m * sizeof(int));
		be->upload(dlab, N->h1, (size_t)m); /* ints travel as 4-byte words */
		L = be->loss_ce(N->dlog, N->student->logits, (const int *)dlab, m, 2);
	}
	if ((rc = check_finite(L, "student", s->epoch, s->steps + 1, "(mini-batch)", e)))
		return rc;
	s->loss += L;
	s->steps++;
	trace(t, "sloss %d %ld %.9g\n", s->epoch + 1, s->steps, L);
	nn_module_zero_grad(N->enc_s);
	nn_module_zero_grad(N->student);
	be->zero(N->dfeat, (size_t)m * N->enc_s->out_dim);
	nn_head_backward(N->student, N->dfeat, N->dlog, NULL);
	nn_encoder_backward(N->enc_s, NULL, N->dfeat);
	nn_optim_step(t->o_enc_s, N->enc_s);
	nn_optim_step(t->o_student, N->student);
	return 0;
}

/* The student pass, and the supervised baseline: every training instance
 * once, shuffled across all training bags, in mini-batches. */
static int student_pass(struct trainer *t, int epoch, struct weno_epoch_stats *st, struct err *e)
{
	const struct weno_conf *c = t->c;
	struct nets *N = &t->n;
	const struct nn_backend *be = N->be;
	int in = N->enc_s->in_dim, d = N->enc_s->out_dim, B = c->batch;
	struct spass s = {.epoch = epoch, .weno = c->method == WENO_WENO};
	int rc = instance_order(t, &s, e);
	nn_module_set_train(N->enc_s, 1);
	nn_module_set_train(N->student, 1);
	if (s.weno) {
		nn_module_set_train(N->teacher, c->pl_dropout);
		if (N->enc_t != N->enc_s)
			nn_module_set_train(N->enc_t, 0);
	}
	nn_module_fuse_sgd(N->student, t->o_student); /* a step per mini-batch */
	if (!rc)
		rc = dgrow(be, &N->dx, &N->dx_cap, (size_t)B * in, e);
	if (!rc)
		rc = dgrow(be, &N->dy, &N->dy_cap, (size_t)B, e);
	if (!rc)
		rc = dgrow(be, &N->dlog, &N->dlog_cap, 2 * (size_t)B, e);
	if (!rc)
		rc = dgrow(be, &N->dfeat, &N->dfeat_cap, (size_t)B * d, e);
	if (!rc)
		rc = hgrow(&N->h1, &N->h1_cap, (size_t)B, e);
	for (uint64_t s0 = 0; !rc && s0 < s.k; s0 += (uint64_t)B) {
		int m = (int)(s.k - s0 < (uint64_t)B ? s.k - s0 : (uint64_t)B);
		if (m < 2)
			break; /* BatchNorm needs two instances; at most one is left out per epoch */
		if ((rc = stop_requested(t, e)) || (rc = student_batch(t, &s, s0, m, st, e)))
			break;
		t->done_units += (uint64_t)m / 16 + 1;
		progress_update(&t->pr, t->done_units);
	}
	nn_module_unfuse_sgd(N->student);
	spass_free(&s);
	st->student_loss = s.steps ? s.loss / (double)s.steps : NAN;
	return rc;
}

/* Mean- and max-pooling MIL: the student head as instance classifier, the
 * bag probability pooled from its instance probabilities, one bag a step. */
static int pool_pass(struct trainer *t, int epoch, struct weno_epoch_stats *st, struct err *e)
{
	const struct weno_conf *c = t->c;
	struct nets *N = &t->n;
	const struct nn_backend *be = N->be;
	uint32_t nb, *bags;
	struct rng drop;
	int rc = bag_order(t, epoch, &bags, &nb, &drop, e);
	if (rc) {
		free(bags);
		return rc;
	}
	nn_module_set_train(N->enc_s, 1);
	nn_module_set_train(N->student, 1);
	nn_module_zero_grad(N->enc_s);
	nn_module_zero_grad(N->student);
	int pending = 0, d = N->enc_s->out_dim;
	double loss = 0;
	for (uint32_t k = 0; !rc && k < nb; k++) {
		if ((rc = stop_requested(t, e)))
			break;
		uint32_t b = bags[k];
		int Y = t->ds->man.rows[b].label;
		const float *x;
		const struct bag_inst *inst;
		uint64_t n64;
		if ((rc = load_bag(t, b, &x, &inst, &n64, e)))
			break;
		int n = (int)n64;
		if (n < 1)
			continue;
		if ((rc = dgrow(be, &N->dx, &N->dx_cap, (size_t)n * N->enc_s->in_dim, e)) ||
		    (rc = dgrow(be, &N->dlog, &N->dlog_cap, 2 * (size_t)n, e)) ||
		    (rc = dgrow(be, &N->dfeat, &N->dfeat_cap, (size_t)n * d, e)) ||
		    (rc = hgrow(&N->h1, &N->h1_cap, 2 * (size_t)n, e)))
			break;
		be->upload(N->dx, x, (size_t)n * N->enc_s->in_dim);
		const float *feat;
		if ((rc = nn_encoder_forward(N->enc_s, &feat, N->dx, n, e)) ||
		    (rc = nn_head_forward(N->student, feat, n, &drop, e)))
			break;
		be->download(N->h1, N->student->logits, 2 * (size_t)n);
		double p = 0;
		int arg = 0;
		for (int i = 0; i < n; i++) {
			double q = softmax1(N->h1 + 2 * i);
			if (c->method == WENO_MEANPOOL)
				p += q / n;
			else if (i == 0 || q > p) {
				p = q;
				arg = i;
			}
		}
		double L = -(Y * log(p + EPS) + (1 - Y) * log(1 - p + EPS));
		if ((rc = check_finite(L, "bag", epoch, (long)k + 1, t->ds->man.rows[b].bag_id, e)))
			break;
		loss += L;
		double dp = (-(Y / (p + EPS)) + (1 - Y) / (1 - p + EPS)) / c->accum;
		for (int i = 0; i < n; i++) {
			double q = softmax1(N->h1 + 2 * i);
			double g = c->method == WENO_MEANPOOL ? dp / n : (i == arg ? dp : 0);
			float dz1 = (float)(g * q * (1 - q));
			N->h1[2 * i + 1] = dz1;
			N->h1[2 * i] = -dz1;
		}
		be->upload(N->dlog, N->h1, 2 * (size_t)n);
		be->zero(N->dfeat, (size_t)n * d);
		nn_head_backward(N->student, N->dfeat, N->dlog, NULL);
		nn_encoder_backward(N->enc_s, NULL, N->dfeat);
		if (++pending == c->accum || k + 1 == nb) {
			nn_optim_step(t->o_enc_s, N->enc_s);
			nn_optim_step(t->o_student, N->student);
			nn_module_zero_grad(N->enc_s);
			nn_module_zero_grad(N->student);
			pending = 0;
		}
		progress_update(&t->pr, ++t->done_units);
	}
	free(bags);
	st->teacher_loss = nb ? loss / nb : NAN;
	return rc;
}

/* AUCs of a split: student bag, teacher bag, student instance, teacher
 * instance; only those of the heads in which (SCORE_*) are set. */
static int evaluate(struct trainer *t, int split, int which, double auc[4], struct err *e)
{
	uint32_t nb;
	uint32_t *bags = dataset_split(t->ds, split, &nb);
	uint64_t total = dataset_split_instances(t->ds, split);
	double *bs = malloc((nb + 1) * sizeof *bs), *bt = malloc((nb + 1) * sizeof *bt);
	uint8_t *by = malloc(nb + 1), *iy = malloc(total + 1);
	double *is = malloc((total + 1) * sizeof *is), *it = malloc((total + 1) * sizeof *it);
	float *fs = NULL, *ft = NULL;
	size_t fcap = 0;
	int rc = 0;
	for (int i = 0; i < 4; i++)
		if (which & (i % 2 ? SCORE_TEACHER : SCORE_STUDENT))
			auc[i] = NAN;
	if (!bags || !bs || !bt || !by || !iy || !is || !it)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	uint64_t ni = 0;
	for (uint32_t k = 0; !rc && k < nb; k++) {
		const float *x;
		const struct bag_inst *inst;
		uint64_t n;
		if ((rc = load_bag(t, bags[k], &x, &inst, &n, e)))
			break;
		if (n > fcap) {
			free(fs);
			free(ft);
			fs = malloc(n * sizeof *fs);
			ft = malloc(n * sizeof *ft);
			fcap = n;
			if (!fs || !ft) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				break;
			}
		}
		if ((rc = score_bag(&t->n, which, x, n, fs, ft, &bs[k], &bt[k], e)))
			break;
		by[k] = (uint8_t)t->ds->man.rows[bags[k]].label;
		for (uint64_t i = 0; i < n; i++)
			if (inst[i].label >= 0 && ni < total) {
				iy[ni] = inst[i].label >= t->c->pos_threshold;
				is[ni] = fs[i];
				it[ni++] = ft[i];
			}
		progress_update(&t->pr, ++t->done_units);
	}
	struct auc_result r;
	if (!rc && nb) {
		if (!isnan(bs[0]) && !metrics_auc(bs, by, nb, 0, 0, &r, e))
			auc[0] = r.auc;
		if (!isnan(bt[0]) && !metrics_auc(bt, by, nb, 0, 0, &r, e))
			auc[1] = r.auc;
		if (ni && !isnan(is[0]) && !metrics_auc(is, iy, ni, 0, 0, &r, e))
			auc[2] = r.auc;
		if (ni && !isnan(it[0]) && !metrics_auc(it, iy, ni, 0, 0, &r, e))
			auc[3] = r.auc;
	}
	free(bags);
	free(bs);
	free(bt);
	free(by);
	free(iy);
	free(is);
	free(it);
	free(fs);
	free(ft);
	return rc;
}

/* ---------------- model files ---------------- */

struct extra {
	uint32_t magic;
	int32_t best_epoch;
	double best_metric;
};

/* with --keep-best: also the best epoch and metric of each kept metric */
struct extra2 {
	struct extra x;
	int32_t keep_epoch[WENO_SEL_LAST];
	double keep_metric[WENO_SEL_LAST];
};

static int make_config(const struct trainer *t, char **out, struct err *e)
{
	size_t cap = 16384 + (t->o->params ? strlen(t->o->params) * 2 : 0);
	char *buf = malloc(cap);
	if (!buf)
		return err_set(e, ERR_NOMEM, "out of memory");
	size_t n = weno_conf_format(t->c, buf, cap);
	const struct nets *N = &t->n;
	n += (size_t)snprintf(buf + n, cap - n, "in_c=%u\nin_h=%u\nin_w=%u\nmodules=%s\ntool=weno-fit\nversion=%s\n",
	                      t->ds->c, t->ds->h, t->ds->w,
	                      N->teacher && N->student ? (N->enc_t != N->enc_s ? "enc,teacher,student,enc_t" : "enc,teacher,student")
	                      : N->teacher ? "enc,teacher" : "enc,student", WENO_VERSION);
	for (const char *p = t->o->params; p && *p && n < cap - 1;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		n += (size_t)snprintf(buf + n, cap - n, "fit.%.*s\n", (int)len, p);
		p = nl ? nl + 1 : NULL;
	}
	*out = buf;
	return 0;
}

/* Saves the model; a checkpoint also carries the optimizers' state (the
 * best model, for scoring, does not: it is a third of the size). */
static int save(struct trainer *t, const char *path, int epoch, int checkpoint, struct err *e)
{
	struct extra2 x2;
	memset(&x2, 0, sizeof x2);
	x2.x = (struct extra){t->c->keep ? EXTRA2_MAGIC : EXTRA_MAGIC, t->best_epoch, t->best_metric};
	for (int i = 0; i < WENO_SEL_LAST; i++) {
		x2.keep_epoch[i] = t->keep_epoch[i];
		x2.keep_metric[i] = t->keep_metric[i];
	}
	struct nn_optim *opts[NN_MODEL_MAX_MODULES];
	memcpy(opts, t->model.opts, sizeof opts);
	if (!checkpoint)
		memset(t->model.opts, 0, sizeof t->model.opts);
	t->model.epoch = (uint64_t)epoch;
	t->model.extra = &x2;
	t->model.extra_size = t->c->keep ? sizeof x2 : sizeof x2.x; /* as before without --keep-best */
	int rc = nn_model_save(path, &t->model, e);
	t->model.extra = NULL;
	memcpy(t->model.opts, opts, sizeof opts);
	return rc;
}

static int nets_bind(struct nets *N, const struct weno_conf *c, struct nn_module **mods, int nmods)
{
	N->method = c->method;
	N->teacher_kind = c->teacher;
	N->enc_s = mods[0];
	N->teacher = N->student = NULL;
	int has_teacher = c->method == WENO_WENO || c->method == WENO_TEACHER;
	int has_student = c->method != WENO_TEACHER;
	int k = 1;
	if (has_teacher)
		N->teacher = k < nmods ? mods[k++] : NULL;
	if (has_student)
		N->student = k < nmods ? mods[k++] : NULL;
	N->enc_t = N->enc_s;
	if (has_teacher && has_student && !c->shared)
		N->enc_t = k < nmods ? mods[k++] : NULL;
	if ((has_teacher && !N->teacher) || (has_student && !N->student) || !N->enc_t || k != nmods)
		return -1;
	return 0;
}

static int create_nets(struct trainer *t, struct err *e)
{
	const struct weno_conf *c = t->c;
	const struct nn_backend *be = t->n.be;
	struct dataset *ds = t->ds;
	int has_teacher = c->method == WENO_WENO || c->method == WENO_TEACHER;
	int has_student = c->method != WENO_TEACHER;
	int nm = 1 + has_teacher + has_student + (has_teacher && has_student && !c->shared);
	struct rng init;
	rng_seed(&init, c->seed, 0);
	t->owned = 1;
	int rc = 0;
	for (int i = 0; i < nm && !rc; i++) {
		struct nn_module *m = calloc(1, sizeof *m);
		struct nn_optim *o = calloc(1, sizeof *o);
		if (!m || !o) {
			free(m);
			free(o);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		t->model.mods[i] = m;
		t->model.opts[i] = o;
		t->model.nmodules = i + 1;
		int kind;
		if (i == 0 || i == 3)
			kind = c->encoder;
		else if (i == 1 && has_teacher)
			kind = c->teacher;
		else
			kind = NN_HEAD_STUDENT;
		if (kind == c->encoder && (i == 0 || i == 3))
			rc = nn_encoder_create(m, be, kind, (int)ds->c, (int)ds->h, (int)ds->w, 16, e);
		else
			rc = nn_head_create(m, be, kind, t->model.mods[0]->out_dim,
			                    kind == NN_HEAD_STUDENT ? c->student_dropout : c->head_dropout, 16, e);
		if (!rc && t->o->test && t->o->test->hash_init)
			rc = weno_test_fill(m, 100 * (uint32_t)i, e);
		else if (!rc)
			nn_module_init(m, &init);
		if (!rc)
			rc = nn_optim_create(o, be, &c->opt, m->nparams, e);
	}
	if (rc)
		return rc;
	if (nets_bind(&t->n, c, t->model.mods, t->model.nmodules))
		return err_set(e, ERR_USAGE, "internal: module layout");
	return 0;
}

static void bind_optims(struct trainer *t)
{
	struct nets *N = &t->n;
	for (int i = 0; i < t->model.nmodules; i++) {
		struct nn_module *m = t->model.mods[i];
		struct nn_optim *o = t->model.opts[i];
		if (m == N->enc_s)
			t->o_enc_s = o;
		if (m == N->enc_t)
			t->o_enc_t = o;
		if (m == N->teacher)
			t->o_teacher = o;
		if (m == N->student)
			t->o_student = o;
	}
}

/* Rewrites the log atomically with lines for epochs up to `upto` kept. */
static int log_write(const char *path, char **lines, int nlines, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	for (int i = 0; i < nlines; i++)
		fputs(lines[i], af.fp);
	return afile_commit(&af, e);
}

/* the value selection metric sel gives an epoch (val[] is in the enum's order);
 * without validation -1: the latest epoch wins until one scores */
static double select_metric(int sel, const struct weno_epoch_stats *s)
{
	if (sel == WENO_SEL_LAST)
		return s->epoch;
	return isnan(s->val[sel]) ? -1 : s->val[sel];
}

static void fmt_auc(char *b, size_t n, double v)
{
	if (isnan(v))
		snprintf(b, n, "NA");
	else
		snprintf(b, n, "%.6f", v);
}

/* The training split must hold bags of both classes. */
static int check_training_set(const struct dataset *ds, struct err *e)
{
	uint32_t ntrain;
	free(dataset_split(ds, SPLIT_TRAIN, &ntrain));
	if (!ntrain)
		return err_set(e, ERR_USAGE, "%s: no training bags (split 'train')", ds->man.path);
	int labels[2] = {0, 0};
	for (uint32_t b = 0; b < ds->man.n; b++)
		if (ds->man.rows[b].split == SPLIT_TRAIN)
			labels[ds->man.rows[b].label]++;
	if (!labels[0] || !labels[1])
		return err_set(e, ERR_USAGE, "%s: the training bags are all %s; training needs both classes",
		               ds->man.path, labels[1] ? "positive" : "negative");
	return 0;
}

/* Continues from the checkpoint o->resume: its modules, optimizers and the
 * trainer's state (best epochs and metrics); *start is the epochs it has.
 * On failure nothing is left to free. */
static int resume(struct trainer *t, int *start, struct err *e)
{
	const struct weno_conf *c = t->c;
	const char *path = t->o->resume;
	int rc = nn_model_load(path, t->n.be, &t->model, e);
	if (rc)
		return rc;
	struct weno_conf fc;
	char a[8192], b[8192];
	if ((rc = weno_conf_parse(&fc, t->model.config ? t->model.config : "", e)))
		goto fail;
	fc.epochs = c->epochs; /* a resumed run may train longer */
	weno_conf_format(&fc, a, sizeof a);
	weno_conf_format(c, b, sizeof b);
	if (strcmp(a, b)) {
		rc = err_set(e, ERR_USAGE, "%s: trained with other options than these; resume with the same "
		             "options (only --epochs may change)", path);
		goto fail;
	}
	if (nets_bind(&t->n, c, t->model.mods, t->model.nmodules)) {
		rc = err_set(e, ERR_FORMAT, "%s: its modules do not fit method %s", path, weno_method_name(c->method));
		goto fail;
	}
	for (int i = 0; i < t->model.nmodules; i++)
		if (!t->model.opts[i]) {
			rc = err_set(e, ERR_USAGE, "%s: holds no optimizer state (a best model, not a checkpoint)"
			             "\nhint: resume from MODEL.last", path);
			goto fail;
		}
	const struct extra *x = t->model.extra;
	size_t want = c->keep ? sizeof(struct extra2) : sizeof *x;
	if (!x || t->model.extra_size != want || x->magic != (c->keep ? EXTRA2_MAGIC : EXTRA_MAGIC)) {
		rc = err_set(e, ERR_FORMAT, "%s: no trainer state; not a weno-fit checkpoint", path);
		goto fail;
	}
	t->best_metric = x->best_metric;
	t->best_epoch = x->best_epoch;
	if (c->keep) {
		const struct extra2 *x2 = t->model.extra;
		for (int i = 0; i < WENO_SEL_LAST; i++) {
			t->keep_metric[i] = x2->keep_metric[i];
			t->keep_epoch[i] = x2->keep_epoch[i];
		}
	}
	*start = (int)t->model.epoch;
	free(t->model.extra);
	t->model.extra = NULL;
	return 0;
fail:
	nn_model_free(&t->model);
	return rc;
}

/* The per-epoch log, rewritten whole after every epoch: a header, then a
 * line per epoch (those of a resumed run kept). */
struct fitlog {
	char **lines;
	int n;
};

static const char LOG_HEADER[] =
	"epoch\tteacher_loss\tstudent_loss\tpl_min\tpl_max\thpm_kept\tval_student_bag_auc\t"
	"val_teacher_bag_auc\tval_student_inst_auc\tval_teacher_inst_auc\ttest_student_bag_auc\t"
	"test_teacher_bag_auc\ttest_student_inst_auc\ttest_teacher_inst_auc\tseconds\tbest\n";

static void log_start(struct fitlog *lg, const char *path, int epochs, int start)
{
	lg->lines = calloc((size_t)epochs + 2, sizeof *lg->lines);
	lg->n = 0;
	if (!lg->lines)
		return;
	lg->lines[lg->n++] = strdup(LOG_HEADER);
	FILE *lf = start ? fopen(path, "r") : NULL;
	char *ln = NULL;
	size_t lc = 0;
	while (lf && getline(&ln, &lc, lf) > 0 && lg->n < epochs + 1) {
		int ep = atoi(ln);
		if (ep >= 1 && ep <= start)
			lg->lines[lg->n++] = strdup(ln);
	}
	free(ln);
	if (lf)
		fclose(lf);
}

static int log_epoch(struct fitlog *lg, const char *path, const struct weno_epoch_stats *st, struct err *e)
{
	char a[8][32], line[1024];
	for (int i = 0; i < 4; i++) {
		fmt_auc(a[i], 32, st->val[i]);
		fmt_auc(a[4 + i], 32, st->test[i]);
	}
	snprintf(line, sizeof line, "%d\t%.6g\t%.6g\t%.6g\t%.6g\t%.4f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%d\n",
	         st->epoch, st->teacher_loss, st->student_loss, st->pl_min, st->pl_max, st->kept, a[0], a[1], a[2],
	         a[3], a[4], a[5], a[6], a[7], st->seconds, st->best);
	lg->lines[lg->n++] = strdup(line);
	return log_write(path, lg->lines, lg->n, e);
}

static void log_free(struct fitlog *lg)
{
	for (int i = 0; lg->lines && i < lg->n; i++)
		free(lg->lines[i]);
	free(lg->lines);
}

/* The test trace's sums of every module after a pass. */
static void trace_modules(const struct trainer *t, int epoch, const char *pass)
{
	const struct nets *N = &t->n;
	for (int i = 0; t->trace && i < t->model.nmodules; i++) {
		const struct nn_module *m = t->model.mods[i];
		const char *name = m == N->teacher ? "teacher" : m == N->student ? "student" : m == N->enc_s ? "enc" : "enc_t";
		weno_test_trace_module(t->trace, epoch, pass, name, m);
	}
}

/* One epoch: the passes of the method, then the evaluations, with a
 * progress bar; st filled. */
static int run_epoch(struct trainer *t, int epoch, struct weno_epoch_stats *st, struct err *e)
{
	const struct weno_conf *c = t->c;
	struct dataset *ds = t->ds;
	memset(st, 0, sizeof *st);
	for (int i = 0; i < 4; i++)
		st->val[i] = st->test[i] = NAN;
	st->pl_min = st->pl_max = st->kept = st->kept_bag = st->student_loss = NAN;
	st->epoch = epoch + 1;
	double t0 = progress_now();
	char label[64];
	snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, c->epochs);
	uint32_t ntrain, nval, ntest = 0;
	free(dataset_split(ds, SPLIT_TRAIN, &ntrain));
	free(dataset_split(ds, SPLIT_VAL, &nval));
	uint64_t ntr = dataset_split_instances(ds, SPLIT_TRAIN);
	int student = c->method == WENO_WENO || c->method == WENO_SUPERVISED;
	uint64_t units = ntrain + (student ? ntr / 16 + ntr / (uint64_t)c->batch + 1 : 0) + nval;
	if (c->eval_test) {
		free(dataset_split(ds, SPLIT_TEST, &ntest));
		units += ntest;
	}
	t->done_units = 0;
	progress_start(&t->pr, label, units, "steps");
	int rc = 0, which = SCORE_BOTH;
	if (c->method == WENO_WENO || c->method == WENO_TEACHER)
		rc = teacher_pass(t, epoch, st, e);
	else if (c->method == WENO_MEANPOOL || c->method == WENO_MAXPOOL)
		rc = pool_pass(t, epoch, st, e);
	trace_modules(t, epoch, "teacher");
	if (!rc && c->method == WENO_WENO && c->eval_teacher_early) {
		/* the authors' scripts judge the teacher here, before the student pass */
		if (nval)
			rc = evaluate(t, SPLIT_VAL, SCORE_TEACHER, st->val, e);
		if (!rc && c->eval_test && ntest)
			rc = evaluate(t, SPLIT_TEST, SCORE_TEACHER, st->test, e);
		which = SCORE_STUDENT;
	}
	if (!rc && student) {
		rc = student_pass(t, epoch, st, e);
		trace_modules(t, epoch, "student");
	}
	if (!rc && nval)
		rc = evaluate(t, SPLIT_VAL, which, st->val, e);
	if (!rc && c->eval_test && ntest)
		rc = evaluate(t, SPLIT_TEST, which, st->test, e);
	progress_done(&t->pr);
	st->seconds = progress_now() - t0;
	trace(t, "auc %d teacher %.9g %.9g\nauc %d student %.9g %.9g\n", epoch + 1, st->val[1], st->val[3],
	      epoch + 1, st->val[0], st->val[2]);
	return rc;
}

/* After an epoch: the best model so far, the best by each --keep-best
 * metric, and the checkpoint. */
static int save_epoch(struct trainer *t, int epoch, struct weno_epoch_stats *st, struct err *e)
{
	const struct weno_conf *c = t->c;
	const char *out = t->o->out;
	int rc = 0;
	double metric = select_metric(c->select, st);
	/* ties go to the later epoch: with small validation sets an AUC
	 * saturates early (1.0 from epoch 1), and keeping the first such
	 * epoch kept a teacher that had not learned yet */
	if (metric >= t->best_metric || c->select == WENO_SEL_LAST) {
		t->best_metric = metric;
		t->best_epoch = epoch + 1;
		st->best = 1;
		rc = save(t, out, epoch + 1, 0, e);
	}
	/* --keep-best: the best model by each further metric, at MODEL.<metric> */
	for (int s = 0; !rc && s < WENO_SEL_LAST; s++) {
		if (!(c->keep & (1u << s)))
			continue;
		double v = select_metric(s, st);
		if (v >= t->keep_metric[s]) {
			char kp[4200];
			snprintf(kp, sizeof kp, "%s.%s", out, SELECTS[s]);
			t->keep_metric[s] = v;
			t->keep_epoch[s] = epoch + 1;
			rc = save(t, kp, epoch + 1, 0, e);
		}
	}
	if (!rc) {
		char last[4096];
		snprintf(last, sizeof last, "%s.last", out);
		rc = save(t, last, epoch + 1, 1, e);
	}
	return rc;
}

static void trainer_free(struct trainer *t)
{
	weno_order_free(&t->order);
	if (t->trace)
		fclose(t->trace);
	nets_free_buffers(&t->n);
	free(t->xbuf);
	free(t->ibuf);
	if (t->owned) {
		for (int i = 0; i < t->model.nmodules; i++) {
			nn_module_free(t->model.mods[i]);
			nn_optim_free(t->model.opts[i]);
			free(t->model.mods[i]);
			free(t->model.opts[i]);
		}
		free(t->model.config);
	} else {
		nn_model_free(&t->model);
	}
}

/* The test hooks' set-up: dropout off, the order file read, the trace
 * opened. */
static int test_start(struct trainer *t, struct err *e)
{
	const struct weno_test *h = t->o->test;
	if (!h)
		return 0;
	if (h->no_dropout)
		t->conf.head_dropout = t->conf.student_dropout = 0;
	int rc = h->order ? weno_order_load(&t->order, h->order, e) : 0;
	if (!rc && h->trace && !(t->trace = fopen(h->trace, "w")))
		rc = err_sys(e, ERR_IO, "WENO_TEST_TRACE: cannot open '%s'", h->trace);
	return rc;
}

int weno_fit(struct dataset *ds, const struct weno_conf *c, const struct weno_fit_opts *o, struct err *e)
{
	struct trainer t;
	memset(&t, 0, sizeof t);
	t.conf = *c;
	t.c = c = &t.conf;
	t.ds = ds;
	t.o = o;
	t.n.be = o->be;
	t.best_metric = -INFINITY;
	t.best_epoch = 0;
	for (int i = 0; i < WENO_SEL_LAST; i++)
		t.keep_metric[i] = -INFINITY;
	int rc = check_training_set(ds, e), start = 0;
	if (!rc)
		rc = test_start(&t, e);
	if (!rc && o->resume)
		rc = resume(&t, &start, e);
	else if (!rc)
		rc = create_nets(&t, e);
	if (!rc)
		rc = make_config(&t, &t.model.config, e);
	bind_optims(&t);
	if (!rc && (t.n.enc_s->in_dim != (int)ds->in_dim))
		rc = err_set(e, ERR_USAGE, "the model takes %d values per instance, the bags hold %u", t.n.enc_s->in_dim,
		             ds->in_dim);
	struct fitlog lg = {NULL, 0};
	if (!rc && o->log_path)
		log_start(&lg, o->log_path, c->epochs, start);
	for (int epoch = start; !rc && epoch < c->epochs; epoch++) {
		struct weno_epoch_stats st;
		if ((rc = run_epoch(&t, epoch, &st, e)))
			break;
		rc = save_epoch(&t, epoch, &st, e);
		if (!rc && lg.lines)
			rc = log_epoch(&lg, o->log_path, &st, e);
		if (o->on_epoch)
			o->on_epoch(&st, o->arg);
	}
	log_free(&lg);
	trainer_free(&t);
	return rc;
}

/* ---------------- scoring ---------------- */

int weno_model_load(struct weno_model *m, const char *path, const struct nn_backend *be, struct err *e)
{
	memset(m, 0, sizeof *m);
	int rc = nn_model_load(path, be, &m->file, e);
	if (rc)
		return rc;
	rc = weno_conf_parse(&m->conf, m->file.config ? m->file.config : "", e);
	if (rc) {
		err_set(e, rc, "%s: %s", path, e->msg);
		nn_model_free(&m->file);
		return rc;
	}
	char v[32];
	m->in_c = atoi(nn_model_config_get(&m->file, "in_c", v, sizeof v) ? v : "0");
	m->in_h = atoi(nn_model_config_get(&m->file, "in_h", v, sizeof v) ? v : "0");
	m->in_w = atoi(nn_model_config_get(&m->file, "in_w", v, sizeof v) ? v : "0");
	m->epoch = m->file.epoch;
	struct nets *N = calloc(1, sizeof *N);
	if (!N) {
		nn_model_free(&m->file);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	N->be = be;
	if (nets_bind(N, &m->conf, m->file.mods, m->file.nmodules)) {
		free(N);
		nn_model_free(&m->file);
		return err_set(e, ERR_FORMAT, "%s: its modules do not fit method %s; not a weno-fit model", path,
		               weno_method_name(m->conf.method));
	}
	m->priv = N;
	m->enc_s = N->enc_s;
	m->enc_t = N->enc_t;
	m->teacher = N->teacher;
	m->student = N->student;
	return 0;
}

void weno_model_free(struct weno_model *m)
{
	struct nets *N = m->priv;
	if (N) {
		nets_free_buffers(N);
		free(N);
	}
	nn_model_free(&m->file);
	memset(m, 0, sizeof *m);
}

int weno_score_bag(struct weno_model *m, const float *x, uint64_t n, float *inst_s, float *inst_t,
                   double *bag_s, double *bag_t, struct err *e)
{
	return score_bag(m->priv, SCORE_BOTH, x, n, inst_s, inst_t, bag_s, bag_t, e);
}
