/* fuzz_labels.c - libFuzzer target for lib/data/labels' reader (the labels
 * CSV of bag-pack --manifest).
 *
 * Writes the input to a scratch file and reads it.  A read that succeeds
 * must hold rows whose slide ids are file names (no '/', not . or ..),
 * each once, with a label of 0 or 1 and a known split, and no patient in
 * two splits; a validation draw over them must keep every patient in one
 * split.  A read that fails must say why.  Built by `make fuzz`; replayed
 * over tests/fuzz/corpus/labels and tests/fuzz/crashes/labels by `make test`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/data/labels.h"
#include "../../lib/data/manifest.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct labels_row *r = &l->rows[i];
		if (!r->slide_id[0] || strchr(r->slide_id, '/') || !strcmp(r->slide_id, "..") ||
		    (r->label != 0 && r->label != 1) || r->split < SPLIT_TRAIN || r->split > SPLIT_NONE)
			abort();
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(l->rows[j].slide_id, r->slide_id))
				abort(); /* each slide once */
			if (r->case_id && l->rows[j].case_id && !strcmp(r->case_id, l->rows[j].case_id) &&
			    r->split != l->rows[j].split)
				abort(); /* a patient in one split */
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = fuzz_scratch("fuzz_labels", data, size);
	struct labels l;
	struct err e = {0};
	struct labels_opts o = {"tumor", "normal", SPLIT_TRAIN};
	if (labels_read(&l, p, &o, &e) == 0) {
		check(&l);
		if (labels_assign_val(&l, 0.3, 5, &e) == 0)
			check(&l);
		labels_free(&l);
	} else if (!e.msg[0] || e.code >= 0) {
		abort(); /* every failure explains itself */
	}
	return 0;
}
