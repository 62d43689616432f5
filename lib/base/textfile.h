/* textfile.h - line-by-line reading of the project's text inputs
 * (manifests, score tables, labels CSV) with the same rules everywhere.
 *
 * - Only a regular file is read ("-" is standard input where the caller
 *   allows it): a FIFO, a device such as /dev/zero or a directory is
 *   refused at open, so that a reader can neither hang nor read forever.
 * - A UTF-8 byte-order mark at the start of the file is skipped.
 * - A line ends at LF; a CR before it is dropped.  A line longer than
 *   TEXTFILE_LINE_MAX bytes is an error naming the file and the line, so
 *   memory stays bounded whatever the input.
 * - A NUL byte inside a line is an error (text has none).
 *
 * Thread safety: one struct textfile per thread.  Errors: negative ERR_*
 * with a message in e naming the file and the line.
 */
#ifndef WENO_TEXTFILE_H
#define WENO_TEXTFILE_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

#define TEXTFILE_LINE_MAX (64u << 20)

struct textfile {
	FILE *f;
	const char *path;         /* borrowed, for messages */
	long lineno;              /* of the line last read, from 1 */
	char *line;               /* the line last read, NUL-terminated, without its end */
	size_t len;               /* its length */
	size_t cap;
	int is_stdin;
	size_t max;               /* the longest line accepted (TEXTFILE_LINE_MAX) */
};

/* Opens path ("-" is standard input when allow_stdin). */
int textfile_open(struct textfile *t, const char *path, int allow_stdin, struct err *e);

/* Reads the next line into t->line: 1 when there is one, 0 at the end of
 * the file, a negative ERR_* on a read error or a line past the limit. */
int textfile_next(struct textfile *t, struct err *e);

/* Closes the file (not standard input) and frees the line; t may be zeroed. */
void textfile_close(struct textfile *t);

/* Opens path for reading ("rb") when it is a regular file: without ever
 * blocking on a FIFO, and refusing a FIFO, a device, a directory with a
 * message naming it.  NULL and ERR_IO in e otherwise.  For readers of
 * whole files (annotations). */
FILE *textfile_fopen(const char *path, struct err *e);

/* Refuses a path that names something other than a regular file (a FIFO,
 * a device, a directory): 0 when it is one (or does not exist, which
 * opening then reports), else ERR_IO naming it.  For readers that open
 * the file themselves (libxml2, libtiff, HDF5). */
int textfile_check_regular(const char *path, struct err *e);

#endif
