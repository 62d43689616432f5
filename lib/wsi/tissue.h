/* tissue.h - tissue detection, compatible with CLAM's classical segmenter.
 *
 * On a low-resolution level (by default the one closest to a 64x
 * downsample, CLAM's seg_level -1): the HSV saturation (OpenCV's 8-bit
 * definition), a median blur of side mthresh, a threshold (saturation >
 * sthresh, or Otsu's threshold with use_otsu), a morphological closing with
 * a close x close square (centred: for an even side OpenCV's closing
 * shifts the mask by one pixel, ours does not), then 8-connected tissue components whose area
 * (holes excluded) exceeds a_t and, inside each, at most max_n_holes holes
 * (the largest) whose area exceeds a_h are kept as holes; smaller holes are
 * filled.  a_t and a_h are in units of ref_patch x ref_patch level-0 pixels
 * (512 x 512), as in CLAM.  Names and defaults follow CLAM
 * (create_patches_fp.py); the presets are those of the CSV files in CLAM's presets folder.
 *
 * A patch's tissue fraction is the exact area of the mask (as a piecewise
 * constant image) inside the level-0 square, over the square's area.
 * Contours are exported as GeoJSON polygons in level-0 coordinates
 * (QuPath reads them as annotations).
 *
 * Thread safety: a finished struct tissue_mask is read-only and may be
 * shared.  Errors: negative ERR_* with a message in e.
 */
#ifndef WENO_TISSUE_H
#define WENO_TISSUE_H

#include <stdint.h>

#include "../base/err.h"
#include "slide.h"

struct tissue_params {
	int seg_level;       /* pyramid level; -1: the level closest to 64x */
	int sthresh;         /* saturation threshold, 0..255 (8) */
	int mthresh;         /* median blur side, odd (7) */
	int close;           /* closing square side, 0 none (4) */
	int use_otsu;        /* Otsu's threshold instead of sthresh (0) */
	double a_t;          /* minimum tissue area, in reference patches (100) */
	double a_h;          /* minimum hole area, in reference patches (16) */
	int max_n_holes;     /* holes kept per tissue component (8) */
	int ref_patch;       /* reference patch side in level-0 px (512) */
};

void tissue_params_default(struct tissue_params *p);
/* Applies a CLAM preset: "default", "tcga", "bwh_biopsy", "bwh_resection". */
int tissue_preset(struct tissue_params *p, const char *name, struct err *e);
/* "name1|name2|..." of the presets */
const char *tissue_preset_names(void);

struct tissue_mask {
	uint32_t w, h;       /* mask pixels */
	double ds;           /* level-0 px per mask px */
	int level;           /* the level segmented (-1 for tissue_segment_rgb) */
	uint8_t *m;          /* w*h, 1 tissue, 0 background */
	uint8_t *rgb;        /* w*h*3, the image segmented (for pictures) */
	uint32_t *integral;  /* (w+1)*(h+1) summed-area table of m */
	int threshold;       /* the saturation threshold used */
	int components;      /* tissue components kept */
	int holes;           /* holes kept */
	uint64_t tissue_px;  /* mask pixels set */
};

/* Segments an RGB image (taken over; freed by tissue_mask_free) of w x h
 * pixels at downsample ds. */
int tissue_segment_rgb(uint8_t *rgb, uint32_t w, uint32_t h, double ds, const struct tissue_params *p,
                       struct tissue_mask *out, struct err *e);
/* Reads the segmentation level of s and segments it. */
int tissue_segment(struct slide *s, const struct tissue_params *p, struct tissue_mask *out, struct err *e);
void tissue_mask_free(struct tissue_mask *m);

/* Tissue fraction of the level-0 square [x, x+size) x [y, y+size). */
double tissue_fraction(const struct tissue_mask *m, double x, double y, double size);
/* Tissue area in level-0 pixels. */
double tissue_area_level0(const struct tissue_mask *m);

/* The mask's boundaries, traced along the pixel cracks with tissue on the
 * left of every edge (y down) and diagonal neighbours joined (8-connected
 * tissue), as rings of mask-pixel corner vertices without collinear
 * points: outer rings with a positive area (in mask pixels), holes with a
 * negative one.  The areas sum to the number of tissue pixels.  Rings come
 * in raster order of their first edge; each hole's owner is the smallest
 * outer ring whose bounding box holds the hole's. */
struct tissue_ring {
	size_t start, n;          /* vertices x[start..start+n), y[...] */
	double area;              /* > 0 outer ring, < 0 hole */
	long minx, miny, maxx, maxy;
	long owner;               /* a hole's outer ring; an outer ring's own index */
};

struct tissue_contours {
	struct tissue_ring *rings;
	size_t nrings;
	long *x, *y;              /* every ring's vertices, in mask pixels */
	size_t nv;
};

/* Traces m into c (zeroed first; tissue_contours_free frees it). */
int tissue_trace(const struct tissue_mask *m, struct tissue_contours *c, struct err *e);
void tissue_contours_free(struct tissue_contours *c);

/* Writes the mask's contours (one Feature per outer ring, its holes as
 * inner rings, level-0 coordinates) as GeoJSON, atomically. */
int tissue_write_geojson(const struct tissue_mask *m, const char *path, struct err *e);

#endif
