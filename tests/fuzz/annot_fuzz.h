/* annot_fuzz.h - the body the annotation readers' fuzz targets share
 * (fuzz_asap.c, fuzz_geojson.c): parse the input, then compute tumour
 * fractions of a few patches and point tests, checking that fractions stay
 * in [0, 1] and that every failure explains itself and returns nothing. */
#ifndef WENO_ANNOT_FUZZ_H
#define WENO_ANNOT_FUZZ_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../lib/wsi/annot.h"

typedef int (*annot_parser)(struct annot **a, const char *buf, size_t n, const char *name,
                            struct err *e);

/* One input through parse, then the checks above; aborts on a violation. */
static int annot_fuzz_one(annot_parser parse, const uint8_t *data, size_t size)
{
	struct annot *a = NULL;
	struct err e = {0};
	if (parse(&a, (const char *)data, size, "fuzz", &e) == 0) {
		if (!a)
			abort();
		static const double P[][3] = {{0, 0, 100}, {-50, -50, 200}, {90, 10, 37.5}, {1e6, 1e6, 4096}};
		int32_t xs[4], ys[4];
		float fr[4];
		for (int i = 0; i < 4; i++) {
			double f = annot_fraction(a, P[i][0], P[i][1], P[i][2]);
			if (!(f >= 0 && f <= 1))
				abort(); /* a fraction is a fraction */
			xs[i] = (int32_t)P[i][0];
			ys[i] = (int32_t)P[i][1];
			(void)annot_inside(a, P[i][0] + 1, P[i][1] + 1);
		}
		if (annot_fractions(a, 4, xs, ys, 64, fr, &e) == 0)
			for (int i = 0; i < 4; i++)
				if (!(fr[i] >= 0 && fr[i] <= 1))
					abort();
		annot_free(a);
	} else if (!e.msg[0] || e.code >= 0 || a) {
		abort(); /* every failure explains itself and returns nothing */
	}
	return 0;
}

#endif
