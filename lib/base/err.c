/* err.c - see err.h */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vset(struct err *e, int code, const char *fmt, va_list ap, const char *tail)
{
	if (!e || e->code)
		return code;
	e->code = code;
	vsnprintf(e->msg, sizeof e->msg, fmt, ap);
	if (tail) {
		size_t n = strlen(e->msg);
		snprintf(e->msg + n, sizeof e->msg - n, ": %s", tail);
	}
	return code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(e, code, fmt, ap, NULL);
	va_end(ap);
	return code;
}

int err_sys(struct err *e, int code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vset(e, code, fmt, ap, strerror(saved));
	va_end(ap);
	errno = saved;
	return code;
}

void err_clear(struct err *e)
{
	e->code = 0;
	e->msg[0] = 0;
}

const char *err_name(int code)
{
	switch (code) {
	case ERR_OK: return "no error";
	case ERR_IO: return "i/o error";
	case ERR_FORMAT: return "format error";
	case ERR_NOMEM: return "out of memory";
	case ERR_USAGE: return "usage error";
	case ERR_LIMIT: return "limit exceeded";
	case ERR_NUMERIC: return "numeric error";
	case ERR_UNSUPPORTED: return "unsupported";
	case ERR_INTERRUPTED: return "interrupted";
	}
	return "unknown error";
}

void *err_malloc(struct err *e, size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		err_set(e, ERR_NOMEM, "out of memory allocating %zu bytes", n);
	return p;
}

void *err_calloc(struct err *e, size_t count, size_t size)
{
	void *p = calloc(count ? count : 1, size ? size : 1);
	if (!p)
		err_set(e, ERR_NOMEM, "out of memory allocating %zu x %zu bytes", count, size);
	return p;
}
