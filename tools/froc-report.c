/* froc-report - Camelyon16's lesion-level FROC from weno-score's patch
 * scores or from the challenge's detection CSV files, against the tumour
 * annotations (lib/mil/frocrun.h, lib/wsi/FROC.md). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/base/afile.h"
#include "../lib/base/plot.h"
#include "../lib/data/manifest.h"
#include "../lib/mil/frocrun.h"
#include "cli.h"

static const char *opt_scores, *opt_dets, *opt_annot, *opt_score = "student", *opt_score_col, *opt_split = "test",
		  *opt_rule = "maxima", *opt_bags, *opt_exclude, *opt_json_out, *opt_tsv, *opt_svg, *opt_lesions,
		  *opt_dets_out, *opt_title;
static double opt_threshold = 0.5, opt_patch, opt_mpp = 0.243, opt_tol = 75, opt_itc = 275;
static int opt_level = 5, opt_boot = 1000, opt_json, opt_minmax;
static long long opt_seed;

static const struct cli_opt OPTS[] = {
	{"scores", 0, CLI_STRING, &opt_scores, "TSV", "weno-score's table: detections from its instance rows", NULL},
	{"detections", 'd', CLI_STRING, &opt_dets, "DIR", "or a folder of the challenge's CSV files, <slide>.csv with confidence,X,Y lines", NULL},
	{"annotations", 'a', CLI_STRING, &opt_annot, "DIR", "tumour annotations <slide>.xml (ASAP) or .geojson; a slide without one has no tumour", NULL},
	{"score", 0, CLI_STRING, &opt_score, "S", "which score: the student's probability, or the teacher's attention logit (min-max normalised over all slides)", "student|teacher"},
	{"score-col", 0, CLI_STRING, &opt_score_col, "NAME", "another score column of the table (instead of --score)", NULL},
	{"minmax", 0, CLI_FLAG, &opt_minmax, NULL, "min-max normalise the scores over all slides (teacher scores always are)", NULL},
	{"split", 0, CLI_STRING, &opt_split, "S", "the table's rows of this split (all: every row)", "train|val|test|none|all"},
	{"rule", 0, CLI_STRING, &opt_rule, "R", "detections: each patch >= T, or one per region of touching patches >= T at its peak", "patch|maxima"},
	{"threshold", 't', CLI_DOUBLE, &opt_threshold, "T", "detection threshold on the (normalised) score", NULL},
	{"patch", 0, CLI_DOUBLE, &opt_patch, "N", "patch side in level-0 pixels (default: from --bags)", NULL},
	{"bags", 0, CLI_STRING, &opt_bags, "DIR", "the folder of <slide>.wbag whose headers give the patch side", NULL},
	{"exclude", 0, CLI_STRING, &opt_exclude, "IDS", "slides to leave out, comma-separated (e.g. test_114, not exhaustively annotated)", NULL},
	{"level", 0, CLI_INT, &opt_level, "L", "level of the evaluation masks (downsample 2^L)", NULL},
	{"mpp", 0, CLI_DOUBLE, &opt_mpp, "X", "µm per level-0 pixel the evaluation assumes (the challenge: 0.243 for every slide)", NULL},
	{"tolerance", 0, CLI_DOUBLE, &opt_tol, "UM", "lesions are dilated by half of it, so lesions closer than it merge", NULL},
	{"itc", 0, CLI_DOUBLE, &opt_itc, "UM", "a dilated lesion whose major axis is below it is an ITC and counts neither way", NULL},
	{"bootstrap", 'b', CLI_INT, &opt_boot, "N", "slide-level bootstrap resamples for the 95 % intervals (0: none)", NULL},
	{"seed", 's', CLI_I64, &opt_seed, "S", "bootstrap seed", NULL},
	{"json", 'j', CLI_FLAG, &opt_json, NULL, "print the JSON report instead of the table", NULL},
	{"json-out", 0, CLI_STRING, &opt_json_out, "FILE", "also write the JSON report (slides, lesions, curve, score)", NULL},
	{"tsv", 0, CLI_STRING, &opt_tsv, "FILE", "write the curve as TSV (threshold fps_per_slide sensitivity)", NULL},
	{"svg", 0, CLI_STRING, &opt_svg, "FILE", "draw the curve as SVG", NULL},
	{"title", 0, CLI_STRING, &opt_title, "TEXT", "the SVG's title (default: the input)", NULL},
	{"lesions", 0, CLI_STRING, &opt_lesions, "FILE", "write every lesion as TSV (size, ITC, the confidence that hit it)", NULL},
	{"detections-out", 0, CLI_STRING, &opt_dets_out, "DIR", "write the detections as the challenge's CSV files, one per slide", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"froc-report", "(--scores TSV | --detections DIR) --annotations DIR [options]",
	"Camelyon16's lesion-level FROC: the sensitivity at 1/4, 1/2, 1, 2, 4 and 8 false positives per\n"
	"slide and their mean, the challenge's score, as its published evaluation script computes it\n"
	"(lib/wsi/FROC.md lists every rule and quirk with its source).  Lesions come from the tumour\n"
	"annotations (ASAP XML or GeoJSON, `_2` exclusions honoured) as level-5 masks dilated by 37.5 µm;\n"
	"a lesion under 275 µm (dilated; 200 µm before) is an isolated tumour cell cluster and counts\n"
	"neither as a hit nor as a false positive.  Detections are points with a confidence: from\n"
	"weno-score's instance rows (--rule) or from a folder of CSV files in the challenge's format, so\n"
	"that other systems are judged the same way.  The table goes to stdout; --json, --tsv, --svg,\n"
	"--lesions and --detections-out write the rest.",
	"examples:\n"
	"  froc-report --scores scores.tsv --bags tiles/ -a testing/lesion_annotations\n"
	"  froc-report --scores scores.tsv --score teacher --patch 512 -a ann/ --svg froc.svg --tsv froc.tsv\n"
	"  froc-report -d other-system/csv -a testing/lesion_annotations --exclude test_114 -j > froc.json\n"
	"exit status: 0 success, 1 unreadable or unsuitable input (no lesion to detect), 2 bad usage",
	OPTS, 0, 0,
};

/* printf to stdout; a failed write shows in cli_close_stdout */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static void ci(double lo, double hi)
{
	if (isnan(lo))
		out("\n");
	else
		out("  [%.4f, %.4f]\n", lo, hi);
}

static void print_table(const struct frocrun *r, const char *col)
{
	const struct froc_curve *c = &r->curve;
	if (r->o.scores)
		out("%s: %s, split %s, rule %s at %g\n", r->o.scores, col, opt_split, opt_rule, opt_threshold);
	else
		out("%s: detection CSV files\n", r->o.detections);
	out("%zu slides (%zu with annotations), %zu lesions to detect (%zu ITCs left out), %zu detections: "
	    "%zu lesions hit, %zu false positives\n",
	    r->n, r->n_tumour, r->nles, r->n_itc, r->ndet, c->tp, c->fp);
	out("%-11s %11s", "FPs/slide", "sensitivity");
	if (r->boot > 0)
		out("  95%% CI (slide bootstrap, %d)", r->boot);
	out("\n");
	for (int k = 0; k < FROC_NTARGETS; k++) {
		out("%-11g %11.4f", froc_targets[k], c->at[k]);
		ci(r->lo[k], r->hi[k]);
	}
	out("%-11s %11.4f", "FROC score", c->score);
	ci(r->lo[FROC_NTARGETS], r->hi[FROC_NTARGETS]);
}

/* the options that must hold before anything is read: 0, or 2 (said) */
static int check_options(void)
{
	if (!opt_scores == !opt_dets)
		return cli_usage_error(&CLI, "give either --scores TSV or --detections DIR");
	if (!opt_annot)
		return cli_usage_error(&CLI, "give the folder of tumour annotations with --annotations DIR");
	if (opt_scores && !opt_bags && !(opt_patch > 0))
		return cli_usage_error(&CLI, "give the patch side with --patch N (level-0 pixels) or --bags DIR");
	if (opt_patch < 0 || !isfinite(opt_patch))
		return cli_usage_error(&CLI, "--patch %g: must be positive", opt_patch);
	if (!isfinite(opt_threshold))
		return cli_usage_error(&CLI, "--threshold %g: must be a number", opt_threshold);
	if (opt_boot < 0 || opt_boot > 100000)
		return cli_usage_error(&CLI, "--bootstrap %d: expected 0..100000", opt_boot);
	if (opt_seed < 0)
		return cli_usage_error(&CLI, "--seed must be >= 0");
	return 0;
}

static void fill_opts(struct frocrun_opts *o)
{
	memset(o, 0, sizeof *o);
	o->scores = opt_scores;
	o->detections = opt_dets;
	o->annotations = opt_annot;
	o->bags = opt_bags;
	o->patch0 = opt_patch;
	int teacher = !strcmp(opt_score, "teacher");
	o->score_col = opt_score_col ? opt_score_col : teacher ? "teacher_score" : "student_score";
	o->minmax = opt_minmax || (!opt_score_col && teacher);
	o->split = strcmp(opt_split, "all") ? manifest_split_parse(opt_split) : -1;
	o->rule = strcmp(opt_rule, "patch") ? FROC_RULE_MAXIMA : FROC_RULE_PATCH;
	o->threshold = opt_threshold;
	o->exclude = opt_exclude;
	o->lp = (struct lesion_params){opt_level, opt_mpp, opt_tol, opt_itc};
}

/* says a failed write; 1 when it failed */
static int said(int rc, const struct err *e)
{
	if (rc)
		cli_error(CLI.prog, "%s", e->msg);
	return rc != 0;
}

/* the files asked for (JSON, curve TSV, SVG, lesions, detections);
 * returns how many failed (said) */
static int write_files(const struct frocrun *r, const struct frocrun_opts *o)
{
	struct err e = {0};
	int failed = 0;
	if (opt_json_out) {
		struct afile af;
		if (!afile_open(&af, opt_json_out, &e)) {
			frocrun_write_json(r, af.fp);
			afile_commit(&af, &e);
		}
		failed += said(e.code, &e);
	}
	if (opt_tsv) {
		err_clear(&e);
		failed += said(frocrun_write_curve(r, opt_tsv, &e), &e);
	}
	if (opt_svg) {
		char name[200];
		snprintf(name, sizeof name, "%s (FROC score %.4f)", o->scores ? o->score_col : "detections", r->curve.score);
		struct plot_curve pc = {name, r->curve.fps, r->curve.sens, (long)r->curve.n};
		err_clear(&e);
		failed += said(plot_froc_svg(opt_svg, opt_title ? opt_title : o->scores ? o->scores : o->detections, &pc,
		                             1, r->curve.at, &e), &e);
	}
	if (opt_lesions) {
		err_clear(&e);
		failed += said(frocrun_write_lesions(r, opt_lesions, &e), &e);
	}
	if (opt_dets_out) {
		err_clear(&e);
		failed += said(frocrun_write_detections(r, opt_dets_out, &e), &e);
	}
	return failed;
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	cli_protect(opt_scores); /* the outputs never write over the scores */
	if ((rc = check_options()))
		return rc;
	struct frocrun_opts o;
	fill_opts(&o);
	struct err e = {0};
	if (lesion_params_check(&o.lp, &e))
		return cli_usage_error(&CLI, "%s", e.msg);
	struct frocrun *r;
	if (frocrun_load(&r, &o, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	for (size_t i = 0; i < r->nnotes; i++)
		cli_error(CLI.prog, "warning: %s", r->notes[i]);
	if (frocrun_compute(r, opt_boot, (uint64_t)opt_seed, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		frocrun_free(r);
		return 1;
	}
	int failed = write_files(r, &o); /* the files first: a report on stdout says they are done */
	if (opt_json)
		frocrun_write_json(r, stdout);
	else
		print_table(r, o.score_col);
	failed += cli_close_stdout();
	frocrun_free(r);
	return failed ? 1 : 0;
}
