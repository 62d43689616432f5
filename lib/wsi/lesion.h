/* lesion.h - the lesions of a slide as Camelyon16's lesion-level evaluation
 * sees them: labelled regions of an evaluation mask made from the tumour
 * annotation, each with its size and whether it is an isolated tumour cell
 * cluster (ITC).  lib/wsi/FROC.md gives every rule with its source in the
 * challenge's published evaluation script.
 *
 * The evaluation mask, at level L (downsample D = 2^L, default 5):
 *   1. tumour pixels: the annotation's tumour region (lib/wsi/annot.h:
 *      tumour polygons minus `_2` exclusions) rasterised at level L, a pixel
 *      being tumour when its centre is inside (annot_mask);
 *   2. dilation: a pixel is kept when its Euclidean distance to the nearest
 *      tumour pixel (exact, in level-L pixels) is below
 *      r = tolerance / (mpp * D * 2), half the 75 µm tolerance;
 *   3. holes filled: background not 4-connected to the border becomes
 *      foreground;
 *   4. lesions: 8-connected regions, labelled 1..n in the raster order of
 *      their first pixel;
 *   5. ITC: a lesion whose major axis length (4 sqrt of the largest
 *      eigenvalue of its pixels' coordinate covariance, scikit-image's
 *      regionprops) is below itc / (mpp * D) pixels, 275 µm by default
 *      (200 µm plus the 75 µm the dilation added).
 * mpp is the level-0 µm per pixel the evaluation assumes: the challenge
 * uses 0.243 for every slide.  The mask covers the tumour's bounding box
 * plus a margin of ceil(r) + 2 pixels (what lies outside can be neither a
 * lesion nor a hole), clipped at the slide's origin.
 *
 * Thread safety: a built struct lesion_map is read-only and may be shared.
 * Errors: negative ERR_* with a message in e.
 */
#ifndef WENO_LESION_H
#define WENO_LESION_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "annot.h"

#define LESION_PIXELS_MAX (1u << 27)   /* pixels of one evaluation mask */
#define LESION_LEVEL_MAX 20

struct lesion_params {
	int level;            /* evaluation level L: downsample 2^L (5) */
	double mpp;           /* µm per level-0 pixel (0.243, the challenge's constant) */
	double tolerance_um;  /* 75: the mask is dilated by half of it */
	double itc_um;        /* 275: major axis below it (in µm) is an ITC */
};

/* The challenge's values: level 5, 0.243 µm/px, 75 µm, 275 µm. */
void lesion_params_default(struct lesion_params *p);
/* 0, or ERR_USAGE with a message when a value is out of range. */
int lesion_params_check(const struct lesion_params *p, struct err *e);

struct lesion {
	int label;             /* 1..n */
	int itc;               /* 1: an isolated tumour cell cluster (counts neither way) */
	int64_t first_r, first_c; /* its first pixel in raster order, level-L pixels of the slide */
	uint32_t area;         /* pixels of the evaluation mask */
	double major_axis;     /* level-L pixels (scikit-image's major_axis_length) */
	double diameter_um;    /* major_axis * mpp * 2^L: the challenge's measure of its longest diameter */
	double cx, cy;         /* centroid, level-0 pixels (pixel centres) */
};

struct lesion_map {
	struct lesion_params p;
	double ds;             /* 2^level */
	double radius;         /* dilation radius r in level-L pixels */
	double itc_px;         /* ITC threshold in level-L pixels */
	int64_t ox, oy;        /* the grid's pixel (0, 0) is this pixel of level L */
	uint32_t w, h;         /* grid size (0 x 0 when there is no tumour) */
	int32_t *label;        /* w * h labels, 0 background (owned) */
	uint64_t tumour_px;    /* tumour pixels before the dilation */
	int n;                 /* lesions */
	int n_itc;             /* of which ITCs */
	struct lesion *les;    /* n lesions, les[k].label == k + 1 (owned) */
};

/* The lesions of an annotation; a NULL annotation, or one whose tumour
 * region covers no pixel centre at level L, gives a map without lesions.
 * *m is freed with lesion_map_free. */
int lesion_map_from_annot(struct lesion_map **m, const struct annot *a, const struct lesion_params *p,
                          struct err *e);
/* The same from a level-L tumour mask (nonzero: tumour) of w x h pixels whose
 * pixel (0, 0) is pixel (ox, oy) of level L (tests; masks made elsewhere). */
int lesion_map_from_mask(struct lesion_map **m, const uint8_t *mask, int64_t ox, int64_t oy, uint32_t w,
                         uint32_t h, const struct lesion_params *p, struct err *e);
void lesion_map_free(struct lesion_map *m);

/* The label (1..n) under the level-0 point (x, y), that is the level-L
 * pixel (floor(y / 2^L), floor(x / 2^L)); 0 on background and outside the
 * grid. */
int lesion_at(const struct lesion_map *m, int64_t x, int64_t y);

#endif
