/* slidegen.h - synthetic whole-slide images for tests, demos and benchmarks.
 *
 * A generated slide is a white background with a few blobs of textured pink
 * "tissue" (polygons of smooth random star shape), tumour regions inside the
 * tissue with a denser, more purple texture, and exclusion regions (`_2`)
 * inside some tumours, where the texture is normal tissue again.  From one
 * seed the module writes:
 *   - a pyramidal tiled TIFF: successive tiled IFDs (levels 0..k, each half
 *     the size of the one before, down to one tile), JPEG-compressed tiles
 *     (YCbCr 2x2 subsampled or RGB), the µm/px in XResolution/YResolution
 *     with ResolutionUnit centimetre, inch or none.  OpenSlide opens it with
 *     its "generic-tiff" driver.  Written tile row by tile row: memory is
 *     bounded by one row of tiles, whatever the slide size;
 *   - the ASAP XML annotation of the tumours (groups `_0`/`Tumor`) and the
 *     exclusions (`_2`), vertices as level-0 floats;
 *   - the generator's own tissue and tumour masks at any downsample D (pixel
 *     (i, j) is set when the level-0 point ((i+0.5)D, (j+0.5)D) is inside,
 *     the same rule the renderer uses), for tests;
 *   - whole Camelyon16-shaped folders (slidegen_write_camelyon).
 * Pixel classes follow the annotation exactly: a pixel centre inside a
 * tumour polygon (even-odd) and outside every exclusion is tumour.
 *
 * Thread safety: a struct slidegen is read-only after slidegen_create and
 * may be shared; the writers use OpenMP internally.
 * Errors: negative ERR_* with a message naming the file in e.
 */
#ifndef WENO_SLIDEGEN_H
#define WENO_SLIDEGEN_H

#include <stdint.h>

#include "../base/err.h"

enum { SLIDEGEN_RES_CM = 0, SLIDEGEN_RES_INCH = 1, SLIDEGEN_RES_NONE = 2 };
enum { SLIDEGEN_MASK_TISSUE = 0, SLIDEGEN_MASK_TUMOUR = 1 };

#define SLIDEGEN_DIM_MAX 1000000u   /* level-0 width or height */

struct slidegen_params {
	uint32_t width, height;   /* level-0 pixels */
	double mpp;               /* µm per level-0 pixel (0.25 by default) */
	uint64_t seed;
	int tumours;              /* tumour regions; 0 gives a normal slide */
	uint32_t tile;            /* tile side: a multiple of 16 (256) */
	int quality;              /* JPEG quality 1..100 (80) */
	int res_unit;             /* SLIDEGEN_RES_* */
	int ycbcr;                /* 1: YCbCr 2x2 subsampled JPEG; 0: RGB JPEG */
	int blobs;                /* tissue blobs; 0 picks 1..3 from the seed */
	int aperio;               /* 1: an Aperio-style ImageDescription (MPP, AppMag),
	                             so that OpenSlide reads it as aperio */
};

/* Fills p with the defaults: 8192 x 6144, 0.25 µm/px, seed 1, 2 tumours,
 * tiles of 256, quality 80, centimetres, YCbCr. */
void slidegen_params_default(struct slidegen_params *p);

struct slidegen;

/* Draws the geometry.  *g is freed with slidegen_free. */
int slidegen_create(struct slidegen **g, const struct slidegen_params *p, struct err *e);
void slidegen_free(struct slidegen *g);

/* Writes the pyramidal TIFF atomically. */
int slidegen_write_tiff(const struct slidegen *g, const char *path, struct err *e);
/* Writes the ASAP XML annotation atomically (an empty annotation list for a
 * normal slide). */
int slidegen_write_xml(const struct slidegen *g, const char *path, struct err *e);
/* Renders a mask (0 or 255) at downsample ds: *mask (ceil(W/ds) x
 * ceil(H/ds), freed by the caller with free()). */
int slidegen_mask(const struct slidegen *g, int which, uint32_t ds, uint8_t **mask, uint32_t *w,
                  uint32_t *h, struct err *e);
/* Writes that mask as a greyscale PNG, atomically. */
int slidegen_write_mask(const struct slidegen *g, int which, uint32_t ds, const char *path,
                        struct err *e);
/* Number of tumour and exclusion polygons. */
int slidegen_tumours(const struct slidegen *g);
int slidegen_exclusions(const struct slidegen *g);

/* Camelyon16-shaped folders. */
enum { SLIDEGEN_LAYOUT_C16 = 0, SLIDEGEN_LAYOUT_FLAT = 1 };

struct slidegen_camelyon {
	int normal, tumor;            /* training slides */
	int test_normal, test_tumor;  /* testing slides, interleaved by the seed */
	int layout;                   /* SLIDEGEN_LAYOUT_* */
	int capitalise;               /* Normal_001.tif, Tumor_001.tif, Test_001.tif */
	/* called after each slide is written (may be NULL) */
	void (*on_slide)(void *arg, const char *path, int done, int total);
	void *arg;
};

/* Writes the folder tree under dir (created if missing).  Slide i (in the
 * order normal, tumor, test) uses seed base->seed * 1000003 + i; a tumour
 * slide gets base->tumours regions (at least 1).
 * c16 layout:  training/normal/normal_001.tif, training/tumor/tumor_001.tif,
 *              training/lesion_annotations/tumor_001.xml,
 *              testing/images/test_001.tif,
 *              testing/lesion_annotations/test_001.xml (tumour test slides),
 *              testing/reference.csv (no header: Test_001,Tumor,Macro,Primary
 *              or Test_002,Normal).
 * flat layout: images/NAME.tif, annotations/NAME.xml, reference.csv with the
 *              header "image,type,metastasis,origin". */
int slidegen_write_camelyon(const char *dir, const struct slidegen_params *base,
                            const struct slidegen_camelyon *c, struct err *e);

#endif
