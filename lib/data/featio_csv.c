/* featio_csv.c - DSMIL-style CSV features (featio.h) */
#include "featio_int.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../base/afile.h"

#define CSV_LINE_MAX (64u << 20)      /* bytes in one CSV line */
#define CSV_FIELD_MAX 255             /* bytes in one numeric CSV field */

/* ------------------------------------------------------------------- CSV */

struct lines {
	FILE *fp;
	char *buf;
	size_t cap, len, pos, scan;
	int eof;
	uint64_t lineno;
};

/* The next line (without '\n' or "\r\n") in *s, *n: 1, or 0 at the end. */
static int lines_next(struct lines *L, char **s, size_t *n, const char *path, struct err *e)
{
	for (;;) {
		char *nl = L->len > L->scan ? memchr(L->buf + L->scan, '\n', L->len - L->scan) : NULL;
		if (nl || (L->eof && L->pos < L->len)) {
			char *end = nl ? nl : L->buf + L->len;
			*s = L->buf + L->pos;
			*n = (size_t)(end - *s);
			L->pos = L->scan = nl ? (size_t)(nl - L->buf) + 1 : L->len;
			L->lineno++;
			if (*n && (*s)[*n - 1] == '\r')
				(*n)--;
			return 1;
		}
		if (L->eof)
			return 0;
		L->scan = L->len;
		if (L->pos) {
			memmove(L->buf, L->buf + L->pos, L->len - L->pos);
			L->len -= L->pos;
			L->scan -= L->pos;
			L->pos = 0;
		}
		if (L->len == L->cap) {
			if (L->cap >= CSV_LINE_MAX)
				return err_set(e, ERR_LIMIT, "%s: line %llu: longer than %u bytes", path,
				               (unsigned long long)L->lineno + 1, CSV_LINE_MAX);
			size_t ncap = L->cap ? 2 * L->cap : 65536;
			char *nb = realloc(L->buf, ncap);
			if (!nb)
				return err_set(e, ERR_NOMEM, "out of memory reading '%s'", path);
			L->buf = nb;
			L->cap = ncap;
		}
		size_t got = fread(L->buf + L->len, 1, L->cap - L->len, L->fp);
		L->len += got;
		if (got == 0) {
			if (ferror(L->fp))
				return err_sys(e, ERR_IO, "cannot read '%s'", path);
			L->eof = 1;
		}
	}
}

struct span {
	size_t off, len;
};

struct csv {
	const char *path;
	struct lines L;
	struct span *f;       /* fields of the current line */
	size_t nf, fcap;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Splits s[n] at commas into c->f (trimmed); quotes are honoured when
 * `quotes` (header lines only). */
static int csv_split(struct csv *c, const char *s, size_t n, int quotes, struct err *e)
{
	c->nf = 0;
	size_t i = 0;
	for (;;) {
		if (c->nf == c->fcap) {
			if (c->fcap > FEATIO_D_MAX)
				return err_set(e, ERR_LIMIT, "%s: line %llu: more than %u columns", c->path,
				               (unsigned long long)c->L.lineno, FEATIO_D_MAX + 1);
			size_t ncap = c->fcap ? 2 * c->fcap : 1024;
			struct span *nf = realloc(c->f, ncap * sizeof *nf);
			if (!nf)
				return err_set(e, ERR_NOMEM, "out of memory reading '%s'", c->path);
			c->f = nf;
			c->fcap = ncap;
		}
		size_t start = i;
		int inq = 0;
		while (i < n && (inq || s[i] != ',')) {
			if (quotes && s[i] == '"')
				inq = !inq;
			i++;
		}
		size_t a = start, b = i;
		while (a < b && is_blank(s[a]))
			a++;
		while (b > a && is_blank(s[b - 1]))
			b--;
		c->f[c->nf].off = a;
		c->f[c->nf].len = b - a;
		c->nf++;
		if (i >= n)
			return 0;
		i++; /* the comma */
	}
}

/* Parses one field as a float32 into *out: 0; 1 when it is not a number;
 * 2 when it is NaN or Inf; 3 when it is beyond float32's range. */
static int parse_float(const char *s, size_t n, float *out)
{
	char tmp[CSV_FIELD_MAX + 1];
	if (n == 0 || n > CSV_FIELD_MAX)
		return 1;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	char *end;
	errno = 0;
	float v = strtof(tmp, &end);
	if (end != tmp + n)
		return 1;
	if (!isfinite(v))
		return errno == ERANGE ? 3 : 2;
	*out = v;
	return 0;
}

/* Is the header exactly pandas' "0,1,...,k-1" from field `from` on? */
static int pandas_names(const struct csv *c, const char *s, size_t from)
{
	if (c->nf <= from)
		return 0;
	for (size_t k = from; k < c->nf; k++) {
		char num[24];
		int len = snprintf(num, sizeof num, "%zu", k - from);
		if (c->f[k].len != (size_t)len || memcmp(s + c->f[k].off, num, (size_t)len))
			return 0;
	}
	return 1;
}

/* what read_csv learns from the first lines */
struct layout {
	int header_seen;
	size_t skip;              /* leading index columns */
	size_t ncols;             /* columns in every line */
	uint64_t cap_rows;
};

/* the first non-blank line, split: 1 when it is a header (all names, or
 * pandas' 0..D-1 with or without an index column), 0 when it is data */
static int first_line(struct csv *c, struct layout *L, const char *s, size_t n, struct err *e)
{
	int rc = csv_split(c, s, n, 1, e);
	if (rc)
		return rc;
	int numbers = 0;
	for (size_t k = 0; k < c->nf; k++) {
		float v;
		if (parse_float(s + c->f[k].off, c->f[k].len, &v) != 1)
			numbers++;
	}
	int index = c->nf > 1 && c->f[0].len == 0 && pandas_names(c, s, 1);
	if (numbers && !index && !pandas_names(c, s, 0))
		return 0;
	L->header_seen = 1;
	L->skip = index ? 1 : 0;
	L->ncols = c->nf;
	if (L->ncols - L->skip > FEATIO_D_MAX)
		return err_set(e, ERR_LIMIT, "%s: line %llu: %zu columns, more than the limit of %u", c->path,
		               (unsigned long long)c->L.lineno, L->ncols - L->skip, FEATIO_D_MAX);
	return 1;
}

/* one data line (already split into c) as the next row of f */
static int add_row(struct feats *f, const struct csv *c, struct layout *L, const char *s, struct err *e)
{
	const char *path = c->path;
	char sb[48];
	if (!L->ncols) {
		L->ncols = c->nf;
		if (L->ncols > FEATIO_D_MAX)
			return err_set(e, ERR_LIMIT, "%s: line %llu: %zu columns, more than the limit of %u", path,
			               (unsigned long long)c->L.lineno, L->ncols, FEATIO_D_MAX);
	}
	if (c->nf != L->ncols)
		return err_set(e, ERR_FORMAT, "%s: line %llu: %zu columns, expected %zu", path,
		               (unsigned long long)c->L.lineno, c->nf, L->ncols);
	size_t d = L->ncols - L->skip;
	if (f->n == FEATIO_N_MAX)
		return err_set(e, ERR_LIMIT, "%s: line %llu: more than %llu rows", path,
		               (unsigned long long)c->L.lineno, (unsigned long long)FEATIO_N_MAX);
	if (f->n == L->cap_rows) {
		uint64_t nc = L->cap_rows ? 2 * L->cap_rows : 64;
		if (nc * d > SIZE_MAX / sizeof(float))
			return err_set(e, ERR_LIMIT, "%s: too many rows for memory", path);
		float *nx = realloc(f->x, (size_t)(nc * d) * sizeof(float));
		if (!nx)
			return err_set(e, ERR_NOMEM, "out of memory reading '%s' (%llu rows)", path,
			               (unsigned long long)f->n);
		f->x = nx;
		L->cap_rows = nc;
	}
	float *row = f->x + f->n * d;
	for (size_t k = L->skip; k < L->ncols; k++) {
		const char *fs = s + c->f[k].off;
		size_t fl = c->f[k].len;
		int r = parse_float(fs, fl, &row[k - L->skip]);
		if (r == 1)
			return err_set(e, ERR_FORMAT, "%s: line %llu, column %zu: expected a number, got '%s'%s",
			               path, (unsigned long long)c->L.lineno, k + 1, fio_show(sb, fs, fl),
			               !L->header_seen && f->n == 0
			                       ? "\nhint: a header line must be all names, or pandas' 0,1,...,D-1"
			                       : "");
		if (r)
			return err_set(e, ERR_NUMERIC, "%s: line %llu, column %zu: '%s' %s", path,
			               (unsigned long long)c->L.lineno, k + 1, fio_show(sb, fs, fl),
			               r == 3 ? "is out of float32 range" : "is not a finite number");
	}
	f->d = (uint32_t)d;
	f->n++;
	return 0;
}

static int read_csv(struct feats *f, struct csv *c, struct err *e)
{
	char *s = NULL;
	size_t n = 0;
	int rc, first = 1;
	struct layout L = {0};
	while ((rc = lines_next(&c->L, &s, &n, c->path, e)) == 1) {
		if (c->L.lineno == 1 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) {
			s += 3;
			n -= 3;
		}
		size_t a = 0;
		while (a < n && is_blank(s[a]))
			a++;
		if (a == n)
			continue; /* blank line */
		if (first) {
			first = 0;
			if ((rc = first_line(c, &L, s, n, e)) < 0)
				return rc;
			if (rc == 1)
				continue;
		} else if ((rc = csv_split(c, s, n, 0, e))) {
			return rc;
		}
		if ((rc = add_row(f, c, &L, s, e)))
			return rc;
	}
	if (rc < 0)
		return rc;
	if (!L.ncols)
		return err_set(e, ERR_FORMAT, "%s: empty file, expected rows of comma-separated numbers",
		               c->path);
	if (L.ncols - L.skip == 0)
		return err_set(e, ERR_FORMAT, "%s: the header names no feature columns", c->path);
	f->d = (uint32_t)(L.ncols - L.skip);
	if (!f->x && !(f->x = err_malloc(e, 0)))
		return ERR_NOMEM;
	return 0;
}

int featio_read_csv(struct feats *f, const char *path, struct err *e)
{
	feats_init(f);
	struct csv c;
	memset(&c, 0, sizeof c);
	c.path = path;
	c.L.fp = fopen(path, "rb");
	if (!c.L.fp)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	locale_t cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (!cloc) {
		fclose(c.L.fp);
		return err_sys(e, ERR_NOMEM, "%s: cannot create the C locale", path);
	}
	locale_t old = uselocale(cloc);
	int rc = read_csv(f, &c, e);
	uselocale(old);
	freelocale(cloc);
	fclose(c.L.fp);
	free(c.L.buf);
	free(c.f);
	if (rc)
		feats_free(f);
	return rc;
}

int featio_write_csv(const char *path, const struct feats *f, struct err *e)
{
	int rc = fio_write_rows(path, f->n, f->d, e);
	if (rc)
		return rc;
	if (f->n && !f->x)
		return err_set(e, ERR_USAGE, "%s: no features to write", path);
	if ((rc = fio_check_finite(path, f->x, f->n, f->d, e)))
		return rc;
	locale_t cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (!cloc)
		return err_sys(e, ERR_NOMEM, "%s: cannot create the C locale", path);
	struct afile af;
	if ((rc = afile_open(&af, path, e))) {
		freelocale(cloc);
		return rc;
	}
	locale_t old = uselocale(cloc);
	int bad = 0;
	for (uint32_t j = 0; j < f->d && !bad; j++)
		bad = fprintf(af.fp, j ? ",%u" : "%u", j) < 0;
	bad = bad || fputc('\n', af.fp) == EOF;
	for (uint64_t i = 0; i < f->n && !bad; i++) {
		const float *row = f->x + i * f->d;
		for (uint32_t j = 0; j < f->d && !bad; j++)
			bad = fprintf(af.fp, j ? ",%.9g" : "%.9g", (double)row[j]) < 0;
		bad = bad || fputc('\n', af.fp) == EOF;
	}
	uselocale(old);
	freelocale(cloc);
	if (bad) {
		rc = err_sys(e, ERR_IO, "cannot write '%s'", path);
		afile_abort(&af);
		return rc;
	}
	return afile_commit(&af, e);
}

