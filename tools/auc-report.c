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
	int eval_split = strcmp(opt_split, "all") ? manifest_split_parse(opt_split) : -1;
	int val_split = manifest_split_parse(opt_val);
	struct result *res = NULL;
	size_t nres = 0;
	int failed = 0;
	FILE *roc = NULL;
	struct afile roc_af;
	struct err e = {0};
	if (opt_roc_tsv) {
		if (afile_open(&roc_af, opt_roc_tsv, &e)) {
			cli_error(CLI.prog, "%s", e.msg);
			return 1;
		}
		roc = roc_af.fp;
		fprintf(roc, "file\tkind\tscore\tthreshold\tfpr\ttpr\n");
	}
	struct plot_curve *curves = NULL; /* --roc-svg: the first file's curves */
	int ncurves = 0;
	for (int fi = 0; fi < np; fi++) {
		struct scoretab t;
		err_clear(&e);
		if (scoretab_read(&t, files[fi], opt_label, opt_scores, &e)) {
			cli_error(CLI.prog, "%s", e.msg);
			failed++;
			continue;
		}
		double *s = xmalloc((t.n + 1) * sizeof *s), *vs = xmalloc((t.n + 1) * sizeof *vs);
		uint8_t *y = xmalloc(t.n + 1), *vy = xmalloc(t.n + 1);
		size_t in_eval = 0;
		for (size_t i = 0; i < t.n; i++)
			in_eval += !t.has_split || eval_split < 0 || t.split[i] == eval_split;
		if (!in_eval) {
			cli_error(CLI.prog, "%s: no rows with split '%s'\nhint: --split all uses every row", files[fi], opt_split);
			failed++;
		}
		for (int k = 0; in_eval && k < t.n_kinds; k++)
			for (int j = 0; j < t.n_scores; j++) {
				double thr_lab = strcmp(t.kind_names[k], "instance") ? 0.5 : opt_pos_thr;
				size_t n = 0, nv = 0;
				for (size_t i = 0; i < t.n; i++) {
					if (t.kind[i] != k || isnan(t.label[i]) || isnan(t.score[j][i]))
						continue;
					if (!t.has_split || eval_split < 0 || t.split[i] == eval_split) {
						s[n] = t.score[j][i];
						y[n++] = t.label[i] >= thr_lab;
					}
					if (t.has_split && t.split[i] == val_split) {
						vs[nv] = t.score[j][i];
						vy[nv++] = t.label[i] >= thr_lab;
					}
				}
				if (!n)
					continue; /* this score does not exist at this level */
				res = xrealloc(res, (nres + 1) * sizeof *res);
				struct result *r = &res[nres++];
				memset(r, 0, sizeof *r);
				r->file = files[fi];
				r->kind = xstrdup(t.kind_names[k]);
				r->score = xstrdup(t.score_names[j]);
				metrics_auc(s, y, n, opt_boot, (uint64_t)opt_seed, &r->a, &e);
				r->thr = nv ? metrics_youden(vs, vy, nv) : NAN;
				if (!isnan(r->thr))
					metrics_confusion(s, y, n, r->thr, &r->c);
				if (roc || (opt_roc_svg && fi == 0)) {
					struct roc_point *p;
					long m = metrics_roc(s, y, n, &p, &e);
					for (long q = 0; roc && q < m; q++)
						fprintf(roc, "%s\t%s\t%s\t%.9g\t%.9g\t%.9g\n", files[fi], r->kind, r->score, p[q].threshold,
						        p[q].fpr, p[q].tpr);
					if (opt_roc_svg && fi == 0 && m > 0) {
						double *x = xmalloc((size_t)m * sizeof *x), *yy = xmalloc((size_t)m * sizeof *yy);
						for (long q = 0; q < m; q++) {
							x[q] = p[q].fpr;
							yy[q] = p[q].tpr;
						}
						char *name = xstrfmt("%s %s (AUC %.4f)", r->kind, r->score, r->a.auc);
						curves = xrealloc(curves, (size_t)(ncurves + 1) * sizeof *curves);
						curves[ncurves++] = (struct plot_curve){name, x, yy, m};
					}
					free(p);
				}
			}
		free(s);
		free(vs);
		free(y);
		free(vy);
		scoretab_free(&t);
	}
	if (roc) {
		err_clear(&e);
		if (afile_commit(&roc_af, &e)) {
			cli_error(CLI.prog, "%s", e.msg);
			failed++;
		}
	}
	if (opt_roc_svg && ncurves) {
		err_clear(&e);
		if (plot_roc_svg(opt_roc_svg, files[0], curves, ncurves, &e)) {
			cli_error(CLI.prog, "%s", e.msg);
			failed++;
		}
	}
	for (int k = 0; k < ncurves; k++) { /* the curves' own memory, const to plot_roc_svg */
		free((void *)curves[k].name);
		free((void *)curves[k].x);
		free((void *)curves[k].y);
	}
	free(curves);
	/* summaries over files: mean and sd per (kind, score) */
	struct sum {
		const char *kind, *score; /* the first result's */
		double s, s2;
		int n;
	} *sums = NULL;
	int nsum = 0;
	for (size_t i = 0; i < nres; i++) {
		if (isnan(res[i].a.auc))
			continue;
		int k = -1;
		for (int q = 0; q < nsum; q++)
			if (!strcmp(sums[q].kind, res[i].kind) && !strcmp(sums[q].score, res[i].score))
				k = q;
		if (k < 0) {
			sums = xrealloc(sums, (size_t)(nsum + 1) * sizeof *sums);
			k = nsum++;
			sums[k] = (struct sum){res[i].kind, res[i].score, 0, 0, 0};
		}
		sums[k].s += res[i].a.auc;
		sums[k].s2 += res[i].a.auc * res[i].a.auc;
		sums[k].n++;
	}
	if (opt_json) {
		printf("{\"version\":\"%s\",\"split\":\"%s\",\"pos_threshold\":%g,\"bootstrap\":%d,\"seed\":%lld,\"results\":[",
		       WENO_VERSION, opt_split, opt_pos_thr, opt_boot, opt_seed);
		for (size_t i = 0; i < nres; i++) {
			struct result *r = &res[i];
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
			double m = sums[k].s / sums[k].n;
			double sd = sums[k].n > 1 ? sqrt(fmax(0, (sums[k].s2 - sums[k].n * m * m) / (sums[k].n - 1))) : NAN;
			printf("%s{\"kind\":\"%s\",\"score\":\"%s\",\"files\":%d,\"mean_auc\":", k ? "," : "", sums[k].kind,
			       sums[k].score, sums[k].n);
			json_number(stdout, m);
			printf(",\"sd_auc\":");
			json_number(stdout, sd);
			printf("}");
		}
		printf("]}\n");
	} else {
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
		if (np > 1 && nsum) {
			printf("\nmean ± sd over %d files\n", np - failed);
			for (int k = 0; k < nsum; k++) {
				double m = sums[k].s / sums[k].n;
				double sd = sums[k].n > 1 ? sqrt(fmax(0, (sums[k].s2 - sums[k].n * m * m) / (sums[k].n - 1))) : 0;
				printf("%-9s %-15s %.4f ± %.4f  (n = %d)\n", sums[k].kind, sums[k].score, m, sd, sums[k].n);
			}
		}
	}
	if (opt_tsv) {
		struct afile af;
		err_clear(&e);
		if (afile_open(&af, opt_tsv, &e) == 0) {
			fprintf(af.fp, "file\tkind\tscore\tauc\tdelong_lo\tdelong_hi\tboot_lo\tboot_hi\tn_pos\tn_neg\tthreshold\t"
			        "accuracy\tsensitivity\tspecificity\n");
			for (size_t i = 0; i < nres; i++) {
				struct result *r = &res[i];
				fprintf(af.fp, "%s\t%s\t%s\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%zu\t%zu\t%.6g\t%.6f\t%.6f\t%.6f\n", r->file,
				        r->kind, r->score, r->a.auc, r->a.lo, r->a.hi, r->a.boot_lo, r->a.boot_hi, r->a.n_pos,
				        r->a.n_neg, r->thr, r->c.accuracy, r->c.sensitivity, r->c.specificity);
			}
			if (afile_commit(&af, &e))
				failed++;
		}
		if (e.code) {
			cli_error(CLI.prog, "%s", e.msg);
			failed++;
		}
	}
	for (size_t i = 0; i < nres; i++) {
		free(res[i].kind);
		free(res[i].score);
	}
	free(res);
	free(sums);
	return failed ? 1 : 0;
}
