/* fuzz_npy.c - libFuzzer target for lib/data/featio's .npy readers.
 *
 * Writes the input to a scratch file and reads it as features, then as
 * coordinates for a 3-instance bag (the seeds include a 3 x 2 '<i8' file).
 * Built by `make fuzz`; replayed over tests/fuzz/corpus/npy and
 * tests/fuzz/crashes/npy by `make test`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../lib/data/featio.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = fuzz_scratch("fuzz_npy", data, size);
	struct feats f;
	struct err e = { 0 };
	if (featio_read_npy(&f, p, &e) == 0) {
		if (!f.x || f.d == 0)
			abort(); /* a successful read always has a matrix */
		feats_free(&f);
	} else if (!e.msg[0] || e.code >= 0) {
		abort(); /* every failure explains itself */
	}
	feats_init(&f);
	f.n = 3;
	err_clear(&e);
	if (featio_read_coords_npy(&f, p, &e) == 0 && !f.coords)
		abort();
	feats_free(&f);
	return 0;
}
