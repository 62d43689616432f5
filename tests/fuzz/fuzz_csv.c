/* fuzz_csv.c - libFuzzer target for lib/data/featio's CSV reader.
 *
 * Writes the input to a scratch file and reads it as DSMIL CSV features.
 * Built by `make fuzz`; replayed over tests/fuzz/corpus/csv and
 * tests/fuzz/crashes/csv by `make test`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../lib/data/featio.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = fuzz_scratch("fuzz_csv", data, size);
	struct feats f;
	struct err e = { 0 };
	if (featio_read_csv(&f, p, &e) == 0) {
		if (!f.x || f.d == 0 || f.d > FEATIO_D_MAX)
			abort(); /* a successful read always has a matrix */
		for (uint64_t i = 0; i < f.n * f.d; i++)
			if (!isfinite(f.x[i]))
				abort(); /* only finite values get through */
		feats_free(&f);
	} else if (!e.msg[0] || e.code >= 0) {
		abort(); /* every failure explains itself */
	}
	return 0;
}
