/* auc-compare - is model A better than model B on the same test set?  Two
 * score tables, their rows matched by kind, bag_id and index; for each level
 * and score the two AUCs and DeLong's test of their difference on the
 * matched cases (lib/mil/metrics.h, metrics_auc_paired). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/base/afile.h"
#include "../lib/base/jsonout.h"
#include "../lib/data/manifest.h"
#include "../lib/mil/metrics.h"
#include "../lib/data/scoretab.h"
#include "../lib/base/version.h"
#include "cli.h"

static const char *opt_split = "test", *opt_label = "label", *opt_scores, *opt_tsv;
static double opt_pos_thr = 0.5;
static int opt_json;

static const struct cli_opt OPTS[] = {
	{"split", 0, CLI_STRING, &opt_split, "S", "rows whose split is S are compared (all: every row)", "train|val|test|none|all"},
	{"pos-threshold", 't', CLI_DOUBLE, &opt_pos_thr, "F", "an instance is positive when its label >= F (Camelyon16: 0.25)", NULL},
	{"label-col", 0, CLI_STRING, &opt_label, "NAME", "the label column (both files)", NULL},
	{"score-col", 0, CLI_STRING, &opt_scores, "A[,B]", "the score column of A and of B (default: every score column both have)", NULL},
	{"json", 'j', CLI_FLAG, &opt_json, NULL, "print JSON instead of the table", NULL},
	{"tsv", 0, CLI_STRING, &opt_tsv, "FILE", "also write the results as TSV (one row per level and score; NA where undefined)", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"auc-compare", "[options] A.tsv B.tsv",
	"Compares two models on the same cases: two score tables (formats/scores.md) whose rows are\n"
	"matched by kind, bag_id and index.  For each level (bag, instance) and score it prints both\n"
	"AUCs, the difference A - B, and DeLong's test for two correlated AUCs (DeLong, DeLong and\n"
	"Clarke-Pearson 1988): the difference's 95 % interval, z and the two-sided p-value.  Rows only\n"
	"one file has are left out with a note; a case whose labels differ is an error.",
	"examples:\n"
	"  auc-compare fm10/abmil-weno.scores.tsv fm10/abmil.scores.tsv\n"
	"  auc-compare --score-col student_score,teacher_score weno.scores.tsv abmil.scores.tsv\n"
	"  auc-compare --split val --json a.tsv b.tsv\n"
	"  auc-compare -q --tsv cmp.tsv weno.scores.tsv abmil.scores.tsv > /dev/null\n"
	"exit status: 0 success, 1 a file is unreadable or malformed, or no case matches, 2 bad usage",
	OPTS, 2, 2,
};

/* a row of B: its kind name and key, for sorting and searching */
struct ref {
	const char *kind, *key;
	size_t row;
};

static int ref_cmp(const void *x, const void *y)
{
	const struct ref *a = x, *b = y;
	int c = strcmp(a->kind, b->kind);
	return c ? c : strcmp(a->key, b->key);
}

struct cmp_result {
	const char *kind, *score_a, *score_b; /* the tables' names */
	struct auc_diff d;
};

static int score_index(const struct scoretab *t, const char *name)
{
	for (int j = 0; j < t->n_scores; j++)
		if (!strcmp(t->score_names[j], name))
			return j;
	return -1;
}

static int in_split(const struct scoretab *t, size_t i, int split)
{
	return !t->has_split || split < 0 || t->split[i] == split;
}

/* v, or NA where it is undefined (one class only) */
static void tsv_num(FILE *fp, double v)
{
	if (isnan(v) || isinf(v))
		fputs("\tNA", fp);
	else
		fprintf(fp, "\t%.9g", v);
}

static int write_tsv(const char *path, const struct cmp_result *res, int nres)
{
	struct afile af;
	struct err e = {0};
	if (afile_open(&af, path, &e) == 0) {
		fprintf(af.fp, "kind\tscore_a\tscore_b\tauc_a\tauc_b\tdiff\tdiff_lo\tdiff_hi\tz\tp\tn_pos\tn_neg\n");
		for (int i = 0; i < nres; i++) {
			const struct cmp_result *r = &res[i];
			fprintf(af.fp, "%s\t%s\t%s", r->kind, r->score_a, r->score_b);
			double v[] = {r->d.auc_a, r->d.auc_b, r->d.diff, r->d.lo, r->d.hi, r->d.z, r->d.p};
			for (int q = 0; q < 7; q++)
				tsv_num(af.fp, v[q]);
			fprintf(af.fp, "\t%zu\t%zu\n", r->d.n_pos, r->d.n_neg);
		}
		afile_commit(&af, &e);
	}
	if (e.code) {
		cli_error(CLI.prog, "%s", e.msg);
		return -1;
	}
	return 0;
}

/* Reads A and B (their columns col_a and col_b, or every score column when
 * NULL); returns 0, or 1 when one cannot be read or has no bag_id column
 * (said, nothing left to free). */
static int read_tables(struct scoretab t[2], char **files, const char *col_a, const char *col_b)
{
	for (int f = 0; f < 2; f++) {
		struct err e = {0};
		if (scoretab_read(&t[f], files[f], opt_label, f ? col_b : col_a, &e)) {
			cli_error(CLI.prog, "%s", e.msg);
			if (f)
				scoretab_free(&t[0]);
			return 1;
		}
		if (!t[f].key)
			err_set(&e, ERR_FORMAT, "%s: no bag_id column: rows are matched by kind, bag_id and index",
			        files[f]);
		else
			scoretab_check_keys(&t[f], files[f], &e); /* a case twice: which to compare? */
		if (e.code) {
			cli_error(CLI.prog, "%s", e.msg);
			scoretab_free(&t[0]);
			if (f)
				scoretab_free(&t[1]);
			return 1;
		}
	}
	return 0;
}

/* Matches the rows of A in the split to B's by kind and key: match[i] is
 * B's row of A's row i, or SIZE_MAX; *n_matched of them.  Returns 0, or 1
 * when a matched case has two labels, or nothing matches (said). */
static int match_rows(const struct scoretab t[2], char **files, int split, size_t *match, size_t *n_matched)
{
	/* B's rows in the split, sorted by (kind, key) */
	struct ref *refs = xmalloc((t[1].n + 1) * sizeof *refs);
	size_t nref = 0;
	for (size_t i = 0; i < t[1].n; i++)
		if (in_split(&t[1], i, split))
			refs[nref++] = (struct ref){t[1].kind_names[t[1].kind[i]], t[1].key[i], i};
	qsort(refs, nref, sizeof *refs, ref_cmp);
	int failed = 0; /* each table's keys are unique (read_tables checked) */
	size_t n_a = 0, n = 0;
	for (size_t i = 0; !failed && i < t[0].n; i++) {
		match[i] = SIZE_MAX;
		if (!in_split(&t[0], i, split))
			continue;
		n_a++;
		struct ref q = {t[0].kind_names[t[0].kind[i]], t[0].key[i], 0};
		const struct ref *hit = bsearch(&q, refs, nref, sizeof *refs, ref_cmp);
		if (!hit)
			continue;
		double la = t[0].label[i], lb = t[1].label[hit->row];
		if (!(isnan(la) && isnan(lb)) && la != lb) {
			const char *k = q.key, *tab = strchr(k, '\t');
			cli_error(CLI.prog, "the %s row of bag '%.*s' index '%s' has label %g in %s but %g in %s: "
			          "not the same cases", q.kind, (int)(tab - k), k, tab + 1, la, files[0], lb,
			          files[1]);
			failed = 1;
			break;
		}
		match[i] = hit->row;
		n++;
	}
	free(refs);
	if (failed)
		return 1;
	if (!n) {
		cli_error(CLI.prog, "no row of %s (split %s) matches a row of %s by kind, bag_id and index",
		          files[0], opt_split, files[1]);
		return 1;
	}
	if (n < n_a || n < nref)
		fprintf(stderr, "%s: note: %zu of %zu rows of %s and %zu of %zu of %s match; the others "
		        "are left out\n", CLI.prog, n, n_a, files[0], n, nref, files[1]);
	*n_matched = n;
	return 0;
}

/* For each level and each score of A with its twin in B (col_b, or the
 * column of the same name), DeLong's test on the matched labelled cases;
 * *res (the caller frees it) gets *nres results.  Returns 0, or 1 when the
 * test fails or no score has such cases (said). */
static int compare(const struct scoretab t[2], char **files, const size_t *match, const char *col_b,
                   struct cmp_result **res, int *nres)
{
	size_t n = t[0].n + 1;
	double *sa = xmalloc(n * sizeof *sa), *sb = xmalloc(n * sizeof *sb);
	uint8_t *y = xmalloc(n);
	int failed = 0;
	for (int k = 0; !failed && k < t[0].n_kinds; k++) {
		double thr = strcmp(t[0].kind_names[k], "instance") ? 0.5 : opt_pos_thr;
		for (int ja = 0; !failed && ja < t[0].n_scores; ja++) {
			int jb = col_b ? score_index(&t[1], col_b) : score_index(&t[1], t[0].score_names[ja]);
			if (jb < 0)
				continue;
			size_t m = 0;
			for (size_t i = 0; i < t[0].n; i++) {
				if (t[0].kind[i] != k || match[i] == SIZE_MAX || isnan(t[0].label[i]))
					continue;
				double a = t[0].score[ja][i], b = t[1].score[jb][match[i]];
				if (isnan(a) || isnan(b))
					continue;
				sa[m] = a, sb[m] = b, y[m++] = t[0].label[i] >= thr;
			}
			if (!m)
				continue;
			*res = xrealloc(*res, (size_t)(*nres + 1) * sizeof **res);
			struct cmp_result *r = &(*res)[(*nres)++];
			r->kind = t[0].kind_names[k];
			r->score_a = t[0].score_names[ja];
			r->score_b = t[1].score_names[jb];
			struct err e = {0};
			if (metrics_auc_paired(sa, sb, y, m, &r->d, &e)) {
				cli_error(CLI.prog, "%s", e.msg);
				failed = 1;
			}
		}
	}
	free(sa);
	free(sb);
	free(y);
	if (!failed && !*nres) {
		cli_error(CLI.prog, "%s and %s share no score column with labelled rows%s", files[0],
		          files[1], col_b ? "" : " (name them with --score-col A,B)");
		failed = 1;
	}
	return failed;
}

static void print_json(char **files, size_t n_matched, const struct cmp_result *res, int nres)
{
	printf("{\"version\":\"%s\",\"a\":", WENO_VERSION);
	json_string(stdout, files[0]);
	printf(",\"b\":");
	json_string(stdout, files[1]);
	printf(",\"split\":\"%s\",\"pos_threshold\":%g,\"matched_rows\":%zu,\"results\":[",
	       opt_split, opt_pos_thr, n_matched);
	for (int i = 0; i < nres; i++) {
		const struct cmp_result *r = &res[i];
		printf("%s{\"kind\":", i ? "," : "");
		json_string(stdout, r->kind);
		printf(",\"score_a\":");
		json_string(stdout, r->score_a);
		printf(",\"score_b\":");
		json_string(stdout, r->score_b);
		const char *name[] = {"auc_a", "auc_b", "diff", "z", "p"};
		double v[] = {r->d.auc_a, r->d.auc_b, r->d.diff, r->d.z, r->d.p};
		for (int q = 0; q < 5; q++) {
			printf(",\"%s\":", name[q]);
			json_number(stdout, v[q]);
		}
		printf(",\"diff_ci\":[");
		json_number(stdout, r->d.lo);
		printf(",");
		json_number(stdout, r->d.hi);
		printf("],\"n_pos\":%zu,\"n_neg\":%zu}", r->d.n_pos, r->d.n_neg);
	}
	printf("]}\n");
}

static void print_table(char **files, size_t n_matched, const struct cmp_result *res, int nres)
{
	printf("A: %s\nB: %s\n(split %s, %zu matched rows; DeLong's test for two correlated AUCs)\n",
	       files[0], files[1], opt_split, n_matched);
	printf("%-9s %-15s %-15s %7s %7s %8s  %-19s %7s %9s  %6s/%s\n", "level", "score A",
	       "score B", "AUC A", "AUC B", "A - B", "95% CI of A - B", "z", "p", "pos", "neg");
	for (int i = 0; i < nres; i++) {
		const struct cmp_result *r = &res[i];
		if (isnan(r->d.diff)) {
			printf("%-9s %-15s %-15s %7s %7s %8s  %-19s %7s %9s  %6zu/%zu (one class only)\n",
			       r->kind, r->score_a, r->score_b, "NA", "NA", "NA", "", "", "", r->d.n_pos,
			       r->d.n_neg);
			continue;
		}
		char ci[48];
		snprintf(ci, sizeof ci, "[%+.4f, %+.4f]", r->d.lo, r->d.hi);
		printf("%-9s %-15s %-15s %7.4f %7.4f %+8.4f  %-19s %7.2f %9.3g  %6zu/%zu\n", r->kind,
		       r->score_a, r->score_b, r->d.auc_a, r->d.auc_b, r->d.diff, ci, r->d.z, r->d.p,
		       r->d.n_pos, r->d.n_neg);
	}
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
	char *col_a = NULL;
	const char *col_b = NULL;
	if (opt_scores) {
		const char *c = strchr(opt_scores, ',');
		size_t la = c ? (size_t)(c - opt_scores) : strlen(opt_scores);
		if (!la || (c && !c[1]))
			return cli_usage_error(&CLI, "--score-col '%s': expected A or A,B", opt_scores);
		col_a = xstrfmt("%.*s", (int)la, opt_scores);
		col_b = c ? c + 1 : col_a;
	}
	cli_protect(files[0]); /* --tsv never writes over either table */
	cli_protect(files[1]);
	int split = strcmp(opt_split, "all") ? manifest_split_parse(opt_split) : -1;
	struct scoretab t[2];
	if (read_tables(t, files, col_a, col_b)) {
		free(col_a);
		return 1;
	}
	size_t *match = xmalloc((t[0].n + 1) * sizeof *match), n_matched = 0;
	struct cmp_result *res = NULL;
	int nres = 0;
	int failed = match_rows(t, files, split, match, &n_matched) || compare(t, files, match, col_b, &res, &nres);
	if (!failed) {
		if (opt_json)
			print_json(files, n_matched, res, nres);
		else
			print_table(files, n_matched, res, nres);
		if (opt_tsv && write_tsv(opt_tsv, res, nres) < 0)
			failed = 1;
	}
	free(col_a);
	free(res);
	free(match);
	scoretab_free(&t[0]);
	scoretab_free(&t[1]);
	return cli_close_stdout() || failed ? 1 : 0;
}
