/* weno-heatmap - one slide's patch scores over its thumbnail (PNG) and as
 * GeoJSON for QuPath. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/data/bag.h"
#include "../lib/mil/froc.h"
#include "../lib/wsi/heatmap.h"
#include "../lib/base/version.h"
#include "cli.h"

static const char *opt_slide, *opt_scores, *opt_bag_id, *opt_bag, *opt_score = "student", *opt_out, *opt_geojson,
		  *opt_cmap = "viridis", *opt_dets;
static double opt_patch, opt_alpha = 0.5, opt_threshold = 0.5;
static int opt_max_side = 2048, opt_no_legend, opt_minmax;

static const struct cli_opt OPTS[] = {
	{"slide", 0, CLI_STRING, &opt_slide, "FILE", "the slide (any format OpenSlide reads); needed for the PNG", NULL},
	{"scores", 0, CLI_STRING, &opt_scores, "TSV", "scores table from weno-score (formats/scores.md)", NULL},
	{"bag-id", 0, CLI_STRING, &opt_bag_id, "ID", "the slide's bag id in the table (default: the id in --bag)", NULL},
	{"bag", 0, CLI_STRING, &opt_bag, "WBAG", "the slide's bag or tile stream: patch size (patch_level0) and bag id from its header", NULL},
	{"patch", 0, CLI_DOUBLE, &opt_patch, "N", "patch side in level-0 pixels (default: from --bag)", NULL},
	{"score", 0, CLI_STRING, &opt_score, "S", "which score: the student's probability, or the teacher's attention logit min-max normalised per slide", "student|teacher"},
	{"minmax", 0, CLI_FLAG, &opt_minmax, NULL, "min-max normalise student scores too (teacher scores always are)", NULL},
	{"alpha", 0, CLI_DOUBLE, &opt_alpha, "A", "weight of the colour over the thumbnail, 0..1", NULL},
	{"max-side", 0, CLI_INT, &opt_max_side, "PX", "the thumbnail's longest side, at most (never above level 0)", NULL},
	{"cmap", 0, CLI_STRING, &opt_cmap, "MAP", "colour map: viridis (purple 0 to yellow 1, perceptual) or bluered (blue, white, red)", "viridis|bluered"},
	{"no-legend", 0, CLI_FLAG, &opt_no_legend, NULL, "no colour bar strip below the thumbnail", NULL},
	{"threshold", 0, CLI_DOUBLE, &opt_threshold, "T", "GeoJSON: a shown score >= T is classified Positive, else Negative", NULL},
	{"detections", 0, CLI_STRING, &opt_dets, "CSV", "mark these detection points (confidence,X,Y per line: froc-report --detections-out) with crosses", NULL},
	{"output", 'o', CLI_STRING, &opt_out, "PNG", "the heatmap picture", NULL},
	{"geojson", 0, CLI_STRING, &opt_geojson, "FILE", "the scored patches as GeoJSON (level-0 polygons, QuPath measurements)", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"weno-heatmap", "--scores TSV (--bag-id ID | --bag WBAG) [--slide SLIDE -o PNG] [--geojson FILE] [options]",
	"Draws one slide's patch scores over its thumbnail with bounded memory, whatever the slide's size:\n"
	"the thumbnail (longest side --max-side) is read from the coarsest pyramid level fine enough,\n"
	"block by block, and each patch's square is filled with the colour of its score, blended with\n"
	"--alpha; a colour bar strip of 36 px below it gives the score range.  Student scores are\n"
	"probabilities shown as they are; teacher scores are attention logits, min-max normalised per\n"
	"slide (the legend shows the raw range).  --geojson writes every scored patch as a Polygon in\n"
	"level-0 pixels with properties score, raw_score, label and index, and QuPath's objectType,\n"
	"classification and measurements, so QuPath opens it and colours the patches by score\n"
	"(Measure > Show measurement maps).  --detections marks detection points (the challenge's CSV\n"
	"format, as froc-report writes them) with red crosses, and adds them to the GeoJSON as points.",
	"examples:\n"
	"  weno-heatmap --slide test_001.tif --scores scores.tsv --bag bags/test_001.wbag -o test_001.png\n"
	"  weno-heatmap --slide s.svs --scores scores.tsv --bag-id s --patch 1024 --score teacher \\\n"
	"      --alpha 0.6 --max-side 4096 -o s.png --geojson s.geojson\n"
	"  weno-heatmap --scores scores.tsv --bag-id s --patch 512 --geojson s.geojson     # no slide needed\n"
	"exit status: 0 success, 1 unreadable or unsuitable input (no output is left behind), 2 bad usage",
	OPTS, 0, 0,
};

/* the options that must hold before anything is read: 0, or 2 (said) */
static int check_options(void)
{
	if (!opt_scores)
		return cli_usage_error(&CLI, "give the scores table with --scores");
	if (!opt_out && !opt_geojson)
		return cli_usage_error(&CLI, "nothing to write: give -o PNG and/or --geojson FILE");
	if (opt_out && !opt_slide)
		return cli_usage_error(&CLI, "-o PNG draws over the slide: give --slide");
	if (!opt_bag_id && !opt_bag)
		return cli_usage_error(&CLI, "which slide? give --bag-id ID or --bag WBAG");
	if (!opt_bag && !(opt_patch > 0))
		return cli_usage_error(&CLI, "give the patch side in level-0 pixels with --patch N, or --bag WBAG");
	if (opt_patch < 0 || !isfinite(opt_patch))
		return cli_usage_error(&CLI, "--patch %g: must be positive", opt_patch);
	if (!(opt_alpha >= 0 && opt_alpha <= 1))
		return cli_usage_error(&CLI, "--alpha %g: must be in [0, 1]", opt_alpha);
	if (opt_max_side < 1 || opt_max_side > HEATMAP_MAX_SIDE)
		return cli_usage_error(&CLI, "--max-side %d: must be 1..%d", opt_max_side, HEATMAP_MAX_SIDE);
	return 0;
}

/* The bag id and the patch side: --bag-id and --patch, else --bag's
 * header; *hdr_id holds the header's id (owned).  0, or 1 (said). */
static int bag_identity(char **hdr_id, const char **bag_id, double *patch0)
{
	struct err e = {0};
	*patch0 = opt_patch;
	if (opt_bag) {
		struct bag_reader *br;
		if (bag_open(&br, opt_bag, &e)) {
			cli_error(CLI.prog, "%s", e.msg);
			return 1;
		}
		const struct bag_header *h = bag_reader_header(br);
		*hdr_id = xstrdup(h->id);
		if (!(*patch0 > 0))
			*patch0 = h->patch_level0;
		bag_close(br);
		if (!(*patch0 > 0)) {
			cli_error(CLI.prog, "%s: the header records no patch size (patch_level0 0)\nhint: give --patch N",
			          opt_bag);
			return 1;
		}
	}
	*bag_id = opt_bag_id ? opt_bag_id : *hdr_id;
	if (!(*bag_id)[0]) {
		cli_error(CLI.prog, "%s: the bag has no id\nhint: give --bag-id ID", opt_bag);
		return 1;
	}
	return 0;
}

/* --detections as marks (*marks owned; none without the option) */
static int read_marks(struct heatmap_mark **marks, size_t *n)
{
	*marks = NULL;
	*n = 0;
	if (!opt_dets)
		return 0;
	struct err e = {0};
	struct froc_det *d;
	if (froc_read_csv(opt_dets, &d, n, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	*marks = xmalloc((*n ? *n : 1) * sizeof **marks);
	for (size_t k = 0; k < *n; k++)
		(*marks)[k] = (struct heatmap_mark){d[k].x, d[k].y, d[k].conf};
	free(d);
	return 0;
}

/* the PNG over the slide, with a line saying what it drew */
static int draw_png(const struct heatmap_scores *s, double patch0, int minmax, const char *col,
                    const struct heatmap_mark *marks, size_t n_marks, struct err *e)
{
	struct heatmap_opts o = {
		.max_side = (uint32_t)opt_max_side,
		.alpha = opt_alpha,
		.cmap = !strcmp(opt_cmap, "bluered") ? HEATMAP_BLUERED : HEATMAP_VIRIDIS,
		.legend = !opt_no_legend,
		.patch0 = patch0,
		.minmax = minmax,
		.marks = marks,
		.n_marks = n_marks,
	};
	struct heatmap_result r;
	int rc = heatmap_write_png(opt_slide, s, &o, opt_out, &r, e);
	if (rc)
		return rc;
	if (r.bad_blocks)
		cli_error(CLI.prog, "warning: %s: %llu thumbnail blocks unreadable, drawn grey; the first: %s", opt_slide,
		          (unsigned long long)r.bad_blocks, r.first_bad);
	if (!cli_quiet)
		fprintf(stderr, "weno-heatmap: %s: %zu patches of %g level-0 px, %s; %ux%u px (level %d, %.4g level-0 px "
		        "per px)\n", opt_out, s->n, patch0, col, r.w, r.h, r.level, r.downsample);
	return 0;
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	/* no output may overwrite an input */
	const char *ins[] = {opt_slide, opt_scores, opt_bag, opt_dets};
	for (size_t i = 0; i < sizeof ins / sizeof *ins; i++)
		cli_protect(ins[i]);
	if ((rc = check_options()))
		return rc;
	char *hdr_id = NULL;
	const char *bag_id = NULL;
	double patch0;
	if (bag_identity(&hdr_id, &bag_id, &patch0)) {
		free(hdr_id);
		return 1;
	}
	struct err e = {0};
	int teacher = !strcmp(opt_score, "teacher");
	const char *col = teacher ? "teacher_score" : "student_score";
	struct heatmap_scores s;
	if (heatmap_read_scores(&s, opt_scores, bag_id, col, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		free(hdr_id);
		return 1;
	}
	heatmap_normalise(&s, teacher || opt_minmax);
	struct heatmap_mark *marks;
	size_t n_marks;
	if (read_marks(&marks, &n_marks)) {
		heatmap_scores_free(&s);
		free(hdr_id);
		return 1;
	}
	if (s.skipped_na)
		cli_error(CLI.prog, "warning: %s: bag '%s': %zu rows with %s NA left out", opt_scores, bag_id, s.skipped_na,
		          col);
	if (opt_out)
		rc = draw_png(&s, patch0, teacher || opt_minmax, col, marks, n_marks, &e);
	if (!rc && opt_geojson) {
		rc = heatmap_write_geojson(opt_geojson, &s, patch0, opt_threshold, bag_id, col, marks, n_marks, &e);
		if (rc && opt_out)
			unlink(opt_out);
		else if (!cli_quiet)
			fprintf(stderr, "weno-heatmap: %s: %zu features\n", opt_geojson, s.n);
	}
	if (rc)
		cli_error(CLI.prog, "%s", e.msg);
	heatmap_scores_free(&s);
	free(marks);
	free(hdr_id);
	return rc ? 1 : 0;
}
