/* test_featio.c - lib/data/featio: .npy, CSV and HDF5 feature files.
 *
 * Files are built by hand under check_tmpdir(); the reference files in
 * tests/data/featio/ were written once by numpy (gen.py beside them) and
 * are read from the source tree ($WENO_SRC, else the working directory).
 */
#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "../../lib/data/featio.h"
#include "check.h"

/* ---- helpers ---- */

static const char *tmp(const char *name)
{
	static char buf[8][600];
	static int k;
	char *p = buf[k++ % 8];
	snprintf(p, sizeof buf[0], "%s/%s", check_tmpdir(), name);
	return p;
}

static const char *ref(const char *name)
{
	static char buf[4][600];
	static int k;
	char *p = buf[k++ % 4];
	const char *src = getenv("WENO_SRC");
	snprintf(p, sizeof buf[0], "%s/tests/data/featio/%s", src ? src : ".", name);
	return p;
}

static int have(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void put(const char *path, const void *buf, size_t n)
{
	FILE *fp = fopen(path, "wb");
	if (!fp || (n && fwrite(buf, 1, n, fp) != n) || fclose(fp) != 0) {
		perror(path);
		exit(1);
	}
}

static void puts_file(const char *path, const char *text)
{
	put(path, text, strlen(text));
}

/* Reads a whole file into *buf (malloc'd); returns its size. */
static size_t slurp(const char *path, unsigned char **buf)
{
	FILE *fp = fopen(path, "rb");
	size_t cap = 1 << 16, n = 0;
	*buf = malloc(cap);
	if (!fp || !*buf)
		return 0;
	size_t got;
	while ((got = fread(*buf + n, 1, cap - n, fp)) > 0) {
		n += got;
		if (n == cap)
			*buf = realloc(*buf, cap *= 2);
	}
	fclose(fp);
	return n;
}

/* An .npy file: given version, header dict text, then raw data bytes. */
static void npy_hand(const char *path, int version, const char *dict, const void *data,
                     size_t ndata)
{
	unsigned char buf[4096];
	size_t pre = version == 1 ? 10 : 12, dl = strlen(dict);
	size_t hlen = dl + 1;
	hlen += (64 - (pre + hlen) % 64) % 64;
	memcpy(buf, "\x93NUMPY", 6);
	buf[6] = (unsigned char)version;
	buf[7] = 0;
	buf[8] = (unsigned char)(hlen & 0xff);
	buf[9] = (unsigned char)(hlen >> 8);
	if (version > 1)
		buf[10] = buf[11] = 0;
	memcpy(buf + pre, dict, dl);
	memset(buf + pre + dl, ' ', hlen - dl - 1);
	buf[pre + hlen - 1] = '\n';
	memcpy(buf + pre + hlen, data, ndata);
	put(path, buf, pre + hlen + ndata);
}

static int has(const struct err *e, const char *s)
{
	return strstr(e->msg, s) != NULL;
}

/* The reference 2 x 3 matrix: (arange(6) - 2.5) / 7 in float32. */
static float refval(int i)
{
	return ((float)i - 2.5f) / 7.0f;
}

/* ---- npy ---- */

static void test_npy_roundtrip_bits(void)
{
	enum { N = 37, D = 5 };
	float x[N * D];
	for (int i = 0; i < N * D; i++)
		x[i] = (float)(i * 0.37 - 20.0) * (i % 7 == 0 ? 1e-40f : 1.0f);
	x[0] = -0.0f;
	x[1] = 3.4028235e38f;
	x[2] = 1.4e-45f; /* the smallest denormal */
	struct err e = { 0 };
	const char *p = tmp("rt.npy");
	int rc = featio_write_npy(p, x, N, D, &e);
	REQUIRE(rc == 0, "write: %s", e.msg);
	unsigned char *buf;
	size_t n = slurp(p, &buf);
	CHECK(n == 128 + sizeof x, "file is %zu bytes", n);
	CHECK(n > 10 && buf[8] + 256 * buf[9] == 118 && buf[127] == '\n', "header layout");
	free(buf);
	struct feats f;
	rc = featio_read_npy(&f, p, &e);
	REQUIRE(rc == 0, "read: %s", e.msg);
	CHECK(f.n == N && f.d == D, "%llu x %u", (unsigned long long)f.n, f.d);
	CHECK(!memcmp(f.x, x, sizeof x), "bits differ");
	CHECK(f.coords == NULL && f.patch_level == -1, "no coords");
	feats_free(&f);
	CHECK(f.x == NULL && f.n == 0, "feats_free resets");
	feats_free(&f); /* twice is harmless */

	/* N = 0 is an empty bag */
	rc = featio_write_npy(p, x, 0, D, &e);
	REQUIRE(rc == 0, "write empty: %s", e.msg);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == 0 && f.n == 0 && f.d == D && f.x, "read empty: %s", e.msg);
	feats_free(&f);
}

static void test_npy_numpy_reference(void)
{
	if (!have(ref("f32_2x3.npy")))
		SKIP("tests/data/featio not found (run from the source tree or set WENO_SRC)");
	const char *names[] = { "f32_2x3.npy", "f32_2x3_v2.npy", "f32_2x3_v3.npy", "f64_2x3.npy" };
	for (int k = 0; k < 4; k++) {
		struct feats f;
		struct err e = { 0 };
		int rc = featio_read_npy(&f, ref(names[k]), &e);
		CHECK(rc == 0, "%s: %s", names[k], e.msg);
		if (rc)
			continue;
		CHECK(f.n == 2 && f.d == 3, "%s: %llu x %u", names[k], (unsigned long long)f.n, f.d);
		for (int i = 0; i < 6; i++)
			CHECK(f.x[i] == refval(i), "%s[%d] = %.9g, expected %.9g", names[k], i,
			      (double)f.x[i], (double)refval(i));
		feats_free(&f);
	}
	/* what we write is byte for byte what np.save writes */
	struct feats f;
	struct err e = { 0 };
	REQUIRE(featio_read_npy(&f, ref("f32_2x3.npy"), &e) == 0, "%s", e.msg);
	const char *p = tmp("mine.npy");
	REQUIRE(featio_write_npy(p, f.x, f.n, f.d, &e) == 0, "%s", e.msg);
	feats_free(&f);
	unsigned char *a, *b;
	size_t na = slurp(p, &a), nb = slurp(ref("f32_2x3.npy"), &b);
	CHECK(na == nb && !memcmp(a, b, na), "featio_write_npy differs from np.save");
	free(a);
	free(b);
	/* coords written by numpy, and ours matching it */
	feats_init(&f);
	f.n = 2;
	REQUIRE(featio_read_coords_npy(&f, ref("coords_i8_2x2.npy"), &e) == 0, "%s", e.msg);
	CHECK(f.coords[0] == 0 && f.coords[1] == 256 && f.coords[2] == 512 && f.coords[3] == -7,
	      "coords %d %d %d %d", f.coords[0], f.coords[1], f.coords[2], f.coords[3]);
	REQUIRE(featio_write_coords_npy(p, f.coords, 2, &e) == 0, "%s", e.msg);
	na = slurp(p, &a);
	nb = slurp(ref("coords_i8_2x2.npy"), &b);
	CHECK(na == nb && !memcmp(a, b, na), "featio_write_coords_npy differs from np.save");
	free(a);
	free(b);
	feats_free(&f);
	/* fortran order is refused, with a hint */
	CHECK(featio_read_npy(&f, ref("f32_2x3_fortran.npy"), &e) == ERR_UNSUPPORTED &&
	              has(&e, "fortran_order") && has(&e, "hint:"),
	      "%s", e.msg);
}

static void test_npy_v2_header(void)
{
	float x[6] = { 1, 2, 3, 4, 5, 6 };
	const char *p = tmp("v2.npy");
	npy_hand(p, 2, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3L, 2L)}", x,
	         sizeof x);
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_npy(&f, p, &e);
	REQUIRE(rc == 0, "%s", e.msg);
	CHECK(f.n == 3 && f.d == 2 && f.x[5] == 6, "%llu x %u", (unsigned long long)f.n, f.d);
	feats_free(&f);
	/* 1-D: one instance; (1, N, D): leading 1 dropped */
	npy_hand(p, 1, "{'shape': (6,), 'fortran_order': False, 'descr': '<f4'}", x, sizeof x);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == 0 && f.n == 1 && f.d == 6, "1-D: %s", e.msg);
	feats_free(&f);
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", x,
	         sizeof x);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == 0 && f.n == 2 && f.d == 3, "1xNxD: %s", e.msg);
	feats_free(&f);
	/* fortran order with one column is the same bytes: accepted */
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (6, 1), }", x, sizeof x);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == 0 && f.n == 6 && f.d == 1, "fortran Nx1: %s", e.msg);
	feats_free(&f);
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", x, sizeof x);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "fortran_order is True"), "%d %s", rc, e.msg);
}

static void test_npy_float64(void)
{
	double v[4] = { 0.1, -2.5, 1e-50, 65504.125 };
	const char *p = tmp("f8.npy");
	npy_hand(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", v, sizeof v);
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_npy(&f, p, &e);
	REQUIRE(rc == 0, "%s", e.msg);
	for (int i = 0; i < 4; i++)
		CHECK(f.x[i] == (float)v[i], "x[%d] = %g", i, (double)f.x[i]);
	feats_free(&f);
	v[3] = 1e300;
	npy_hand(p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", v, sizeof v);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_NUMERIC && has(&e, "row 2, column 2") && has(&e, "float32 range"), "%s",
	      e.msg);
}

static void test_npy_wrong_dtype(void)
{
	int32_t v[4] = { 1, 2, 3, 4 };
	const char *p = tmp("i4.npy");
	npy_hand(p, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", v, sizeof v);
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "dtype '<i4'") && has(&e, "'<f4'"), "%d %s", rc,
	      e.msg);
	CHECK(f.x == NULL && f.n == 0, "left empty on error");
	err_clear(&e);
	npy_hand(p, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", v, 8);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "'<f2'"), "%s", e.msg);
	err_clear(&e);
	npy_hand(p, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", v, 16);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "big-endian"), "%s", e.msg);
	err_clear(&e);
	npy_hand(p, 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", v, 16);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "structured"), "%s", e.msg);
}

static void test_npy_truncated_and_trailing(void)
{
	float x[12] = { 0 };
	struct err e = { 0 };
	const char *p = tmp("tr.npy");
	REQUIRE(featio_write_npy(p, x, 3, 4, &e) == 0, "%s", e.msg);
	unsigned char *buf;
	size_t n = slurp(p, &buf);
	put(p, buf, n - 3);
	struct feats f;
	int rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "truncated") && has(&e, "3 x 4 float32"), "%s", e.msg);
	err_clear(&e);
	put(p, buf, 60); /* inside the header */
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "runs past the end"), "%s", e.msg);
	err_clear(&e);
	unsigned char more[256];
	memcpy(more, buf, n);
	memset(more + n, 0, 4);
	put(p, more, n + 4);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "byte 176: 4 bytes after the data"), "%s", e.msg);
	free(buf);
	/* a huge declared shape in a tiny file fails before allocating */
	err_clear(&e);
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, 65536), }",
	         x, 8);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "truncated"), "%s", e.msg);
	err_clear(&e);
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483649, 1), }", x, 8);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_LIMIT && has(&e, "2147483649 instances"), "%s", e.msg);
	err_clear(&e);
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 65537), }", x, 8);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_LIMIT && has(&e, "dimension 65537"), "%s", e.msg);
	err_clear(&e);
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0), }", x, 0);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "dimension 0"), "%s", e.msg);
}

static void test_npy_bad_magic_and_header(void)
{
	const char *p = tmp("bad.npy");
	struct feats f;
	struct err e = { 0 };
	puts_file(p, "PK\x03\x04 this is a zip");
	int rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "bad magic"), "%s", e.msg);
	err_clear(&e);
	puts_file(p, "");
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "empty file"), "%s", e.msg);
	err_clear(&e);
	rc = featio_read_npy(&f, tmp("does-not-exist.npy"), &e);
	CHECK(rc == ERR_IO && has(&e, "cannot open") && has(&e, "No such file"), "%s", e.msg);
	static const struct {
		const char *dict, *want;
	} bad[] = {
		{ "{'descr': '<f4', 'shape': (2,), }", "no 'fortran_order' key" },
		{ "{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }", "True or False" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", "shape tuple" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", "one of the keys" },
		{ "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}",
		  "byte 27: expected one of the keys" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "only padding" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
		  "below 2^62" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': ()}", "scalar" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 2)}", "shape (2, 2, 2)" },
		{ "{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "header ends early" },
	};
	float x[8] = { 0 };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err_clear(&e);
		npy_hand(p, 1, bad[i].dict, x, 8);
		rc = featio_read_npy(&f, p, &e);
		CHECK(rc < 0 && has(&e, bad[i].want), "case %zu: %d '%s'", i, rc, e.msg);
	}
	err_clear(&e);
	unsigned char v9[16] = "\x93NUMPY\x09\x00\x00\x00";
	put(p, v9, 16);
	rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "version 9.0"), "%s", e.msg);
}

static void test_npy_nan(void)
{
	float x[6] = { 1, 2, 3, 4, 5, 6 };
	x[4] = nanf("");
	const char *p = tmp("nan.npy");
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", x, sizeof x);
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_npy(&f, p, &e);
	CHECK(rc == ERR_NUMERIC && has(&e, "row 2, column 2: nan"), "%s", e.msg);
	err_clear(&e);
	rc = featio_write_npy(tmp("w.npy"), x, 2, 3, &e);
	CHECK(rc == ERR_NUMERIC && !have(tmp("w.npy")), "writer refuses nan: %s", e.msg);
}

static void test_coords_npy(void)
{
	struct feats f;
	struct err e = { 0 };
	feats_init(&f);
	f.n = 3;
	int32_t xy[6] = { 0, 0, 256, 0, -2147483647 - 1, 2147483647 };
	const char *p = tmp("c.npy");
	REQUIRE(featio_write_coords_npy(p, xy, 3, &e) == 0, "%s", e.msg);
	unsigned char *buf;
	size_t n = slurp(p, &buf);
	CHECK(n == 128 + 48 && !memcmp(buf + 10, "{'descr': '<i8'", 15), "int64 on disk");
	free(buf);
	REQUIRE(featio_read_coords_npy(&f, p, &e) == 0, "%s", e.msg);
	CHECK(!memcmp(f.coords, xy, sizeof xy), "int64 round trip");
	/* float32 coordinates holding integers */
	float fx[6] = { 0, 0, 256, 0, 512, 1024 };
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", fx, sizeof fx);
	REQUIRE(featio_read_coords_npy(&f, p, &e) == 0, "%s", e.msg);
	CHECK(f.coords[4] == 512 && f.coords[5] == 1024, "float32 coords");
	/* int32 too */
	npy_hand(p, 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (3, 2), }", xy, sizeof xy);
	REQUIRE(featio_read_coords_npy(&f, p, &e) == 0, "%s", e.msg);
	CHECK(!memcmp(f.coords, xy, sizeof xy), "int32 coords");
	/* errors leave f as it was */
	fx[3] = 0.5f;
	npy_hand(p, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", fx, sizeof fx);
	int rc = featio_read_coords_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "row 2, y): 0.5") && f.coords[3] == xy[3], "%s", e.msg);
	err_clear(&e);
	int64_t big[2] = { 1, INT64_C(1) << 40 };
	npy_hand(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2), }", big,
	         sizeof big);
	f.n = 1;
	rc = featio_read_coords_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "fits int32"), "%s", e.msg);
	err_clear(&e);
	f.n = 4;
	rc = featio_read_coords_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "1 coordinate rows, expected 4"), "%s", e.msg);
	err_clear(&e);
	npy_hand(p, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }", big,
	         sizeof big);
	rc = featio_read_coords_npy(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "1 columns, expected 2"), "%s", e.msg);
	err_clear(&e);
	npy_hand(p, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 2), }", big,
	         sizeof big);
	rc = featio_read_coords_npy(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "'<u2'"), "%s", e.msg);
	feats_free(&f);
}

/* ---- CSV ---- */

static void test_csv_header_and_not(void)
{
	static const struct {
		const char *text;
		int header;
	} cases[] = {
		{ "0,1,2\n0.5,-1.25,3e2\n1,2,3\n", 1 },              /* pandas */
		{ "0.5,-1.25,3e2\n1,2,3\n", 0 },                     /* no header */
		{ "a,b,c\n0.5,-1.25,3e2\n1,2,3", 1 },                /* names; no final newline */
		{ "\xef\xbb\xbf\"f 0\",\"f,1\",f2\r\n0.5, -1.25 ,3e2\r\n\r\n1,2,3\r\n\n", 1 },
		{ ",0,1,2\n0,0.5,-1.25,3e2\n1,1,2,3\n", 1 },         /* pandas' index column */
	};
	float want[6] = { 0.5f, -1.25f, 300, 1, 2, 3 };
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const char *p = tmp("h.csv");
		puts_file(p, cases[k].text);
		struct feats f;
		struct err e = { 0 };
		int rc = featio_read_csv(&f, p, &e);
		CHECK(rc == 0, "case %zu: %s", k, e.msg);
		if (rc)
			continue;
		CHECK(f.n == 2 && f.d == 3 && !f.coords, "case %zu: %llu x %u", k,
		      (unsigned long long)f.n, f.d);
		for (int i = 0; i < 6 && f.n == 2 && f.d == 3; i++)
			CHECK(f.x[i] == want[i], "case %zu: x[%d] = %g", k, i, (double)f.x[i]);
		feats_free(&f);
	}
	/* header only: an empty bag */
	const char *p = tmp("ho.csv");
	puts_file(p, "0,1,2,3\n");
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_csv(&f, p, &e);
	CHECK(rc == 0 && f.n == 0 && f.d == 4, "header only: %s", e.msg);
	feats_free(&f);
}

static void test_csv_errors(void)
{
	static const struct {
		const char *text;
		int rc;
		const char *want;
	} cases[] = {
		{ "0,1,2\n1,2,3\n4,5\n", ERR_FORMAT, "line 3: 2 columns, expected 3" },
		{ "1,2,3\n4,5,6,7\n", ERR_FORMAT, "line 2: 4 columns, expected 3" },
		{ "0,1,2\n1,2,3\n\n4,abc,6\n", ERR_FORMAT,
		  "line 4, column 2: expected a number, got 'abc'" },
		{ "1,2,3\n4,,6\n", ERR_FORMAT, "line 2, column 2: expected a number, got ''" },
		{ "1,2,3\n4,5,6,\n", ERR_FORMAT, "line 2: 4 columns, expected 3" },
		{ "1,2,3\n4,5,0x\n", ERR_FORMAT, "column 3: expected a number, got '0x'" },
		{ "1,2,3\n4,5,\"6\"\n", ERR_FORMAT, "got '\"6\"'" },
		{ "", ERR_FORMAT, "empty file" },
		{ "\n  \r\n\n", ERR_FORMAT, "empty file" },
		{ "1,2\nnan,2\n", ERR_NUMERIC, "line 2, column 1: 'nan' is not a finite number" },
		{ "1,2\n1,-inf\n", ERR_NUMERIC, "line 2, column 2: '-inf' is not a finite number" },
		{ "1,2\n1,1e39\n", ERR_NUMERIC, "'1e39' is out of float32 range" },
		{ "slide,0,1\nx,1,2\n", ERR_FORMAT, "line 1, column 1: expected a number, got 'slide'" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		const char *p = tmp("feats.csv");
		puts_file(p, cases[k].text);
		struct feats f;
		struct err e = { 0 };
		int rc = featio_read_csv(&f, p, &e);
		CHECK(rc == cases[k].rc && has(&e, cases[k].want) && has(&e, "feats.csv: "),
		      "case %zu: %d '%s'", k, rc, e.msg);
		CHECK(f.x == NULL && f.n == 0, "case %zu: left empty", k);
	}
	/* the hint appears only when the first line is the culprit */
	struct feats f;
	struct err e = { 0 };
	const char *p = tmp("feats.csv");
	puts_file(p, "slide,0,1\n");
	featio_read_csv(&f, p, &e);
	CHECK(has(&e, "hint:"), "%s", e.msg);
	err_clear(&e);
	CHECK(featio_read_csv(&f, tmp("nope.csv"), &e) == ERR_IO && has(&e, "cannot open"), "%s",
	      e.msg);
}

static void test_csv_locale_and_roundtrip(void)
{
	/* a comma-decimal locale, where one is installed, must not matter */
	const char *old = setlocale(LC_NUMERIC, NULL);
	char saved[64];
	snprintf(saved, sizeof saved, "%s", old ? old : "C");
	const char *locs[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "C" };
	for (size_t i = 0; i < 4 && !setlocale(LC_NUMERIC, locs[i]); i++)
		;
	enum { N = 50, D = 7 };
	struct feats w;
	feats_init(&w);
	w.n = N;
	w.d = D;
	w.x = malloc(sizeof(float) * N * D);
	REQUIRE(w.x, "malloc");
	uint32_t s = 12345;
	for (int i = 0; i < N * D; i++) {
		s = s * 1664525u + 1013904223u;
		uint32_t bits = (s >> 1) & 0x7f7fffffu; /* finite, either sign below */
		memcpy(&w.x[i], &bits, 4);
		if (i & 1)
			w.x[i] = -w.x[i];
	}
	w.x[0] = 1.4e-45f;
	w.x[1] = 3.4028235e38f;
	struct err e = { 0 };
	const char *p = tmp("rt.csv");
	int rc = featio_write_csv(p, &w, &e);
	CHECK(rc == 0, "write: %s", e.msg);
	struct feats f;
	rc = featio_read_csv(&f, p, &e);
	CHECK(rc == 0, "read: %s", e.msg);
	if (!rc) {
		CHECK(f.n == N && f.d == D && !memcmp(f.x, w.x, sizeof(float) * N * D),
		      "round trip bits differ");
		feats_free(&f);
	}
	unsigned char *buf;
	size_t n = slurp(p, &buf);
	CHECK(n > 14 && !memcmp(buf, "0,1,2,3,4,5,6\n", 14), "pandas header");
	free(buf);
	feats_free(&w);
	setlocale(LC_NUMERIC, saved);
}

static void test_csv_wide_and_long(void)
{
	/* 65536 columns (the limit; a 128 KiB line) then 65537 */
	const char *p = tmp("wide.csv");
	size_t cap = 2 * 65537 + 16;
	char *line = malloc(cap);
	REQUIRE(line, "malloc");
	for (int k = 0; k < 2; k++) {
		size_t cols = 65536 + (size_t)k, j = 0;
		for (size_t c = 0; c < cols; c++) {
			line[j++] = c % 10 == 0 ? '1' : '0';
			line[j++] = c + 1 < cols ? ',' : '\n';
		}
		line[j] = 0;
		FILE *fp = fopen(p, "wb");
		REQUIRE(fp, "fopen");
		for (int r = 0; r < 3; r++)
			fputs(line, fp);
		fclose(fp);
		struct feats f;
		struct err e = { 0 };
		int rc = featio_read_csv(&f, p, &e);
		if (k == 0) {
			CHECK(rc == 0 && f.n == 3 && f.d == 65536 && f.x[65536 + 10] == 1 &&
			              f.x[65536 + 11] == 0,
			      "65536 columns: %s", e.msg);
			feats_free(&f);
		} else {
			CHECK(rc == ERR_LIMIT && has(&e, "line 1: 65537 columns, more than the limit"),
			      "%d %s", rc, e.msg);
		}
	}
	free(line);
	/* many short rows: the row buffer grows */
	FILE *fp = fopen(p, "wb");
	REQUIRE(fp, "fopen");
	for (int r = 0; r < 5000; r++)
		fprintf(fp, "%d,%d.5\n", r, -r);
	fclose(fp);
	struct feats f;
	struct err e = { 0 };
	REQUIRE(featio_read_csv(&f, p, &e) == 0, "%s", e.msg);
	CHECK(f.n == 5000 && f.d == 2 && f.x[2 * 4999] == 4999 && f.x[2 * 4999 + 1] == -4999.5f,
	      "%llu rows", (unsigned long long)f.n);
	feats_free(&f);
}

/* ---- HDF5 ---- */

/* A dataset of `rank` dims in `type` from native `mtype` data. */
static void h5_put(hid_t fid, const char *name, int rank, const hsize_t *dims, hid_t type,
                   hid_t mtype, const void *data)
{
	hid_t sp = H5Screate_simple(rank, dims, NULL);
	hid_t ds = H5Dcreate2(fid, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
	H5Dclose(ds);
	H5Sclose(sp);
}

static void test_h5_roundtrip(void)
{
	enum { N = 9, D = 4 };
	struct feats w, f;
	feats_init(&w);
	float x[N * D];
	int32_t xy[N * 2];
	for (int i = 0; i < N * D; i++)
		x[i] = (float)i / 3.0f - 5.0f;
	for (int i = 0; i < N * 2; i++)
		xy[i] = i * 512 - 1024;
	w.n = N;
	w.d = D;
	w.x = x;
	w.coords = xy;
	w.patch_size = 256;
	w.patch_level = 1;
	w.downsample = 4.0000123;
	w.patch_size_level0 = 1024;
	struct err e = { 0 };
	const char *p = tmp("slide.h5");
	int rc = featio_write_h5(p, &w, &e);
	REQUIRE(rc == 0, "write: %s", e.msg);
	rc = featio_read_h5(&f, p, &e);
	REQUIRE(rc == 0, "read: %s", e.msg);
	CHECK(f.n == N && f.d == D && !memcmp(f.x, x, sizeof x), "features");
	CHECK(f.coords && !memcmp(f.coords, xy, sizeof xy), "coords");
	CHECK(f.patch_size == 256 && f.patch_level == 1 && f.downsample == 4.0000123 &&
	              f.patch_size_level0 == 1024,
	      "attrs %d %d %g %d", f.patch_size, f.patch_level, f.downsample, f.patch_size_level0);
	feats_free(&f);
	/* the layout CLAM readers expect: float32 features, int64 coords */
	hid_t fid = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
	REQUIRE(fid >= 0, "reopen");
	hid_t ds = H5Dopen2(fid, "coords", H5P_DEFAULT);
	hid_t ty = H5Dget_type(ds);
	CHECK(H5Tequal(ty, H5T_STD_I64LE) > 0, "coords are int64");
	H5Tclose(ty);
	H5Dclose(ds);
	ds = H5Dopen2(fid, "features", H5P_DEFAULT);
	ty = H5Dget_type(ds);
	CHECK(H5Tequal(ty, H5T_IEEE_F32LE) > 0, "features are float32");
	H5Tclose(ty);
	H5Dclose(ds);
	H5Fclose(fid);
	/* no temporary left behind; without coords or attributes */
	char cmd[800];
	snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q tmp-", check_tmpdir());
	CHECK(system(cmd) != 0, "a temporary file was left in %s", check_tmpdir());
	w.coords = NULL;
	REQUIRE(featio_write_h5(p, &w, &e) == 0, "%s", e.msg);
	REQUIRE(featio_read_h5(&f, p, &e) == 0, "%s", e.msg);
	CHECK(!f.coords && f.patch_size == 0 && f.patch_level == -1 && f.downsample == 0,
	      "no coords, attrs unknown");
	feats_free(&f);
	/* an empty bag */
	w.n = 0;
	REQUIRE(featio_write_h5(p, &w, &e) == 0, "empty: %s", e.msg);
	REQUIRE(featio_read_h5(&f, p, &e) == 0, "empty: %s", e.msg);
	CHECK(f.n == 0 && f.d == D && f.x, "empty bag");
	feats_free(&f);
	w.n = N;
	REQUIRE(featio_write_h5(p, &w, &e) == 0, "%s", e.msg);
	/* featio_read picks by suffix */
	REQUIRE(featio_read(&f, p, &e) == 0, "%s", e.msg);
	CHECK(f.n == N, "dispatch");
	feats_free(&f);
	CHECK(featio_read(&f, tmp("x.pt"), &e) == ERR_UNSUPPORTED && has(&e, "hint:"), "%s",
	      e.msg);
	/* failure leaves the old file */
	err_clear(&e);
	x[3] = nanf("");
	w.coords = xy;
	rc = featio_write_h5(p, &w, &e);
	CHECK(rc == ERR_NUMERIC, "%s", e.msg);
	err_clear(&e);
	REQUIRE(featio_read_h5(&f, p, &e) == 0, "%s", e.msg);
	CHECK(f.n == N && !f.coords, "old file intact");
	feats_free(&f);
}

static void test_h5_missing_features(void)
{
	const char *p = tmp("slide.h5");
	hid_t fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hsize_t dims[2] = { 2, 2 };
	int64_t xy[4] = { 0, 0, 1, 1 };
	h5_put(fid, "coords", 2, dims, H5T_STD_I64LE, H5T_NATIVE_INT64, xy);
	H5Fclose(fid);
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "slide.h5: no dataset 'features'"), "%d %s", rc, e.msg);
	err_clear(&e);
	puts_file(p, "not hdf5 at all");
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "not an hdf5 file"), "%s", e.msg);
	err_clear(&e);
	rc = featio_read_h5(&f, tmp("absent.h5"), &e);
	CHECK(rc == ERR_IO && has(&e, "cannot open"), "%s", e.msg);
	/* integer features */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	h5_put(fid, "features", 2, dims, H5T_STD_I64LE, H5T_NATIVE_INT64, xy);
	H5Fclose(fid);
	err_clear(&e);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "integer values"), "%s", e.msg);
}

/* A feature file must not make the reader copy another file's bytes: an
 * external link, a dataset in external raw storage, a virtual dataset, a
 * soft link, for 'features' and for 'coords', are each refused. */
static void test_h5_other_files_refused(void)
{
	/* the file an attacker wants copied: 16 floats of "secret" bytes */
	const char *secret = tmp("secret.bin");
	puts_file(secret, "SECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECRETSECR");
	const char *other = tmp("other.h5");
	hsize_t dims[2] = {4, 4};
	float x[16] = {0};
	hid_t fid = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	h5_put(fid, "features", 2, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x);
	H5Fclose(fid);
	struct feats f;
	struct err e = {0};
	const char *p = tmp("evil.h5");

	/* 'features' stored in the secret file (H5Pset_external) */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
	H5Pset_external(dcpl, secret, 0, 64);
	hid_t ds = H5Dcreate2(fid, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	CHECK(ds >= 0, "could not make an external dataset");
	H5Dclose(ds);
	H5Pclose(dcpl);
	H5Fclose(fid);
	int rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "'features' is stored in external files"), "%d %s", rc, e.msg);

	/* 'features' an external link to the other file */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	H5Lcreate_external(other, "features", fid, "features", H5P_DEFAULT, H5P_DEFAULT);
	H5Fclose(fid);
	err_clear(&e);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "'features' is an external link"), "%d %s", rc, e.msg);

	/* 'features' a virtual dataset over the other file's */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	dcpl = H5Pcreate(H5P_DATASET_CREATE);
	hid_t src = H5Screate_simple(2, dims, NULL);
	H5Pset_virtual(dcpl, sp, other, "features", src);
	ds = H5Dcreate2(fid, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	CHECK(ds >= 0, "could not make a virtual dataset");
	H5Dclose(ds);
	H5Sclose(src);
	H5Pclose(dcpl);
	H5Fclose(fid);
	err_clear(&e);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "'features' is a virtual dataset"), "%d %s", rc, e.msg);

	/* good features, 'coords' a soft link (to features here; it could lead
	 * to an external link) */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	h5_put(fid, "features", 2, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x);
	H5Lcreate_soft("/features", fid, "coords", H5P_DEFAULT, H5P_DEFAULT);
	H5Fclose(fid);
	err_clear(&e);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "'coords' is a soft link"), "%d %s", rc, e.msg);

	/* and 'coords' an external link */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	h5_put(fid, "features", 2, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x);
	H5Lcreate_external(other, "features", fid, "coords", H5P_DEFAULT, H5P_DEFAULT);
	H5Fclose(fid);
	err_clear(&e);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_UNSUPPORTED && has(&e, "'coords' is an external link"), "%d %s", rc, e.msg);
	H5Sclose(sp);

	/* the plain file still reads */
	err_clear(&e);
	rc = featio_read_h5(&f, other, &e);
	CHECK(rc == 0 && f.n == 4 && f.d == 4, "%d %s", rc, e.msg);
	feats_free(&f);
}

static void test_h5_trident_shapes(void)
{
	enum { N = 3, D = 5 };
	const char *p = tmp("trident.h5");
	hid_t fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	double x[N * D];
	for (int i = 0; i < N * D; i++)
		x[i] = i * 0.25 - 1;
	hsize_t d3[3] = { 1, N, D }, c2[2] = { N, 2 };
	h5_put(fid, "features", 3, d3, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, x); /* 1 x N x D f64 */
	int32_t xy[N * 2] = { 0, 0, 224, 0, 448, 224 };
	h5_put(fid, "coords", 2, c2, H5T_STD_I32LE, H5T_NATIVE_INT32, xy);
	hid_t ds = H5Dopen2(fid, "coords", H5P_DEFAULT);
	hid_t sc = H5Screate(H5S_SCALAR);
	int64_t ps = 224;
	hid_t a = H5Acreate2(ds, "patch_size", H5T_STD_I64LE, sc, H5P_DEFAULT, H5P_DEFAULT);
	H5Awrite(a, H5T_NATIVE_INT64, &ps);
	H5Aclose(a);
	ps = 448;
	a = H5Acreate2(ds, "patch_size_level0", H5T_STD_I64LE, sc, H5P_DEFAULT, H5P_DEFAULT);
	H5Awrite(a, H5T_NATIVE_INT64, &ps);
	H5Aclose(a);
	hid_t st = H5Tcopy(H5T_C_S1);
	H5Tset_size(st, 5);
	a = H5Acreate2(ds, "name", st, sc, H5P_DEFAULT, H5P_DEFAULT); /* ignored */
	H5Awrite(a, st, "slide");
	H5Aclose(a);
	H5Tclose(st);
	H5Sclose(sc);
	H5Dclose(ds);
	H5Fclose(fid);
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_h5(&f, p, &e);
	REQUIRE(rc == 0, "%s", e.msg);
	CHECK(f.n == N && f.d == D, "%llu x %u", (unsigned long long)f.n, f.d);
	for (int i = 0; i < N * D; i++)
		CHECK(f.x[i] == (float)x[i], "x[%d]", i);
	CHECK(f.coords && f.coords[4] == 448 && f.coords[5] == 224, "int32 coords");
	CHECK(f.patch_size == 224 && f.patch_size_level0 == 448 && f.patch_level == -1 &&
	              f.downsample == 0,
	      "attrs");
	feats_free(&f);

	/* float16 features (an IEEE half built by hand) convert too */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hid_t half = H5Tcopy(H5T_IEEE_F32LE);
	H5Tset_fields(half, 15, 10, 5, 0, 10);
	H5Tset_precision(half, 16);
	H5Tset_size(half, 2);
	H5Tset_ebias(half, 15);
	float hx[4] = { 0.5f, -2.0f, 1024.0f, 0.125f };
	hsize_t d2[2] = { 2, 2 };
	h5_put(fid, "features", 2, d2, half, H5T_NATIVE_FLOAT, hx);
	H5Tclose(half);
	/* coords with the wrong row count */
	int64_t cxy[6] = { 0 };
	hsize_t c3[2] = { 3, 2 };
	h5_put(fid, "coords", 2, c3, H5T_STD_I64LE, H5T_NATIVE_INT64, cxy);
	H5Fclose(fid);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "dataset 'coords' is 3 x 2, expected 2 x 2"), "%s",
	      e.msg);
	fid = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
	H5Ldelete(fid, "coords", H5P_DEFAULT);
	H5Fclose(fid);
	err_clear(&e);
	rc = featio_read_h5(&f, p, &e);
	REQUIRE(rc == 0, "float16: %s", e.msg);
	CHECK(!memcmp(f.x, hx, sizeof hx), "float16 values %g %g %g %g", (double)f.x[0],
	      (double)f.x[1], (double)f.x[2], (double)f.x[3]);
	feats_free(&f);

	/* a 3 x N x D array is not a bag; CLAM's downsample pair is read */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hsize_t bad3[3] = { 3, 1, 5 };
	h5_put(fid, "features", 3, bad3, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, x);
	H5Fclose(fid);
	err_clear(&e);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "shape (3, 1, 5)"), "%s", e.msg);
}

static void test_h5_bad_attrs(void)
{
	const char *p = tmp("attrs.h5");
	hid_t fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	float x[2] = { 1, 2 };
	double xy[2] = { 10.0, 20.5 };
	hsize_t d[2] = { 1, 2 };
	h5_put(fid, "features", 2, d, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x);
	h5_put(fid, "coords", 2, d, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, xy);
	H5Fclose(fid);
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "row 1: y = 20.5"), "%s", e.msg);
	fid = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
	hid_t ds = H5Dopen2(fid, "coords", H5P_DEFAULT);
	xy[1] = 20;
	H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, xy);
	hid_t sc = H5Screate(H5S_SCALAR);
	double lvl = 1.5;
	hid_t a = H5Acreate2(ds, "patch_level", H5T_IEEE_F64LE, sc, H5P_DEFAULT, H5P_DEFAULT);
	H5Awrite(a, H5T_NATIVE_DOUBLE, &lvl);
	H5Aclose(a);
	H5Sclose(sc);
	H5Dclose(ds);
	H5Fclose(fid);
	err_clear(&e);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "attribute 'patch_level' of 'coords' is 1.5"), "%s",
	      e.msg);
}

static void test_h5_clam_chunked_and_huge(void)
{
	/* CLAM's save_hdf5: chunked (1, D), unlimited first axis; add deflate */
	enum { N = 40, D = 16 };
	const char *p = tmp("clam.h5");
	hid_t fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hsize_t dims[2] = { N, D }, maxd[2] = { H5S_UNLIMITED, D }, chunk[2] = { 1, D };
	float x[N * D];
	for (int i = 0; i < N * D; i++)
		x[i] = (float)(i % 17) * 0.5f;
	hid_t sp = H5Screate_simple(2, dims, maxd);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
	H5Pset_chunk(dcpl, 2, chunk);
	H5Pset_deflate(dcpl, 6);
	hid_t ds = H5Dcreate2(fid, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
	H5Dclose(ds);
	H5Pclose(dcpl);
	H5Sclose(sp);
	H5Fclose(fid);
	struct feats f;
	struct err e = { 0 };
	int rc = featio_read_h5(&f, p, &e);
	REQUIRE(rc == 0, "%s", e.msg);
	CHECK(f.n == N && f.d == D && !memcmp(f.x, x, sizeof x), "chunked deflate features");
	feats_free(&f);

	/* 2^20 x 4096 float32 declared, never written: 16 GiB the file cannot
	 * hold, refused before allocating */
	fid = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hsize_t big[2] = { 1u << 20, 4096 };
	sp = H5Screate_simple(2, big, NULL);
	ds = H5Dcreate2(fid, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
	H5Dclose(ds);
	H5Sclose(sp);
	H5Fclose(fid);
	rc = featio_read_h5(&f, p, &e);
	CHECK(rc == ERR_FORMAT && has(&e, "more than a file of"), "%d %s", rc, e.msg);
}

int main(void)
{
	RUN(test_npy_roundtrip_bits);
	RUN(test_npy_numpy_reference);
	RUN(test_npy_v2_header);
	RUN(test_npy_float64);
	RUN(test_npy_wrong_dtype);
	RUN(test_npy_truncated_and_trailing);
	RUN(test_npy_bad_magic_and_header);
	RUN(test_npy_nan);
	RUN(test_coords_npy);
	RUN(test_csv_header_and_not);
	RUN(test_csv_errors);
	RUN(test_csv_locale_and_roundtrip);
	RUN(test_csv_wide_and_long);
	RUN(test_h5_roundtrip);
	RUN(test_h5_missing_features);
	RUN(test_h5_other_files_refused);
	RUN(test_h5_trident_shapes);
	RUN(test_h5_bad_attrs);
	RUN(test_h5_clam_chunked_and_huge);
	return check_summary();
}
