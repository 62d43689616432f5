/* fuzz_geojson.c - libFuzzer target for lib/annot's GeoJSON reader.
 *
 * Parses the input, then computes tumour fractions of a few patches and
 * point tests, checking that fractions stay in [0, 1].  Built by
 * `make fuzz`; replayed over tests/fuzz/corpus/geojson and
 * tests/fuzz/crashes/geojson by `make test`.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../lib/annot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct annot *a = NULL;
	struct err e = {0};
	if (annot_parse_geojson(&a, (const char *)data, size, "fuzz", &e) == 0) {
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
