/* fuzz_manifest.c - libFuzzer target for lib/data/manifest's reader (the
 * manifest.tsv that mil-synth, bag-pack and weno-fit share).
 *
 * Writes the input to a scratch file and reads it as a manifest.  A read
 * that succeeds must hold at least one bag, each listed once with a non-empty id and
 * path, a label of 0 or 1, a known split; a read that fails must say why.
 * Built by `make fuzz`; replayed over tests/fuzz/corpus/manifest and
 * tests/fuzz/crashes/manifest by `make test`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/data/manifest.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = fuzz_scratch("fuzz_manifest", data, size);
	struct manifest m;
	struct err e = { 0 };
	if (manifest_read(&m, p, &e) == 0) {
		if (m.n == 0 || !m.rows)
			abort(); /* an empty manifest is an error */
		for (uint32_t i = 0; i < m.n; i++) {
			const struct manifest_row *r = &m.rows[i];
			if (!r->bag_id || !r->bag_id[0] || !r->path || !r->path[0])
				abort();
			if ((r->label != 0 && r->label != 1) || r->split < SPLIT_TRAIN ||
			    r->split > SPLIT_NONE || !manifest_split_name(r->split))
				abort();
			for (uint32_t j = 0; j < i; j++) /* each bag once */
				if (!strcmp(m.rows[j].bag_id, r->bag_id))
					abort();
		}
		manifest_free(&m);
	} else if (!e.msg[0] || e.code >= 0) {
		abort(); /* every failure explains itself */
	}
	return 0;
}
