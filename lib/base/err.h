/* err.h - error reporting for every module of lib/.
 *
 * A library function returns 0 (or a count) on success and a negative ERR_*
 * code on failure, after filling the caller's struct err with a message that
 * names the file, the byte offset or field, and what was expected.  The first
 * error set on a struct wins; later ones are ignored (OpenSlide's sticky
 * error), so a chain of calls reports its root cause.
 *
 * Thread safety: a struct err belongs to one thread at a time.
 * lib/ never prints and never exits; tools print err.msg as "tool: msg".
 */
#ifndef WENO_ERR_H
#define WENO_ERR_H

#include <stddef.h>

enum {
	ERR_OK = 0,
	ERR_IO = -1,      /* cannot open, read, write or rename */
	ERR_FORMAT = -2,  /* the input is not what its format says */
	ERR_NOMEM = -3,   /* allocation failed */
	ERR_USAGE = -4,   /* the caller asked for something impossible */
	ERR_LIMIT = -5,   /* a size beyond the documented limits */
	ERR_NUMERIC = -6, /* NaN or Inf where numbers were expected */
	ERR_UNSUPPORTED = -7,
	ERR_INTERRUPTED = -8,
};

#define ERR_MSG_MAX 1024

struct err {
	int code;                 /* 0 while no error is set */
	char msg[ERR_MSG_MAX];    /* lowercase, no final period */
};

/* Sets the error if none is set yet; returns code, so that
 * `return err_set(e, ERR_IO, "...")` reads naturally.  e may be NULL. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like err_set, appending ": strerror(errno)". */
int err_sys(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void err_clear(struct err *e);

/* A short name for a code ("i/o error", "format error", ...). */
const char *err_name(int code);

/* Checked allocation helpers: NULL plus ERR_NOMEM in e on failure.  The
 * caller frees the result with free(). */
void *err_malloc(struct err *e, size_t n);
void *err_calloc(struct err *e, size_t count, size_t size);

#endif
