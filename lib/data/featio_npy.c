/* featio_npy.c - NumPy .npy features and coordinates (featio.h)
 *
 * .npy layout (numpy/lib/format.py): "\x93NUMPY", major, minor, a header
 * length (uint16 LE in v1, uint32 LE in v2 and v3), then the header: a
 * Python dict literal {'descr': '<f4', 'fortran_order': False,
 * 'shape': (N, D), } padded with spaces and '\n' so that the data starts at
 * a multiple of 64, then the data.  v3 only differs in allowing UTF-8 in
 * the header.
 */
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

#define NPY_HEADER_MAX (1u << 20)     /* bytes of a v2/v3 header we accept */

/* ---------------------------------------------------------------- bytes */

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
	               fio_show(sb, p->s + p->i, p->n - p->i < 12 ? p->n - p->i : 12));
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
		               fio_show(sb, h->descr, strlen(h->descr)));
	}
	uint64_t rows, cols;
	int rc = fio_matrix_dims(path, "array", h->shape, h->ndim, &rows, &cols, e);
	if (!rc)
		rc = fio_check_dims(path, "array", rows, cols, e);
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
	return fio_check_finite(path, f->x, f->n, f->d, e);
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
		               fio_show(sb, h->descr, strlen(h->descr)));
	}
	isint = h->descr[1] == 'i';
	uint64_t rows, cols;
	int rc = fio_matrix_dims(path, "coordinate array", h->shape, h->ndim, &rows, &cols, e);
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
			if (fio_to_i32(v, &xy[i])) {
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

int featio_write_npy(const char *path, const float *x, uint64_t n, uint32_t d, struct err *e)
{
	int rc = fio_write_rows(path, n, d, e);
	if (rc)
		return rc;
	if (n && !x)
		return err_set(e, ERR_USAGE, "%s: no features to write", path);
	if (n && (rc = fio_check_finite(path, x, n, d, e)))
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
	int rc = fio_write_rows(path, n, 2, e);
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

