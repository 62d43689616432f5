/* slide.h - whole-slide images: opening, resolution, reading regions and
 * patches.
 *
 * Every format OpenSlide reads opens through OpenSlide.  Resolution: a
 * target µm/px (or objective magnification) is resolved to a pyramid level
 * plus a residual downsample, applied by area averaging; the slide's own
 * µm/px comes from the OpenSlide property openslide.mpp-x, else from the
 * TIFF resolution tags (XResolution with ResolutionUnit centimetre: 10000/x
 * µm; inch: 25400/x µm), else from the caller's value, else it is an error.
 * Where it came from is recorded.
 *
 * A fast path serves TIFF slides with JPEG tiles (OpenSlide's generic-tiff
 * and aperio drivers) when a request lines up with the stored tiles: the
 * compressed tiles are read at the offsets libtiff reports and decoded with
 * libjpeg directly, skipping OpenSlide's per-region overhead.  The pixels
 * are identical to OpenSlide's (the handle checks one tile of each level
 * against OpenSlide when it opens and turns the fast path off for a level
 * that differs).
 *
 * Robustness: a tile that cannot be read or decoded makes the read fail with
 * ERR_FORMAT naming the tile; the handle counts it.  After an OpenSlide
 * error the OpenSlide handle is closed and reopened (its errors are sticky).
 *
 * Thread safety: a struct slide belongs to one thread at a time; open one
 * per thread (cheap).  Errors: negative ERR_* with a message in e naming the
 * file, the level and the tile or region.
 */
#ifndef WENO_SLIDE_H
#define WENO_SLIDE_H

#include <stdint.h>

#include "../base/err.h"

#define SLIDE_LEVELS_MAX 64
#define SLIDE_REGION_MAX (1u << 14)   /* largest side of one region read */

enum slide_mpp_source {
	SLIDE_MPP_NONE = 0,
	SLIDE_MPP_PROPERTY,    /* openslide.mpp-x */
	SLIDE_MPP_TIFF_CM,     /* TIFF XResolution, ResolutionUnit centimetre */
	SLIDE_MPP_TIFF_INCH,   /* TIFF XResolution, ResolutionUnit inch */
	SLIDE_MPP_USER,        /* given by the caller (--slide-mpp) */
};

struct slide;

/* Opens path.  *s is freed with slide_close. */
int slide_open(struct slide **s, const char *path, struct err *e);
void slide_close(struct slide *s);

const char *slide_path(const struct slide *s);
const char *slide_vendor(const struct slide *s);   /* "generic-tiff", "aperio", ... */
int slide_level_count(const struct slide *s);
void slide_level_size(const struct slide *s, int level, int64_t *w, int64_t *h);
double slide_level_downsample(const struct slide *s, int level);
/* OpenSlide property value or NULL (owned by the handle). */
const char *slide_property(const struct slide *s, const char *name);

/* Level-0 µm/px and its source, looked up in the order above; user_mpp > 0
 * is used only when the slide has none, unless force is set. */
int slide_base_mpp(const struct slide *s, double user_mpp, int force, double *mpp, int *source,
                   struct err *e);
const char *slide_mpp_source_name(int source);

/* A resolved output resolution. */
struct slide_res {
	double mpp0;          /* level-0 µm/px */
	int mpp_source;       /* enum slide_mpp_source */
	double downsample;    /* level-0 px per output px */
	double mpp;           /* output µm/px = mpp0 * downsample */
	int level;            /* pyramid level read */
	double level_ds;      /* its downsample */
	double scale;         /* residual: level px per output px, >= 1 */
	double mag0;          /* --mag: level-0 magnification used, else 0 */
	const char *mag_source;   /* "openslide.objective-power" or "mpp" (10/mpp snapped to 5, 10, 20, 40, 80) */
};

/* Resolves a target: exactly one of target_mpp > 0 or target_mag > 0.
 * user_mpp/force as for slide_base_mpp. */
int slide_resolve(const struct slide *s, double target_mpp, double target_mag, double user_mpp, int force,
                  struct slide_res *r, struct err *e);
/* Resolution with an explicit level and no residual (segmentation etc.). */
void slide_res_level(const struct slide *s, int level, struct slide_res *r);

/* The level whose downsample is the largest not above ds (OpenSlide's best
 * level for a downsample). */
int slide_best_level(const struct slide *s, double ds);

/* Reads w x h pixels of level `level` whose top-left is the level-0 point
 * (x, y), as RGB (transparent pixels become white). */
int slide_read_region(struct slide *s, int level, int64_t x, int64_t y, uint32_t w, uint32_t h,
                      uint8_t *rgb, struct err *e);
/* Reads the n x n output patch whose top-left is level-0 (x, y): n*scale
 * level pixels area-averaged to n (or read directly when scale is 1). */
int slide_read_patch(struct slide *s, const struct slide_res *r, int64_t x, int64_t y, uint32_t n,
                     uint8_t *rgb, struct err *e);

/* Fast path on (default) or off; slide_fast_level tells whether a level has
 * one. */
void slide_set_fast(struct slide *s, int on);
int slide_fast_level(const struct slide *s, int level);

struct slide_stats {
	uint64_t fast_tiles;      /* tiles decoded by the fast path */
	uint64_t openslide_reads; /* regions read through OpenSlide */
	uint64_t bad_tiles;       /* corrupt or missing tiles met */
	uint64_t reopens;         /* OpenSlide handles reopened after an error */
};
void slide_stats(const struct slide *s, struct slide_stats *st);

#endif
