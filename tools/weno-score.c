/* weno-score - scores bags with a trained model: scores.tsv (formats/scores.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/base/afile.h"
#include "../lib/data/dataset.h"
#include "../lib/nn/nn.h"
#include "../lib/nn/nn_cuda.h"
#include "../lib/base/progress.h"
#include "../lib/base/version.h"
#include "../lib/mil/weno.h"
#include "cli.h"

static const char *opt_manifest, *opt_out = "-", *opt_split = "test", *opt_device = "auto", *opt_top;
static int opt_threads = 0, opt_top_k = 0;

static const struct cli_opt OPTS[] = {
	{"manifest", 'm', CLI_STRING, &opt_manifest, "FILE", "the bags to score", NULL},
	{"split", 0, CLI_STRING, &opt_split, "S", "which rows of the manifest: one split, several (val,test) or all", NULL},
	{"output", 'o', CLI_STRING, &opt_out, "FILE", "scores.tsv (default: standard output)", NULL},
	{"top-k", 'k', CLI_INT, &opt_top_k, "N", "also list each bag's N most positive instances (by the student)", NULL},
	{"top-out", 0, CLI_STRING, &opt_top, "FILE", "where --top-k goes (default: standard error)", NULL},
	{"threads", 't', CLI_INT, &opt_threads, "T", "CPU threads (0: all cores)", NULL},
	{"device", 0, CLI_STRING, &opt_device, "D", "where to compute", "auto|cpu|cuda"},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"weno-score", "[options] MODEL -m MANIFEST [-o scores.tsv]",
	"Scores bags with a model from weno-fit: one row per bag (the student's bag score, the max of its\n"
	"instance probabilities, and the teacher's bag probability) and one row per instance (its\n"
	"level-0 x and y, its label when known, the student's probability and the teacher's score).\n"
	"The format is formats/scores.md; auc-report reads it.",
	"examples:\n"
	"  weno-score fm10/abmil-weno.model -m fm10/manifest.tsv -o fm10/scores.tsv\n"
	"  weno-score model -m manifest.tsv --split val,test -o scores.tsv && auc-report scores.tsv\n"
	"  weno-score model -m manifest.tsv --top-k 5 --top-out top5.tsv -o scores.tsv\n"
	"environment: WENO_CUDA_LIB=PATH, the CUDA backend library (default: ../lib/libweno_cuda.so\n"
	"beside the program); WENO_CUDA_FAST=1, TF32 on the GPU (faster, not bit-exact with the CPU);\n"
	"WENO_CUDA_GRAPHS=0, run the networks op by op instead of as recorded CUDA graphs\n"
	"exit status: 0 success, 1 unreadable model or bags, 2 bad usage",
	OPTS, 1, 1,
};

static void num(FILE *f, double v)
{
	if (isnan(v))
		fputs("NA", f);
	else
		fprintf(f, "%.9g", v);
}

struct ranked {
	float s;
	uint32_t i;
};

static int cmp_desc(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return x->i < y->i ? -1 : 1;
}

/* Sets want[SPLIT_*] for the splits --split names; returns 0, or 2 on bad
 * usage (said). */
static int parse_splits(int want[4])
{
	if (!strcmp(opt_split, "all")) {
		want[0] = want[1] = want[2] = want[3] = 1;
		return 0;
	}
	char *buf = xstrdup(opt_split);
	for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
		int s = manifest_split_parse(tok);
		if (s < 0)
			return cli_usage_error(&CLI, "--split '%s': expected train, val, test, none or all", tok);
		want[s] = 1;
	}
	free(buf);
	return 0;
}

/* The model on its device and the manifest's bags, which must hold the
 * instances the model takes; returns 0, or 1 (said; nothing to free). */
static int open_inputs(struct weno_model *m, struct dataset *ds, const char *model)
{
	const struct nn_backend *be = nn_backend_get(opt_device);
	if (!be) {
		char why[ERR_MSG_MAX]; /* as long as any error message */
		nn_cuda_available(why, sizeof why);
		cli_error(CLI.prog, "--device cuda: no usable GPU: %s\nhint: --device cpu", why);
		return 1;
	}
	if (opt_threads > 0)
		nn_set_threads(opt_threads);
	struct err e = {0};
	if (weno_model_load(m, model, be, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	if (dataset_open(ds, opt_manifest, 0, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		weno_model_free(m);
		return 1;
	}
	/* no output may overwrite the model, the manifest or a bag */
	cli_protect(model);
	cli_protect(opt_manifest);
	for (uint32_t b = 0; b < ds->man.n; b++)
		cli_protect(ds->man.rows[b].path);
	if ((int)ds->c != m->in_c || (int)ds->h != m->in_h || (int)ds->w != m->in_w) {
		cli_error(CLI.prog, "%s takes instances of %dx%dx%d, the bags of %s hold %ux%ux%u", model, m->in_h,
		          m->in_w, m->in_c, opt_manifest, ds->h, ds->w, ds->c);
		dataset_close(ds);
		weno_model_free(m);
		return 1;
	}
	return 0;
}

/* scores.tsv and --top-out, with their header lines; returns 0, or 1 (said). */
static int open_outputs(struct afile *af, struct afile *top, const struct weno_model *m, const char *model)
{
	struct err e = {0};
	if (afile_open(af, opt_out, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	if (opt_top && afile_open(top, opt_top, &e)) {
		afile_abort(af);
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	fprintf(af->fp, "# weno-score %s: model %s (%s, %s teacher, %s encoder, epoch %llu, seed %llu), manifest %s, split %s\n",
	        WENO_VERSION, model, weno_method_name(m->conf.method), nn_module_kind_name(m->conf.teacher),
	        nn_module_kind_name(m->conf.encoder), (unsigned long long)m->epoch, (unsigned long long)m->conf.seed,
	        opt_manifest, opt_split);
	fprintf(af->fp, "kind\tsplit\tbag_id\tindex\tx\ty\tlabel\tstudent_score\tteacher_score\n");
	if (opt_top_k)
		fprintf(opt_top ? top->fp : stderr, "bag_id\trank\tindex\tx\ty\tlabel\tstudent_score\n");
	return 0;
}

/* One bag's rows of scores.tsv: the bag's, then one per instance. */
static void write_rows(FILE *f, const struct manifest_row *row, const struct bag_inst *inst, uint64_t n,
                       const float *fs, const float *ft, double bs, double bt)
{
	const char *sp = manifest_split_name(row->split);
	fprintf(f, "bag\t%s\t%s\tNA\tNA\tNA\t%d\t", sp, row->bag_id, row->label);
	num(f, bs);
	fputc('\t', f);
	num(f, bt);
	fputc('\n', f);
	for (uint64_t i = 0; i < n; i++) {
		fprintf(f, "instance\t%s\t%s\t%llu\t%d\t%d\t", sp, row->bag_id, (unsigned long long)i, inst[i].x,
		        inst[i].y);
		num(f, inst[i].label >= 0 ? inst[i].label : NAN);
		fputc('\t', f);
		num(f, fs[i]);
		fputc('\t', f);
		num(f, ft[i]);
		fputc('\n', f);
	}
}

/* A bag's --top-k most positive instances by the student's scores fs,
 * ranked in rk (room for n). */
static void write_top(FILE *tf, const char *bag_id, const struct bag_inst *inst, uint64_t n, const float *fs,
                      struct ranked *rk)
{
	for (uint64_t i = 0; i < n; i++)
		rk[i] = (struct ranked){fs[i], (uint32_t)i};
	qsort(rk, n, sizeof *rk, cmp_desc);
	for (uint64_t r = 0; r < n && r < (uint64_t)opt_top_k; r++) {
		uint32_t i = rk[r].i;
		fprintf(tf, "%s\t%llu\t%u\t%d\t%d\t", bag_id, (unsigned long long)r + 1, i, inst[i].x, inst[i].y);
		num(tf, inst[i].label >= 0 ? inst[i].label : NAN);
		fprintf(tf, "\t%.9g\n", (double)rk[r].s);
	}
}

/* Scores the bags of the wanted splits, in manifest order, into out (and
 * the top instances into tf); returns 0 or the first error, in e. */
static int score_bags(struct weno_model *m, struct dataset *ds, const int want[4], FILE *out, FILE *tf,
                      struct err *e)
{
	float *buf = NULL, *fs = NULL, *ft = NULL;
	struct bag_inst *ib = NULL;
	size_t bc = 0, ic = 0, fcap = 0;
	struct ranked *rk = NULL;
	struct progress pr;
	uint32_t total = 0, done = 0;
	for (uint32_t b = 0; b < ds->man.n; b++)
		total += want[ds->man.rows[b].split];
	progress_start(&pr, "weno-score", total, "bags");
	int rc = 0;
	for (uint32_t b = 0; !rc && b < ds->man.n; b++) {
		const struct manifest_row *row = &ds->man.rows[b];
		if (!want[row->split])
			continue;
		const float *x;
		const struct bag_inst *inst;
		uint64_t n;
		if ((rc = dataset_load_bag(ds, b, &x, &inst, &n, &buf, &bc, &ib, &ic, e)))
			break;
		if (n > fcap) {
			free(fs);
			free(ft);
			free(rk);
			fs = xmalloc(n * sizeof *fs);
			ft = xmalloc(n * sizeof *ft);
			rk = xmalloc(n * sizeof *rk);
			fcap = n;
		}
		double bs, bt;
		if ((rc = weno_score_bag(m, x, n, fs, ft, &bs, &bt, e)))
			break;
		write_rows(out, row, inst, n, fs, ft, bs, bt);
		if (opt_top_k && m->student)
			write_top(tf, row->bag_id, inst, n, fs, rk);
		progress_update(&pr, ++done);
	}
	progress_done(&pr);
	free(buf);
	free(ib);
	free(fs);
	free(ft);
	free(rk);
	return rc;
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	if (!opt_manifest)
		return cli_usage_error(&CLI, "give the bags with -m MANIFEST");
	int want[4] = {0, 0, 0, 0};
	if ((rc = parse_splits(want)))
		return rc;
	struct weno_model m;
	struct dataset ds;
	if (open_inputs(&m, &ds, pos[0]))
		return 1;
	struct afile af, top;
	if (open_outputs(&af, &top, &m, pos[0])) {
		dataset_close(&ds);
		weno_model_free(&m);
		return 1;
	}
	struct err e = {0};
	rc = score_bags(&m, &ds, want, af.fp, opt_top ? top.fp : stderr, &e);
	if (!rc)
		rc = afile_commit(&af, &e);
	else
		afile_abort(&af);
	if (opt_top) {
		if (!rc)
			rc = afile_commit(&top, &e);
		else
			afile_abort(&top);
	}
	if (rc)
		cli_error(CLI.prog, "%s", e.msg);
	dataset_close(&ds);
	weno_model_free(&m);
	return rc ? 1 : 0;
}
