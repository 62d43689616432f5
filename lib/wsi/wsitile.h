/* wsitile.h - one slide in, one tile stream out: what wsi-tile does.
 *
 * Resolves the target resolution (slide.h), detects tissue (tissue.h), lays
 * a grid of patches over level 0 (patches lie wholly inside the slide),
 * keeps those whose tissue fraction exceeds min_tissue, optionally samples
 * max_tiles of them with a seed, computes each one's tumour fraction from an
 * annotation (annot.h), reads the patches on several threads (one slide
 * handle per thread) and writes them in grid order to a bag stream
 * (bag.h): kind pixels (H x W x 3) or coordinates only.  Quality pictures on
 * request: a thumbnail PNG (tissue mask and kept patch grid over the
 * segmentation level) and the tissue contours as GeoJSON.
 *
 * A patch that cannot be read (a corrupt or missing tile) is skipped,
 * counted, and reported through the warn callback; the run goes on.
 * Memory: the segmentation level, the patch list and a batch of patches
 * (at most about 64 MiB of pixels).
 *
 * Thread safety: wsitile_run uses OpenMP internally; call it from one
 * thread.  Errors: negative ERR_* with a message in e.
 */
#ifndef WENO_WSITILE_H
#define WENO_WSITILE_H

#include <stdint.h>

#include "../base/err.h"
#include "tissue.h"

struct wsitile_opts {
	double mpp, mag;          /* target: exactly one > 0 */
	double slide_mpp;         /* level-0 µm/px when the slide has none (0: none) */
	int force_mpp;            /* use slide_mpp even when the slide has one */
	uint32_t size, stride;    /* output pixels; stride 0: size */
	const char *annotations;  /* ASAP XML or GeoJSON, or NULL */
	int coords_only;
	double min_tissue;        /* keep patches whose tissue fraction exceeds it; < 0 keeps all */
	uint64_t max_tiles, seed; /* 0: all */
	struct tissue_params tissue;
	const char *thumbnail, *contours;   /* outputs, or NULL */
	int fast;                 /* the tile fast path (1) */
	int zlevel;               /* zstd level, 0 default */
	const char *id;           /* bag id; NULL: the slide's base name without extension */
	const char *params;       /* "name=value\n" lines recorded in the provenance */
	const char *version;
	/* callbacks, may be NULL */
	void (*warn)(void *arg, const char *msg);
	void (*progress)(void *arg, uint64_t done, uint64_t total);
	void *arg;
};

struct wsitile_result {
	uint64_t candidates;      /* grid patches inside the slide */
	uint64_t kept;            /* after the tissue filter and sampling */
	uint64_t written;         /* instances written */
	uint64_t skipped;         /* patches lost to bad tiles */
	uint64_t bad_tiles;
	double tissue_mm2;
	double mpp, mpp0, downsample;
	int mpp_source;           /* enum slide_mpp_source */
	int level, seg_level;
	uint32_t patch_level0;
	double seconds, seg_seconds;
	uint64_t fast_tiles, openslide_reads;
};

/* Tiles slide into out ("-" for stdout).  Patches lost to tiles that
 * cannot be read are skipped, counted in r->skipped and reported through
 * o->warn; when every patch is lost the run fails and writes nothing. */
int wsitile_run(const char *slide, const char *out, const struct wsitile_opts *o, struct wsitile_result *r,
                struct err *e);
/* Writes r as one JSON object (formats/summary.md), atomically. */
int wsitile_write_summary(const char *path, const char *slide, const struct wsitile_result *r, const char *version,
                          struct err *e);

#endif
