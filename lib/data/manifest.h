/* manifest.h - the dataset manifest: one row per bag.
 *
 * A TSV file with a header line naming at least the columns
 *   bag_id  label  split  path  n_instances
 * in any order (other columns are kept but ignored).  label is 0 or 1;
 * split is train, val or test; path is a bag file, relative to the
 * manifest's own directory unless absolute; n_instances is a count.
 * Lines starting with '#' are comments.  Each bag_id is listed once (a
 * repeat is an error naming both lines).  The file is read with
 * lib/base/textfile.h's rules: a regular file, a byte-order mark skipped,
 * lines of at most 64 MiB.
 *
 * Thread safety: plain data.  Errors: negative ERR_* with a message naming
 * the file, the line and the column.
 */
#ifndef WENO_MANIFEST_H
#define WENO_MANIFEST_H

#include <stdint.h>
#include <stdio.h>

#include "../base/err.h"

enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2, SPLIT_NONE = 3 };

struct manifest_row {
	char *bag_id;
	int label;            /* 0 or 1 */
	int split;            /* SPLIT_* */
	char *path;           /* resolved: relative paths joined to the manifest's directory */
	uint64_t n_instances;
	long line;            /* where it is in the manifest, for messages */
};

struct manifest {
	struct manifest_row *rows;
	uint32_t n;
	char *path;
};

int manifest_read(struct manifest *m, const char *path, struct err *e);
void manifest_free(struct manifest *m);
const char *manifest_split_name(int split);
int manifest_split_parse(const char *s);   /* SPLIT_* or -1 */

/* Writes the header line, then rows with manifest_write_row. */
void manifest_write_header(FILE *f);
void manifest_write_row(FILE *f, const char *bag_id, int label, int split, const char *path,
                        uint64_t n_instances);

#endif
