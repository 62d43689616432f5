/* imgset.c - see imgset.h */
#include "imgset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#include <tiffio.h>
#include <zlib.h>

#define IDX3_MAGIC 0x00000803u
#define IDX1_MAGIC 0x00000801u
#define CIFAR_REC 3073u
#define CIFAR_PIX 3072u
/* deflate never compresses better than about 1032:1, so a gzip file of L
 * bytes cannot hold more than this many bytes: the bound on a declared size */
#define GZ_MAX_RATIO 1032u

/* ---- small helpers ---- */

static char *xasprintf(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *xasprintf(struct err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		err_set(e, ERR_USAGE, "cannot format a string");
		return NULL;
	}
	char *s = err_malloc(e, (size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static char **number_names(uint32_t n, struct err *e)
{
	char **v = err_calloc(e, n, sizeof *v);
	if (!v)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		v[i] = xasprintf(e, "%u", i);
		if (!v[i]) {
			for (uint32_t j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return NULL;
		}
	}
	return v;
}

void imgset_free(struct imgset *s)
{
	if (!s)
		return;
	if (s->class_names)
		for (uint32_t i = 0; i < s->n_classes; i++)
			free(s->class_names[i]);
	if (s->paths)
		for (uint32_t i = 0; i < s->n; i++)
			free(s->paths[i]);
	free(s->class_names);
	free(s->paths);
	free(s->label);
	free(s->pix);
	free(s->source);
	memset(s, 0, sizeof *s);
}

int imgset_class_index(const struct imgset *s, const char *name)
{
	if (!s || !name || !name[0])
		return -1;
	for (uint32_t i = 0; i < s->n_classes; i++)
		if (s->class_names && s->class_names[i] && !strcmp(s->class_names[i], name))
			return (int)i;
	uint64_t v = 0;
	for (const char *p = name; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v >= s->n_classes)
			return -1;
	}
	return (int)v;
}

/* ---- IDX ---- */

/* A file read through zlib, plain or gzipped; pos counts uncompressed bytes. */
struct rd {
	gzFile gz;
	const char *path;
	uint64_t flen;     /* the file's length on disk */
	int gzipped;
	uint64_t pos;
};

static int rd_open(struct rd *r, const char *path, struct err *e)
{
	memset(r, 0, sizeof *r);
	r->path = path;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		err_sys(e, ERR_IO, "cannot stat '%s'", path);
		close(fd);
		return ERR_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(e, ERR_IO, "%s: not a regular file", path);
	}
	r->flen = (uint64_t)st.st_size;
	unsigned char m[2];
	r->gzipped = pread(fd, m, 2, 0) == 2 && m[0] == 0x1f && m[1] == 0x8b;
	r->gz = gzdopen(fd, "rb");
	if (!r->gz) {
		close(fd);
		return err_set(e, ERR_NOMEM, "%s: cannot start reading (out of memory)", path);
	}
	gzbuffer(r->gz, 1u << 17);
	return 0;
}

static void rd_close(struct rd *r)
{
	if (r->gz)
		gzclose(r->gz);
	r->gz = NULL;
}

/* zlib's message without the "<fd:N>: " that gzdopen puts first. */
static const char *gz_msg(gzFile gz)
{
	int zerr;
	const char *m = gzerror(gz, &zerr);
	if (!m || !m[0])
		return "unknown zlib error";
	if (!strncmp(m, "<fd:", 4)) {
		const char *c = strstr(m, ">: ");
		if (c)
			m = c + 3;
	}
	return m;
}

/* Reads exactly n bytes of `what`; a short read is a truncation error. */
static int rd_read(struct rd *r, void *buf, uint64_t n, const char *what, struct err *e)
{
	unsigned char *p = buf;
	while (n > 0) {
		unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
		int k = gzread(r->gz, p, chunk);
		if (k < 0 || (k == 0 && n > 0)) {
			int zerr = Z_OK;
			gzerror(r->gz, &zerr);
			if (k < 0 || (zerr != Z_OK && zerr != Z_STREAM_END))
				return err_set(e, ERR_FORMAT,
					       "%s: byte %llu: corrupt or truncated gzip data while "
					       "reading %s, %llu bytes short: %s",
					       r->path, (unsigned long long)r->pos, what,
					       (unsigned long long)n, gz_msg(r->gz));
			return err_set(e, ERR_FORMAT,
				       "%s: truncated at byte %llu: expected %llu more bytes of %s",
				       r->path, (unsigned long long)r->pos, (unsigned long long)n,
				       what);
		}
		p += k;
		n -= (uint64_t)k;
		r->pos += (uint64_t)k;
	}
	return 0;
}

/* Fails if anything follows the declared data. */
static int rd_expect_end(struct rd *r, struct err *e)
{
	unsigned char b;
	int k = gzread(r->gz, &b, 1);
	if (k == 1)
		return err_set(e, ERR_FORMAT,
			       "%s: byte %llu: data continues after the declared end of the file",
			       r->path, (unsigned long long)r->pos);
	if (k < 0)
		return err_set(e, ERR_FORMAT, "%s: byte %llu: corrupt gzip data at the end: %s",
			       r->path, (unsigned long long)r->pos, gz_msg(r->gz));
	return 0;
}

/* Checks that a file can hold `declared` bytes, before any allocation. */
static int rd_check_size(const struct rd *r, uint64_t declared, const char *what, struct err *e)
{
	if (!r->gzipped) {
		if (r->flen < declared)
			return err_set(e, ERR_FORMAT,
				       "%s: file is %llu bytes, but its header declares %s "
				       "(%llu bytes): truncated",
				       r->path, (unsigned long long)r->flen, what,
				       (unsigned long long)declared);
		if (r->flen > declared)
			return err_set(e, ERR_FORMAT,
				       "%s: file is %llu bytes, but its header declares %s "
				       "(%llu bytes): %llu extra bytes",
				       r->path, (unsigned long long)r->flen, what,
				       (unsigned long long)declared,
				       (unsigned long long)(r->flen - declared));
		return 0;
	}
	if (declared / GZ_MAX_RATIO > r->flen)
		return err_set(e, ERR_FORMAT,
			       "%s: gzipped file of %llu bytes cannot hold %s (%llu bytes): "
			       "truncated or corrupt",
			       r->path, (unsigned long long)r->flen, what,
			       (unsigned long long)declared);
	return 0;
}

/* the two headers: magics first (so that a short file of the wrong kind
 * is reported as such), then counts and sizes, checked against each other
 * and against the files' lengths */
static int idx_headers(struct rd *ri, struct rd *rl, const char *images_path, const char *labels_path,
                       uint32_t *n, uint32_t *rows, uint32_t *cols, struct err *e)
{
	unsigned char hi[16], hl[8];
	char what[160];
	int rc;
	if ((rc = rd_read(ri, hi, 4, "the 4-byte idx3 magic", e)) != 0)
		return rc;
	uint32_t magic = be32(hi);
	if (magic != IDX3_MAGIC)
		return err_set(e, ERR_FORMAT,
			       "%s: byte 0: magic 0x%08x, expected 0x%08x (idx3 unsigned byte images)%s",
			       images_path, magic, IDX3_MAGIC,
			       magic == IDX1_MAGIC ? "\nhint: this is a labels file; are the "
						     "images and labels arguments swapped?" : "");
	if ((rc = rd_read(rl, hl, 4, "the 4-byte idx1 magic", e)) != 0)
		return rc;
	uint32_t lmagic = be32(hl);
	if (lmagic != IDX1_MAGIC)
		return err_set(e, ERR_FORMAT,
			       "%s: byte 0: magic 0x%08x, expected 0x%08x (idx1 unsigned byte labels)",
			       labels_path, lmagic, IDX1_MAGIC);
	if ((rc = rd_read(ri, hi + 4, 12, "the 16-byte idx3 header", e)) != 0 ||
	    (rc = rd_read(rl, hl + 4, 4, "the 8-byte idx1 header", e)) != 0)
		return rc;
	*n = be32(hi + 4), *rows = be32(hi + 8), *cols = be32(hi + 12);
	uint32_t ln = be32(hl + 4);
	if (*n == 0)
		return err_set(e, ERR_FORMAT, "%s: byte 4: 0 images, expected at least 1", images_path);
	if (*rows == 0 || *rows > IMGSET_MAX_DIM)
		return err_set(e, *rows ? ERR_LIMIT : ERR_FORMAT, "%s: byte 8: rows %u, expected 1..%u",
			       images_path, *rows, IMGSET_MAX_DIM);
	if (*cols == 0 || *cols > IMGSET_MAX_DIM)
		return err_set(e, *cols ? ERR_LIMIT : ERR_FORMAT, "%s: byte 12: cols %u, expected 1..%u",
			       images_path, *cols, IMGSET_MAX_DIM);
	if (ln != *n)
		return err_set(e, ERR_FORMAT, "%s: byte 4: %u labels, but %s holds %u images",
			       labels_path, ln, images_path, *n);
	uint64_t npix = (uint64_t)*n * *rows * *cols;
	if (npix > SIZE_MAX)
		return err_set(e, ERR_LIMIT, "%s: %llu pixels do not fit in memory", images_path,
			       (unsigned long long)npix);
	snprintf(what, sizeof what, "%u images of %ux%u", *n, *rows, *cols);
	if ((rc = rd_check_size(ri, 16 + npix, what, e)) != 0)
		return rc;
	snprintf(what, sizeof what, "%u labels", *n);
	return rd_check_size(rl, 8 + (uint64_t)*n, what, e);
}

int imgset_load_idx(struct imgset *s, const char *images_path, const char *labels_path,
		    struct err *e)
{
	memset(s, 0, sizeof *s);
	struct rd ri = {0}, rl = {0};
	uint32_t n = 0, rows = 0, cols = 0;
	int rc;
	if ((rc = rd_open(&ri, images_path, e)) != 0)
		return rc;
	if ((rc = rd_open(&rl, labels_path, e)) != 0 ||
	    (rc = idx_headers(&ri, &rl, images_path, labels_path, &n, &rows, &cols, e)) != 0)
		goto fail;
	uint64_t npix = (uint64_t)n * rows * cols;
	s->n = n;
	s->h = rows;
	s->w = cols;
	s->c = 1;
	s->label = err_malloc(e, n);
	s->pix = err_malloc(e, (size_t)npix);
	if (!s->label || !s->pix) {
		rc = ERR_NOMEM;
		goto fail;
	}
	if ((rc = rd_read(&ri, s->pix, npix, "the pixels", e)) != 0 ||
	    (rc = rd_expect_end(&ri, e)) != 0 ||
	    (rc = rd_read(&rl, s->label, n, "the labels", e)) != 0 ||
	    (rc = rd_expect_end(&rl, e)) != 0)
		goto fail;
	uint32_t maxl = 0;
	for (uint32_t i = 0; i < n; i++)
		if (s->label[i] > maxl)
			maxl = s->label[i];
	s->n_classes = maxl + 1 > 10 ? maxl + 1 : 10;
	s->class_names = number_names(s->n_classes, e);
	s->source = xasprintf(e, "idx images %s, labels %s", images_path, labels_path);
	if (!s->class_names || !s->source) {
		rc = ERR_NOMEM;
		goto fail;
	}
	rd_close(&ri);
	rd_close(&rl);
	return 0;
fail:
	rd_close(&ri);
	rd_close(&rl);
	imgset_free(s);
	return rc;
}

/* ---- CIFAR-10 ---- */

/* the number of records in the batch files, checked: regular files of
 * whole records; *srclen gets room for the source line */
static int cifar_count(const char *const *paths, int npaths, uint64_t *total, size_t *srclen, struct err *e)
{
	*total = 0;
	*srclen = 16;
	for (int f = 0; f < npaths; f++) {
		struct stat st;
		if (stat(paths[f], &st) != 0)
			return err_sys(e, ERR_IO, "cannot open '%s'", paths[f]);
		if (!S_ISREG(st.st_mode))
			return err_set(e, ERR_IO, "%s: not a regular file", paths[f]);
		uint64_t len = (uint64_t)st.st_size;
		if (len == 0 || len % CIFAR_REC)
			return err_set(e, ERR_FORMAT,
				       "%s: length %llu bytes is not a positive multiple of %u "
				       "(cifar-10 records of 1 label byte and 3072 pixel bytes)",
				       paths[f], (unsigned long long)len, CIFAR_REC);
		*total += len / CIFAR_REC;
		*srclen += strlen(paths[f]) + 2;
	}
	if (*total > UINT32_MAX || *total * CIFAR_PIX > SIZE_MAX)
		return err_set(e, ERR_LIMIT, "cifar-10: %llu images, more than the limit of %u",
			       (unsigned long long)*total, UINT32_MAX);
	return 0;
}

/* one batch file's records into s from image *k on (rec: a record's
 * buffer), planes R, G, B turned into HWC */
static int cifar_read(struct imgset *s, const char *path, uint32_t *k, uint64_t total, unsigned char *rec,
                      struct err *e)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	struct stat st;
	int rc = 0;
	if (fstat(fileno(fp), &st) != 0)
		rc = err_sys(e, ERR_IO, "cannot stat '%s'", path);
	else if ((uint64_t)st.st_size % CIFAR_REC || *k + (uint64_t)st.st_size / CIFAR_REC > total)
		rc = err_set(e, ERR_IO, "%s: file changed while being read", path);
	uint64_t nrec = rc ? 0 : (uint64_t)st.st_size / CIFAR_REC;
	for (uint64_t r = 0; r < nrec && !rc; r++, (*k)++) {
		size_t got = fread(rec, 1, CIFAR_REC, fp);
		if (got != CIFAR_REC && ferror(fp))
			rc = err_sys(e, ERR_IO, "%s: byte %llu: read error", path,
				     (unsigned long long)(r * CIFAR_REC + got));
		else if (got != CIFAR_REC)
			rc = err_set(e, ERR_FORMAT,
				     "%s: truncated at byte %llu: expected %u more bytes of record %llu",
				     path, (unsigned long long)(r * CIFAR_REC + got),
				     CIFAR_REC - (unsigned)got, (unsigned long long)r);
		else if (rec[0] >= 10)
			rc = err_set(e, ERR_FORMAT,
				     "%s: byte %llu: label %u in record %llu, expected 0..9 (cifar-10)",
				     path, (unsigned long long)(r * CIFAR_REC), rec[0], (unsigned long long)r);
		if (rc)
			break;
		s->label[*k] = rec[0];
		uint8_t *dst = s->pix + (size_t)*k * CIFAR_PIX;
		const unsigned char *src = rec + 1;
		for (unsigned p = 0; p < 1024; p++) {
			dst[3 * p + 0] = src[p];
			dst[3 * p + 1] = src[1024 + p];
			dst[3 * p + 2] = src[2048 + p];
		}
	}
	fclose(fp);
	return rc;
}

int imgset_load_cifar(struct imgset *s, const char *const *paths, int npaths, struct err *e)
{
	memset(s, 0, sizeof *s);
	if (!paths || npaths < 1)
		return err_set(e, ERR_USAGE, "cifar-10: no batch files given");
	uint64_t total;
	size_t srclen;
	int rc = cifar_count(paths, npaths, &total, &srclen, e);
	if (rc)
		return rc;
	s->n = (uint32_t)total;
	s->h = s->w = 32;
	s->c = 3;
	s->n_classes = 10;
	s->label = err_malloc(e, s->n);
	s->pix = err_malloc(e, (size_t)total * CIFAR_PIX);
	s->class_names = number_names(10, e);
	s->source = err_malloc(e, srclen);
	unsigned char *rec = err_malloc(e, CIFAR_REC);
	if (!s->label || !s->pix || !s->class_names || !s->source || !rec)
		rc = ERR_NOMEM;
	else
		strcpy(s->source, "cifar-10 ");
	uint32_t k = 0;
	for (int f = 0; f < npaths && !rc; f++) {
		if (f)
			strcat(s->source, ", ");
		strcat(s->source, paths[f]);
		rc = cifar_read(s, paths[f], &k, total, rec, e);
	}
	if (!rc && k != total)
		rc = err_set(e, ERR_IO, "cifar-10: files changed while being read");
	free(rec);
	if (rc)
		imgset_free(s);
	return rc;
}

/* ---- image files: PNG, JPEG, TIFF ---- */

struct imghdr {
	uint32_t h, w;
	int color;      /* 1 if the image has colour (it needs c = 3) */
};

/* What a decode writes: want_h x want_w x oc into out.  out NULL: header only. */
struct imgdst {
	uint8_t *out;
	uint32_t h, w, oc;
};

static int check_dims(const char *path, const struct imghdr *hd, struct err *e)
{
	if (hd->w == 0 || hd->h == 0)
		return err_set(e, ERR_FORMAT, "%s: image is %ux%u, expected a non-empty image",
			       path, hd->w, hd->h);
	if (hd->w > IMGSET_MAX_DIM || hd->h > IMGSET_MAX_DIM)
		return err_set(e, ERR_LIMIT, "%s: image is %ux%u (width x height), more than %u",
			       path, hd->w, hd->h, IMGSET_MAX_DIM);
	return 0;
}

/* Checks a file about to be decoded into dst against the set's shape. */
static int check_dst(const char *path, const struct imghdr *hd, const struct imgdst *dst,
		     struct err *e)
{
	if (hd->w != dst->w || hd->h != dst->h)
		return err_set(e, ERR_FORMAT,
			       "%s: image is %ux%u (width x height), expected %ux%u like the "
			       "rest of the set",
			       path, hd->w, hd->h, dst->w, dst->h);
	if (hd->color && dst->oc == 1)
		return err_set(e, ERR_FORMAT, "%s: colour image in a grey set", path);
	if (dst->oc != 1 && dst->oc != 3)
		return err_set(e, ERR_USAGE, "%s: cannot decode to %u channels", path, dst->oc);
	return 0;
}

/* -- PNG (libpng; its errors longjmp back to png_read_file) -- */

struct pngctx {
	jmp_buf jb;
	char msg[256];
	png_structp png;
	png_infop info;
	png_bytep *rows;
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
	struct pngctx *x = png_get_error_ptr(png);
	snprintf(x->msg, sizeof x->msg, "%s", msg);
	longjmp(x->jb, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static int png_read_file(struct pngctx *x, const char *path, FILE *fp, struct imghdr *hd,
			 const struct imgdst *dst, struct err *e)
{
	x->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, x, png_error_cb, png_warning_cb);
	if (x->png)
		x->info = png_create_info_struct(x->png);
	if (!x->png || !x->info) {
		png_destroy_read_struct(&x->png, &x->info, NULL);
		return err_set(e, ERR_NOMEM, "%s: out of memory starting the png decoder", path);
	}
	if (setjmp(x->jb)) {
		png_destroy_read_struct(&x->png, &x->info, NULL);
		free(x->rows);
		x->rows = NULL;
		return err_set(e, ERR_FORMAT, "%s: bad png: %s", path, x->msg);
	}
	png_init_io(x->png, fp);
	png_read_info(x->png, x->info);
	int ct = png_get_color_type(x->png, x->info);
	hd->w = png_get_image_width(x->png, x->info);
	hd->h = png_get_image_height(x->png, x->info);
	hd->color = (ct & PNG_COLOR_MASK_COLOR) != 0;
	int rc = check_dims(path, hd, e);
	if (rc || !dst->out) {
		png_destroy_read_struct(&x->png, &x->info, NULL);
		return rc;
	}
	if ((rc = check_dst(path, hd, dst, e)) != 0) {
		png_destroy_read_struct(&x->png, &x->info, NULL);
		return rc;
	}
	int depth = png_get_bit_depth(x->png, x->info);
	if (ct == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(x->png);
	if (ct == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(x->png);
	if (depth == 16)
		png_set_strip_16(x->png);
	png_set_strip_alpha(x->png);
	if (!hd->color && dst->oc == 3)
		png_set_gray_to_rgb(x->png);
	png_set_interlace_handling(x->png);
	png_read_update_info(x->png, x->info);
	if (png_get_channels(x->png, x->info) != dst->oc ||
	    png_get_rowbytes(x->png, x->info) != (size_t)dst->w * dst->oc) {
		rc = err_set(e, ERR_UNSUPPORTED,
			     "%s: png colour type %d, bit depth %d: cannot convert to %u channels",
			     path, ct, depth, dst->oc);
		png_destroy_read_struct(&x->png, &x->info, NULL);
		return rc;
	}
	x->rows = malloc((size_t)hd->h * sizeof *x->rows);
	if (!x->rows) {
		png_destroy_read_struct(&x->png, &x->info, NULL);
		return err_set(e, ERR_NOMEM, "%s: out of memory", path);
	}
	for (uint32_t y = 0; y < hd->h; y++)
		x->rows[y] = dst->out + (size_t)y * dst->w * dst->oc;
	png_read_image(x->png, x->rows);
	png_destroy_read_struct(&x->png, &x->info, NULL);
	free(x->rows);
	x->rows = NULL;
	return 0;
}

/* -- JPEG (libjpeg; its errors longjmp back to jpeg_read_file) -- */

struct jpgctx {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
	int truncated;
	struct jpeg_decompress_struct ci;
	uint8_t *row;
};

static void jpeg_error_cb(j_common_ptr ci)
{
	struct jpgctx *x = (struct jpgctx *)ci->err;
	ci->err->format_message(ci, x->msg);
	longjmp(x->jb, 1);
}

/* Warnings are silent, except that truncated data makes the decode fail:
 * libjpeg would otherwise pad the image with grey. */
static void jpeg_emit_cb(j_common_ptr ci, int level)
{
	struct jpgctx *x = (struct jpgctx *)ci->err;
	if (level >= 0)
		return;
	ci->err->num_warnings++;
	if ((ci->err->msg_code == JWRN_JPEG_EOF || ci->err->msg_code == JWRN_HIT_MARKER) &&
	    !x->truncated) {
		x->truncated = 1;
		ci->err->format_message(ci, x->msg);
	}
}

static void jpeg_output_cb(j_common_ptr ci)
{
	(void)ci;
}

static int jpeg_read_file(struct jpgctx *x, const char *path, FILE *fp, struct imghdr *hd,
			  const struct imgdst *dst, struct err *e)
{
	x->ci.err = jpeg_std_error(&x->pub);
	x->pub.error_exit = jpeg_error_cb;
	x->pub.emit_message = jpeg_emit_cb;
	x->pub.output_message = jpeg_output_cb;
	if (setjmp(x->jb)) {
		jpeg_destroy_decompress(&x->ci);
		free(x->row);
		x->row = NULL;
		return err_set(e, ERR_FORMAT, "%s: bad jpeg: %s", path, x->msg);
	}
	jpeg_create_decompress(&x->ci);
	jpeg_stdio_src(&x->ci, fp);
	jpeg_read_header(&x->ci, TRUE);
	hd->w = x->ci.image_width;
	hd->h = x->ci.image_height;
	int rc = 0;
	switch (x->ci.jpeg_color_space) {
	case JCS_GRAYSCALE:
		hd->color = 0;
		break;
	case JCS_YCbCr:
	case JCS_RGB:
		hd->color = 1;
		break;
	default:
		rc = err_set(e, ERR_UNSUPPORTED,
			     "%s: jpeg colour space %d (cmyk or ycck) is not supported, expected "
			     "grey or rgb",
			     path, (int)x->ci.jpeg_color_space);
	}
	if (!rc)
		rc = check_dims(path, hd, e);
	if (!rc && dst->out)
		rc = check_dst(path, hd, dst, e);
	if (rc || !dst->out) {
		jpeg_destroy_decompress(&x->ci);
		return rc;
	}
	x->ci.out_color_space = hd->color ? JCS_RGB : JCS_GRAYSCALE;
	jpeg_start_decompress(&x->ci);
	unsigned nc = (unsigned)x->ci.output_components;
	if (x->ci.output_width != dst->w || x->ci.output_height != dst->h ||
	    (nc != 1 && nc != 3)) {
		jpeg_destroy_decompress(&x->ci);
		return err_set(e, ERR_UNSUPPORTED, "%s: jpeg decodes to %ux%ux%u, expected %ux%u",
			       path, x->ci.output_width, x->ci.output_height, nc, dst->w, dst->h);
	}
	x->row = malloc((size_t)dst->w * nc);
	if (!x->row) {
		jpeg_destroy_decompress(&x->ci);
		return err_set(e, ERR_NOMEM, "%s: out of memory", path);
	}
	while (x->ci.output_scanline < x->ci.output_height && !x->truncated) {
		uint32_t y = x->ci.output_scanline;
		JSAMPROW r = x->row;
		if (jpeg_read_scanlines(&x->ci, &r, 1) != 1)
			break;
		uint8_t *o = dst->out + (size_t)y * dst->w * dst->oc;
		if (nc == dst->oc)
			memcpy(o, x->row, (size_t)dst->w * nc);
		else /* grey file in a colour set */
			for (uint32_t i = 0; i < dst->w; i++)
				o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = x->row[i];
	}
	int done = x->ci.output_scanline == x->ci.output_height;
	jpeg_destroy_decompress(&x->ci);
	free(x->row);
	x->row = NULL;
	if (x->truncated)
		return err_set(e, ERR_FORMAT, "%s: bad jpeg: %s", path, x->msg);
	if (!done)
		return err_set(e, ERR_FORMAT, "%s: bad jpeg: decoding stopped early", path);
	return 0;
}

/* -- TIFF (libtiff's RGBA interface; per-handle error handlers) -- */

struct tifctx {
	char msg[256];
};

#if TIFFLIB_VERSION >= 20221213
static int tiff_error_cb(TIFF *t, void *ud, const char *module, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static int tiff_error_cb(TIFF *t, void *ud, const char *module, const char *fmt, va_list ap)
{
	struct tifctx *x = ud;
	(void)t;
	(void)module;
	if (!x->msg[0])
		vsnprintf(x->msg, sizeof x->msg, fmt, ap);
	return 1;
}

static int tiff_warning_cb(TIFF *t, void *ud, const char *module, const char *fmt, va_list ap)
{
	(void)t;
	(void)ud;
	(void)module;
	(void)fmt;
	(void)ap;
	return 1;
}
#endif

static int tiff_read_file(const char *path, struct imghdr *hd, const struct imgdst *dst,
			  struct err *e)
{
	struct tifctx x = {{0}};
	TIFF *tif;
#if TIFFLIB_VERSION >= 20221213
	TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
	if (!opts)
		return err_set(e, ERR_NOMEM, "%s: out of memory starting the tiff decoder", path);
	TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_error_cb, &x);
	TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warning_cb, &x);
	TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)1 << 28);
	tif = TIFFOpenExt(path, "rm", opts);
	TIFFOpenOptionsFree(opts);
#else
	tif = TIFFOpen(path, "rm");
#endif
	if (!tif)
		return err_set(e, ERR_FORMAT, "%s: bad tiff: %s", path,
			       x.msg[0] ? x.msg : "cannot open");
	uint32_t w = 0, h = 0;
	uint16_t spp = 1, photo = 0;
	int rc = 0;
	uint32_t *raster = NULL;
	char emsg[1024] = "";
	if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) ||
	    !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h)) {
		rc = err_set(e, ERR_FORMAT, "%s: bad tiff: no image width or length tag", path);
		goto out;
	}
	TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
	if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
		photo = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
	hd->w = w;
	hd->h = h;
	hd->color = photo != PHOTOMETRIC_MINISBLACK && photo != PHOTOMETRIC_MINISWHITE;
	if ((rc = check_dims(path, hd, e)) != 0)
		goto out;
	if (!TIFFRGBAImageOK(tif, emsg)) {
		rc = err_set(e, ERR_UNSUPPORTED, "%s: tiff not supported: %s", path, emsg);
		goto out;
	}
	if (!dst->out)
		goto out;
	if ((rc = check_dst(path, hd, dst, e)) != 0)
		goto out;
	raster = malloc((size_t)w * h * sizeof *raster);
	if (!raster) {
		rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	if (!TIFFReadRGBAImageOriented(tif, w, h, raster, ORIENTATION_TOPLEFT, 1)) {
		rc = err_set(e, ERR_FORMAT, "%s: bad tiff: %s", path,
			     x.msg[0] ? x.msg : "cannot decode the image");
		goto out;
	}
	size_t np = (size_t)w * h;
	if (dst->oc == 3)
		for (size_t i = 0; i < np; i++) {
			dst->out[3 * i + 0] = (uint8_t)TIFFGetR(raster[i]);
			dst->out[3 * i + 1] = (uint8_t)TIFFGetG(raster[i]);
			dst->out[3 * i + 2] = (uint8_t)TIFFGetB(raster[i]);
		}
	else
		for (size_t i = 0; i < np; i++)
			dst->out[i] = (uint8_t)TIFFGetR(raster[i]);
out:
	free(raster);
	TIFFClose(tif);
	return rc;
}

/* Reads an image file's header into hd, and if dst->out, its pixels. */
static int image_read(const char *path, struct imghdr *hd, const struct imgdst *dst,
		      struct err *e)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	unsigned char m[8] = {0};
	size_t got = fread(m, 1, sizeof m, fp);
	int rc;
	if (got == 8 && !memcmp(m, "\x89PNG\r\n\x1a\n", 8)) {
		rewind(fp);
		struct pngctx x;
		memset(&x, 0, sizeof x);
		rc = png_read_file(&x, path, fp, hd, dst, e);
	} else if (got >= 3 && m[0] == 0xff && m[1] == 0xd8 && m[2] == 0xff) {
		rewind(fp);
		struct jpgctx *x = calloc(1, sizeof *x);
		if (!x)
			rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
		else
			rc = jpeg_read_file(x, path, fp, hd, dst, e);
		free(x);
	} else if (got >= 4 && ((m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) &&
				 m[3] == 0) ||
				(m[0] == 'M' && m[1] == 'M' && m[2] == 0 &&
				 (m[3] == 42 || m[3] == 43)))) {
		rc = tiff_read_file(path, hd, dst, e);
	} else if (got < 8 && ferror(fp)) {
		rc = err_sys(e, ERR_IO, "%s: read error", path);
	} else if (got == 0) {
		rc = err_set(e, ERR_FORMAT, "%s: empty file, expected a png, jpeg or tiff image", path);
	} else {
		char hex[3 * 4 + 1] = "";
		for (size_t i = 0; i < got && i < 4; i++)
			snprintf(hex + 3 * i, sizeof hex - 3 * i, " %02x", m[i]);
		rc = err_set(e, ERR_FORMAT,
			     "%s: byte 0: not a png, jpeg or tiff image (it starts%s)", path, hex);
	}
	fclose(fp);
	return rc;
}

int imgset_get(const struct imgset *s, uint32_t i, uint8_t *out, struct err *e)
{
	if (!s || !out)
		return err_set(e, ERR_USAGE, "imgset_get: no set or no output buffer");
	if (i >= s->n)
		return err_set(e, ERR_USAGE, "imgset_get: image %u out of range, the set has %u",
			       i, s->n);
	size_t sz = (size_t)s->h * s->w * s->c;
	if (s->pix) {
		memcpy(out, s->pix + (size_t)i * sz, sz);
		return 0;
	}
	if (!s->paths)
		return err_set(e, ERR_USAGE, "imgset_get: the set has no pixels and no paths");
	struct imghdr hd = {0};
	struct imgdst dst = {out, s->h, s->w, s->c};
	return image_read(s->paths[i], &hd, &dst, e);
}

/* ---- class folders ---- */

struct strv {
	char **v;
	size_t n, cap;
};

static void strv_free(struct strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof *sv);
}

static int strv_push(struct strv *sv, const char *str, struct err *e)
{
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? 2 * sv->cap : 64;
		char **v = realloc(sv->v, cap * sizeof *v);
		if (!v)
			return err_set(e, ERR_NOMEM, "out of memory listing files");
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n] = strdup(str);
	if (!sv->v[sv->n])
		return err_set(e, ERR_NOMEM, "out of memory listing files");
	sv->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_image_ext(const char *name)
{
	static const char *const ext[] = {".png", ".jpg", ".jpeg", ".tif", ".tiff"};
	const char *dot = strrchr(name, '.');
	if (!dot || dot == name)
		return 0;
	for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
		if (!strcasecmp(dot, ext[i]))
			return 1;
	return 0;
}

/* Lists dir's entries, sorted: subdirectories (want_dirs) or image files. */
static int list_dir(const char *dir, int want_dirs, struct strv *out, struct err *e)
{
	DIR *d = opendir(dir);
	if (!d)
		return err_sys(e, ERR_IO, "cannot open directory '%s'", dir);
	int rc = 0;
	struct dirent *de;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = err_sys(e, ERR_IO, "cannot read directory '%s'", dir);
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		if (!want_dirs && !has_image_ext(de->d_name))
			continue;
		char *p = xasprintf(e, "%s/%s", dir, de->d_name);
		if (!p) {
			rc = ERR_NOMEM;
			break;
		}
		struct stat st;
		int ok = stat(p, &st) == 0;
		free(p);
		if (!ok || (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)))
			continue;
		if ((rc = strv_push(out, de->d_name, e)) != 0)
			break;
	}
	closedir(d);
	if (rc)
		strv_free(out);
	else if (out->n)
		qsort(out->v, out->n, sizeof *out->v, cmp_str);
	return rc;
}

/* what a class-folder scan gathers */
struct scan {
	struct strv paths;        /* every image, class by class */
	uint8_t *lab;             /* its class */
	size_t lab_cap;
	char *first;              /* the first image, which sets the size */
	int any_color;
};

/* one image: its size against the first image's, its path and class */
static int scan_image(struct imgset *s, struct scan *sc, const char *dir, char *p, uint8_t k, struct err *e)
{
	struct imghdr hd = {0};
	struct imgdst nodst = {0};
	int rc = image_read(p, &hd, &nodst, e);
	if (!rc && !sc->first) {
		s->h = hd.h;
		s->w = hd.w;
		if (!(sc->first = strdup(p)))
			rc = err_set(e, ERR_NOMEM, "out of memory");
	} else if (!rc && (hd.h != s->h || hd.w != s->w)) {
		rc = err_set(e, ERR_FORMAT,
			     "%s: image is %ux%u (width x height), expected %ux%u like the first image %s",
			     p, hd.w, hd.h, s->w, s->h, sc->first);
	}
	sc->any_color |= hd.color;
	if (!rc && sc->paths.n >= UINT32_MAX)
		rc = err_set(e, ERR_LIMIT, "%s: more than %u images", dir, UINT32_MAX - 1);
	if (!rc)
		rc = strv_push(&sc->paths, p, e);
	if (!rc && sc->paths.n > sc->lab_cap) {
		size_t cap = sc->lab_cap ? 2 * sc->lab_cap : 256;
		uint8_t *nl = realloc(sc->lab, cap);
		if (!nl)
			return err_set(e, ERR_NOMEM, "out of memory");
		sc->lab = nl;
		sc->lab_cap = cap;
	}
	if (!rc)
		sc->lab[sc->paths.n - 1] = k;
	return rc;
}

/* every image of class folder dir/name, class k */
static int scan_class(struct imgset *s, struct scan *sc, const char *dir, const char *name, uint8_t k,
                      struct err *e)
{
	char *cdir = xasprintf(e, "%s/%s", dir, name);
	if (!cdir)
		return ERR_NOMEM;
	struct strv files = {0};
	int rc = list_dir(cdir, 0, &files, e);
	for (size_t j = 0; !rc && j < files.n; j++) {
		char *p = xasprintf(e, "%s/%s", cdir, files.v[j]);
		rc = p ? scan_image(s, sc, dir, p, k, e) : ERR_NOMEM;
		free(p);
	}
	strv_free(&files);
	free(cdir);
	return rc;
}

int imgset_load_folder(struct imgset *s, const char *dir_arg, struct err *e)
{
	memset(s, 0, sizeof *s);
	/* without trailing slashes, so that paths read dir/class/file */
	size_t dlen = strlen(dir_arg);
	while (dlen > 1 && dir_arg[dlen - 1] == '/')
		dlen--;
	char *dir = err_malloc(e, dlen + 1);
	if (!dir)
		return ERR_NOMEM;
	memcpy(dir, dir_arg, dlen);
	dir[dlen] = 0;
	struct strv classes = {0};
	struct scan sc = {0};
	int rc = list_dir(dir, 1, &classes, e);
	if (!rc && classes.n == 0)
		rc = err_set(e, ERR_FORMAT,
			     "%s: no class folders, expected %s/<class>/<image> with png, jpeg or tiff images",
			     dir, dir);
	if (!rc && classes.n > IMGSET_MAX_CLASSES)
		rc = err_set(e, ERR_LIMIT, "%s: %zu class folders, more than the limit of %u", dir,
			     classes.n, IMGSET_MAX_CLASSES);
	for (size_t k = 0; !rc && k < classes.n; k++)
		rc = scan_class(s, &sc, dir, classes.v[k], (uint8_t)k, e);
	if (!rc && sc.paths.n == 0)
		rc = err_set(e, ERR_FORMAT,
			     "%s: no images (.png, .jpg, .jpeg, .tif, .tiff) in %zu class folders",
			     dir, classes.n);
	if (!rc && !(s->source = xasprintf(e, "folder %s", dir)))
		rc = ERR_NOMEM;
	free(dir);
	free(sc.first);
	if (rc) {
		free(sc.lab);
		strv_free(&classes);
		strv_free(&sc.paths);
		free(s->source);
		memset(s, 0, sizeof *s);
		return rc;
	}
	s->n = (uint32_t)sc.paths.n;
	s->c = sc.any_color ? 3 : 1;
	s->label = sc.lab;
	s->paths = sc.paths.v; /* the set owns the n strings */
	s->n_classes = (uint32_t)classes.n;
	s->class_names = classes.v; /* and the class names */
	return 0;
}

/* ---- PNG writer ---- */
