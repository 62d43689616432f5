/* fuzz_idx.c - libFuzzer target for imgset_load_idx (lib/mil/imgset.c).
 *
 * The first input byte picks what the rest is (byte % 3):
 *   0: the images file; the labels file is a valid idx1 file whose count
 *      is the one the images header declares (bytes 4..7, when present;
 *      its body is capped at 4096 labels)
 *   1: the labels file; the images file is a valid idx3 file of 2x2 images
 *      whose count is the one the labels header declares (capped at 64)
 *   2: both: the next two bytes (little-endian) mod the remaining length
 *      give the length of the images file; the labels file is the rest
 * Either file may be gzipped (the reader detects 1f 8b; modes 0 and 1
 * look through the gzip for the count).  The bytes are
 * written to files in a private temporary directory, removed at exit.  A
 * set that loads is checked for its invariants and read back.
 *
 * Build: make fuzz (clang, libFuzzer, ASan, UBSan); the normal test run
 * replays tests/fuzz/corpus/idx and tests/fuzz/crashes/idx through
 * tests/fuzz/replay.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "../../lib/mil/imgset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fz_dir[512], fz_img[600], fz_lbl[600];

static void fz_cleanup(void)
{
	if (fz_dir[0]) {
		unlink(fz_img);
		unlink(fz_lbl);
		rmdir(fz_dir);
	}
}

static void fz_setup(void)
{
	if (fz_dir[0])
		return;
	const char *base = getenv("TMPDIR");
	snprintf(fz_dir, sizeof fz_dir, "%s/fuzz_idx.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(fz_dir)) {
		perror("fuzz_idx: mkdtemp");
		abort();
	}
	snprintf(fz_img, sizeof fz_img, "%s/images", fz_dir);
	snprintf(fz_lbl, sizeof fz_lbl, "%s/labels", fz_dir);
	atexit(fz_cleanup);
}

static void fz_put(const char *path, const void *p, size_t n)
{
	FILE *fp = fopen(path, "wb");
	if (!fp || fwrite(p, 1, n, fp) != n || fclose(fp) != 0) {
		perror("fuzz_idx: cannot write a scratch file");
		abort();
	}
}

static void fz_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The count field (bytes 4..7) of a plain or gzipped idx header; 1 if none. */
static uint32_t fz_count(const uint8_t *d, size_t n)
{
	uint8_t h[8];
	if (n >= 2 && d[0] == 0x1f && d[1] == 0x8b) {
		z_stream z;
		memset(&z, 0, sizeof z);
		if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
			abort();
		z.next_in = (Bytef *)(uintptr_t)d;
		z.avail_in = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
		z.next_out = h;
		z.avail_out = sizeof h;
		inflate(&z, Z_SYNC_FLUSH);
		size_t got = sizeof h - z.avail_out;
		inflateEnd(&z);
		if (got < 8)
			return 1;
		d = h;
	} else if (n < 8) {
		return 1;
	}
	return (uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7];
}

static void fz_check(const struct imgset *s)
{
	size_t sz = (size_t)s->h * s->w * s->c;
	if (s->n == 0 || s->c != 1 || !s->h || !s->w || s->h > IMGSET_MAX_DIM ||
	    s->w > IMGSET_MAX_DIM || s->n_classes < 10 || s->n_classes > IMGSET_MAX_CLASSES ||
	    !s->pix || !s->label || !s->class_names || !s->source)
		abort();
	for (uint32_t i = 0; i < s->n; i++)
		if (s->label[i] >= s->n_classes)
			abort();
	uint8_t *out = malloc(sz);
	struct err e = {0};
	if (!out || imgset_get(s, 0, out, &e) || imgset_get(s, s->n - 1, out, &e))
		abort();
	if (imgset_get(s, s->n, out, &e) != ERR_USAGE)
		abort();
	free(out);
	if (imgset_class_index(s, s->class_names[s->n_classes - 1]) != (int)s->n_classes - 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	fz_setup();
	int mode = data[0] % 3;
	data++;
	size--;
	if (mode == 0) {
		uint32_t n = fz_count(data, size);
		size_t body = n > 4096 ? 4096 : n;
		uint8_t *l = calloc(1, 8 + body);
		if (!l)
			abort();
		fz_be32(l, 0x801);
		fz_be32(l + 4, n);
		fz_put(fz_img, data, size);
		fz_put(fz_lbl, l, 8 + body);
		free(l);
	} else if (mode == 1) {
		uint32_t n = fz_count(data, size);
		if (n > 64)
			n = 64;
		uint8_t im[16 + 64 * 4];
		fz_be32(im, 0x803);
		fz_be32(im + 4, n);
		fz_be32(im + 8, 2);
		fz_be32(im + 12, 2);
		memset(im + 16, 0x5a, (size_t)n * 4);
		fz_put(fz_img, im, 16 + (size_t)n * 4);
		fz_put(fz_lbl, data, size);
	} else {
		size_t cut = 0;
		if (size >= 2) {
			cut = ((size_t)data[0] | (size_t)data[1] << 8) % (size - 2 + 1);
			data += 2;
			size -= 2;
		}
		fz_put(fz_img, data, cut);
		fz_put(fz_lbl, data + cut, size - cut);
	}
	struct imgset s;
	struct err e = {0};
	int rc = imgset_load_idx(&s, fz_img, fz_lbl, &e);
	if (rc == 0) {
		fz_check(&s);
		imgset_free(&s);
	} else if (rc > 0 || !e.code || !e.msg[0] || s.pix || s.label || s.n) {
		abort(); /* a failure must say why and leave nothing behind */
	}
	return 0;
}
