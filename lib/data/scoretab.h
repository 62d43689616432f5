/* scoretab.h - reads score tables (formats/scores.md) for auc-report.
 *
 * A TSV with a header; columns are found by name.  Each row gets a level
 * (the `kind` column, or "all"), a split (the `split` column, or
 * SPLIT_NONE), a label and up to SCORETAB_MAX_SCORES scores; `NA` reads as
 * NaN.  Anything else that is not a finite number is an error naming the
 * file, the line and the column.  With a bag_id column each row also gets a
 * key (bag_id and index) that identifies it across files.
 *
 * Thread safety: plain data.  Errors: negative ERR_* with a message.
 */
#ifndef WENO_SCORETAB_H
#define WENO_SCORETAB_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define SCORETAB_MAX_SCORES 8
#define SCORETAB_MAX_KINDS 8

struct scoretab {
	size_t n;
	uint8_t *kind;                 /* index into kind_names */
	uint8_t *split;                /* SPLIT_* (lib/data/manifest.h) */
	double *label;                 /* NaN unknown */
	double *score[SCORETAB_MAX_SCORES];  /* NaN missing */
	int n_scores, n_kinds;
	char score_names[SCORETAB_MAX_SCORES][64];
	char kind_names[SCORETAB_MAX_KINDS][32];
	int has_split;
	/* with a bag_id column: each row's bag_id, a tab and its index (empty
	 * without an index column), which names the row across files
	 * (auc-compare); NULL without one */
	char **key;
	/* scoretab_read_xy only: each row's level-0 x and y (NaN for NA) */
	double *x, *y;
	long *line;                    /* each row's line in the file */
};

/* score_cols: comma-separated column names; when NULL, every column whose
 * name ends in "_score" (or "score"). */
int scoretab_read(struct scoretab *t, const char *path, const char *label_col, const char *score_cols,
                  struct err *e);
/* The same, and the columns x and y (integers or NA, formats/scores.md)
 * into t->x, t->y: a table without them is an error. */
int scoretab_read_xy(struct scoretab *t, const char *path, const char *label_col, const char *score_cols,
                     struct err *e);
void scoretab_free(struct scoretab *t);

/* With a bag_id column: an error when two rows of one kind have the same
 * key (bag_id and index), naming both lines; path is for the message. */
int scoretab_check_keys(const struct scoretab *t, const char *path, struct err *e);

#endif
