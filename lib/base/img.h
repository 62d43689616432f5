/* img.h - pictures out: 8-bit PNG files, written atomically.
 *
 * What the tools draw (thumbnails, heatmaps, masks) goes through here, so
 * that one place knows libpng.  Thread safety: reentrant (distinct paths).
 * Errors: 0 or a negative ERR_* with a message in e. */
#ifndef WENO_IMG_H
#define WENO_IMG_H

#include <stdint.h>

#include "err.h"

/* Writes an 8-bit PNG of h x w pixels with c interleaved channels
 * (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), atomically (lib/base/afile.h).
 * Thread-safe for distinct paths. */
int img_write_png(const char *path, const uint8_t *pix, uint32_t h, uint32_t w, uint32_t c,
		  struct err *e);

#endif
