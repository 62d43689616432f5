/* test_imgset.c - the labelled image set readers: IDX (plain and gzipped),
 * CIFAR-10 binary batches, class folders of PNG/JPEG/TIFF, their errors,
 * and the PNG writer (checked by the folder reader). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <tiffio.h>
#include <zlib.h>

#include "check.h"
#include "../../lib/base/img.h"
#include "../../lib/mil/imgset.h"

/* ---- scratch files ---- */

static const char *tmp_path(const char *name)
{
	static char buf[8][1024];
	static int k;
	char *p = buf[k++ % 8];
	if (snprintf(p, sizeof buf[0], "%s/%s", check_tmpdir(), name) >= (int)sizeof buf[0])
		abort();
	return p;
}

static int write_bytes(const char *path, const void *buf, size_t n)
{
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return -1;
	size_t w = fwrite(buf, 1, n, fp);
	return fclose(fp) == 0 && w == n ? 0 : -1;
}

static int write_gz(const char *path, const void *buf, size_t n)
{
	gzFile gz = gzopen(path, "wb9");
	if (!gz)
		return -1;
	int w = n ? gzwrite(gz, buf, (unsigned)n) : 0;
	return gzclose(gz) == Z_OK && (size_t)w == n ? 0 : -1;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* An idx3 file of n images rows x cols with pixel (k,y,x) = k*31 + y*7 + x;
 * the caller frees; *len gets the length. */
static uint8_t *make_idx3(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t *len)
{
	size_t sz = 16 + (size_t)n * rows * cols;
	uint8_t *b = malloc(sz);
	put_be32(b, magic);
	put_be32(b + 4, n);
	put_be32(b + 8, rows);
	put_be32(b + 12, cols);
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t y = 0; y < rows; y++)
			for (uint32_t x = 0; x < cols; x++)
				b[16 + ((size_t)k * rows + y) * cols + x] = (uint8_t)(k * 31 + y * 7 + x);
	*len = sz;
	return b;
}

/* An idx1 file of n labels (k*3) % 10. */
static uint8_t *make_idx1(uint32_t magic, uint32_t n, size_t *len)
{
	uint8_t *b = malloc(8 + (size_t)n);
	put_be32(b, magic);
	put_be32(b + 4, n);
	for (uint32_t k = 0; k < n; k++)
		b[8 + k] = (uint8_t)(k * 3 % 10);
	*len = 8 + (size_t)n;
	return b;
}

static int has(const char *msg, const char *needle)
{
	return strstr(msg, needle) != NULL;
}

/* ---- IDX ---- */

static void check_idx_set(const struct imgset *s, uint32_t n, uint32_t rows, uint32_t cols)
{
	CHECK(s->n == n && s->h == rows && s->w == cols && s->c == 1, "shape %u %ux%ux%u", s->n,
	      s->h, s->w, s->c);
	CHECK(s->n_classes == 10, "n_classes %u", s->n_classes);
	CHECK(s->paths == NULL && s->pix != NULL, "in-memory set");
	CHECK(s->source && has(s->source, "idx"), "source %s", s->source ? s->source : "(null)");
	if (s->n_classes == 10)
		CHECK(!strcmp(s->class_names[0], "0") && !strcmp(s->class_names[9], "9"),
		      "class names %s..%s", s->class_names[0], s->class_names[9]);
	uint8_t *out = malloc((size_t)rows * cols);
	int bad = 0;
	for (uint32_t k = 0; k < n && k < s->n; k++) {
		CHECK(s->label[k] == k * 3 % 10, "label %u is %u", k, s->label[k]);
		struct err e = {0};
		CHECK(imgset_get(s, k, out, &e) == 0, "get %u: %s", k, e.msg);
		for (uint32_t y = 0; y < rows; y++)
			for (uint32_t x = 0; x < cols; x++)
				bad += out[y * cols + x] != (uint8_t)(k * 31 + y * 7 + x);
	}
	CHECK(bad == 0, "%d pixels differ", bad);
	free(out);
}

static void test_idx_plain_roundtrip(void)
{
	size_t li, ll;
	uint8_t *im = make_idx3(0x803, 7, 3, 5, &li), *lb = make_idx1(0x801, 7, &ll);
	const char *pi = tmp_path("plain-img"), *pl = tmp_path("plain-lbl");
	REQUIRE(write_bytes(pi, im, li) == 0 && write_bytes(pl, lb, ll) == 0, "write");
	struct imgset s;
	struct err e = {0};
	REQUIRE(imgset_load_idx(&s, pi, pl, &e) == 0, "load: %s", e.msg);
	check_idx_set(&s, 7, 3, 5);
	CHECK(imgset_class_index(&s, "7") == 7, "class 7");
	CHECK(imgset_class_index(&s, "10") == -1 && imgset_class_index(&s, "x") == -1 &&
		      imgset_class_index(&s, "") == -1 && imgset_class_index(&s, "-1") == -1,
	      "bad class names");
	uint8_t out[15];
	err_clear(&e);
	CHECK(imgset_get(&s, 7, out, &e) == ERR_USAGE && has(e.msg, "out of range"), "%s", e.msg);
	imgset_free(&s);
	CHECK(s.n == 0 && s.pix == NULL && s.label == NULL, "free zeroes");
	imgset_free(&s);
	free(im);
	free(lb);
}

static void test_idx_gzip_roundtrip(void)
{
	size_t li, ll;
	uint8_t *im = make_idx3(0x803, 12, 4, 4, &li), *lb = make_idx1(0x801, 12, &ll);
	const char *pi = tmp_path("gz-img.gz"), *pl = tmp_path("gz-lbl.gz");
	const char *plp = tmp_path("gz-lbl-plain");
	REQUIRE(write_gz(pi, im, li) == 0 && write_gz(pl, lb, ll) == 0 &&
			write_bytes(plp, lb, ll) == 0,
		"write");
	struct imgset s;
	struct err e = {0};
	REQUIRE(imgset_load_idx(&s, pi, pl, &e) == 0, "load: %s", e.msg);
	check_idx_set(&s, 12, 4, 4);
	imgset_free(&s);
	/* gzipped images with plain labels */
	REQUIRE(imgset_load_idx(&s, pi, plp, &e) == 0, "load mixed: %s", e.msg);
	check_idx_set(&s, 12, 4, 4);
	imgset_free(&s);
	free(im);
	free(lb);
}

static void test_idx_many_classes(void)
{
	size_t li, ll;
	uint8_t *im = make_idx3(0x803, 3, 2, 2, &li), *lb = make_idx1(0x801, 3, &ll);
	lb[8 + 1] = 12;
	const char *pi = tmp_path("mc-img"), *pl = tmp_path("mc-lbl");
	REQUIRE(write_bytes(pi, im, li) == 0 && write_bytes(pl, lb, ll) == 0, "write");
	struct imgset s;
	struct err e = {0};
	REQUIRE(imgset_load_idx(&s, pi, pl, &e) == 0, "load: %s", e.msg);
	CHECK(s.n_classes == 13 && !strcmp(s.class_names[12], "12"), "n_classes %u", s.n_classes);
	CHECK(imgset_class_index(&s, "12") == 12, "class 12");
	imgset_free(&s);
	free(im);
	free(lb);
}

static void test_idx_bad_magic(void)
{
	size_t li, ll;
	uint8_t *im = make_idx3(0x804, 2, 2, 2, &li), *lb = make_idx1(0x801, 2, &ll);
	const char *pi = tmp_path("t10k-images-idx3-ubyte.gz"), *pl = tmp_path("bm-lbl");
	REQUIRE(write_gz(pi, im, li) == 0 && write_bytes(pl, lb, ll) == 0, "write");
	struct imgset s;
	struct err e = {0};
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pi) && has(e.msg, "byte 0: magic 0x00000804, expected 0x00000803"),
	      "msg: %s", e.msg);
	CHECK(s.n == 0 && s.pix == NULL, "set zeroed on failure");
	/* arguments swapped: a hint */
	err_clear(&e);
	put_be32(im, 0x803);
	REQUIRE(write_bytes(pi, im, li) == 0, "write");
	CHECK(imgset_load_idx(&s, pl, pi, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pl) && has(e.msg, "hint:") && has(e.msg, "swapped"), "msg: %s", e.msg);
	/* bad labels magic */
	err_clear(&e);
	put_be32(lb, 0x803);
	REQUIRE(write_bytes(pl, lb, ll) == 0, "write");
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pl) && has(e.msg, "expected 0x00000801"), "msg: %s", e.msg);
	free(im);
	free(lb);
}

static void test_idx_truncated(void)
{
	size_t li, ll;
	uint8_t *im = make_idx3(0x803, 10, 8, 8, &li), *lb = make_idx1(0x801, 10, &ll);
	const char *pi = tmp_path("tr-img"), *pl = tmp_path("tr-lbl"), *pg = tmp_path("tr-img.gz");
	REQUIRE(write_bytes(pi, im, li - 100) == 0 && write_bytes(pl, lb, ll) == 0, "write");
	struct imgset s;
	struct err e = {0};
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pi) && has(e.msg, "truncated") && has(e.msg, "10 images of 8x8"),
	      "msg: %s", e.msg);
	/* gzip stream of a short file: caught while reading */
	err_clear(&e);
	REQUIRE(write_gz(pg, im, li - 100) == 0, "write");
	CHECK(imgset_load_idx(&s, pg, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pg) && has(e.msg, "truncated"), "msg: %s", e.msg);
	/* a gzip file cut in the middle of its compressed stream */
	err_clear(&e);
	REQUIRE(write_gz(pg, im, li) == 0, "write");
	struct stat st;
	REQUIRE(stat(pg, &st) == 0 && truncate(pg, st.st_size / 2) == 0, "truncate");
	CHECK(imgset_load_idx(&s, pg, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pg), "msg: %s", e.msg);
	/* a header cut short */
	err_clear(&e);
	REQUIRE(write_bytes(pi, im, 10) == 0, "write");
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pi) && has(e.msg, "header"), "msg: %s", e.msg);
	/* extra bytes after the declared data */
	err_clear(&e);
	REQUIRE(write_bytes(pi, im, li) == 0, "write");
	uint8_t *lb2 = malloc(ll + 3);
	memcpy(lb2, lb, ll);
	memset(lb2 + ll, 0, 3);
	REQUIRE(write_bytes(pl, lb2, ll + 3) == 0, "write");
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pl) && has(e.msg, "3 extra bytes"), "msg: %s", e.msg);
	free(lb2);
	free(im);
	free(lb);
}

static void test_idx_counts_disagree(void)
{
	size_t li, ll;
	uint8_t *im = make_idx3(0x803, 5, 2, 3, &li), *lb = make_idx1(0x801, 4, &ll);
	const char *pi = tmp_path("cd-img"), *pl = tmp_path("cd-lbl");
	REQUIRE(write_bytes(pi, im, li) == 0 && write_bytes(pl, lb, ll) == 0, "write");
	struct imgset s;
	struct err e = {0};
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pl) && has(e.msg, "4 labels") && has(e.msg, "5 images"), "msg: %s",
	      e.msg);
	free(im);
	free(lb);
}

static void test_idx_bad_dims(void)
{
	struct imgset s;
	struct err e = {0};
	uint8_t hdr[16];
	size_t ll;
	uint8_t *lb = make_idx1(0x801, 3, &ll);
	const char *pi = tmp_path("dim-img"), *pl = tmp_path("dim-lbl");
	REQUIRE(write_bytes(pl, lb, ll) == 0, "write");
	put_be32(hdr, 0x803);
	put_be32(hdr + 4, 3);
	put_be32(hdr + 8, 5000);
	put_be32(hdr + 12, 2);
	REQUIRE(write_bytes(pi, hdr, 16) == 0, "write");
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_LIMIT, "code %d", e.code);
	CHECK(has(e.msg, pi) && has(e.msg, "byte 8: rows 5000"), "msg: %s", e.msg);
	err_clear(&e);
	put_be32(hdr + 8, 2);
	put_be32(hdr + 12, 0);
	REQUIRE(write_bytes(pi, hdr, 16) == 0, "write");
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pi) && has(e.msg, "byte 12: cols 0"), "msg: %s", e.msg);
	/* a huge declared count in a tiny file: refused before allocating */
	err_clear(&e);
	put_be32(hdr + 4, 0xffffffffu);
	put_be32(hdr + 12, 4096);
	put_be32(hdr + 8, 4096);
	uint8_t lh[8];
	put_be32(lh, 0x801);
	put_be32(lh + 4, 0xffffffffu);
	REQUIRE(write_bytes(pi, hdr, 16) == 0 && write_bytes(pl, lh, 8) == 0, "write");
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pi) && has(e.msg, "truncated"), "msg: %s", e.msg);
	/* zero images */
	err_clear(&e);
	put_be32(hdr + 4, 0);
	put_be32(lh + 4, 0);
	REQUIRE(write_bytes(pi, hdr, 16) == 0 && write_bytes(pl, lh, 8) == 0, "write");
	CHECK(imgset_load_idx(&s, pi, pl, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, pi) && has(e.msg, "0 images"), "msg: %s", e.msg);
	free(lb);
}

static void test_idx_missing_file(void)
{
	struct imgset s;
	struct err e = {0};
	const char *pi = tmp_path("no-such-images");
	CHECK(imgset_load_idx(&s, pi, pi, &e) == ERR_IO, "code %d", e.code);
	CHECK(has(e.msg, pi) && has(e.msg, "cannot open"), "msg: %s", e.msg);
}

/* ---- CIFAR-10 ---- */

static uint8_t cifar_val(uint32_t k, int ch, int p)
{
	return (uint8_t)(k * 13 + (uint32_t)ch * 101 + (uint32_t)p * 7 + (uint32_t)(p >> 5));
}

/* n records starting at global index k0; label of record k is k % 10. */
static uint8_t *make_cifar(uint32_t k0, uint32_t n, size_t *len)
{
	uint8_t *b = malloc((size_t)n * 3073);
	for (uint32_t r = 0; r < n; r++) {
		uint8_t *rec = b + (size_t)r * 3073;
		rec[0] = (uint8_t)((k0 + r) % 10);
		for (int ch = 0; ch < 3; ch++)
			for (int p = 0; p < 1024; p++)
				rec[1 + ch * 1024 + p] = cifar_val(k0 + r, ch, p);
	}
	*len = (size_t)n * 3073;
	return b;
}

static void test_cifar_planar_to_hwc(void)
{
	size_t l1, l2;
	uint8_t *b1 = make_cifar(0, 3, &l1), *b2 = make_cifar(3, 8, &l2);
	const char *p1 = tmp_path("data_batch_1.bin"), *p2 = tmp_path("data_batch_2.bin");
	REQUIRE(write_bytes(p1, b1, l1) == 0 && write_bytes(p2, b2, l2) == 0, "write");
	const char *paths[] = {p1, p2};
	struct imgset s;
	struct err e = {0};
	REQUIRE(imgset_load_cifar(&s, paths, 2, &e) == 0, "load: %s", e.msg);
	CHECK(s.n == 11 && s.h == 32 && s.w == 32 && s.c == 3 && s.n_classes == 10,
	      "shape %u %ux%ux%u classes %u", s.n, s.h, s.w, s.c, s.n_classes);
	CHECK(s.source && has(s.source, "data_batch_1.bin") && has(s.source, "data_batch_2.bin"),
	      "source %s", s.source);
	uint8_t out[3072];
	int bad = 0;
	for (uint32_t k = 0; k < s.n; k++) {
		CHECK(s.label[k] == k % 10, "label %u is %u", k, s.label[k]);
		REQUIRE(imgset_get(&s, k, out, &e) == 0, "get: %s", e.msg);
		for (int y = 0; y < 32; y++)
			for (int x = 0; x < 32; x++)
				for (int ch = 0; ch < 3; ch++)
					bad += out[(y * 32 + x) * 3 + ch] != cifar_val(k, ch, y * 32 + x);
	}
	CHECK(bad == 0, "%d pixel values differ", bad);
	/* the exact first pixel and one further in, by hand */
	CHECK(s.pix[0] == cifar_val(0, 0, 0) && s.pix[1] == cifar_val(0, 1, 0) &&
		      s.pix[2] == cifar_val(0, 2, 0),
	      "first pixel");
	CHECK(s.pix[3072 + (33 * 3) + 2] == b1[3073 + 1 + 2048 + 33], "record 1, pixel 33, blue");
	CHECK(imgset_class_index(&s, "3") == 3, "class 3");
	imgset_free(&s);
	free(b1);
	free(b2);
}

static void test_cifar_bad_length(void)
{
	size_t l;
	uint8_t *b = make_cifar(0, 2, &l);
	const char *p = tmp_path("short_batch.bin");
	REQUIRE(write_bytes(p, b, l - 5) == 0, "write");
	const char *paths[] = {p};
	struct imgset s;
	struct err e = {0};
	CHECK(imgset_load_cifar(&s, paths, 1, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, p) && has(e.msg, "3073") && has(e.msg, "6141"), "msg: %s", e.msg);
	err_clear(&e);
	REQUIRE(write_bytes(p, b, 0) == 0, "write");
	CHECK(imgset_load_cifar(&s, paths, 1, &e) == ERR_FORMAT && has(e.msg, p), "msg: %s", e.msg);
	err_clear(&e);
	const char *missing[] = {tmp_path("no_batch.bin")};
	CHECK(imgset_load_cifar(&s, missing, 1, &e) == ERR_IO && has(e.msg, missing[0]), "msg: %s",
	      e.msg);
	err_clear(&e);
	CHECK(imgset_load_cifar(&s, paths, 0, &e) == ERR_USAGE, "no paths");
	free(b);
}

static void test_cifar_bad_label(void)
{
	size_t l;
	uint8_t *b = make_cifar(0, 3, &l);
	b[3073] = 10;
	const char *p = tmp_path("bad_label.bin");
	REQUIRE(write_bytes(p, b, l) == 0, "write");
	const char *paths[] = {p};
	struct imgset s;
	struct err e = {0};
	CHECK(imgset_load_cifar(&s, paths, 1, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, p) && has(e.msg, "byte 3073: label 10 in record 1") &&
		      has(e.msg, "expected 0..9"),
	      "msg: %s", e.msg);
	CHECK(s.n == 0 && s.pix == NULL && s.label == NULL, "set zeroed on failure");
	free(b);
}

/* ---- class folders ---- */

#define FH 6
#define FW 5

/* A smooth test pattern, so that JPEG at quality 100 stays close. */
static void pattern(uint8_t *pix, int c, int seed)
{
	for (int y = 0; y < FH; y++)
		for (int x = 0; x < FW; x++)
			for (int ch = 0; ch < c; ch++)
				pix[(y * FW + x) * c + ch] =
					(uint8_t)(40 + seed * 20 + x * 12 + y * 9 + ch * 30);
}

static void write_jpeg(const char *path, const uint8_t *pix, int h, int w, int c)
{
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	FILE *fp = fopen(path, "wb");
	if (!fp)
		return;
	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_stdio_dest(&ci, fp);
	ci.image_width = (JDIMENSION)w;
	ci.image_height = (JDIMENSION)h;
	ci.input_components = c;
	ci.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
	jpeg_set_defaults(&ci);
	jpeg_set_quality(&ci, 100, TRUE);
	for (int i = 0; i < ci.num_components; i++)
		ci.comp_info[i].h_samp_factor = ci.comp_info[i].v_samp_factor = 1;
	jpeg_start_compress(&ci, TRUE);
	for (int y = 0; y < h; y++) {
		JSAMPROW row = (JSAMPROW)(pix + (size_t)y * w * c);
		jpeg_write_scanlines(&ci, &row, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	fclose(fp);
}

static void write_tiff(const char *path, const uint8_t *pix, int h, int w, int c)
{
	TIFF *t = TIFFOpen(path, "w");
	if (!t)
		return;
	TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)w);
	TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)h);
	TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)c);
	TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)8);
	TIFFSetField(t, TIFFTAG_PHOTOMETRIC, c == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
	TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
	TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
	TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, (uint32_t)2);
	for (int y = 0; y < h; y++)
		TIFFWriteScanline(t, (void *)(pix + (size_t)y * w * c), (uint32_t)y, 0);
	TIFFClose(t);
}

static const char *mkdirs(const char *rel)
{
	const char *p = tmp_path(rel);
	mkdir(p, 0777);
	return p;
}

static const char *file_in(const char *dir, const char *name)
{
	static char buf[4][1024];
	static int k;
	char *p = buf[k++ % 4];
	if (snprintf(p, sizeof buf[0], "%s/%s", dir, name) >= (int)sizeof buf[0])
		abort();
	return p;
}

/* Makes tree/ with classes ADI (PNG rgb, PNG grey), BACK (JPEG rgb, JPEG
 * grey), TUM (TIFF rgb, TIFF grey), plus things the reader must ignore. */
static const char *make_tree(const char *name)
{
	char rel[256];
	const char *root = mkdirs(name);
	static char rootcopy[1024];
	if (snprintf(rootcopy, sizeof rootcopy, "%s", root) >= (int)sizeof rootcopy)
		abort();
	uint8_t rgb[FH * FW * 3], grey[FH * FW];
	struct err e = {0};
	snprintf(rel, sizeof rel, "%s/TUM", name);
	const char *tum = mkdirs(rel);
	pattern(rgb, 3, 4);
	write_tiff(file_in(tum, "t1.tif"), rgb, FH, FW, 3);
	pattern(grey, 1, 5);
	write_tiff(file_in(tum, "t2.TIFF"), grey, FH, FW, 1);
	snprintf(rel, sizeof rel, "%s/ADI", name);
	const char *adi = mkdirs(rel);
	pattern(rgb, 3, 0);
	img_write_png(file_in(adi, "b.png"), rgb, FH, FW, 3, &e);
	pattern(grey, 1, 1);
	img_write_png(file_in(adi, "A.PNG"), grey, FH, FW, 1, &e);
	write_bytes(file_in(adi, "notes.txt"), "not an image", 12);
	write_bytes(file_in(adi, ".hidden.png"), "not an image", 12);
	snprintf(rel, sizeof rel, "%s/BACK", name);
	const char *back = mkdirs(rel);
	pattern(rgb, 3, 2);
	write_jpeg(file_in(back, "x.jpg"), rgb, FH, FW, 3);
	pattern(grey, 1, 3);
	write_jpeg(file_in(back, "y.JPEG"), grey, FH, FW, 1);
	snprintf(rel, sizeof rel, "%s/.git", name);
	mkdirs(rel);
	write_bytes(file_in(rootcopy, "README.txt"), "x", 1);
	return rootcopy;
}

static void test_folder_tree(void)
{
	const char *root = make_tree("tree");
	struct imgset s;
	struct err e = {0};
	REQUIRE(imgset_load_folder(&s, root, &e) == 0, "load: %s", e.msg);
	CHECK(s.n == 6 && s.h == FH && s.w == FW && s.c == 3, "shape %u %ux%ux%u", s.n, s.h, s.w,
	      s.c);
	REQUIRE(s.n_classes == 3, "n_classes %u", s.n_classes);
	CHECK(!strcmp(s.class_names[0], "ADI") && !strcmp(s.class_names[1], "BACK") &&
		      !strcmp(s.class_names[2], "TUM"),
	      "classes %s %s %s", s.class_names[0], s.class_names[1], s.class_names[2]);
	CHECK(s.pix == NULL && s.paths != NULL, "folder sets read on demand");
	CHECK(s.source && has(s.source, root), "source %s", s.source);
	static const char *const names[] = {"ADI/A.PNG", "ADI/b.png", "BACK/x.jpg",
					    "BACK/y.JPEG", "TUM/t1.tif", "TUM/t2.TIFF"};
	static const int labels[] = {0, 0, 1, 1, 2, 2};
	static const int seeds[] = {1, 0, 2, 3, 4, 5};
	static const int chans[] = {1, 3, 3, 1, 3, 1};
	static const int lossy[] = {0, 0, 1, 1, 0, 0};
	uint8_t out[FH * FW * 3], want[FH * FW * 3];
	for (uint32_t i = 0; i < s.n && i < 6; i++) {
		CHECK(has(s.paths[i], names[i]), "path %u is %s, expected %s", i, s.paths[i],
		      names[i]);
		CHECK(s.label[i] == labels[i], "label %u is %u", i, s.label[i]);
		REQUIRE(imgset_get(&s, i, out, &e) == 0, "get %u: %s", i, e.msg);
		uint8_t src[FH * FW * 3];
		pattern(src, chans[i], seeds[i]);
		for (int p = 0; p < FH * FW; p++)
			for (int ch = 0; ch < 3; ch++)
				want[p * 3 + ch] = chans[i] == 3 ? src[p * 3 + ch] : src[p];
		int maxd = 0;
		for (int k = 0; k < FH * FW * 3; k++) {
			int d = abs((int)out[k] - (int)want[k]);
			if (d > maxd)
				maxd = d;
		}
		CHECK(maxd <= (lossy[i] ? 6 : 0), "%s: max difference %d", names[i], maxd);
	}
	CHECK(imgset_class_index(&s, "TUM") == 2 && imgset_class_index(&s, "1") == 1 &&
		      imgset_class_index(&s, "tum") == -1 && imgset_class_index(&s, "3") == -1,
	      "class index");
	imgset_free(&s);
	/* a trailing slash does not double in the paths */
	char slash[1100];
	snprintf(slash, sizeof slash, "%s//", root);
	REQUIRE(imgset_load_folder(&s, slash, &e) == 0, "load: %s", e.msg);
	CHECK(s.n == 6 && !strstr(s.paths[0], "//") && has(s.paths[0], root), "path %s",
	      s.paths[0]);
	imgset_free(&s);
}

static void test_folder_parallel_get(void)
{
	const char *root = make_tree("ptree");
	struct imgset s;
	struct err e = {0};
	REQUIRE(imgset_load_folder(&s, root, &e) == 0, "load: %s", e.msg);
	size_t sz = (size_t)s.h * s.w * s.c;
	uint8_t *serial = malloc(sz * s.n), *par = malloc(sz * s.n * 8);
	for (uint32_t i = 0; i < s.n; i++)
		REQUIRE(imgset_get(&s, i, serial + i * sz, &e) == 0, "get: %s", e.msg);
	int fails = 0;
#pragma omp parallel for reduction(+ : fails)
	for (int k = 0; k < (int)s.n * 8; k++) {
		struct err le = {0};
		fails += imgset_get(&s, (uint32_t)k % s.n, par + (size_t)k * sz, &le) != 0;
	}
	CHECK(fails == 0, "%d parallel decodes failed", fails);
	int diff = 0;
	for (uint32_t k = 0; k < s.n * 8; k++)
		diff += memcmp(par + k * sz, serial + (k % s.n) * sz, sz) != 0;
	CHECK(diff == 0, "%d parallel decodes differ", diff);
	free(serial);
	free(par);
	imgset_free(&s);
}

static void test_folder_grey(void)
{
	const char *root = mkdirs("greytree");
	char rel[64];
	snprintf(rel, sizeof rel, "greytree/%s", "3");
	const char *c3 = mkdirs(rel);
	snprintf(rel, sizeof rel, "greytree/%s", "7");
	const char *c7 = mkdirs(rel);
	snprintf(rel, sizeof rel, "greytree/%s", "empty");
	mkdirs(rel);
	uint8_t g[FH * FW], out[FH * FW];
	struct err e = {0};
	pattern(g, 1, 0);
	REQUIRE(img_write_png(file_in(c3, "a.png"), g, FH, FW, 1, &e) == 0, "%s", e.msg);
	write_tiff(file_in(c7, "b.tiff"), g, FH, FW, 1);
	struct imgset s;
	REQUIRE(imgset_load_folder(&s, root, &e) == 0, "load: %s", e.msg);
	CHECK(s.n == 2 && s.c == 1 && s.n_classes == 3, "n %u c %u classes %u", s.n, s.c,
	      s.n_classes);
	CHECK(imgset_class_index(&s, "7") == 1 && imgset_class_index(&s, "empty") == 2,
	      "names before numbers");
	for (uint32_t i = 0; i < s.n; i++) {
		REQUIRE(imgset_get(&s, i, out, &e) == 0, "get: %s", e.msg);
		CHECK(!memcmp(out, g, sizeof g), "image %u differs", i);
	}
	imgset_free(&s);
}

static void test_png_writer_channels(void)
{
	/* grey+alpha and RGBA: the reader drops alpha */
	const char *root = mkdirs("alphatree");
	const char *cls = mkdirs("alphatree/c");
	uint8_t ga[FH * FW * 2], rgba[FH * FW * 4], out[FH * FW * 3];
	for (int p = 0; p < FH * FW; p++) {
		ga[2 * p] = (uint8_t)(p * 5);
		ga[2 * p + 1] = (uint8_t)(255 - p);
		for (int ch = 0; ch < 4; ch++)
			rgba[4 * p + ch] = (uint8_t)(p * 3 + ch * 60);
	}
	struct err e = {0};
	REQUIRE(img_write_png(file_in(cls, "1ga.png"), ga, FH, FW, 2, &e) == 0, "%s", e.msg);
	REQUIRE(img_write_png(file_in(cls, "2rgba.png"), rgba, FH, FW, 4, &e) == 0, "%s", e.msg);
	CHECK(img_write_png(file_in(cls, "bad.png"), rgba, FH, FW, 5, &e) == ERR_USAGE,
	      "5 channels");
	err_clear(&e);
	CHECK(img_write_png(file_in(root, "nodir/x.png"), rgba, FH, FW, 3, &e) == ERR_IO &&
		      has(e.msg, "nodir"),
	      "msg: %s", e.msg);
	err_clear(&e);
	struct imgset s;
	REQUIRE(imgset_load_folder(&s, root, &e) == 0, "load: %s", e.msg);
	REQUIRE(s.n == 2 && s.c == 3, "n %u c %u", s.n, s.c);
	REQUIRE(imgset_get(&s, 0, out, &e) == 0, "get: %s", e.msg);
	int bad = 0;
	for (int p = 0; p < FH * FW; p++)
		for (int ch = 0; ch < 3; ch++)
			bad += out[3 * p + ch] != ga[2 * p];
	CHECK(bad == 0, "grey+alpha: %d values differ", bad);
	REQUIRE(imgset_get(&s, 1, out, &e) == 0, "get: %s", e.msg);
	bad = 0;
	for (int p = 0; p < FH * FW; p++)
		for (int ch = 0; ch < 3; ch++)
			bad += out[3 * p + ch] != rgba[4 * p + ch];
	CHECK(bad == 0, "rgba: %d values differ", bad);
	imgset_free(&s);
}

static void test_folder_wrong_size(void)
{
	const char *root = make_tree("sizetree");
	uint8_t big[(FH + 1) * FW * 3];
	memset(big, 90, sizeof big);
	struct err e = {0};
	const char *bad = file_in(root, "BACK/z.png");
	REQUIRE(img_write_png(bad, big, FH + 1, FW, 3, &e) == 0, "%s", e.msg);
	struct imgset s;
	CHECK(imgset_load_folder(&s, root, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, bad) && has(e.msg, "5x7") && has(e.msg, "expected 5x6") &&
		      has(e.msg, "A.PNG"),
	      "msg: %s", e.msg);
	CHECK(s.n == 0 && s.paths == NULL, "set zeroed on failure");
}

static void test_folder_not_image(void)
{
	const char *root = make_tree("fake");
	const char *bad = file_in(root, "TUM/fake.jpg");
	REQUIRE(write_bytes(bad, "hello world", 11) == 0, "write");
	struct imgset s;
	struct err e = {0};
	CHECK(imgset_load_folder(&s, root, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, bad) && has(e.msg, "not a png, jpeg or tiff") && has(e.msg, "68 65 6c 6c"),
	      "msg: %s", e.msg);
	/* an empty file */
	err_clear(&e);
	REQUIRE(write_bytes(bad, "", 0) == 0, "write");
	CHECK(imgset_load_folder(&s, root, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, bad) && has(e.msg, "empty"), "msg: %s", e.msg);
	/* a PNG signature followed by garbage */
	err_clear(&e);
	REQUIRE(write_bytes(bad, "\x89PNG\r\n\x1a\nxxxxxxxxxxxxxxxxxxxxxxxx", 32) == 0, "write");
	CHECK(imgset_load_folder(&s, root, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, bad) && has(e.msg, "bad png"), "msg: %s", e.msg);
	/* a JPEG start followed by garbage */
	err_clear(&e);
	REQUIRE(write_bytes(bad, "\xff\xd8\xff\xe0garbagegarbage", 18) == 0, "write");
	CHECK(imgset_load_folder(&s, root, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, bad) && has(e.msg, "bad jpeg"), "msg: %s", e.msg);
	/* a TIFF header pointing nowhere */
	err_clear(&e);
	REQUIRE(write_bytes(bad, "II*\0\xff\xff\0\0", 8) == 0, "write");
	CHECK(imgset_load_folder(&s, root, &e) == ERR_FORMAT, "code %d", e.code);
	CHECK(has(e.msg, bad) && has(e.msg, "bad tiff"), "msg: %s", e.msg);
}

static void test_folder_truncated_pixels(void)
{
	/* headers intact, pixel data cut: the load succeeds, imgset_get fails */
	const char *root = mkdirs("trunc");
	const char *cls = mkdirs("trunc/c");
	uint8_t rgb[64 * 64 * 3];
	for (size_t i = 0; i < sizeof rgb; i++)
		rgb[i] = (uint8_t)(i * 2654435761u >> 13);
	struct err e = {0};
	const char *png = file_in(cls, "a.png"), *jpg = file_in(cls, "b.jpg");
	REQUIRE(img_write_png(png, rgb, 64, 64, 3, &e) == 0, "%s", e.msg);
	write_jpeg(jpg, rgb, 64, 64, 3);
	struct stat st;
	REQUIRE(stat(png, &st) == 0 && truncate(png, st.st_size / 2) == 0, "truncate");
	REQUIRE(stat(jpg, &st) == 0 && truncate(jpg, st.st_size / 2) == 0, "truncate");
	struct imgset s;
	REQUIRE(imgset_load_folder(&s, root, &e) == 0, "load: %s", e.msg);
	uint8_t *out = malloc(sizeof rgb);
	CHECK(imgset_get(&s, 0, out, &e) == ERR_FORMAT && has(e.msg, png) && has(e.msg, "bad png"),
	      "msg: %s", e.msg);
	err_clear(&e);
	CHECK(imgset_get(&s, 1, out, &e) == ERR_FORMAT && has(e.msg, jpg) && has(e.msg, "bad jpeg"),
	      "msg: %s", e.msg);
	free(out);
	imgset_free(&s);
}

static void test_folder_missing_dir(void)
{
	struct imgset s;
	struct err e = {0};
	const char *p = tmp_path("no-such-dir");
	CHECK(imgset_load_folder(&s, p, &e) == ERR_IO, "code %d", e.code);
	CHECK(has(e.msg, p) && has(e.msg, "cannot open directory"), "msg: %s", e.msg);
	/* a directory without class folders, and one whose classes are empty */
	err_clear(&e);
	const char *flat = mkdirs("flat");
	CHECK(imgset_load_folder(&s, flat, &e) == ERR_FORMAT && has(e.msg, flat) &&
		      has(e.msg, "no class folders"),
	      "msg: %s", e.msg);
	err_clear(&e);
	mkdirs("flat/ADI");
	CHECK(imgset_load_folder(&s, flat, &e) == ERR_FORMAT && has(e.msg, flat) &&
		      has(e.msg, "no images"),
	      "msg: %s", e.msg);
}

/* ---- the real Fashion-MNIST, when installed ---- */

#define FMNIST "/usr/share/datasets/fashion-mnist"

static void check_fmnist(const char *imgs, const char *lbls, uint32_t n)
{
	struct imgset s;
	struct err e = {0};
	REQUIRE(imgset_load_idx(&s, imgs, lbls, &e) == 0, "load: %s", e.msg);
	CHECK(s.n == n && s.h == 28 && s.w == 28 && s.c == 1 && s.n_classes == 10,
	      "shape %u %ux%ux%u classes %u", s.n, s.h, s.w, s.c, s.n_classes);
	uint32_t count[10] = {0};
	for (uint32_t i = 0; i < s.n; i++)
		if (s.label[i] < 10)
			count[s.label[i]]++;
	for (int k = 0; k < 10; k++)
		CHECK(count[k] == n / 10, "class %d has %u images, expected %u", k, count[k], n / 10);
	uint64_t sum = 0;
	for (size_t i = 0; i < (size_t)s.n * 784; i++)
		sum += s.pix[i];
	double mean = (double)sum / ((double)s.n * 784);
	CHECK(mean > 60 && mean < 80, "mean pixel %.2f, expected about 72.9", mean);
	imgset_free(&s);
}

static void test_fashion_mnist(void)
{
	if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK) != 0)
		SKIP("%s/train-images-idx3-ubyte.gz not found (Debian package dataset-fashion-mnist)",
		     FMNIST);
	check_fmnist(FMNIST "/train-images-idx3-ubyte.gz", FMNIST "/train-labels-idx1-ubyte.gz",
		     60000);
	check_fmnist(FMNIST "/t10k-images-idx3-ubyte.gz", FMNIST "/t10k-labels-idx1-ubyte.gz",
		     10000);
}

int main(void)
{
	RUN(test_idx_plain_roundtrip);
	RUN(test_idx_gzip_roundtrip);
	RUN(test_idx_many_classes);
	RUN(test_idx_bad_magic);
	RUN(test_idx_truncated);
	RUN(test_idx_counts_disagree);
	RUN(test_idx_bad_dims);
	RUN(test_idx_missing_file);
	RUN(test_cifar_planar_to_hwc);
	RUN(test_cifar_bad_length);
	RUN(test_cifar_bad_label);
	RUN(test_folder_tree);
	RUN(test_folder_parallel_get);
	RUN(test_folder_grey);
	RUN(test_png_writer_channels);
	RUN(test_folder_wrong_size);
	RUN(test_folder_not_image);
	RUN(test_folder_truncated_pixels);
	RUN(test_folder_missing_dir);
	RUN(test_fashion_mnist);
	return check_summary();
}
