/* slide-synth - writes synthetic pyramidal slides with tissue, tumours and
 * ASAP XML annotations, or whole Camelyon16-shaped folders of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/base/progress.h"
#include "../lib/wsi/slidegen.h"
#include "cli.h"

static const char *opt_out, *opt_xml, *opt_tissue_mask, *opt_tumour_mask, *opt_size = "8192x6144",
		  *opt_res_unit = "cm", *opt_camelyon, *opt_layout = "c16";
static double opt_mpp = 0.25;
static long long opt_seed = 1;
static int opt_tumours = 2, opt_tile = 256, opt_quality = 80, opt_mask_ds = 64, opt_rgb, opt_blobs, opt_aperio,
	   opt_normal = 3, opt_tumor = 2, opt_test_normal = 2, opt_test_tumor = 2, opt_capitalise;

static const struct cli_opt OPTS[] = {
	{"out", 'o', CLI_STRING, &opt_out, "FILE", "the slide to write (pyramidal tiled JPEG TIFF)", NULL},
	{"xml", 0, CLI_STRING, &opt_xml, "FILE", "also write the ASAP XML annotation of the tumours", NULL},
	{"tissue-mask", 0, CLI_STRING, &opt_tissue_mask, "PNG", "also write the generator's tissue mask", NULL},
	{"tumour-mask", 0, CLI_STRING, &opt_tumour_mask, "PNG", "also write the tumour mask (tumour minus exclusions)", NULL},
	{"mask-downsample", 0, CLI_INT, &opt_mask_ds, "D", "level-0 pixels per mask pixel", NULL},
	{"size", 0, CLI_STRING, &opt_size, "WxH", "level-0 size in pixels", NULL},
	{"mpp", 0, CLI_DOUBLE, &opt_mpp, "X", "µm per level-0 pixel, stored in the TIFF resolution tags", NULL},
	{"res-unit", 0, CLI_STRING, &opt_res_unit, "U", "ResolutionUnit of the TIFF", "cm|inch|none"},
	{"seed", 's', CLI_I64, &opt_seed, "S", "random seed: same seed, same slide", NULL},
	{"tumours", 'n', CLI_INT, &opt_tumours, "N", "tumour regions (0: a normal slide)", NULL},
	{"blobs", 0, CLI_INT, &opt_blobs, "N", "tissue blobs (0: 1 to 3, from the seed)", NULL},
	{"tile", 0, CLI_INT, &opt_tile, "N", "tile side in pixels (a multiple of 16)", NULL},
	{"quality", 0, CLI_INT, &opt_quality, "Q", "JPEG quality 1..100", NULL},
	{"rgb", 0, CLI_FLAG, &opt_rgb, NULL, "RGB JPEG tiles instead of YCbCr 4:2:0", NULL},
	{"aperio", 0, CLI_FLAG, &opt_aperio, NULL, "an Aperio-style ImageDescription (MPP, AppMag): OpenSlide reads it as aperio", NULL},
	{"camelyon", 0, CLI_STRING, &opt_camelyon, "DIR", "write a Camelyon16-shaped folder tree instead of one slide", NULL},
	{"normal", 0, CLI_INT, &opt_normal, "N", "--camelyon: normal training slides", NULL},
	{"tumor", 0, CLI_INT, &opt_tumor, "N", "--camelyon: tumour training slides", NULL},
	{"test-normal", 0, CLI_INT, &opt_test_normal, "N", "--camelyon: normal test slides", NULL},
	{"test-tumor", 0, CLI_INT, &opt_test_tumor, "N", "--camelyon: tumour test slides", NULL},
	{"layout", 0, CLI_STRING, &opt_layout, "L",
	 "--camelyon: c16 (training/normal, training/tumor, testing/images, lesion_annotations) or flat (images/, annotations/)",
	 "c16|flat"},
	{"capitalise", 0, CLI_FLAG, &opt_capitalise, NULL, "--camelyon: Normal_001.tif, Tumor_001.tif, Test_001.tif", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"slide-synth", "[options] -o SLIDE.tif | --camelyon DIR",
	"Writes a synthetic whole-slide image: a pyramidal tiled JPEG TIFF (levels halving down to one\n"
	"tile, µm/px in the resolution tags) that OpenSlide opens as generic-tiff, with pink textured\n"
	"tissue on a white background and purple tumour regions inside it, plus their ASAP XML\n"
	"annotation (groups _0/Tumor, exclusions _2) and the generator's own masks.  Memory stays\n"
	"bounded by one row of tiles.  With --camelyon, writes a Camelyon16-shaped folder tree.",
	"examples:\n"
	"  slide-synth -o tumor.tif --xml tumor.xml --size 8192x6144 --tumours 3 --seed 7\n"
	"  slide-synth -o normal.tif --tumours 0 --mpp 0.243 --res-unit inch\n"
	"  slide-synth -o big.tif --size 24576x16384 --tissue-mask tissue.png --mask-downsample 64\n"
	"  slide-synth --camelyon c16 --normal 4 --tumor 4 --test-normal 2 --test-tumor 2 --size 4096x3072\n"
	"exit status: 0 success, 1 a file could not be written, 2 bad usage",
	OPTS, 0, 0,
};

static void on_slide(void *arg, const char *path, int done, int total)
{
	struct progress *p = arg;
	progress_update(p, (uint64_t)done);
	if (!cli_quiet && !p->active)
		fprintf(stderr, "slide-synth: [%d/%d] %s\n", done, total, path);
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	struct slidegen_params p;
	slidegen_params_default(&p);
	unsigned w, h;
	char tail;
	if (sscanf(opt_size, "%ux%u%c", &w, &h, &tail) != 2)
		return cli_usage_error(&CLI, "--size '%s': expected WxH, for example 8192x6144", opt_size);
	if (!opt_out && !opt_camelyon)
		return cli_usage_error(&CLI, "say where to write: -o SLIDE.tif or --camelyon DIR");
	if (opt_out && opt_camelyon)
		return cli_usage_error(&CLI, "-o and --camelyon do not go together");
	if (opt_mask_ds < 1)
		return cli_usage_error(&CLI, "--mask-downsample must be at least 1");
	if (opt_seed < 0)
		return cli_usage_error(&CLI, "--seed must be >= 0");
	p.width = w;
	p.height = h;
	p.mpp = opt_mpp;
	p.seed = (uint64_t)opt_seed;
	p.tumours = opt_tumours;
	p.blobs = opt_blobs;
	p.tile = (uint32_t)(opt_tile > 0 ? opt_tile : 0);
	p.quality = opt_quality;
	p.ycbcr = !opt_rgb;
	p.aperio = opt_aperio;
	p.res_unit = !strcmp(opt_res_unit, "cm") ? SLIDEGEN_RES_CM : !strcmp(opt_res_unit, "inch") ? SLIDEGEN_RES_INCH
												: SLIDEGEN_RES_NONE;
	struct err e = {0};
	if (opt_camelyon) {
		struct slidegen_camelyon c = {opt_normal, opt_tumor, opt_test_normal, opt_test_tumor,
					      strcmp(opt_layout, "flat") ? SLIDEGEN_LAYOUT_C16 : SLIDEGEN_LAYOUT_FLAT,
					      opt_capitalise, on_slide, NULL};
		struct progress pr;
		progress_start(&pr, "slide-synth", (uint64_t)(opt_normal + opt_tumor + opt_test_normal + opt_test_tumor),
			       "slides");
		c.arg = &pr;
		rc = slidegen_write_camelyon(opt_camelyon, &p, &c, &e);
		progress_done(&pr);
		if (rc) {
			cli_error("slide-synth", "%s", e.msg);
			return rc == ERR_USAGE ? 2 : 1;
		}
		return 0;
	}
	struct slidegen *g;
	rc = slidegen_create(&g, &p, &e);
	if (rc) {
		cli_error("slide-synth", "%s", e.msg);
		return rc == ERR_USAGE ? 2 : 1;
	}
	rc = slidegen_write_tiff(g, opt_out, &e);
	if (!rc && opt_xml)
		rc = slidegen_write_xml(g, opt_xml, &e);
	if (!rc && opt_tissue_mask)
		rc = slidegen_write_mask(g, SLIDEGEN_MASK_TISSUE, (uint32_t)opt_mask_ds, opt_tissue_mask, &e);
	if (!rc && opt_tumour_mask)
		rc = slidegen_write_mask(g, SLIDEGEN_MASK_TUMOUR, (uint32_t)opt_mask_ds, opt_tumour_mask, &e);
	if (!rc && !cli_quiet)
		fprintf(stderr, "slide-synth: %s: %ux%u at %g µm/px, %d tumour%s, %d exclusion%s, seed %lld\n", opt_out, w,
			h, opt_mpp, slidegen_tumours(g), slidegen_tumours(g) == 1 ? "" : "s", slidegen_exclusions(g),
			slidegen_exclusions(g) == 1 ? "" : "s", opt_seed);
	slidegen_free(g);
	if (rc) {
		cli_error("slide-synth", "%s", e.msg);
		return 1;
	}
	return 0;
}
