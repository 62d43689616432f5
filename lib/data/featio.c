/* featio.c - see featio.h
 *
 * .npy layout (numpy/lib/format.py): "\x93NUMPY", major, minor, a header
 * length (uint16 LE in v1, uint32 LE in v2 and v3), then the header: a
 * Python dict literal {'descr': '<f4', 'fortran_order': False,
 * 'shape': (N, D), } padded with spaces and '\n' so that the data starts at
 * a multiple of 64, then the data.  v3 only differs in allowing UTF-8 in
 * the header.
 */
#include "featio.h"

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

#include <hdf5.h>

#include "../base/afile.h"

#define NPY_HEADER_MAX (1u << 20)     /* bytes of a v2/v3 header we accept */
#define NPY_MAXDIM 32
#define CSV_LINE_MAX (64u << 20)      /* bytes in one CSV line */
#define CSV_FIELD_MAX 255             /* bytes in one numeric CSV field */
#define H5_CHUNKED_RATIO 1024         /* deflate's best ratio is about 1032:1 */

/* ---------------------------------------------------------------- common */

void feats_init(struct feats *f)
{
	memset(f, 0, sizeof *f);
	f->patch_level = -1;
}

void feats_free(struct feats *f)
{
	if (!f)
		return;
	free(f->x);
	free(f->coords);
	feats_init(f);
}

static int host_le(void)
{
	const uint16_t one = 1;
	unsigned char c;
	memcpy(&c, &one, 1);
	return c == 1;
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const unsigned char *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void swap32(void *buf, size_t n)
{
	unsigned char *p = buf;
	for (size_t i = 0; i < n; i++, p += 4) {
		unsigned char t = p[0];
		p[0] = p[3];
		p[3] = t;
		t = p[1];
		p[1] = p[2];
		p[2] = t;
	}
}

/* Renders untrusted bytes for a message: at most 32 of them, printable
 * ASCII kept, anything else as '?', "..." when cut. */
static const char *show(char out[48], const char *s, size_t n)
{
	size_t k = n < 32 ? n : 32, j = 0;
	for (size_t i = 0; i < k; i++) {
		unsigned char c = (unsigned char)s[i];
		out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (n > k) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = 0;
	return out;
}

/* The first value of x[n][d] that is not finite, as an error. */
static int check_finite(const char *path, const float *x, uint64_t n, uint32_t d,
                        struct err *e)
{
	uint64_t nd = n * d;
	for (uint64_t i = 0; i < nd; i++)
		if (!isfinite(x[i]))
			return err_set(e, ERR_NUMERIC,
			               "%s: row %llu, column %llu: %s, expected a finite number", path,
			               (unsigned long long)(i / d + 1), (unsigned long long)(i % d + 1),
			               isnan(x[i]) ? "nan" : "inf");
	return 0;
}

static int check_dims(const char *path, const char *what, uint64_t n, uint64_t d,
                      struct err *e)
{
	if (d == 0)
		return err_set(e, ERR_FORMAT, "%s: %s has dimension 0, expected at least 1", path,
		               what);
	if (d > FEATIO_D_MAX)
		return err_set(e, ERR_LIMIT, "%s: %s has dimension %llu, more than the limit of %u",
		               path, what, (unsigned long long)d, FEATIO_D_MAX);
	if (n > FEATIO_N_MAX)
		return err_set(e, ERR_LIMIT, "%s: %s has %llu instances, more than the limit of %llu",
		               path, what, (unsigned long long)n, (unsigned long long)FEATIO_N_MAX);
	if (n * d > SIZE_MAX / 8)
		return err_set(e, ERR_LIMIT, "%s: %s of %llu x %llu values is too large for memory",
		               path, what, (unsigned long long)n, (unsigned long long)d);
	return 0;
}

/* A double that holds an int32, into *out; else nonzero. */
static int to_i32(double v, int32_t *out)
{
	if (!(v >= INT32_MIN && v <= INT32_MAX) || v != floor(v))
		return -1;
	*out = (int32_t)v;
	return 0;
}

static char *shape_str(char *buf, size_t cap, const uint64_t *shape, int ndim)
{
	size_t j = 0;
	j += (size_t)snprintf(buf + j, cap - j, "(");
	for (int i = 0; i < ndim && j < cap; i++)
		j += (size_t)snprintf(buf + j, cap - j, "%s%llu", i ? ", " : "",
		                      (unsigned long long)shape[i]);
	if (j < cap)
		snprintf(buf + j, cap - j, ndim == 1 ? ",)" : ")");
	return buf;
}

/* shape -> rows x cols: (D,) is one row; leading 1s are dropped. */
static int matrix_dims(const char *path, const char *what, const uint64_t *shape, int ndim,
                       uint64_t *rows, uint64_t *cols, struct err *e)
{
	char sb[128];
	if (ndim == 0)
		return err_set(e, ERR_FORMAT, "%s: %s is a scalar, expected shape (N, D)", path, what);
	for (int i = 0; i + 2 < ndim; i++)
		if (shape[i] != 1)
			return err_set(e, ERR_FORMAT, "%s: %s has shape %s, expected (N, D)", path, what,
			               shape_str(sb, sizeof sb, shape, ndim));
	*rows = ndim == 1 ? 1 : shape[ndim - 2];
	*cols = shape[ndim - 1];
	return 0;
}

/* ------------------------------------------------------------ npy reading */

struct npy {
	FILE *fp;
	const char *path;
	char descr[32];
	int fortran;
	int ndim;
	uint64_t shape[NPY_MAXDIM];
	uint64_t data_off;        /* first byte of the data */
	uint64_t file_size;       /* valid when regular */
	int regular;
};

struct hparse {
	const char *s;
	size_t n, i;
	size_t base;              /* file offset of s[0] */
	const char *path;
	struct err *e;
};

static int hp_fail(struct hparse *p, const char *expected)
{
	char sb[48];
	if (p->i >= p->n)
		return err_set(p->e, ERR_FORMAT, "%s: byte %zu: npy header ends early, expected %s",
		               p->path, p->base + p->i, expected);
	return err_set(p->e, ERR_FORMAT, "%s: byte %zu: expected %s in the npy header, got '%s'",
	               p->path, p->base + p->i, expected,
	               show(sb, p->s + p->i, p->n - p->i < 12 ? p->n - p->i : 12));
}

static void hp_ws(struct hparse *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
	                       p->s[p->i] == '\r'))
		p->i++;
}

static int hp_peek(struct hparse *p)
{
	return p->i < p->n ? (unsigned char)p->s[p->i] : -1;
}

static int hp_expect(struct hparse *p, char c, const char *what)
{
	hp_ws(p);
	if (hp_peek(p) != (unsigned char)c)
		return hp_fail(p, what);
	p->i++;
	return 0;
}

/* A quoted string without escapes into out[cap]. */
static int hp_str(struct hparse *p, char *out, size_t cap, const char *what)
{
	hp_ws(p);
	int q = hp_peek(p);
	if (q != '\'' && q != '"')
		return hp_fail(p, what);
	size_t start = ++p->i;
	while (p->i < p->n && p->s[p->i] != q) {
		if (p->s[p->i] == '\\' || p->s[p->i] == '\n')
			return hp_fail(p, "a plain string");
		p->i++;
	}
	if (p->i >= p->n)
		return hp_fail(p, "a closing quote");
	size_t len = p->i - start;
	if (len >= cap) {
		p->i = start;
		return hp_fail(p, "a short string");
	}
	memcpy(out, p->s + start, len);
	out[len] = 0;
	p->i++;
	return 0;
}

static int hp_word(struct hparse *p, const char *w)
{
	size_t k = strlen(w);
	if (p->n - p->i >= k && !memcmp(p->s + p->i, w, k)) {
		p->i += k;
		return 1;
	}
	return 0;
}

static int hp_shape(struct hparse *p, struct npy *h)
{
	if (hp_expect(p, '(', "a shape tuple '('"))
		return ERR_FORMAT;
	h->ndim = 0;
	for (;;) {
		hp_ws(p);
		if (hp_peek(p) == ')') {
			p->i++;
			return 0;
		}
		if (hp_peek(p) < '0' || hp_peek(p) > '9')
			return hp_fail(p, "a dimension");
		uint64_t v = 0;
		size_t start = p->i;
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
			if (v > (UINT64_C(1) << 62) / 10) {
				p->i = start;
				return hp_fail(p, "a dimension below 2^62");
			}
			v = v * 10 + (uint64_t)(p->s[p->i++] - '0');
		}
		if (hp_peek(p) == 'L') /* Python 2's long ints */
			p->i++;
		if (h->ndim == NPY_MAXDIM) {
			p->i = start;
			return hp_fail(p, "at most 32 dimensions");
		}
		h->shape[h->ndim++] = v;
		hp_ws(p);
		if (hp_peek(p) == ',')
			p->i++;
		else if (hp_peek(p) != ')')
			return hp_fail(p, "',' or ')' in the shape");
	}
}

static int npy_parse_header(struct npy *h, const char *s, size_t n, size_t base, struct err *e)
{
	struct hparse p = { s, n, 0, base, h->path, e };
	int have_descr = 0, have_fortran = 0, have_shape = 0;
	if (hp_expect(&p, '{', "'{'"))
		return ERR_FORMAT;
	for (;;) {
		hp_ws(&p);
		if (hp_peek(&p) == '}') {
			p.i++;
			break;
		}
		char key[32];
		size_t key_at = p.i;
		if (hp_str(&p, key, sizeof key, "a quoted key or '}'"))
			return ERR_FORMAT;
		if (hp_expect(&p, ':', "':'"))
			return ERR_FORMAT;
		hp_ws(&p);
		if (!strcmp(key, "descr") && !have_descr) {
			if (hp_peek(&p) == '[')
				return err_set(e, ERR_UNSUPPORTED,
				               "%s: byte %zu: structured dtype, expected a plain '<f4' or "
				               "'<f8' array", h->path, base + p.i);
			if (hp_str(&p, h->descr, sizeof h->descr, "a quoted dtype"))
				return ERR_FORMAT;
			have_descr = 1;
		} else if (!strcmp(key, "fortran_order") && !have_fortran) {
			if (hp_word(&p, "True"))
				h->fortran = 1;
			else if (hp_word(&p, "False"))
				h->fortran = 0;
			else
				return hp_fail(&p, "True or False");
			have_fortran = 1;
		} else if (!strcmp(key, "shape") && !have_shape) {
			if (hp_shape(&p, h))
				return ERR_FORMAT;
			have_shape = 1;
		} else {
			p.i = key_at;
			return hp_fail(&p, "one of the keys 'descr', 'fortran_order', 'shape' (once each)");
		}
		hp_ws(&p);
		if (hp_peek(&p) == ',')
			p.i++;
		else if (hp_peek(&p) != '}')
			return hp_fail(&p, "',' or '}'");
	}
	hp_ws(&p);
	if (p.i != p.n)
		return hp_fail(&p, "only padding after the header's '}'");
	if (!have_descr || !have_fortran || !have_shape)
		return err_set(e, ERR_FORMAT, "%s: byte %zu: npy header has no '%s' key", h->path, base,
		               !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
	return 0;
}

static void npy_close(struct npy *h)
{
	if (h->fp)
		fclose(h->fp);
	h->fp = NULL;
}

/* Opens path and reads its header; h->fp is left at the data. */
static int npy_open(struct npy *h, const char *path, struct err *e)
{
	memset(h, 0, sizeof *h);
	h->path = path;
	h->fp = fopen(path, "rb");
	if (!h->fp)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	struct stat st;
	if (fstat(fileno(h->fp), &st) == 0 && S_ISREG(st.st_mode)) {
		h->regular = 1;
		h->file_size = (uint64_t)st.st_size;
	}
	unsigned char pre[12];
	size_t got = fread(pre, 1, 10, h->fp);
	if (ferror(h->fp))
		return err_sys(e, ERR_IO, "cannot read '%s'", path);
	if (got == 0)
		return err_set(e, ERR_FORMAT, "%s: empty file, expected an npy array", path);
	if (got < 6 || memcmp(pre, "\x93NUMPY", 6))
		return err_set(e, ERR_FORMAT, "%s: byte 0: bad magic, expected \\x93NUMPY (not an npy "
		               "file)", path);
	if (got < 10)
		return err_set(e, ERR_FORMAT, "%s: byte %zu: truncated npy header", path, got);
	unsigned major = pre[6], minor = pre[7];
	if (major < 1 || major > 3 || minor != 0)
		return err_set(e, ERR_UNSUPPORTED, "%s: byte 6: npy format version %u.%u, expected 1.0, "
		               "2.0 or 3.0", path, major, minor);
	size_t hoff = 10;
	uint32_t hlen = (uint32_t)pre[8] | (uint32_t)pre[9] << 8;
	if (major >= 2) {
		if (fread(pre + 10, 1, 2, h->fp) != 2)
			return err_set(e, ERR_FORMAT, "%s: byte 10: truncated npy header", path);
		hlen = get_le32(pre + 8);
		hoff = 12;
	}
	if (hlen > NPY_HEADER_MAX)
		return err_set(e, ERR_LIMIT, "%s: byte 8: npy header of %u bytes, more than the limit "
		               "of %u", path, hlen, NPY_HEADER_MAX);
	if (h->regular && hoff + hlen > h->file_size)
		return err_set(e, ERR_FORMAT, "%s: byte 8: npy header of %u bytes runs past the end of "
		               "the file (%llu bytes)", path, hlen, (unsigned long long)h->file_size);
	char *hdr = err_malloc(e, (size_t)hlen + 1);
	if (!hdr)
		return ERR_NOMEM;
	if (fread(hdr, 1, hlen, h->fp) != hlen) {
		free(hdr);
		if (ferror(h->fp))
			return err_sys(e, ERR_IO, "cannot read '%s'", path);
		return err_set(e, ERR_FORMAT, "%s: byte %zu: truncated npy header", path, hoff);
	}
	hdr[hlen] = 0;
	int rc = npy_parse_header(h, hdr, hlen, hoff, e);
	free(hdr);
	h->data_off = hoff + hlen;
	return rc;
}

/* Checks that the file holds exactly `bytes` of data after the header. */
static int npy_check_length(struct npy *h, const char *what, uint64_t bytes, struct err *e)
{
	if (!h->regular)
		return 0;
	uint64_t have = h->file_size - h->data_off;
	if (have < bytes)
		return err_set(e, ERR_FORMAT, "%s: truncated: the header declares %s (%llu bytes of "
		               "data from byte %llu), but only %llu bytes follow", h->path, what,
		               (unsigned long long)bytes, (unsigned long long)h->data_off,
		               (unsigned long long)have);
	if (have > bytes)
		return err_set(e, ERR_FORMAT, "%s: byte %llu: %llu bytes after the data, expected the "
		               "end of the file", h->path, (unsigned long long)(h->data_off + bytes),
		               (unsigned long long)(have - bytes));
	return 0;
}

/* Reads n bytes of data at data offset `at`. */
static int npy_read(struct npy *h, void *buf, size_t n, uint64_t at, struct err *e)
{
	if (n && fread(buf, 1, n, h->fp) != n) {
		if (ferror(h->fp))
			return err_sys(e, ERR_IO, "cannot read '%s'", h->path);
		return err_set(e, ERR_FORMAT, "%s: byte %llu: truncated npy data", h->path,
		               (unsigned long long)(h->data_off + at));
	}
	return 0;
}

static int npy_expect_end(struct npy *h, uint64_t bytes, struct err *e)
{
	if (h->regular || fgetc(h->fp) == EOF)
		return 0;
	return err_set(e, ERR_FORMAT, "%s: byte %llu: data after the array, expected the end of "
	               "the file", h->path, (unsigned long long)(h->data_off + bytes));
}

static int npy_fortran_check(struct npy *h, uint64_t rows, uint64_t cols, struct err *e)
{
	if (h->fortran && rows > 1 && cols > 1)
		return err_set(e, ERR_UNSUPPORTED, "%s: fortran_order is True, expected C order\n"
		               "hint: save with np.save(path, np.ascontiguousarray(x))", h->path);
	return 0;
}

static int read_npy(struct feats *f, struct npy *h, struct err *e)
{
	const char *path = h->path;
	size_t isz;
	if (!strcmp(h->descr, "<f4"))
		isz = 4;
	else if (!strcmp(h->descr, "<f8"))
		isz = 8;
	else if (!strcmp(h->descr, ">f4") || !strcmp(h->descr, ">f8"))
		return err_set(e, ERR_UNSUPPORTED, "%s: dtype '%s' is big-endian, expected '<f4' "
		               "(float32) or '<f8'\nhint: x.astype('<f4')", path, h->descr);
	else {
		char sb[48];
		return err_set(e, ERR_UNSUPPORTED, "%s: dtype '%s' is not supported for features, "
		               "expected '<f4' (float32) or '<f8' (float64)\nhint: np.save(path, "
		               "x.astype(np.float32))", path,
		               show(sb, h->descr, strlen(h->descr)));
	}
	uint64_t rows, cols;
	int rc = matrix_dims(path, "array", h->shape, h->ndim, &rows, &cols, e);
	if (!rc)
		rc = check_dims(path, "array", rows, cols, e);
	if (!rc)
		rc = npy_fortran_check(h, rows, cols, e);
	if (rc)
		return rc;
	char what[96];
	snprintf(what, sizeof what, "%llu x %llu %s", (unsigned long long)rows,
	         (unsigned long long)cols, isz == 4 ? "float32" : "float64");
	uint64_t count = rows * cols;
	if ((rc = npy_check_length(h, what, count * isz, e)))
		return rc;
	f->x = err_malloc(e, (size_t)count * sizeof(float));
	if (!f->x)
		return ERR_NOMEM;
	f->n = rows;
	f->d = (uint32_t)cols;
	if (isz == 4) {
		if ((rc = npy_read(h, f->x, (size_t)count * 4, 0, e)))
			return rc;
		if (!host_le())
			swap32(f->x, (size_t)count);
	} else {
		unsigned char buf[8192];
		for (uint64_t i = 0; i < count;) {
			size_t k = count - i < sizeof buf / 8 ? (size_t)(count - i) : sizeof buf / 8;
			if ((rc = npy_read(h, buf, k * 8, i * 8, e)))
				return rc;
			for (size_t j = 0; j < k; j++, i++) {
				uint64_t u = get_le64(buf + 8 * j);
				double v;
				memcpy(&v, &u, 8);
				if (isfinite(v) && fabs(v) > FLT_MAX)
					return err_set(e, ERR_NUMERIC, "%s: byte %llu (row %llu, column %llu): "
					               "%g is out of float32 range", path,
					               (unsigned long long)(h->data_off + i * 8),
					               (unsigned long long)(i / cols + 1),
					               (unsigned long long)(i % cols + 1), v);
				f->x[i] = (float)v;
			}
		}
	}
	if ((rc = npy_expect_end(h, count * isz, e)))
		return rc;
	return check_finite(path, f->x, f->n, f->d, e);
}

int featio_read_npy(struct feats *f, const char *path, struct err *e)
{
	struct npy h;
	feats_init(f);
	int rc = npy_open(&h, path, e);
	if (!rc)
		rc = read_npy(f, &h, e);
	npy_close(&h);
	if (rc)
		feats_free(f);
	return rc;
}

static int read_coords_npy(struct npy *h, uint64_t want, int32_t **out, struct err *e)
{
	const char *path = h->path;
	int isint;
	size_t isz;
	if (!strcmp(h->descr, "<i4") || !strcmp(h->descr, "<f4"))
		isz = 4;
	else if (!strcmp(h->descr, "<i8") || !strcmp(h->descr, "<f8"))
		isz = 8;
	else {
		char sb[48];
		return err_set(e, ERR_UNSUPPORTED, "%s: dtype '%s' is not supported for coordinates, "
		               "expected '<i4', '<i8', '<f4' or '<f8'", path,
		               show(sb, h->descr, strlen(h->descr)));
	}
	isint = h->descr[1] == 'i';
	uint64_t rows, cols;
	int rc = matrix_dims(path, "coordinate array", h->shape, h->ndim, &rows, &cols, e);
	if (rc)
		return rc;
	if (cols != 2)
		return err_set(e, ERR_FORMAT, "%s: coordinates have %llu columns, expected 2 (x, y)",
		               path, (unsigned long long)cols);
	if (rows != want)
		return err_set(e, ERR_FORMAT, "%s: %llu coordinate rows, expected %llu (one per "
		               "instance)", path, (unsigned long long)rows, (unsigned long long)want);
	if ((rc = npy_fortran_check(h, rows, cols, e)))
		return rc;
	char what[96];
	snprintf(what, sizeof what, "%llu x 2 %s", (unsigned long long)rows, h->descr + 1);
	uint64_t count = rows * 2;
	if ((rc = npy_check_length(h, what, count * isz, e)))
		return rc;
	int32_t *xy = err_malloc(e, (size_t)count * sizeof *xy);
	if (!xy)
		return ERR_NOMEM;
	unsigned char buf[8192];
	for (uint64_t i = 0; i < count;) {
		size_t k = (size_t)(count - i < sizeof buf / isz ? count - i : sizeof buf / isz);
		if ((rc = npy_read(h, buf, k * isz, i * isz, e)))
			goto fail;
		for (size_t j = 0; j < k; j++, i++) {
			const unsigned char *p = buf + j * isz;
			double v;
			if (isint && isz == 4)
				v = (double)(int32_t)get_le32(p);
			else if (isint)
				v = (double)(int64_t)get_le64(p);
			else if (isz == 4) {
				uint32_t u = get_le32(p);
				float fv;
				memcpy(&fv, &u, 4);
				v = fv;
			} else {
				uint64_t u = get_le64(p);
				memcpy(&v, &u, 8);
			}
			if (to_i32(v, &xy[i])) {
				rc = err_set(e, ERR_FORMAT, "%s: byte %llu (row %llu, %s): %.17g, expected an "
				             "integer coordinate that fits int32", path,
				             (unsigned long long)(h->data_off + i * isz),
				             (unsigned long long)(i / 2 + 1), i % 2 ? "y" : "x", v);
				goto fail;
			}
		}
	}
	if ((rc = npy_expect_end(h, count * isz, e)))
		goto fail;
	*out = xy;
	return 0;
fail:
	free(xy);
	return rc;
}

int featio_read_coords_npy(struct feats *f, const char *path, struct err *e)
{
	struct npy h;
	int32_t *xy = NULL;
	int rc = npy_open(&h, path, e);
	if (!rc)
		rc = read_coords_npy(&h, f->n, &xy, e);
	npy_close(&h);
	if (rc)
		return rc;
	free(f->coords);
	f->coords = xy;
	return 0;
}

/* ------------------------------------------------------------ npy writing */

/* The header np.save (numpy 1.24) writes, version 1.0: the dict, spare
 * spaces for growing the first axis, padding to 64 bytes, '\n'. */
static size_t npy_header(unsigned char *buf, const char *descr, uint64_t n, uint32_t d)
{
	char dict[160], num[32];
	int len = snprintf(dict, sizeof dict,
	                   "{'descr': '%s', 'fortran_order': False, 'shape': (%llu, %u), }", descr,
	                   (unsigned long long)n, d);
	int ndig = snprintf(num, sizeof num, "%llu", (unsigned long long)n);
	for (int i = ndig; i < 21; i++)
		dict[len++] = ' ';
	size_t hlen = (size_t)len + 1;
	size_t pad = 64 - (10 + hlen) % 64;
	if (pad == 64)
		pad = 0;
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (unsigned char)((hlen + pad) & 0xff);
	buf[9] = (unsigned char)((hlen + pad) >> 8);
	memcpy(buf + 10, dict, (size_t)len);
	memset(buf + 10 + len, ' ', pad);
	buf[10 + (size_t)len + pad] = '\n';
	return 10 + hlen + pad;
}

static int write_rows(const char *path, uint64_t n, uint32_t d, struct err *e)
{
	if (d == 0 || d > FEATIO_D_MAX || n > FEATIO_N_MAX)
		return err_set(e, ERR_USAGE, "%s: cannot write %llu x %u values (limits: 1 <= d <= %u, "
		               "n <= %llu)", path, (unsigned long long)n, d, FEATIO_D_MAX,
		               (unsigned long long)FEATIO_N_MAX);
	return 0;
}

int featio_write_npy(const char *path, const float *x, uint64_t n, uint32_t d, struct err *e)
{
	int rc = write_rows(path, n, d, e);
	if (rc)
		return rc;
	if (n && !x)
		return err_set(e, ERR_USAGE, "%s: no features to write", path);
	if (n && (rc = check_finite(path, x, n, d, e)))
		return rc;
	unsigned char hdr[256];
	size_t hn = npy_header(hdr, "<f4", n, d);
	struct afile af;
	if ((rc = afile_open(&af, path, e)))
		return rc;
	int bad = fwrite(hdr, 1, hn, af.fp) != hn;
	uint64_t count = n * d;
	if (host_le()) {
		if (count && fwrite(x, 4, (size_t)count, af.fp) != count)
			bad = 1;
	} else {
		float buf[2048];
		for (uint64_t i = 0; i < count && !bad;) {
			size_t k = count - i < 2048 ? (size_t)(count - i) : 2048;
			memcpy(buf, x + i, k * 4);
			swap32(buf, k);
			bad = fwrite(buf, 4, k, af.fp) != k;
			i += k;
		}
	}
	if (bad) {
		rc = err_sys(e, ERR_IO, "cannot write '%s'", path);
		afile_abort(&af);
		return rc;
	}
	return afile_commit(&af, e);
}

int featio_write_coords_npy(const char *path, const int32_t *xy, uint64_t n, struct err *e)
{
	int rc = write_rows(path, n, 2, e);
	if (rc)
		return rc;
	if (n && !xy)
		return err_set(e, ERR_USAGE, "%s: no coordinates to write", path);
	unsigned char hdr[256];
	size_t hn = npy_header(hdr, "<i8", n, 2);
	struct afile af;
	if ((rc = afile_open(&af, path, e)))
		return rc;
	int bad = fwrite(hdr, 1, hn, af.fp) != hn;
	unsigned char buf[8 * 1024];
	for (uint64_t i = 0; i < 2 * n && !bad;) {
		size_t k = 0;
		for (; k < 1024 && i < 2 * n; k++, i++)
			put_le64(buf + 8 * k, (uint64_t)(int64_t)xy[i]);
		bad = fwrite(buf, 8, k, af.fp) != k;
	}
	if (bad) {
		rc = err_sys(e, ERR_IO, "cannot write '%s'", path);
		afile_abort(&af);
		return rc;
	}
	return afile_commit(&af, e);
}

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

static int read_csv(struct feats *f, struct csv *c, struct err *e)
{
	const char *path = c->path;
	char *s = NULL;
	size_t n = 0;
	int rc, header_seen = 0, first = 1;
	size_t skip = 0;           /* leading index columns */
	size_t ncols = 0;          /* columns in every line */
	uint64_t cap_rows = 0;
	char sb[48];
	while ((rc = lines_next(&c->L, &s, &n, path, e)) == 1) {
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
			if ((rc = csv_split(c, s, n, 1, e)))
				return rc;
			int numbers = 0;
			for (size_t k = 0; k < c->nf; k++) {
				float v;
				if (parse_float(s + c->f[k].off, c->f[k].len, &v) != 1)
					numbers++;
			}
			int index = c->nf > 1 && c->f[0].len == 0 && pandas_names(c, s, 1);
			if (numbers == 0 || index || pandas_names(c, s, 0)) {
				header_seen = 1;
				skip = index ? 1 : 0;
				ncols = c->nf;
				if (ncols - skip > FEATIO_D_MAX)
					return err_set(e, ERR_LIMIT, "%s: line %llu: %zu columns, more than the "
					               "limit of %u", path, (unsigned long long)c->L.lineno,
					               ncols - skip, FEATIO_D_MAX);
				continue;
			}
		} else if ((rc = csv_split(c, s, n, 0, e))) {
			return rc;
		}
		if (!ncols) {
			ncols = c->nf;
			if (ncols > FEATIO_D_MAX)
				return err_set(e, ERR_LIMIT, "%s: line %llu: %zu columns, more than the limit "
				               "of %u", path, (unsigned long long)c->L.lineno, ncols,
				               FEATIO_D_MAX);
		}
		if (c->nf != ncols)
			return err_set(e, ERR_FORMAT, "%s: line %llu: %zu columns, expected %zu", path,
			               (unsigned long long)c->L.lineno, c->nf, ncols);
		size_t d = ncols - skip;
		if (f->n == FEATIO_N_MAX)
			return err_set(e, ERR_LIMIT, "%s: line %llu: more than %llu rows", path,
			               (unsigned long long)c->L.lineno, (unsigned long long)FEATIO_N_MAX);
		if (f->n == cap_rows) {
			uint64_t nc = cap_rows ? 2 * cap_rows : 64;
			if (nc * d > SIZE_MAX / sizeof(float))
				return err_set(e, ERR_LIMIT, "%s: too many rows for memory", path);
			float *nx = realloc(f->x, (size_t)(nc * d) * sizeof(float));
			if (!nx)
				return err_set(e, ERR_NOMEM, "out of memory reading '%s' (%llu rows)", path,
				               (unsigned long long)f->n);
			f->x = nx;
			cap_rows = nc;
		}
		float *row = f->x + f->n * d;
		for (size_t k = skip; k < ncols; k++) {
			const char *fs = s + c->f[k].off;
			size_t fl = c->f[k].len;
			int r = parse_float(fs, fl, &row[k - skip]);
			if (r == 1)
				return err_set(e, ERR_FORMAT, "%s: line %llu, column %zu: expected a number, "
				               "got '%s'%s", path, (unsigned long long)c->L.lineno, k + 1,
				               show(sb, fs, fl),
				               !header_seen && f->n == 0
				                       ? "\nhint: a header line must be all names, or "
				                         "pandas' 0,1,...,D-1"
				                       : "");
			if (r)
				return err_set(e, ERR_NUMERIC, "%s: line %llu, column %zu: '%s' %s", path,
				               (unsigned long long)c->L.lineno, k + 1, show(sb, fs, fl),
				               r == 3 ? "is out of float32 range"
				                      : "is not a finite number");
		}
		f->d = (uint32_t)d;
		f->n++;
	}
	if (rc < 0)
		return rc;
	if (!ncols)
		return err_set(e, ERR_FORMAT, "%s: empty file, expected rows of comma-separated numbers",
		               path);
	if (ncols - skip == 0)
		return err_set(e, ERR_FORMAT, "%s: the header names no feature columns", path);
	f->d = (uint32_t)(ncols - skip);
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
	int rc = write_rows(path, f->n, f->d, e);
	if (rc)
		return rc;
	if (f->n && !f->x)
		return err_set(e, ERR_USAGE, "%s: no features to write", path);
	if ((rc = check_finite(path, f->x, f->n, f->d, e)))
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

/* ------------------------------------------------------------------ HDF5 */

struct h5quiet {
	H5E_auto2_t func;
	void *data;
};

static void h5_quiet(struct h5quiet *q)
{
	if (H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) < 0) {
		q->func = NULL;
		q->data = NULL;
	}
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void h5_loud(const struct h5quiet *q)
{
	H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

static herr_t h5_walk(unsigned n, const H5E_error2_t *ed, void *data)
{
	char *out = data;
	if (n == 0 && ed->desc)
		snprintf(out, 160, "%s", ed->desc);
	return 0;
}

/* The innermost message on HDF5's error stack, as "\n(hdf5: ...)" or "". */
static const char *h5_why(char out[192])
{
	char desc[160] = "";
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk, desc);
	if (!desc[0])
		return "";
	snprintf(out, 192, " (hdf5: %s)", desc);
	return out;
}

static void h5_close(hid_t *id, herr_t (*fn)(hid_t))
{
	if (*id >= 0)
		fn(*id);
	*id = -1;
}

/* Rows x cols of a dataset, checked against what the file can hold. */
static int h5_dims(const char *path, const char *name, hid_t ds, uint64_t file_size,
                   uint64_t *rows, uint64_t *cols, struct err *e)
{
	hid_t sp = H5Dget_space(ds);
	if (sp < 0)
		return err_set(e, ERR_FORMAT, "%s: cannot read the shape of '%s'", path, name);
	int ndim = H5Sget_simple_extent_ndims(sp);
	hsize_t dims[NPY_MAXDIM];
	uint64_t shape[NPY_MAXDIM];
	if (ndim < 0 || ndim > NPY_MAXDIM || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
		H5Sclose(sp);
		return err_set(e, ERR_FORMAT, "%s: dataset '%s' has no simple shape, expected (N, D)",
		               path, name);
	}
	H5Sclose(sp);
	for (int i = 0; i < ndim; i++)
		shape[i] = dims[i];
	char what[64];
	snprintf(what, sizeof what, "dataset '%s'", name);
	int rc = matrix_dims(path, what, shape, ndim, rows, cols, e);
	if (rc)
		return rc;
	hid_t ty = H5Dget_type(ds);
	size_t isz = ty >= 0 ? H5Tget_size(ty) : 0;
	if (ty >= 0)
		H5Tclose(ty);
	/* Before allocating: can the file hold that many values? */
	if (*cols == 0 || *cols > FEATIO_D_MAX || *rows > FEATIO_N_MAX)
		return 0; /* the caller's check_dims reports it */
	uint64_t bytes = *rows * *cols * (uint64_t)(isz ? isz : 1);
	hid_t dcpl = H5Dget_create_plist(ds);
	int chunked = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED;
	if (dcpl >= 0)
		H5Pclose(dcpl);
	uint64_t room = chunked ? file_size * H5_CHUNKED_RATIO : file_size;
	if (bytes > room)
		return err_set(e, ERR_FORMAT, "%s: dataset '%s' declares %llu x %llu values (%llu "
		               "bytes), more than a file of %llu bytes can hold", path, name,
		               (unsigned long long)*rows, (unsigned long long)*cols,
		               (unsigned long long)bytes, (unsigned long long)file_size);
	return 0;
}

static const char *h5_class_name(H5T_class_t c)
{
	switch (c) {
	case H5T_INTEGER: return "integer";
	case H5T_FLOAT: return "float";
	case H5T_STRING: return "string";
	case H5T_COMPOUND: return "compound";
	case H5T_ENUM: return "enum";
	case H5T_ARRAY: return "array";
	default: return "non-numeric";
	}
}

static H5T_class_t h5_class(hid_t obj, int is_attr)
{
	hid_t ty = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
	if (ty < 0)
		return H5T_NO_CLASS;
	H5T_class_t c = H5Tget_class(ty);
	H5Tclose(ty);
	return c;
}

/* A numeric attribute of coords: *v = its first value; 0 when read, 1 when
 * absent, < 0 on error. */
static int h5_attr(const char *path, hid_t ds, const char *name, double *v, struct err *e)
{
	if (H5Aexists(ds, name) <= 0)
		return 1;
	hid_t a = H5Aopen(ds, name, H5P_DEFAULT);
	if (a < 0)
		return err_set(e, ERR_FORMAT, "%s: cannot open attribute '%s' of 'coords'", path, name);
	H5T_class_t cl = h5_class(a, 1);
	hid_t sp = H5Aget_space(a);
	hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
	if (sp >= 0)
		H5Sclose(sp);
	int rc = 0;
	double buf[16];
	if (cl != H5T_INTEGER && cl != H5T_FLOAT)
		rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' of 'coords' is a %s, expected a number",
		             path, name, h5_class_name(cl));
	else if (np < 1 || np > 16)
		rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' of 'coords' has %lld values, expected "
		             "1 or 2", path, name, (long long)np);
	else if (H5Aread(a, H5T_NATIVE_DOUBLE, buf) < 0)
		rc = err_set(e, ERR_FORMAT, "%s: cannot read attribute '%s' of 'coords'", path, name);
	else
		*v = buf[0];
	H5Aclose(a);
	return rc;
}

static int h5_attr_int(const char *path, hid_t ds, const char *name, int32_t lo, int32_t *out,
                       struct err *e)
{
	double v = 0;
	int rc = h5_attr(path, ds, name, &v, e);
	if (rc)
		return rc < 0 ? rc : 0;
	int32_t iv;
	if (to_i32(v, &iv) || iv < lo)
		return err_set(e, ERR_FORMAT, "%s: attribute '%s' of 'coords' is %.17g, expected an "
		               "integer >= %d", path, name, v, (int)lo);
	*out = iv;
	return 0;
}

static int h5_read_coords(struct feats *f, const char *path, hid_t fid, uint64_t file_size,
                          struct err *e)
{
	char why[192];
	htri_t ex = H5Lexists(fid, "coords", H5P_DEFAULT);
	if (ex <= 0)
		return 0; /* optional */
	hid_t ds = H5Dopen2(fid, "coords", H5P_DEFAULT);
	if (ds < 0)
		return err_set(e, ERR_FORMAT, "%s: 'coords' is not a dataset%s", path, h5_why(why));
	uint64_t rows, cols;
	int rc = h5_dims(path, "coords", ds, file_size, &rows, &cols, e);
	H5T_class_t cl = h5_class(ds, 0);
	double *buf = NULL;
	if (rc)
		goto out;
	if (cols != 2 || rows != f->n) {
		rc = err_set(e, ERR_FORMAT, "%s: dataset 'coords' is %llu x %llu, expected %llu x 2",
		             path, (unsigned long long)rows, (unsigned long long)cols,
		             (unsigned long long)f->n);
		goto out;
	}
	if (cl != H5T_INTEGER && cl != H5T_FLOAT) {
		rc = err_set(e, ERR_FORMAT, "%s: dataset 'coords' has %s values, expected integers",
		             path, h5_class_name(cl));
		goto out;
	}
	buf = err_malloc(e, (size_t)rows * 2 * sizeof *buf);
	f->coords = err_malloc(e, (size_t)rows * 2 * sizeof *f->coords);
	if (!buf || !f->coords) {
		rc = ERR_NOMEM;
		goto out;
	}
	if (rows) {
		/* int64 then to double would lose nothing that fits int32 */
		if (cl == H5T_INTEGER) {
			int64_t *ib = (int64_t *)(void *)buf;
			if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ib) < 0) {
				rc = err_set(e, ERR_FORMAT, "%s: cannot read dataset 'coords'%s", path,
				             h5_why(why));
				goto out;
			}
			for (uint64_t i = 0; i < 2 * rows; i++) {
				if (ib[i] < INT32_MIN || ib[i] > INT32_MAX) {
					rc = err_set(e, ERR_FORMAT, "%s: dataset 'coords', row %llu: %s = %lld, "
					             "expected an int32", path, (unsigned long long)(i / 2 + 1),
					             i % 2 ? "y" : "x", (long long)ib[i]);
					goto out;
				}
				f->coords[i] = (int32_t)ib[i];
			}
		} else {
			if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
				rc = err_set(e, ERR_FORMAT, "%s: cannot read dataset 'coords'%s", path,
				             h5_why(why));
				goto out;
			}
			for (uint64_t i = 0; i < 2 * rows; i++)
				if (to_i32(buf[i], &f->coords[i])) {
					rc = err_set(e, ERR_FORMAT, "%s: dataset 'coords', row %llu: %s = %.17g, "
					             "expected an integer that fits int32", path,
					             (unsigned long long)(i / 2 + 1), i % 2 ? "y" : "x", buf[i]);
					goto out;
				}
		}
	}
	double ds_v = 0;
	if ((rc = h5_attr_int(path, ds, "patch_size", 0, &f->patch_size, e)) ||
	    (rc = h5_attr_int(path, ds, "patch_level", -1, &f->patch_level, e)) ||
	    (rc = h5_attr_int(path, ds, "patch_size_level0", 0, &f->patch_size_level0, e)))
		goto out;
	rc = h5_attr(path, ds, "downsample", &ds_v, e);
	if (rc < 0)
		goto out;
	if (rc == 0 && (!isfinite(ds_v) || ds_v < 0)) {
		rc = err_set(e, ERR_FORMAT, "%s: attribute 'downsample' of 'coords' is %g, expected a "
		             "positive number", path, ds_v);
		goto out;
	}
	if (rc == 0)
		f->downsample = ds_v;
	rc = 0;
out:
	free(buf);
	H5Dclose(ds);
	return rc;
}

static int read_h5(struct feats *f, const char *path, uint64_t file_size, struct err *e)
{
	char why[192];
	if (H5Fis_hdf5(path) <= 0)
		return err_set(e, ERR_FORMAT, "%s: not an hdf5 file (no hdf5 signature)", path);
	hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (fid < 0)
		return err_set(e, ERR_FORMAT, "%s: cannot open the hdf5 file%s", path, h5_why(why));
	hid_t ds = -1;
	int rc = 0;
	if (H5Lexists(fid, "features", H5P_DEFAULT) <= 0) {
		rc = err_set(e, ERR_FORMAT, "%s: no dataset 'features'", path);
		goto out;
	}
	ds = H5Dopen2(fid, "features", H5P_DEFAULT);
	if (ds < 0) {
		rc = err_set(e, ERR_FORMAT, "%s: 'features' is not a dataset%s", path, h5_why(why));
		goto out;
	}
	H5T_class_t cl = h5_class(ds, 0);
	if (cl != H5T_FLOAT) {
		rc = err_set(e, ERR_UNSUPPORTED, "%s: dataset 'features' has %s values, expected "
		             "float32 or float64", path, h5_class_name(cl));
		goto out;
	}
	uint64_t rows, cols;
	if ((rc = h5_dims(path, "features", ds, file_size, &rows, &cols, e)) ||
	    (rc = check_dims(path, "dataset 'features'", rows, cols, e)))
		goto out;
	f->x = err_malloc(e, (size_t)(rows * cols) * sizeof(float));
	if (!f->x) {
		rc = ERR_NOMEM;
		goto out;
	}
	f->n = rows;
	f->d = (uint32_t)cols;
	if (rows && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->x) < 0) {
		rc = err_set(e, ERR_FORMAT, "%s: cannot read dataset 'features'%s", path, h5_why(why));
		goto out;
	}
	if ((rc = check_finite(path, f->x, f->n, f->d, e)))
		goto out;
	rc = h5_read_coords(f, path, fid, file_size, e);
out:
	h5_close(&ds, H5Dclose);
	if (H5Fclose(fid) < 0 && !rc)
		rc = err_set(e, ERR_IO, "%s: cannot close the hdf5 file", path);
	return rc;
}

int featio_read_h5(struct feats *f, const char *path, struct err *e)
{
	feats_init(f);
	struct stat st;
	if (stat(path, &st) != 0)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_IO, "cannot open '%s': not a regular file", path);
	struct h5quiet q;
	h5_quiet(&q);
	int rc = read_h5(f, path, (uint64_t)st.st_size, e);
	h5_loud(&q);
	if (rc)
		feats_free(f);
	return rc;
}

static int h5_write_attr(hid_t ds, const char *name, hid_t ftype, hid_t mtype, hsize_t count,
                         const void *v)
{
	hid_t sp = count == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, NULL);
	if (sp < 0)
		return -1;
	hid_t a = H5Acreate2(ds, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
	int bad = a < 0 || H5Awrite(a, mtype, v) < 0;
	if (a >= 0)
		bad |= H5Aclose(a) < 0;
	H5Sclose(sp);
	return bad ? -1 : 0;
}

static int write_h5(const char *tmp, const char *path, const struct feats *f, struct err *e)
{
	char why[192];
	int rc = 0;
	hid_t fid = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hid_t sp = -1, ds = -1;
	int64_t *xy = NULL;
	if (fid < 0)
		return err_set(e, ERR_IO, "cannot create '%s'%s", tmp, h5_why(why));
	hsize_t dims[2] = { f->n, f->d };
	sp = H5Screate_simple(2, dims, NULL);
	ds = sp < 0 ? -1
	            : H5Dcreate2(fid, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
	                         H5P_DEFAULT);
	if (ds < 0 || (f->n && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
	                                 f->x) < 0)) {
		rc = err_set(e, ERR_IO, "cannot write dataset 'features' to '%s'%s", path,
		             h5_why(why));
		goto out;
	}
	h5_close(&ds, H5Dclose);
	h5_close(&sp, H5Sclose);
	if (f->coords) {
		xy = err_malloc(e, (size_t)f->n * 2 * sizeof *xy);
		if (!xy) {
			rc = ERR_NOMEM;
			goto out;
		}
		for (uint64_t i = 0; i < 2 * f->n; i++)
			xy[i] = f->coords[i];
		dims[1] = 2;
		sp = H5Screate_simple(2, dims, NULL);
		ds = sp < 0 ? -1
		            : H5Dcreate2(fid, "coords", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
		                         H5P_DEFAULT);
		if (ds < 0 || (f->n && H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
		                                 xy) < 0)) {
			rc = err_set(e, ERR_IO, "cannot write dataset 'coords' to '%s'%s", path,
			             h5_why(why));
			goto out;
		}
		int64_t ps = f->patch_size, pl = f->patch_level, ps0 = f->patch_size_level0;
		double dsv[2] = { f->downsample, f->downsample };
		if ((ps > 0 && h5_write_attr(ds, "patch_size", H5T_STD_I64LE, H5T_NATIVE_INT64, 1,
		                             &ps)) ||
		    (pl >= 0 && h5_write_attr(ds, "patch_level", H5T_STD_I64LE, H5T_NATIVE_INT64, 1,
		                              &pl)) ||
		    (f->downsample > 0 && h5_write_attr(ds, "downsample", H5T_IEEE_F64LE,
		                                        H5T_NATIVE_DOUBLE, 2, dsv)) ||
		    (ps0 > 0 && h5_write_attr(ds, "patch_size_level0", H5T_STD_I64LE,
		                              H5T_NATIVE_INT64, 1, &ps0))) {
			rc = err_set(e, ERR_IO, "cannot write the attributes of 'coords' to '%s'%s", path,
			             h5_why(why));
			goto out;
		}
	}
out:
	free(xy);
	h5_close(&ds, H5Dclose);
	h5_close(&sp, H5Sclose);
	if (H5Fclose(fid) < 0 && !rc)
		rc = err_set(e, ERR_IO, "cannot write '%s'%s", path, h5_why(why));
	return rc;
}

int featio_write_h5(const char *path, const struct feats *f, struct err *e)
{
	int rc = write_rows(path, f->n, f->d, e);
	if (rc)
		return rc;
	if (f->n && !f->x)
		return err_set(e, ERR_USAGE, "%s: no features to write", path);
	if ((rc = check_finite(path, f->x, f->n, f->d, e)))
		return rc;
	/* HDF5 writes by name: it writes lib/base/afile's temporary, which
	 * afile_commit then syncs (fsync is per file) and renames */
	struct afile af;
	if ((rc = afile_open(&af, path, e)))
		return rc;
	if (!af.tmp) {
		afile_abort(&af);
		return err_set(e, ERR_USAGE, "%s: HDF5 output must be a regular file", path);
	}
	struct h5quiet q;
	h5_quiet(&q);
	rc = write_h5(af.tmp, path, f, e);
	h5_loud(&q);
	if (rc) {
		afile_abort(&af);
		return rc;
	}
	return afile_commit(&af, e);
}

/* -------------------------------------------------------------- dispatch */

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	if (a < b)
		return 0;
	for (size_t i = 0; i < b; i++) {
		char c = s[a - b + i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != suf[i])
			return 0;
	}
	return 1;
}

int featio_read(struct feats *f, const char *path, struct err *e)
{
	if (ends_with(path, ".npy"))
		return featio_read_npy(f, path, e);
	if (ends_with(path, ".csv"))
		return featio_read_csv(f, path, e);
	if (ends_with(path, ".h5") || ends_with(path, ".hdf5"))
		return featio_read_h5(f, path, e);
	feats_init(f);
	if (ends_with(path, ".pt") || ends_with(path, ".pth"))
		return err_set(e, ERR_UNSUPPORTED, "%s: pytorch .pt files cannot be read\nhint: "
		               "np.save('x.npy', torch.load(path).float().numpy())", path);
	return err_set(e, ERR_USAGE, "%s: unknown feature file type, expected .npy, .csv, .h5 or "
	               ".hdf5", path);
}
