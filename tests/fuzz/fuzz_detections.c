/* fuzz_detections.c - libFuzzer target for lib/mil/froc's reader of the
 * Camelyon16 challenge's detection CSV files (confidence,X,Y per line).
 *
 * Parses the input from memory, and through a scratch file as froc-report
 * reads it.  A parse that succeeds gives finite confidences and coordinates
 * within FROC_COORD_MAX, and the two ways agree; one that fails says why.
 * Built by `make fuzz`; replayed over tests/fuzz/corpus/detections and
 * tests/fuzz/crashes/detections by `make test`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/mil/froc.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct froc_det *d = NULL, *d2 = NULL;
	size_t n = 0, n2 = 0;
	struct err e = {0}, e2 = {0};
	int rc = froc_parse_csv((const char *)data, size, "fuzz.csv", &d, &n, &e);
	if (rc == 0) {
		if (n && !d)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!isfinite(d[i].conf) || fabs((double)d[i].x) > FROC_COORD_MAX + 1 ||
			    fabs((double)d[i].y) > FROC_COORD_MAX + 1)
				abort(); /* only finite confidences and bounded points get through */
	} else if (!e.msg[0] || e.code >= 0) {
		abort(); /* every failure explains itself */
	}
	const char *p = fuzz_scratch("fuzz_detections", data, size);
	int rc2 = froc_read_csv(p, &d2, &n2, &e2);
	if ((rc2 == 0) != (rc == 0) || n2 != n || (n && memcmp(d, d2, n * sizeof *d)))
		abort(); /* the file and the buffer read alike */
	if (rc2 && (!e2.msg[0] || e2.code >= 0))
		abort();
	free(d);
	free(d2);
	return 0;
}
