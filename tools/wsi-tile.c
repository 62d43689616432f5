/* wsi-tile - one slide in, a tile stream (bag container) out. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/base/progress.h"
#include "../lib/data/bag.h"
#include "../lib/wsi/slide.h"
#include "../lib/wsi/tissue.h"
#include "../lib/base/version.h"
#include "../lib/wsi/wsitile.h"
#include "cli.h"

static const char *opt_out = "-", *opt_annot, *opt_thumb, *opt_contours, *opt_summary, *opt_preset = "default",
		  *opt_id;
static double opt_mpp, opt_mag, opt_slide_mpp, opt_min_tissue = 0, opt_a_t = NAN, opt_a_h = NAN;
static int opt_size, opt_stride, opt_coords, opt_threads, opt_force_mpp, opt_no_fast, opt_level, opt_no_tissue;
static int opt_seg_level = -2, opt_sthresh = -1, opt_mthresh = -1, opt_close = -1, opt_otsu, opt_holes = -1;
static long long opt_max_tiles, opt_seed;

static const struct cli_opt OPTS[] = {
	{"out", 'o', CLI_STRING, &opt_out, "FILE", "write the tile stream to FILE (default: standard output, never a terminal)", NULL},
	{"mpp", 0, CLI_DOUBLE, &opt_mpp, "X", "target resolution in µm per pixel", NULL},
	{"mag", 0, CLI_DOUBLE, &opt_mag, "M", "target magnification (level-0 objective from openslide.objective-power, else 10/µm-per-px snapped to 5, 10, 20, 40, 80)", NULL},
	{"size", 0, CLI_INT, &opt_size, "N", "patch side in output pixels", NULL},
	{"stride", 0, CLI_INT, &opt_stride, "S", "grid step in output pixels (default: --size)", NULL},
	{"slide-mpp", 0, CLI_DOUBLE, &opt_slide_mpp, "X", "level-0 µm/px to use when the slide records none", NULL},
	{"force-mpp", 0, CLI_FLAG, &opt_force_mpp, NULL, "use --slide-mpp even when the slide records one", NULL},
	{"annotations", 'a', CLI_STRING, &opt_annot, "FILE", "ASAP XML or GeoJSON: each patch's tumour-area fraction becomes its label", NULL},
	{"coords-only", 0, CLI_FLAG, &opt_coords, NULL, "write coordinates, tissue and label only (no pixels)", NULL},
	{"threads", 't', CLI_INT, &opt_threads, "T", "threads reading and decoding patches (0: all cores); the output does not depend on it", NULL},
	{"max-tiles", 0, CLI_I64, &opt_max_tiles, "K", "keep K patches drawn at random (0: all), still in grid order", NULL},
	{"seed", 's', CLI_I64, &opt_seed, "S", "seed for --max-tiles", NULL},
	{"min-tissue", 0, CLI_DOUBLE, &opt_min_tissue, "F", "keep patches whose tissue area fraction exceeds F", NULL},
	{"no-tissue", 0, CLI_FLAG, &opt_no_tissue, NULL, "no tissue detection: keep every patch (tissue recorded as unknown)", NULL},
	{"preset", 0, CLI_STRING, &opt_preset, "P", "CLAM segmentation preset", "default|tcga|bwh_biopsy|bwh_resection"},
	{"seg_level", 0, CLI_INT, &opt_seg_level, "L", "CLAM: level to segment (-1: the one closest to 64x)", NULL},
	{"sthresh", 0, CLI_INT, &opt_sthresh, "T", "CLAM: saturation threshold 0..255 (default 8)", NULL},
	{"mthresh", 0, CLI_INT, &opt_mthresh, "K", "CLAM: median blur side, odd (default 7)", NULL},
	{"close", 0, CLI_INT, &opt_close, "K", "CLAM: closing square side, 0 for none (default 4)", NULL},
	{"use_otsu", 0, CLI_FLAG, &opt_otsu, NULL, "CLAM: Otsu's threshold instead of sthresh", NULL},
	{"a_t", 0, CLI_DOUBLE, &opt_a_t, "A", "CLAM: minimum tissue area in 512x512 level-0 patches (default 100)", NULL},
	{"a_h", 0, CLI_DOUBLE, &opt_a_h, "A", "CLAM: minimum hole area in 512x512 level-0 patches (default 16)", NULL},
	{"max_n_holes", 0, CLI_INT, &opt_holes, "N", "CLAM: holes kept per tissue region (default 8)", NULL},
	{"thumbnail", 0, CLI_STRING, &opt_thumb, "PNG", "write the segmentation level with the tissue mask and kept patches drawn over it", NULL},
	{"contours", 0, CLI_STRING, &opt_contours, "GEOJSON", "write the tissue contours (QuPath reads them)", NULL},
	{"summary", 0, CLI_STRING, &opt_summary, "FILE", "write the per-slide summary as JSON to FILE (else a TSV line on stderr)", NULL},
	{"id", 0, CLI_STRING, &opt_id, "ID", "bag id (default: the slide's file name without extension)", NULL},
	{"zstd-level", 0, CLI_INT, &opt_level, "L", "zstd level of the stream (0: default)", NULL},
	{"no-fast", 0, CLI_FLAG, &opt_no_fast, NULL, "read every patch through OpenSlide (no tile fast path)", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"wsi-tile", "SLIDE (--mpp X | --mag M) --size N [options]",
	"Tiles one slide: resolves the target µm/px (or magnification) to a pyramid level plus a residual\n"
	"area-averaging downsample, finds tissue with CLAM's segmenter, and writes every patch of the grid\n"
	"whose tissue fraction exceeds --min-tissue as a tile stream (the bag container, label unknown):\n"
	"pixels HxWx3, or coordinates only.  Each instance records its level-0 x, y, tissue fraction and\n"
	"tumour fraction (-1 without --annotations); the header records the slide, level, µm/px and where\n"
	"it came from, the patch size in level-0 pixels, the tool version and every parameter.  Patches\n"
	"lost to corrupt tiles are skipped and counted.  The summary TSV line on stderr has the columns\n"
	"wsi-tile, slide, patches, tissue_mm2, mpp, mpp_source, seconds, bad_tiles.",
	"examples:\n"
	"  wsi-tile tumor_001.tif --mpp 0.5 --size 224 | bag-pack --id tumor_001 --label 1 -o tumor_001.wbag\n"
	"  wsi-tile tumor_001.tif --mag 5 --size 512 -a tumor_001.xml --coords-only -o tumor_001.coords.wbag\n"
	"  wsi-tile slide.svs --mpp 1 --size 256 --preset tcga --min-tissue 0.5 --thumbnail slide.png -o s.wbag\n"
	"  parallel --joblog log --resume-failed wsi-tile {} --mpp 0.5 --size 224 -o tiles/{/.}.wbag ::: slides/*.tif\n"
	"  (run the same line again after an interruption: --resume-failed redoes the jobs that failed\n"
	"  or were killed; plain --resume skips a killed job, and its slide stays missing)\n"
	"exit status: 0 success, 1 the slide cannot be read, every patch was lost to corrupt tiles, or an\n"
	"output cannot be written; 2 bad usage (an output that is an input included)",
	OPTS, 1, 1,
};

static void on_warn(void *arg, const char *msg)
{
	(void)arg;
	cli_error("wsi-tile", "warning: %s", msg);
}

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress *p = arg;
	if (!p->total)
		progress_start(p, "wsi-tile", total, "patches");
	progress_update(p, done);
}

/* The options' ranges; returns 0, or 2 on bad usage (said). */
static int check_options(void)
{
	if ((opt_mpp > 0) == (opt_mag > 0))
		return cli_usage_error(&CLI, "give exactly one of --mpp X or --mag M");
	if (opt_mpp < 0 || opt_mag < 0 || opt_slide_mpp < 0)
		return cli_usage_error(&CLI, "--mpp, --mag and --slide-mpp must be positive");
	if (opt_size < 1 || opt_size > 8192)
		return cli_usage_error(&CLI, "--size N: expected 1..8192");
	if (opt_stride < 0 || opt_stride > 1000000)
		return cli_usage_error(&CLI, "--stride S: expected 1..1000000");
	if (opt_max_tiles < 0 || opt_seed < 0)
		return cli_usage_error(&CLI, "--max-tiles and --seed must be >= 0");
	if (opt_min_tissue >= 1 || opt_min_tissue < 0)
		return cli_usage_error(&CLI, "--min-tissue F: expected 0 <= F < 1");
	if (opt_force_mpp && !(opt_slide_mpp > 0))
		return cli_usage_error(&CLI, "--force-mpp needs --slide-mpp");
	if (opt_threads < 0)
		return cli_usage_error(&CLI, "--threads must be >= 0");
	if (opt_id && strlen(opt_id) > BAG_ID_MAX)
		return cli_usage_error(&CLI, "--id: %zu bytes, a bag id holds at most %d (formats/bag.md)",
		                       strlen(opt_id), BAG_ID_MAX);
	return 0;
}

/* Where the stream goes: a device or a FIFO (/dev/null, a named pipe) is
 * written in place, as standard output, not through a temporary file
 * renamed over it; never a terminal.  Returns 0, 1 or 2 (said). */
static int open_output(void)
{
	struct stat ost;
	if (strcmp(opt_out, "-") && !stat(opt_out, &ost) && !S_ISREG(ost.st_mode)) {
		if (S_ISDIR(ost.st_mode))
			return cli_usage_error(&CLI, "-o %s: a directory", opt_out);
		if (!freopen(opt_out, "wb", stdout)) {
			cli_error("wsi-tile", "cannot open '%s' for writing", opt_out);
			return 1;
		}
		opt_out = "-";
	}
	if ((!strcmp(opt_out, "-")) && isatty(1))
		return cli_usage_error(&CLI, "refusing to write a tile stream to a terminal: use -o FILE or a pipe");
	return 0;
}

/* The segmentation parameters: --preset's, then the CLAM options given;
 * returns 0, or 2 on bad usage (said). */
static int tissue_options(struct tissue_params *t)
{
	struct err e = {0};
	if (tissue_preset(t, opt_preset, &e))
		return cli_usage_error(&CLI, "%s", e.msg);
	if (opt_seg_level != -2)
		t->seg_level = opt_seg_level;
	if (opt_sthresh >= 0)
		t->sthresh = opt_sthresh;
	if (opt_mthresh >= 0)
		t->mthresh = opt_mthresh;
	if (opt_close >= 0)
		t->close = opt_close;
	if (opt_otsu)
		t->use_otsu = 1;
	if (!isnan(opt_a_t))
		t->a_t = opt_a_t;
	if (!isnan(opt_a_h))
		t->a_h = opt_a_h;
	if (opt_holes >= 0)
		t->max_n_holes = opt_holes;
	if (t->mthresh % 2 == 0 || t->sthresh > 255 || t->seg_level < -1)
		return cli_usage_error(&CLI, "--mthresh must be odd, --sthresh 0..255, --seg_level >= -1");
	return 0;
}

/* The parameters the stream's provenance records (the caller frees them):
 * the options but where things go, then the effective segmentation
 * parameters, whatever the preset. */
static char *make_params(const struct tissue_params *t)
{
	char *opts = cli_params_alloc(&CLI, "out,threads,summary,thumbnail,contours,no-fast,quiet");
	char *params = xstrfmt("%stissue.seg_level=%d\ntissue.sthresh=%d\ntissue.mthresh=%d\ntissue.close=%d\n"
	                       "tissue.use_otsu=%d\ntissue.a_t=%g\ntissue.a_h=%g\ntissue.max_n_holes=%d\n",
	                       opts, t->seg_level, t->sthresh, t->mthresh, t->close, t->use_otsu, t->a_t, t->a_h,
	                       t->max_n_holes);
	free(opts);
	return params;
}

/* The rest of what wsitile_run takes, from the options. */
static void fill_opts(struct wsitile_opts *o, const char *params, struct progress *pr)
{
	o->mpp = opt_mpp;
	o->mag = opt_mag;
	o->slide_mpp = opt_slide_mpp;
	o->force_mpp = opt_force_mpp;
	o->size = (uint32_t)opt_size;
	o->stride = (uint32_t)opt_stride;
	o->annotations = opt_annot;
	o->coords_only = opt_coords;
	o->min_tissue = opt_no_tissue ? -1 : opt_min_tissue;
	o->max_tiles = (uint64_t)opt_max_tiles;
	o->seed = (uint64_t)opt_seed;
	o->thumbnail = opt_thumb;
	o->contours = opt_contours;
	o->fast = !opt_no_fast;
	o->zlevel = opt_level;
	o->id = opt_id;
	o->params = params;
	o->version = WENO_VERSION;
	o->warn = on_warn;
	o->progress = on_progress;
	o->arg = pr;
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	cli_protect(pos[0]); /* no output may overwrite the slide or the annotations */
	cli_protect(opt_annot);
	if ((rc = check_options()) || (rc = open_output()))
		return rc;
	struct wsitile_opts o;
	memset(&o, 0, sizeof o);
	if ((rc = tissue_options(&o.tissue)))
		return rc;
	if (opt_threads > 0)
		omp_set_num_threads(opt_threads);
	char *params = make_params(&o.tissue);
	struct progress pr;
	memset(&pr, 0, sizeof pr);
	fill_opts(&o, params, &pr);
	struct wsitile_result r;
	struct err e = {0};
	rc = wsitile_run(pos[0], opt_out, &o, &r, &e);
	free(params);
	if (pr.total)
		progress_done(&pr);
	if (rc) {
		cli_error("wsi-tile", "%s", e.msg);
		return rc == ERR_USAGE ? 2 : 1;
	}
	if (opt_summary) {
		if (wsitile_write_summary(opt_summary, pos[0], &r, WENO_VERSION, &e)) {
			cli_error("wsi-tile", "%s", e.msg);
			return 1;
		}
	} else {
		fprintf(stderr, "wsi-tile\t%s\t%llu\t%.4f\t%.6g\t%s\t%.2f\t%llu\n", pos[0], (unsigned long long)r.written,
			r.tissue_mm2, r.mpp, slide_mpp_source_name(r.mpp_source), r.seconds,
			(unsigned long long)r.bad_tiles);
	}
	return 0;
}
