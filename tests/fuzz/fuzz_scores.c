/* fuzz_scores.c - libFuzzer target for lib/data/scoretab's reader (scores.tsv,
 * formats/scores.md, or any TSV with a label and score columns, as
 * auc-report reads it).
 *
 * Writes the input to a scratch file and reads it twice: scores found by
 * their names (columns ending in "score"), then the two columns weno-score
 * writes by name.  A read that succeeds has at least one score column and
 * rows whose kind and split are in range, whose label is NA or in [0,1],
 * whose scores are NA or finite and whose key (with a bag_id column) is
 * bag_id, a tab and the index; a read that fails must say why.  Then with
 * scoretab_read_xy, whose x and y must be NA or integers.  Built by
 * `make fuzz`; replayed over tests/fuzz/corpus/scores and
 * tests/fuzz/crashes/scores by `make test`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/data/manifest.h"
#include "../../lib/data/scoretab.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *path, const char *cols)
{
	struct scoretab t;
	struct err e = { 0 };
	if (scoretab_read(&t, path, "label", cols, &e) == 0) {
		if (t.n_scores < 1 || t.n_scores > SCORETAB_MAX_SCORES || t.n_kinds < 0 ||
		    t.n_kinds > SCORETAB_MAX_KINDS)
			abort();
		for (size_t i = 0; i < t.n; i++) {
			if (t.kind[i] >= t.n_kinds || t.split[i] > SPLIT_NONE)
				abort();
			double l = t.label[i];
			if (!isnan(l) && (l < 0.0 || l > 1.0))
				abort();
			for (int j = 0; j < t.n_scores; j++)
				if (isinf(t.score[j][i]))
					abort(); /* only finite numbers or NA (NaN) get through */
			if (t.key && (!t.key[i] || !strchr(t.key[i], '\t')))
				abort(); /* a key is bag_id, a tab, the index */
		}
		scoretab_free(&t);
	} else if (!e.msg[0] || e.code >= 0) {
		abort(); /* every failure explains itself */
	}
}

/* scoretab_read_xy: the same, and x, y are NA or integers */
static void check_xy(const char *path)
{
	struct scoretab t;
	struct err e = { 0 };
	if (scoretab_read_xy(&t, path, "label", "student_score", &e) == 0) {
		if (t.n && (!t.x || !t.y))
			abort();
		for (size_t i = 0; i < t.n; i++)
			if ((!isnan(t.x[i]) && t.x[i] != floor(t.x[i])) || (!isnan(t.y[i]) && t.y[i] != floor(t.y[i])) ||
			    fabs(t.x[i]) > 9007199254740992.0 || fabs(t.y[i]) > 9007199254740992.0)
				abort();
		scoretab_free(&t);
	} else if (!e.msg[0] || e.code >= 0) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = fuzz_scratch("fuzz_scores", data, size);
	check(p, NULL);
	check(p, "student_score,teacher_score");
	check_xy(p);
	return 0;
}
