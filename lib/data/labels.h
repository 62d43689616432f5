/* labels.h - a labels CSV: each slide's label, split and patient, from
 * which bag-pack --manifest builds a manifest.
 *
 * A header line names the columns, in any order: slide_id and label, and
 * optionally case_id (the patient) and split; other columns are ignored.
 * Fields are separated by commas; a field may be double-quoted ("" for a
 * quote inside); spaces around a field are dropped.  The file is read
 * with lib/base/textfile.h's rules (a regular file, a byte-order mark
 * skipped, lines of at most 64 MiB).
 *
 * - slide_id names the bag <bag-dir>/<slide_id>.wbag, so it is a file
 *   name: not empty, no '/', not "." or "..", no control character; and
 *   each slide is listed once (a second line is an error naming both, and
 *   saying when the two disagree on the label).
 * - label is 0 or 1, or the names given as positive and negative.
 * - split is train, val, test or none; empty or absent: the default.
 * - case_id groups a patient's slides: they must not lie in two splits,
 *   and labels_assign_val moves whole patients (a slide without a case_id
 *   is a patient of its own).
 *
 * Thread safety: plain data.  Errors: negative ERR_* with a message naming
 * the file, the line and the column.
 */
#ifndef WENO_LABELS_H
#define WENO_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

struct labels_row {
	char *slide_id;
	char *case_id;            /* NULL when none */
	int label;                /* 0 or 1 */
	int split;                /* SPLIT_* (manifest.h) */
	long line;                /* in the CSV */
};

struct labels {
	struct labels_row *rows;
	size_t n;
	int has_cases;            /* some row has a case_id */
};

struct labels_opts {
	const char *positive, *negative; /* label names for 1 and 0, or NULL */
	int default_split;        /* SPLIT_*, for rows without one */
};

int labels_read(struct labels *l, const char *path, const struct labels_opts *o, struct err *e);

/* Moves a fraction frac of the training patients to the validation split,
 * stratified by label: patients (by case_id; a slide without one alone)
 * whose every slide is in train are grouped by label (positive when any of
 * their slides is), shuffled with seed, and round(frac x count) of each
 * group move with all their slides.  Without case ids this is the same
 * draw, slide by slide. */
int labels_assign_val(struct labels *l, double frac, uint64_t seed, struct err *e);

void labels_free(struct labels *l);

#endif
