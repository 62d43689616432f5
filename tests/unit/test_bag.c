/* test_bag.c - the bag container: round trips, raw copies, corruption */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "check.h"
#include "../../lib/data/bag.h"
#include "../../lib/base/rng.h"

static char *tmp_path(const char *name)
{
	static char buf[8][700];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, 700, "%s/%s", check_tmpdir(), name);
	return p;
}

/* Writes a pixel bag of n instances with a deterministic pattern. */
static int write_pixels(const char *path, uint32_t n, uint32_t chunk, struct err *e)
{
	struct bag_header h;
	bag_header_init(&h);
	h.kind = BAG_PIXELS;
	h.height = 8;
	h.width = 6;
	h.channels = 3;
	h.label = 1;
	h.mpp = 0.5;
	h.level = 2;
	h.downsample = 4;
	h.patch_level0 = 32;
	snprintf(h.id, sizeof h.id, "tumor_001");
	bag_header_meta_add(&h, "source", "tumor_001.tif", e);
	bag_header_meta_add(&h, "tool", "test_bag", e);
	struct bag_writer *w;
	int rc = bag_writer_open(&w, path, &h, 0, chunk, e);
	bag_header_free(&h);
	if (rc)
		return rc;
	uint8_t px[8 * 6 * 3];
	for (uint32_t i = 0; i < n; i++) {
		for (size_t j = 0; j < sizeof px; j++)
			px[j] = (uint8_t)(i * 7 + j);
		struct bag_inst in = {(int32_t)(i * 32), (int32_t)(i * 64 + 1), (float)(i % 5) / 4.0f,
		                      i % 3 == 0 ? -1.0f : (float)(i % 4) / 3.0f};
		rc = bag_writer_add(w, &in, px, e);
		if (rc) {
			bag_writer_abort(w);
			return rc;
		}
	}
	return bag_writer_close(w, e);
}

static int verify_pixels(const char *path, uint32_t n, struct err *e)
{
	struct bag_reader *r;
	int rc = bag_open(&r, path, e);
	if (rc)
		return rc;
	const struct bag_header *h = bag_reader_header(r);
	int bad = h->kind != BAG_PIXELS || h->height != 8 || h->width != 6 || h->channels != 3 ||
	          h->label != 1 || strcmp(h->id, "tumor_001") || h->mpp != 0.5 || h->level != 2 ||
	          h->downsample != 4 || h->patch_level0 != 32;
	char v[64];
	bad |= bag_header_meta_get(h, "source", v, sizeof v) != 13 || strcmp(v, "tumor_001.tif");
	struct bag_chunk c;
	uint64_t seen = 0;
	while (!bad && (rc = bag_read_chunk(r, &c, e)) > 0) {
		bad |= c.first != seen;
		for (uint32_t k = 0; k < c.n && !bad; k++) {
			uint64_t i = c.first + k;
			bad |= c.inst[k].x != (int32_t)(i * 32) || c.inst[k].y != (int32_t)(i * 64 + 1);
			bad |= c.inst[k].tissue != (float)(i % 5) / 4.0f;
			bad |= c.inst[k].label != (i % 3 == 0 ? -1.0f : (float)(i % 4) / 3.0f);
			for (size_t j = 0; j < 144; j++)
				bad |= c.data[k * 144 + j] != (uint8_t)(i * 7 + j);
		}
		seen += c.n;
	}
	if (!bad && !rc)
		bad = seen != n || bag_reader_count(r) != n;
	bag_close(r);
	if (rc < 0)
		return rc;
	return bad ? err_set(e, ERR_FORMAT, "content differs") : 0;
}

static void test_pixels_round_trip(void)
{
	struct err e = {0};
	uint32_t sizes[] = {0, 1, 7, 100, 1000};
	for (int k = 0; k < 5; k++) {
		char *p = tmp_path("px.wbag");
		REQUIRE(write_pixels(p, sizes[k], 7, &e) == 0, "write %u: %s", sizes[k], e.msg);
		CHECK(verify_pixels(p, sizes[k], &e) == 0, "read %u: %s", sizes[k], e.msg);
	}
	char *p = tmp_path("px-default.wbag");
	REQUIRE(write_pixels(p, 5000, 0, &e) == 0, "%s", e.msg);
	CHECK(verify_pixels(p, 5000, &e) == 0, "default chunking: %s", e.msg);
}

static void test_features_and_coords(void)
{
	struct err e = {0};
	struct bag_header h;
	bag_header_init(&h);
	h.kind = BAG_FEATURES;
	h.dim = 17;
	h.label = 0;
	strcpy(h.id, "normal_001");
	char *p = tmp_path("f.wbag");
	struct bag_writer *w;
	REQUIRE(bag_writer_open(&w, p, &h, 19, 0, &e) == 0, "%s", e.msg);
	struct rng r;
	rng_seed(&r, 1, 2);
	float f[17 * 300];
	for (int i = 0; i < 17 * 300; i++)
		f[i] = (float)rng_normal(&r);
	for (int i = 0; i < 300; i++) {
		struct bag_inst in = {i, -i, -1, 0};
		REQUIRE(bag_writer_add(w, &in, f + 17 * i, &e) == 0, "%s", e.msg);
	}
	REQUIRE(bag_writer_close(w, &e) == 0, "%s", e.msg);
	struct bag_header h2;
	uint64_t n;
	struct bag_inst *inst;
	uint8_t *data;
	REQUIRE(bag_load(p, &h2, &n, &inst, &data, &e) == 0, "%s", e.msg);
	CHECK(n == 300 && h2.kind == BAG_FEATURES && h2.dim == 17 && h2.label == 0, "header");
	CHECK(!memcmp(data, f, sizeof f), "features bit-exact");
	CHECK(inst[299].x == 299 && inst[299].y == -299 && inst[5].tissue < 0 && inst[5].label == 0, "records");
	free(inst);
	free(data);
	bag_header_free(&h2);

	h.kind = BAG_COORDS;
	h.label = BAG_LABEL_UNKNOWN;
	p = tmp_path("c.wbag");
	/* a feature dimension on coordinates breaks formats/bag.md */
	CHECK(bag_writer_open(&w, p, &h, 0, 0, &e) == ERR_FORMAT && strstr(e.msg, "feature dimension 17 in a bag "
	      "of coordinates"), "%s", e.msg);
	err_clear(&e);
	h.dim = 0;
	REQUIRE(bag_writer_open(&w, p, &h, 0, 0, &e) == 0, "%s", e.msg);
	for (int i = 0; i < 10; i++) {
		struct bag_inst in = {i, i, 1, 0.5f};
		REQUIRE(bag_writer_add(w, &in, NULL, &e) == 0, "%s", e.msg);
	}
	REQUIRE(bag_writer_close(w, &e) == 0, "%s", e.msg);
	REQUIRE(bag_load(p, &h2, &n, &inst, &data, &e) == 0, "%s", e.msg);
	CHECK(n == 10 && h2.kind == BAG_COORDS && h2.label == BAG_LABEL_UNKNOWN && inst[9].label == 0.5f, "coords bag");
	free(inst);
	free(data);
	bag_header_free(&h2);
}

static void test_raw_copy_relabels(void)
{
	struct err e = {0};
	char *src = tmp_path("stream.wbag"), *dst = tmp_path("final.wbag");
	REQUIRE(write_pixels(src, 50, 8, &e) == 0, "%s", e.msg);
	struct bag_reader *r;
	REQUIRE(bag_open(&r, src, &e) == 0, "%s", e.msg);
	struct bag_header h;
	REQUIRE(bag_header_copy(&h, bag_reader_header(r), &e) == 0, "%s", e.msg);
	h.label = 0;
	strcpy(h.id, "renamed");
	struct bag_writer *w;
	REQUIRE(bag_writer_open(&w, dst, &h, 0, 0, &e) == 0, "%s", e.msg);
	struct bag_raw_chunk rc;
	int k;
	while ((k = bag_read_raw_chunk(r, &rc, &e)) > 0)
		REQUIRE(bag_writer_add_raw(w, &rc, &e) == 0, "%s", e.msg);
	CHECK(k == 0, "raw read: %s", e.msg);
	CHECK(bag_reader_count(r) == 50, "count %llu", (unsigned long long)bag_reader_count(r));
	bag_close(r);
	REQUIRE(bag_writer_close(w, &e) == 0, "%s", e.msg);
	bag_header_free(&h);
	uint64_t n;
	struct bag_inst *inst;
	uint8_t *data;
	REQUIRE(bag_load(dst, &h, &n, &inst, &data, &e) == 0, "%s", e.msg);
	CHECK(n == 50 && h.label == 0 && !strcmp(h.id, "renamed"), "n %llu label %d", (unsigned long long)n, h.label);
	CHECK(data[49 * 144 + 3] == (uint8_t)(49 * 7 + 3), "payload copied");
	free(inst);
	free(data);
	bag_header_free(&h);
}

static long file_size(const char *p)
{
	struct stat st;
	return stat(p, &st) ? -1 : (long)st.st_size;
}

static uint8_t *slurp(const char *p, long *n)
{
	*n = file_size(p);
	FILE *f = fopen(p, "rb");
	uint8_t *b = malloc((size_t)*n);
	if (fread(b, 1, (size_t)*n, f) != (size_t)*n)
		*n = -1;
	fclose(f);
	return b;
}

static void spit(const char *p, const uint8_t *b, long n)
{
	FILE *f = fopen(p, "wb");
	fwrite(b, 1, (size_t)n, f);
	fclose(f);
}

/* Reads a whole bag; returns the error code and message. */
static int read_all(const char *p, struct err *e)
{
	struct bag_header h;
	uint64_t n;
	struct bag_inst *inst;
	uint8_t *data;
	int rc = bag_load(p, &h, &n, &inst, &data, e);
	if (!rc) {
		free(inst);
		free(data);
		bag_header_free(&h);
	}
	return rc;
}

static void test_corruption_is_named(void)
{
	struct err e = {0};
	char *good = tmp_path("good.wbag"), *bad = tmp_path("bad.wbag");
	REQUIRE(write_pixels(good, 40, 10, &e) == 0, "%s", e.msg);
	long n;
	uint8_t *b = slurp(good, &n);
	uint8_t *c = malloc((size_t)n);
	struct { const char *what; long at; int xor_; long truncate; const char *needle; } cases[] = {
		{"wrong magic", 1, 0x20, 0, "bad magic"},
		{"header byte", 20, 0x01, 0, "header checksum"},
		{"huge header size", 15, 0x7f, 0, "header size"},
		{"truncated header", 0, 0, 30, "file ends inside"},
		{"truncated chunk", 0, 0, n / 2, "byte"},
		{"truncated trailer", 0, 0, n - 5, "file ends inside"},
		{"flipped chunk byte", n / 3, 0x10, 0, "checksum"},
		{"flipped trailer count", n - 20 - 4 * 16 - 4 - 32 + 8, 0x01, 0, "trailer"},
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		memcpy(c, b, (size_t)n);
		long len = n;
		if (cases[k].truncate)
			len = cases[k].truncate;
		else
			c[cases[k].at] ^= (uint8_t)cases[k].xor_;
		spit(bad, c, len);
		err_clear(&e);
		int rc = read_all(bad, &e);
		CHECK(rc == ERR_FORMAT || rc == ERR_LIMIT, "%s: rc %d (%s)", cases[k].what, rc, e.msg);
		CHECK(strstr(e.msg, "bad.wbag") && strstr(e.msg, cases[k].needle), "%s: message '%s'",
		      cases[k].what, e.msg);
	}
	/* garbage after the trailer */
	memcpy(c, b, (size_t)n);
	FILE *f = fopen(bad, "wb");
	fwrite(c, 1, (size_t)n, f);
	fputs("junk", f);
	fclose(f);
	err_clear(&e);
	CHECK(read_all(bad, &e) == ERR_FORMAT && strstr(e.msg, "garbage"), "trailing junk: %s", e.msg);
	err_clear(&e);
	CHECK(read_all(tmp_path("missing.wbag"), &e) == ERR_IO && strstr(e.msg, "missing.wbag"), "%s", e.msg);
	free(b);
	free(c);
}

/* a coordinates bag of one chunk whose frame is frame[0..nf), written
 * verbatim with bag_writer_add_raw (which copies, as bag-pack does) */
static void write_raw_bag(const char *path, const uint8_t *frame, size_t nf, uint32_t n)
{
	struct err e = {0};
	struct bag_header h;
	bag_header_init(&h);
	h.kind = BAG_COORDS;
	snprintf(h.id, sizeof h.id, "raw");
	struct bag_writer *w;
	REQUIRE(bag_writer_open(&w, path, &h, 0, 0, &e) == 0, "%s", e.msg);
	struct bag_raw_chunk rc = {n, 16 * n, (uint32_t)nf, frame};
	int rc1 = bag_writer_add_raw(w, &rc, &e);
	CHECK(rc1 == 0, "add_raw: %s", e.msg);
	REQUIRE(bag_writer_close(w, &e) == 0, "%s", e.msg);
	bag_header_free(&h);
}

/* reads path both ways (every chunk decompressed, as bag-info --check and
 * the trainer do; and raw, as bag-pack and plain bag-info do): both must
 * fail, with msg in the message */
static void both_fail(const char *path, const char *msg, const char *what)
{
	struct err e = {0};
	struct bag_reader *r;
	int rc = bag_open(&r, path, &e);
	REQUIRE(rc == 0, "%s", e.msg);
	struct bag_chunk c;
	while ((rc = bag_read_chunk(r, &c, &e)) > 0)
		;
	bag_close(r);
	CHECK(rc < 0 && strstr(e.msg, msg), "%s, full read: %d %s", what, rc, e.msg);
	err_clear(&e);
	REQUIRE(bag_open(&r, path, &e) == 0, "%s", e.msg);
	struct bag_raw_chunk rw;
	while ((rc = bag_read_raw_chunk(r, &rw, &e)) > 0)
		;
	bag_close(r);
	CHECK(rc < 0 && strstr(e.msg, msg), "%s, raw read: %d %s", what, rc, e.msg);
}

/* What the full read refuses, the raw read (bag-pack's copy, plain
 * bag-info) refuses too: a NaN tissue fraction, a frame without a
 * content checksum or size.  (A window too large for a default decoder
 * cannot even be written: bag_writer_add_raw's partial decompression
 * refuses it, as the reader does.) */
static void test_raw_and_full_reads_agree(void)
{
	enum { N = 4 };
	float v[4 * N];
	for (int i = 0; i < 4 * N; i++)
		v[i] = 0.5f;
	v[2 * N + 1] = NAN; /* tissue of instance 1 */
	uint8_t frame[512];
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
	size_t nf = ZSTD_compress2(cc, frame, sizeof frame, v, sizeof v);
	REQUIRE(!ZSTD_isError(nf), "zstd");
	const char *p = tmp_path("raw.wbag");
	write_raw_bag(p, frame, nf, N);
	both_fail(p, "instance 1: tissue nan or label 0.5 outside [0,1]", "NaN tissue");

	v[2 * N + 1] = 0.5f;
	ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
	nf = ZSTD_compress2(cc, frame, sizeof frame, v, sizeof v);
	write_raw_bag(p, frame, nf, N);
	both_fail(p, "the zstd frame has no content checksum", "no checksum");

	ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	ZSTD_CCtx_setPledgedSrcSize(cc, ZSTD_CONTENTSIZE_UNKNOWN);
	ZSTD_inBuffer in = {v, sizeof v, 0};
	ZSTD_outBuffer out = {frame, sizeof frame, 0};
	size_t left = ZSTD_compressStream2(cc, &out, &in, ZSTD_e_end);
	REQUIRE(left == 0, "zstd stream");
	write_raw_bag(p, frame, out.pos, N);
	both_fail(p, "does not declare its content size", "no content size");
	ZSTD_freeCCtx(cc);

}

static void test_writer_rejects_bad_values(void)
{
	struct err e = {0};
	struct bag_header h;
	bag_header_init(&h);
	h.kind = BAG_FEATURES;
	h.dim = 0;
	struct bag_writer *w;
	CHECK(bag_writer_open(&w, tmp_path("x.wbag"), &h, 0, 0, &e) == ERR_FORMAT, "dim 0 accepted");
	CHECK(file_size(tmp_path("x.wbag")) < 0, "no file left");
	h.dim = 2;
	err_clear(&e);
	REQUIRE(bag_writer_open(&w, tmp_path("x.wbag"), &h, 0, 0, &e) == 0, "%s", e.msg);
	float f[2] = {1, 2};
	struct bag_inst in = {0, 0, 1.5f, 0};
	CHECK(bag_writer_add(w, &in, f, &e) == ERR_USAGE, "tissue 1.5 accepted");
	bag_writer_abort(w);
	CHECK(file_size(tmp_path("x.wbag")) < 0, "abort leaves no file");
	char dir_entries[700];
	snprintf(dir_entries, sizeof dir_entries, "%s", check_tmpdir());
}

int main(void)
{
	RUN(test_pixels_round_trip);
	RUN(test_features_and_coords);
	RUN(test_raw_copy_relabels);
	RUN(test_corruption_is_named);
	RUN(test_writer_rejects_bad_values);
	RUN(test_raw_and_full_reads_agree);
	return check_summary();
}
