/* test_weno_golden.c - weno-fit's trainer against the authors' training
 * loop, step for step.
 *
 * tests/golden/weno_golden.txt was written by tests/golden/make_weno_golden.py,
 * a PyTorch transcription of the authors' loop (shared/WENO-reference.md),
 * not of lib/mil/weno.c.  Each case gives a small set of feature bags
 * (their values from the integer hash, as below), the configuration, the
 * order of every teacher and student pass, and the trajectory the
 * transcription took.  This test writes the bags and a manifest, runs
 * weno_fit with the test hooks of weno.h (struct weno_test: weights from the
 * same hash, WENO_TEST_INIT=hash; the passes in the file's order,
 * WENO_TEST_ORDER; dropout off, WENO_TEST_DROPOUT=0, except in the case
 * abmil_dropout, whose masks the script drew as weno-fit's PCG32 streams do;
 * the trace, WENO_TEST_TRACE), with --eval-teacher-early (the authors judge
 * the teacher before the student pass), and compares the trace with the
 * golden lines:
 *   tloss/sloss (every step's loss; the rows the teacher saw, exactly),
 *   bank (the teacher pass's score range), sums/state (each tensor's sum
 *   and sum of |.| after each pass), auc (the validation AUCs).
 * and that weno_fit took as many teacher and student steps as the golden.
 *
 * Tolerances (float32 on both sides, different summation orders, growing
 * over ~50 SGD steps): a loss or a bank end |d| <= 2e-4 |ref| + 1e-6; a
 * tensor's sum |d| <= 2e-4 sum|ref| + 1e-7 n, its sum of |.| relatively
 * 2e-4; an AUC to 1e-9 (the scores would have to swap places).  The worst
 * ratio to the tolerance is printed per case; a mutation of the trainer
 * (pseudo labels not zeroed in negative bags, the range taken from another
 * pass, the teacher head in evaluation mode while labelling, a step on a
 * module that should not step) moves these by 10^2 to 10^6 times that.
 *
 * Regenerate: /usr/bin/python3 tests/golden/make_weno_golden.py (torch 1.13).
 */
#include <stdint.h>
#include <sys/stat.h>

#include "check.h"

#include "../../lib/data/bag.h"
#include "../../lib/data/dataset.h"
#include "../../lib/mil/weno.h"
#include "../../lib/nn/nn.h"

#define GOLDEN "tests/golden/weno_golden.txt"
#define MAXBAGS 32
#define MAXLINES 4096

static double hash_u(uint32_t i, uint32_t t)
{
	uint32_t x = i * 0x9E3779B1u + (t * 0x85EBCA77u + 0x27D4EB2Fu);
	x ^= x >> 16;
	x *= 0x7FEB352Du;
	x ^= x >> 15;
	x *= 0x846CA68Bu;
	x ^= x >> 16;
	return (double)(x >> 8) * (1.0 / 16777216.0);
}

struct gcase {
	char name[64];
	char conf[2048];             /* "key=value\n" for weno_conf_parse */
	int dim, pcg_dropout;
	int nbags;
	char split[MAXBAGS][8];
	int label[MAXBAGS];
	char labels[MAXBAGS][64];
	char *order;                 /* the "order" lines, as WENO_TEST_ORDER reads them */
	size_t order_len;
	char *lines[MAXLINES];       /* the expected trajectory */
	int nlines;
};

static void gcase_free(struct gcase *c)
{
	free(c->order);
	for (int i = 0; i < c->nlines; i++)
		free(c->lines[i]);
	memset(c, 0, sizeof *c);
}

static void append(char **buf, size_t *len, const char *s)
{
	size_t n = strlen(s);
	*buf = realloc(*buf, *len + n + 1);
	memcpy(*buf + *len, s, n + 1);
	*len += n;
}

/* Reads case `name` from the golden file; 0 when found. */
static int gcase_read(struct gcase *c, const char *name)
{
	memset(c, 0, sizeof *c);
	FILE *f = fopen(GOLDEN, "r");
	if (!f)
		return -1;
	char *line = NULL;
	size_t cap = 0;
	int in = 0, found = 0;
	while (getline(&line, &cap, f) > 0) {
		if (!strncmp(line, "case ", 5)) {
			char nm[64];
			sscanf(line, "case %63s", nm);
			in = !strcmp(nm, name);
			if (!in)
				continue;
			found = 1;
			snprintf(c->name, sizeof c->name, "%s", nm);
			size_t cl = 0;
			for (char *tok = strtok(line + 5 + strlen(nm), " \n"); tok; tok = strtok(NULL, " \n")) {
				if (!strncmp(tok, "dim=", 4))
					c->dim = atoi(tok + 4);
				else if (!strncmp(tok, "dropout=", 8))
					c->pcg_dropout = !strcmp(tok + 8, "pcg");
				else
					cl += (size_t)snprintf(c->conf + cl, sizeof c->conf - cl, "%s\n", tok);
			}
			continue;
		}
		if (!in)
			continue;
		if (!strncmp(line, "end", 3))
			break;
		if (!strncmp(line, "bag ", 4) && c->nbags < MAXBAGS) {
			int b = c->nbags++;
			sscanf(line, "bag %7s %d %63s", c->split[b], &c->label[b], c->labels[b]);
		} else if (!strncmp(line, "order ", 6)) {
			append(&c->order, &c->order_len, line + 6);
		} else if (c->nlines < MAXLINES) {
			c->lines[c->nlines++] = strdup(line);
		}
	}
	free(line);
	fclose(f);
	return found ? 0 : -1;
}

/* The case's bags (features: hash values, the first two shifted by 0.5 for
 * positive instances, as make_weno_golden.py's bag_features), a manifest
 * and the order file, in dir. */
static int write_data(const struct gcase *c, const char dir[600], struct err *e)
{
	char path[700];
	snprintf(path, sizeof path, "%s/manifest.tsv", dir);
	FILE *m = fopen(path, "w");
	if (!m)
		return err_sys(e, ERR_IO, "cannot write '%s'", path);
	fprintf(m, "bag_id\tlabel\tsplit\tpath\tn_instances\n");
	int rc = 0;
	for (int b = 0; b < c->nbags && !rc; b++) {
		int n = (int)strlen(c->labels[b]), D = c->dim;
		struct bag_header h;
		bag_header_init(&h);
		snprintf(h.id, sizeof h.id, "b%02d", b);
		h.label = c->label[b];
		h.kind = BAG_FEATURES;
		h.dim = (uint32_t)D;
		snprintf(path, sizeof path, "%s/b%02d.wbag", dir, b);
		struct bag_writer *w;
		rc = bag_writer_open(&w, path, &h, 0, 0, e);
		for (int i = 0; i < n && !rc; i++) {
			int lab = c->labels[b][i] == '1';
			float x[64];
			for (int k = 0; k < D; k++)
				x[k] = (float)(hash_u((uint32_t)(i * D + k), 2000u + (uint32_t)b) + (lab && k < 2 ? 0.5 : 0.0));
			struct bag_inst inst = {i, 0, 1.0f, (float)lab};
			rc = bag_writer_add(w, &inst, x, e);
		}
		if (!rc)
			rc = bag_writer_close(w, e);
		else
			bag_writer_abort(w);
		bag_header_free(&h);
		fprintf(m, "b%02d\t%d\t%s\tb%02d.wbag\t%d\n", b, c->label[b], c->split[b], b, n);
	}
	fclose(m);
	snprintf(path, sizeof path, "%s/order.txt", dir);
	FILE *o = fopen(path, "w");
	if (!o)
		return err_sys(e, ERR_IO, "cannot write '%s'", path);
	fputs(c->order, o);
	fclose(o);
	return rc;
}

/* the trace line whose first nkey fields are those of want */
static const char *find_line(char *const *lines, int n, const char *want, int nkey)
{
	size_t kl = 0;
	for (int k = 0; k < nkey && want[kl]; k++) {
		while (want[kl] && want[kl] != ' ')
			kl++;
		if (k + 1 < nkey && want[kl])
			kl++;
	}
	for (int i = 0; i < n; i++)
		if (!strncmp(lines[i], want, kl) && lines[i][kl] == ' ')
			return lines[i];
	return NULL;
}

static int count_tag(char *const *lines, int n, const char *tag)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += !strncmp(lines[i], tag, strlen(tag));
	return k;
}

/* the last nval numbers of a line */
static void last_values(const char *line, int nval, double *v)
{
	const char *p = line + strlen(line);
	for (int k = nval - 1; k >= 0; k--) {
		while (p > line && (p[-1] == '\n' || p[-1] == ' '))
			p--;
		while (p > line && p[-1] != ' ')
			p--;
		v[k] = strtod(p, NULL);
	}
}

/* ratio of |a - b| to its tolerance (NaN equal to NaN) */
static double off(double a, double b, double tol)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b) ? 0.0 : INFINITY;
	return fabs(a - b) / tol;
}

/* Compares the trace with the golden lines; the mismatches, and the worst
 * ratio to a tolerance in *worst. */
static int compare(const struct gcase *c, char *const *tr, int ntr, double *worst)
{
	int bad = 0;
	*worst = 0;
	for (int i = 0; i < c->nlines; i++) {
		const char *g = c->lines[i];
		char tag[8];
		sscanf(g, "%7s", tag);
		int nval = !strcmp(tag, "tloss") || !strcmp(tag, "bank") || !strcmp(tag, "auc") ? 2
		         : !strcmp(tag, "sloss") ? 1 : 3;
		int nkey = !strcmp(tag, "bank") ? 2 : !strcmp(tag, "sums") || !strcmp(tag, "state") ? 5 : 3;
		const char *t = find_line(tr, ntr, g, nkey);
		double want[3], got[3], r = 0;
		if (!t) {
			if (bad++ < 6)
				printf("     %s: no trace line for: %s", c->name, g);
			continue;
		}
		last_values(g, nval, want);
		last_values(t, nval, got);
		if (!strcmp(tag, "tloss")) {
			r = fmax(off(got[0], want[0], 2e-4 * fabs(want[0]) + 1e-6), got[1] == want[1] ? 0 : INFINITY);
		} else if (!strcmp(tag, "sloss")) {
			r = off(got[0], want[0], 2e-4 * fabs(want[0]) + 1e-6);
		} else if (!strcmp(tag, "bank")) {
			r = fmax(off(got[0], want[0], 2e-4 * fabs(want[0]) + 1e-6),
			         off(got[1], want[1], 2e-4 * fabs(want[1]) + 1e-6));
		} else if (!strcmp(tag, "auc")) {
			r = fmax(off(got[0], want[0], 1e-9), off(got[1], want[1], 1e-9));
		} else { /* sums, state: N SUM SUMABS */
			r = got[0] == want[0] ? 0 : INFINITY;
			r = fmax(r, off(got[1], want[1], 2e-4 * want[2] + 1e-7 * want[0]));
			r = fmax(r, off(got[2], want[2], 2e-4 * want[2] + 1e-7 * want[0]));
		}
		*worst = fmax(*worst, r);
		if (r > 1.0 && bad++ < 6)
			printf("     %s: %.1f x tolerance:\n       torch %s       ours  %s", c->name, r, g, t);
	}
	const char *tags[] = {"tloss ", "sloss "};
	for (int k = 0; k < 2; k++) {
		int a = count_tag(c->lines, c->nlines, tags[k]), b = count_tag(tr, ntr, tags[k]);
		if (a != b) {
			printf("     %s: %d %s lines, the golden has %d\n", c->name, b, tags[k], a);
			bad++;
		}
	}
	return bad;
}

static void run_case(const char *name)
{
	struct gcase c;
	if (gcase_read(&c, name))
		SKIP("cannot read case %s from %s (run from the repository root)", name, GOLDEN);
	char dir[600];
	snprintf(dir, sizeof dir, "%.500s/%.60s", check_tmpdir(), name);
	mkdir(dir, 0700);
	struct err e = {0};
	int rc = write_data(&c, dir, &e);
	struct weno_conf conf;
	char text[2300];
	snprintf(text, sizeof text, "%sencoder=mlp\nselect=last\neval_teacher_early=1\n", c.conf);
	if (!rc)
		rc = weno_conf_parse(&conf, text, &e);
	struct dataset ds;
	char path[700], order[700], trace[700], out[700];
	snprintf(path, sizeof path, "%s/manifest.tsv", dir);
	snprintf(order, sizeof order, "%s/order.txt", dir);
	snprintf(trace, sizeof trace, "%s/trace.txt", dir);
	snprintf(out, sizeof out, "%s/m.model", dir);
	if (!rc)
		rc = dataset_open(&ds, path, 64 << 20, &e);
	if (rc) {
		gcase_free(&c);
		REQUIRE(0, "%s: setting up: %s", name, e.msg);
	}
	struct weno_test hooks = {1, !c.pcg_dropout, order, trace};
	struct weno_fit_opts o = {0};
	o.out = out;
	o.be = &nn_cpu;
	o.quiet = 1;
	o.test = &hooks;
	rc = weno_fit(&ds, &conf, &o, &e);
	dataset_close(&ds);
	char *tr[MAXLINES];
	int ntr = 0;
	FILE *f = rc ? NULL : fopen(trace, "r");
	char *line = NULL;
	size_t cap = 0;
	while (f && ntr < MAXLINES && getline(&line, &cap, f) > 0)
		tr[ntr++] = strdup(line);
	free(line);
	if (f)
		fclose(f);
	double worst = 0;
	int bad = rc ? 0 : compare(&c, tr, ntr, &worst);
	CHECK(rc == 0, "%s: weno_fit: %s", name, e.msg);
	CHECK(bad == 0, "%s: %d lines differ from the authors' loop (worst at %.3g x tolerance)", name, bad, worst);
	if (!rc)
		printf("     %s: %d golden lines, worst at %.3g x tolerance\n", name, c.nlines, worst);
	for (int i = 0; i < ntr; i++)
		free(tr[i]);
	gcase_free(&c);
}

#define CASE(n)                         \
	static void n(void)             \
	{                               \
		run_case(#n);           \
	}
CASE(abmil_weno)
CASE(dsmil_weno)
CASE(abmil_hpm_threshold)
CASE(dsmil_hpm_topk)
CASE(abmil_separate)
CASE(abmil_teacher)
CASE(dsmil_teacher)
CASE(supervised)
CASE(abmil_momentum)
CASE(abmil_dropout)

/* the environment fills the hooks, and only the known values pass */
static void test_hooks_from_env(void)
{
	struct weno_test t;
	struct err e = {0};
	unsetenv("WENO_TEST_INIT");
	unsetenv("WENO_TEST_DROPOUT");
	unsetenv("WENO_TEST_ORDER");
	unsetenv("WENO_TEST_TRACE");
	CHECK(weno_test_from_env(&t, &e) == 0, "no hooks set");
	setenv("WENO_TEST_INIT", "hash", 1);
	setenv("WENO_TEST_DROPOUT", "0", 1);
	setenv("WENO_TEST_ORDER", "/x/order", 1);
	setenv("WENO_TEST_TRACE", "/x/trace", 1);
	CHECK(weno_test_from_env(&t, &e) == 1 && t.hash_init && t.no_dropout && !strcmp(t.order, "/x/order") &&
	      !strcmp(t.trace, "/x/trace"), "all four read");
	setenv("WENO_TEST_INIT", "torch", 1);
	CHECK(weno_test_from_env(&t, &e) == ERR_USAGE && strstr(e.msg, "WENO_TEST_INIT"), "bad value refused");
	unsetenv("WENO_TEST_INIT");
	unsetenv("WENO_TEST_DROPOUT");
	unsetenv("WENO_TEST_ORDER");
	unsetenv("WENO_TEST_TRACE");
}

int main(void)
{
	nn_set_threads(1);
	RUN(abmil_weno);
	RUN(dsmil_weno);
	RUN(abmil_hpm_threshold);
	RUN(dsmil_hpm_topk);
	RUN(abmil_separate);
	RUN(abmil_teacher);
	RUN(dsmil_teacher);
	RUN(supervised);
	RUN(abmil_momentum);
	RUN(abmil_dropout);
	RUN(test_hooks_from_env);
	return check_summary();
}
