/* auc-report - bag and instance AUCs with confidence intervals, thresholds
 * chosen on validation, ROC curves; mean ± sd over several score files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/base/afile.h"
#include "../lib/data/manifest.h"
#include "../lib/mil/metrics.h"
#include "../lib/base/plot.h"
#include "../lib/data/scoretab.h"
#include "../lib/base/version.h"
#include "cli.h"
#include "../lib/base/jsonout.h"

static const char *opt_split = "test", *opt_val = "val", *opt_label = "label", *opt_scores, *opt_tsv,
		  *opt_roc_tsv, *opt_roc_svg;
static double opt_pos_thr = 0.5;
static int opt_boot = 2000, opt_json;
static long long opt_seed = 0;

static const struct cli_opt OPTS[] = {
	{"split", 0, CLI_STRING, &opt_split, "S", "rows whose split is S give the AUCs (all: every row)", "train|val|test|none|all"},
	{"val-split", 0, CLI_STRING, &opt_val, "S", "rows whose split is S choose the threshold (Youden)", "train|val|test|none"},
	{"pos-threshold", 't', CLI_DOUBLE, &opt_pos_thr, "F", "an instance is positive when its label >= F (Camelyon16: 0.25)", NULL},
	{"label-col", 0, CLI_STRING, &opt_label, "NAME", "the label column", NULL},
	{"score-col", 0, CLI_STRING, &opt_scores, "A,B", "score columns (default: every column whose name ends in 'score')", NULL},
	{"bootstrap", 'b', CLI_INT, &opt_boot, "N", "stratified bootstrap resamples for the second interval (0: none)", NULL},
	{"seed", 's', CLI_I64, &opt_seed, "S", "bootstrap seed", NULL},
	{"json", 'j', CLI_FLAG, &opt_json, NULL, "print JSON instead of the table", NULL},
	{"tsv", 0, CLI_STRING, &opt_tsv, "FILE", "also write the results as TSV", NULL},
	{"roc-tsv", 0, CLI_STRING, &opt_roc_tsv, "FILE", "write every ROC curve as TSV (file kind score threshold fpr tpr)", NULL},
	{"roc-svg", 0, CLI_STRING, &opt_roc_svg, "FILE", "draw the ROC curves of the first file as SVG", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"auc-report", "[options] SCORES.tsv...",
	"Reads score tables (formats/scores.md, or any TSV with a label and score columns) and reports,\n"
	"for each level (bag, instance) and score (student, teacher): the AUC (ties by the trapezoid\n"
	"rule, as scikit-learn), its 95 % confidence interval by DeLong and by a seeded stratified\n"
	"bootstrap, and accuracy, sensitivity and specificity at the threshold that maximises Youden's\n"
	"J on the validation rows.  Several files (seeds) add mean ± sd.",
	"examples:\n"
	"  auc-report runs/abmil-weno/scores.tsv\n"
	"  auc-report --pos-threshold 0.25 --roc-svg roc.svg camelyon16/scores.tsv\n"
	"  auc-report --json seed*/scores.tsv | jq '.summary'\n"
	"  auc-report --label-col y --score-col prob --split all other-tool.tsv\n"
	"exit status: 0 success, 1 a file is unreadable or malformed, 2 bad usage",
	OPTS, 1, -1,
};

struct result {
	const char *file;
	char *kind, *score;         /* owned */
	struct auc_result a;
	double thr;
	struct confusion c;
};

static int fmt_ok(double v) { return !isnan(v); }

static void print_row(const struct result *r)
{
	printf("%-9s %-15s ", r->kind, r->score);
	if (!fmt_ok(r->a.auc)) {
		printf("%7s  (one class only: %zu positive, %zu negative)\n", "NA", r->a.n_pos, r->a.n_neg);
		return;
	}
	printf("%7.4f  [%.4f, %.4f]  ", r->a.auc, r->a.lo, r->a.hi);
	if (fmt_ok(r->a.boot_lo))
		printf("[%.4f, %.4f]  ", r->a.boot_lo, r->a.boot_hi);
	else
		printf("%-16s  ", "-");
	printf("%6zu/%-7zu ", r->a.n_pos, r->a.n_neg);
	if (fmt_ok(r->thr))
		printf("%9.4g  %.3f  %.3f  %.3f\n", r->thr, r->c.accuracy, r->c.sensitivity, r->c.specificity);
	else
		printf("%9s  %5s  %5s  %5s\n", "-", "-", "-", "-");
}


/* Everything gathered from the files. */
struct report {
	struct result *res;         /* one per file, level and score, in that order */
	size_t nres;
	FILE *roc;                  /* --roc-tsv, or NULL */
	struct plot_curve *curves;  /* --roc-svg: the first file's ROC curves (owned) */
	int ncurves;
};

/* One level and score of a table: the scores and binary labels of the rows
 * under evaluation (s, y: n of them) and of the validation rows (vs, vy: nv). */
struct rows {
	double *s, *vs;
	uint8_t *y, *vy;
	size_t n, nv;
};

/* Fills w with the labelled, scored rows of level k and score j; an
 * instance is positive when its label is at least --pos-threshold. */
static void gather_rows(const struct scoretab *t, int k, int j, int eval_split, int val_split, struct rows *w)
{
	double thr_lab = strcmp(t->kind_names[k], "instance") ? 0.5 : opt_pos_thr;
	w->n = w->nv = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (t->kind[i] != k || isnan(t->label[i]) || isnan(t->score[j][i]))
			continue;
		if (!t->has_split || eval_split < 0 || t->split[i] == eval_split) {
			w->s[w->n] = t->score[j][i];
			w->y[w->n++] = t->label[i] >= thr_lab;
		}
		if (t->has_split && t->split[i] == val_split) {
			w->vs[w->nv] = t->score[j][i];
			w->vy[w->nv++] = t->label[i] >= thr_lab;
		}
	}
}

/* The AUC and its intervals, the Youden threshold of the validation rows
 * and the confusion at that threshold. */
static void compute(struct result *r, const struct rows *w)
{
	struct err e = {0};
	metrics_auc(w->s, w->y, w->n, opt_boot, (uint64_t)opt_seed, &r->a, &e);
	r->thr = w->nv ? metrics_youden(w->vs, w->vy, w->nv) : NAN;
	if (!isnan(r->thr))
		metrics_confusion(w->s, w->y, w->n, r->thr, &r->c);
}

/* r's ROC curve: its points into --roc-tsv, and a curve for --roc-svg when
 * r is of the first file. */
static void add_roc(struct report *rp, const struct result *r, const struct rows *w, int first)
{
	struct err e = {0};
	struct roc_point *p;
	long m = metrics_roc(w->s, w->y, w->n, &p, &e);
	for (long q = 0; rp->roc && q < m; q++)
		fprintf(rp->roc, "%s\t%s\t%s\t%.9g\t%.9g\t%.9g\n", r->file, r->kind, r->score, p[q].threshold,
		        p[q].fpr, p[q].tpr);
	if (opt_roc_svg && first && m > 0) {
		double *x = xmalloc((size_t)m * sizeof *x), *y = xmalloc((size_t)m * sizeof *y);
		for (long q = 0; q < m; q++) {
			x[q] = p[q].fpr;
			y[q] = p[q].tpr;
		}
		char *name = xstrfmt("%s %s (AUC %.4f)", r->kind, r->score, r->a.auc);
		rp->curves = xrealloc(rp->curves, (size_t)(rp->ncurves + 1) * sizeof *rp->curves);
		rp->curves[rp->ncurves++] = (struct plot_curve){name, x, y, m};
	}
	free(p);
}

/* Reads one score table and adds to rp a result for each level and score
 * it has rows of; returns 0, or 1 when the file fails (said on stderr). */
static int report_file(struct report *rp, const char *file, int first, int eval_split, int val_split)
{
	struct scoretab t;
	struct err e = {0};
	if (scoretab_read(&t, file, opt_label, opt_scores, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	size_t in_eval = 0;
	for (size_t i = 0; i < t.n; i++)
		in_eval += !t.has_split || eval_split < 0 || t.split[i] == eval_split;
	if (!in_eval) {
		cli_error(CLI.prog, "%s: no rows with split '%s'\nhint: --split all uses every row", file, opt_split);
		scoretab_free(&t);
		return 1;
	}
	struct rows w = {xmalloc((t.n + 1) * sizeof *w.s), xmalloc((t.n + 1) * sizeof *w.vs), xmalloc(t.n + 1),
	                 xmalloc(t.n + 1), 0, 0};
	size_t before = rp->nres;
	for (int k = 0; k < t.n_kinds; k++)
		for (int j = 0; j < t.n_scores; j++) {
			gather_rows(&t, k, j, eval_split, val_split, &w);
			if (!w.n)
				continue; /* this score does not exist at this level */
			rp->res = xrealloc(rp->res, (rp->nres + 1) * sizeof *rp->res);
			struct result *r = &rp->res[rp->nres++];
			memset(r, 0, sizeof *r);
			r->file = file;
			r->kind = xstrdup(t.kind_names[k]);
			r->score = xstrdup(t.score_names[j]);
			compute(r, &w);
			if (rp->roc || (opt_roc_svg && first))
				add_roc(rp, r, &w, first);
		}
	free(w.s);
	free(w.vs);
	free(w.y);
	free(w.vy);
	scoretab_free(&t);
	if (rp->nres == before) {
		cli_error(CLI.prog, "%s: nothing to compute: every score of the rows with split '%s' is NA or has "
		          "no label", file, opt_split);
		return 1;
	}
	return 0;
}

/* The AUCs of one level and score over the files. */
struct sum {
	const char *kind, *score; /* the first result's */
	double s, s2;             /* sums of the AUCs and of their squares */
	int n;
};

/* The defined AUCs summed by (level, score), in order of first appearance;
 * *nsum of them, which the caller frees. */
static struct sum *summarise(const struct result *res, size_t nres, int *nsum)
{
	struct sum *sums = NULL;
	int ns = 0;
	for (size_t i = 0; i < nres; i++) {
		if (isnan(res[i].a.auc))
			continue;
		int k = -1;
		for (int q = 0; q < ns; q++)
			if (!strcmp(sums[q].kind, res[i].kind) && !strcmp(sums[q].score, res[i].score))
				k = q;
		if (k < 0) {
			sums = xrealloc(sums, (size_t)(ns + 1) * sizeof *sums);
			k = ns++;
			sums[k] = (struct sum){res[i].kind, res[i].score, 0, 0, 0};
		}
		sums[k].s += res[i].a.auc;
		sums[k].s2 += res[i].a.auc * res[i].a.auc;
		sums[k].n++;
	}
	*nsum = ns;
	return sums;
}

static double sum_mean(const struct sum *s)
{
	return s->s / s->n;
}

/* the sample sd of the AUCs, or `one` when there is one file */
static double sum_sd(const struct sum *s, double one)
{
	double m = sum_mean(s);
	return s->n > 1 ? sqrt(fmax(0, (s->s2 - s->n * m * m) / (s->n - 1))) : one;
}

static void print_json(const struct result *res, size_t nres, const struct sum *sums, int nsum)
{
	printf("{\"version\":\"%s\",\"split\":\"%s\",\"pos_threshold\":%g,\"bootstrap\":%d,\"seed\":%lld,\"results\":[",
	       WENO_VERSION, opt_split, opt_pos_thr, opt_boot, opt_seed);
	for (size_t i = 0; i < nres; i++) {
		const struct result *r = &res[i];
		printf("%s{\"file\":", i ? "," : "");
		json_string(stdout, r->file);
		printf(",\"kind\":");
		json_string(stdout, r->kind);
		printf(",\"score\":");
		json_string(stdout, r->score);
		printf(",\"auc\":");
		json_number(stdout, r->a.auc);
		printf(",\"delong_ci\":[");
		json_number(stdout, r->a.lo);
		printf(",");
		json_number(stdout, r->a.hi);
		printf("],\"bootstrap_ci\":[");
		json_number(stdout, r->a.boot_lo);
		printf(",");
		json_number(stdout, r->a.boot_hi);
		printf("],\"n_pos\":%zu,\"n_neg\":%zu,\"threshold\":", r->a.n_pos, r->a.n_neg);
		json_number(stdout, r->thr);
		printf(",\"accuracy\":");
		json_number(stdout, isnan(r->thr) ? NAN : r->c.accuracy);
		printf(",\"sensitivity\":");
		json_number(stdout, isnan(r->thr) ? NAN : r->c.sensitivity);
		printf(",\"specificity\":");
		json_number(stdout, isnan(r->thr) ? NAN : r->c.specificity);
		printf("}");
	}
	printf("],\"summary\":[");
	for (int k = 0; k < nsum; k++) {
		printf("%s{\"kind\":\"%s\",\"score\":\"%s\",\"files\":%d,\"mean_auc\":", k ? "," : "", sums[k].kind,
		       sums[k].score, sums[k].n);
		json_number(stdout, sum_mean(&sums[k]));
		printf(",\"sd_auc\":");
		json_number(stdout, sum_sd(&sums[k], NAN));
		printf("}");
	}
	printf("]}\n");
}

/* A table per file, then mean ± sd over the nfiles files that were read
 * when there were several. */
static void print_table(const struct result *res, size_t nres, const struct sum *sums, int nsum, int several,
                        int nfiles)
{
	const char *last = NULL;
	for (size_t i = 0; i < nres; i++) {
		if (!last || strcmp(last, res[i].file)) {
			last = res[i].file;
			printf("%s%s (split %s; Youden threshold from %s rows)\n", i ? "\n" : "", last, opt_split, opt_val);
			printf("%-9s %-15s %7s  %-16s  %-16s  %6s/%-7s %9s  %5s  %5s  %5s\n", "level", "score", "AUC",
			       "95% CI DeLong", "95% CI bootstrap", "pos", "neg", "threshold", "acc", "sens", "spec");
		}
		print_row(&res[i]);
	}
	if (several && nsum) {
		printf("\nmean ± sd over %d files\n", nfiles);
		for (int k = 0; k < nsum; k++)
			printf("%-9s %-15s %.4f ± %.4f  (n = %d)\n", sums[k].kind, sums[k].score, sum_mean(&sums[k]),
			       sum_sd(&sums[k], 0), sums[k].n);
	}
}

/* --tsv; returns 0, or 1 when it cannot be written (said on stderr) */
static int write_tsv(const char *path, const struct result *res, size_t nres)
{
	struct afile af;
	struct err e = {0};
	if (afile_open(&af, path, &e) == 0) {
		fprintf(af.fp, "file\tkind\tscore\tauc\tdelong_lo\tdelong_hi\tboot_lo\tboot_hi\tn_pos\tn_neg\tthreshold\t"
		        "accuracy\tsensitivity\tspecificity\n");
		for (size_t i = 0; i < nres; i++) {
			const struct result *r = &res[i];
			fprintf(af.fp, "%s\t%s\t%s\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%zu\t%zu\t%.6g\t%.6f\t%.6f\t%.6f\n", r->file,
			        r->kind, r->score, r->a.auc, r->a.lo, r->a.hi, r->a.boot_lo, r->a.boot_hi, r->a.n_pos,
			        r->a.n_neg, r->thr, r->c.accuracy, r->c.sensitivity, r->c.specificity);
		}
		afile_commit(&af, &e);
	}
	if (e.code) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int np;
	char **files;
	int rc = cli_parse(&CLI, argc, argv, &np, &files);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	if (!(opt_pos_thr > 0 && opt_pos_thr <= 1))
		return cli_usage_error(&CLI, "--pos-threshold %g: expected 0 < F <= 1", opt_pos_thr);
	if (opt_boot < 0 || opt_boot > 1000000)
		return cli_usage_error(&CLI, "--bootstrap %d: expected 0..1000000", opt_boot);
	for (int i = 0; i < np; i++)
		cli_protect(files[i]); /* --tsv, --json-out, --roc-* never write over a scores file */
	int eval_split = strcmp(opt_split, "all") ? manifest_split_parse(opt_split) : -1;
	int val_split = manifest_split_parse(opt_val);
	struct report rp = {0};
	struct afile roc_af;
	struct err e = {0};
	int failed = 0;
	if (opt_roc_tsv) {
		if (afile_open(&roc_af, opt_roc_tsv, &e)) {
			cli_error(CLI.prog, "%s", e.msg);
			return 1;
		}
		rp.roc = roc_af.fp;
		fprintf(rp.roc, "file\tkind\tscore\tthreshold\tfpr\ttpr\n");
	}
	for (int fi = 0; fi < np; fi++)
		failed += report_file(&rp, files[fi], fi == 0, eval_split, val_split);
	if (rp.roc && afile_commit(&roc_af, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		failed++;
	}
	err_clear(&e);
	if (opt_roc_svg && rp.ncurves && plot_roc_svg(opt_roc_svg, files[0], rp.curves, rp.ncurves, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		failed++;
	}
	for (int k = 0; k < rp.ncurves; k++) { /* the curves' own memory, const to plot_roc_svg */
		free((void *)rp.curves[k].name);
		free((void *)rp.curves[k].x);
		free((void *)rp.curves[k].y);
	}
	free(rp.curves);
	int nsum;
	struct sum *sums = summarise(rp.res, rp.nres, &nsum);
	if (opt_json)
		print_json(rp.res, rp.nres, sums, nsum);
	else
		print_table(rp.res, rp.nres, sums, nsum, np > 1, np - failed);
	if (opt_tsv)
		failed += write_tsv(opt_tsv, rp.res, rp.nres);
	for (size_t i = 0; i < rp.nres; i++) {
		free(rp.res[i].kind);
		free(rp.res[i].score);
	}
	free(rp.res);
	free(sums);
	return cli_close_stdout() || failed ? 1 : 0;
}
