/* test_slide.c - slide opening, resolution, fast path vs OpenSlide, resampling,
 * corrupt tiles. */
#include <stdint.h>
#include <tiffio.h>

#include "../../lib/wsi/slide.h"
#include "../../lib/wsi/slidegen.h"
#include "check.h"

static char P_CM[600], P_INCH[600], P_NONE[600], P_APERIO[600], P_RGB[600], P_ODD[600];

static int gen(const char *path, uint32_t w, uint32_t h, int unit, int aperio, int ycbcr, uint64_t seed)
{
	struct slidegen_params p;
	slidegen_params_default(&p);
	p.width = w;
	p.height = h;
	p.res_unit = unit;
	p.aperio = aperio;
	p.ycbcr = ycbcr;
	p.seed = seed;
	p.mpp = 0.25;
	struct slidegen *g;
	struct err e = {0};
	int rc = slidegen_create(&g, &p, &e);
	if (!rc)
		rc = slidegen_write_tiff(g, path, &e);
	if (rc)
		printf("     gen %s: %s\n", path, e.msg);
	slidegen_free(g);
	return rc;
}

static void test_generate(void)
{
	const char *d = check_tmpdir();
	snprintf(P_CM, sizeof P_CM, "%s/cm.tif", d);
	snprintf(P_INCH, sizeof P_INCH, "%s/inch.tif", d);
	snprintf(P_NONE, sizeof P_NONE, "%s/none.tif", d);
	snprintf(P_APERIO, sizeof P_APERIO, "%s/aperio.tif", d);
	snprintf(P_RGB, sizeof P_RGB, "%s/rgb.tif", d);
	snprintf(P_ODD, sizeof P_ODD, "%s/odd.tif", d);
	REQUIRE(!gen(P_CM, 2048, 1536, SLIDEGEN_RES_CM, 0, 1, 3), "cm");
	REQUIRE(!gen(P_INCH, 1024, 768, SLIDEGEN_RES_INCH, 0, 1, 4), "inch");
	REQUIRE(!gen(P_NONE, 1024, 768, SLIDEGEN_RES_NONE, 0, 1, 5), "none");
	REQUIRE(!gen(P_APERIO, 1024, 768, SLIDEGEN_RES_NONE, 1, 1, 6), "aperio");
	REQUIRE(!gen(P_RGB, 1024, 768, SLIDEGEN_RES_CM, 0, 0, 7), "rgb");
	REQUIRE(!gen(P_ODD, 1000, 700, SLIDEGEN_RES_CM, 0, 1, 8), "odd");
}

static void test_open_levels(void)
{
	struct slide *s;
	struct err e = {0};
	REQUIRE(!slide_open(&s, P_CM, &e), "%s", e.msg);
	CHECK(!strcmp(slide_vendor(s), "generic-tiff"), "vendor %s", slide_vendor(s));
	CHECK(slide_level_count(s) == 5, "levels %d", slide_level_count(s));
	int64_t w, h;
	slide_level_size(s, 1, &w, &h);
	CHECK(w == 1024 && h == 768, "level 1 %lldx%lld", (long long)w, (long long)h);
	CHECK(slide_level_downsample(s, 2) == 4, "ds %g", slide_level_downsample(s, 2));
	for (int L = 0; L < slide_level_count(s); L++)
		CHECK(slide_fast_level(s, L), "level %d has no fast path", L);
	slide_close(s);
}

static void test_mpp_sources(void)
{
	struct err e = {0};
	struct slide *s;
	double mpp;
	int src;
	REQUIRE(!slide_open(&s, P_CM, &e), "%s", e.msg);
	CHECK(!slide_base_mpp(s, 0, 0, &mpp, &src, &e) && src == SLIDE_MPP_TIFF_CM && check_close(mpp, 0.25, 1e-6, 0),
	      "cm: %g %d %s", mpp, src, e.msg);
	CHECK(!slide_base_mpp(s, 0.5, 1, &mpp, &src, &e) && src == SLIDE_MPP_USER && mpp == 0.5, "forced user");
	slide_close(s);
	REQUIRE(!slide_open(&s, P_INCH, &e), "%s", e.msg);
	CHECK(!slide_base_mpp(s, 0, 0, &mpp, &src, &e) && src == SLIDE_MPP_TIFF_INCH && check_close(mpp, 0.25, 1e-6, 0),
	      "inch: %g %d", mpp, src);
	slide_close(s);
	REQUIRE(!slide_open(&s, P_APERIO, &e), "%s", e.msg);
	CHECK(!strcmp(slide_vendor(s), "aperio"), "vendor %s", slide_vendor(s));
	CHECK(!slide_base_mpp(s, 0, 0, &mpp, &src, &e) && src == SLIDE_MPP_PROPERTY && mpp == 0.25, "property: %g %d",
	      mpp, src);
	struct slide_res r;
	CHECK(!slide_resolve(s, 0, 10, 0, 0, &r, &e) && r.level == 2 && r.scale == 1 && r.downsample == 4 &&
	          !strcmp(r.mag_source, "openslide.objective-power"),
	      "10x: level %d scale %g", r.level, r.scale);
	slide_close(s);
	REQUIRE(!slide_open(&s, P_NONE, &e), "%s", e.msg);
	struct err e2 = {0};
	CHECK(slide_base_mpp(s, 0, 0, &mpp, &src, &e2) == ERR_FORMAT && strstr(e2.msg, "no µm/px") &&
	          strstr(e2.msg, "--slide-mpp"),
	      "missing: %s", e2.msg);
	CHECK(!slide_base_mpp(s, 0.3, 0, &mpp, &src, &e) && src == SLIDE_MPP_USER && mpp == 0.3, "user fallback");
	slide_close(s);
}

static void test_resolve(void)
{
	struct err e = {0};
	struct slide *s;
	REQUIRE(!slide_open(&s, P_CM, &e), "%s", e.msg);
	struct slide_res r;
	REQUIRE(!slide_resolve(s, 1.0, 0, 0, 0, &r, &e), "%s", e.msg);
	CHECK(r.level == 2 && r.scale == 1 && r.mpp == 1.0, "1 µm/px: level %d scale %g", r.level, r.scale);
	REQUIRE(!slide_resolve(s, 0.75, 0, 0, 0, &r, &e), "%s", e.msg);
	CHECK(r.level == 1 && check_close(r.scale, 1.5, 1e-12, 0), "0.75: level %d scale %g", r.level, r.scale);
	REQUIRE(!slide_resolve(s, 0, 5, 0, 0, &r, &e), "%s", e.msg);
	CHECK(r.level == 3 && r.scale == 1 && r.mag0 == 40 && !strcmp(r.mag_source, "mpp"), "5x: level %d mag0 %g",
	      r.level, r.mag0);
	struct err e2 = {0};
	CHECK(slide_resolve(s, 0.1, 0, 0, 0, &r, &e2) == ERR_USAGE && strstr(e2.msg, "finer"), "0.1: %s", e2.msg);
	slide_close(s);
}

static int compare_paths(const char *path, int level, uint32_t n, int *count)
{
	struct err e = {0};
	struct slide *a, *b;
	if (slide_open(&a, path, &e) || slide_open(&b, path, &e)) {
		printf("     %s\n", e.msg);
		return -1;
	}
	slide_set_fast(b, 0);
	int64_t w, h;
	slide_level_size(a, level, &w, &h);
	double ds = slide_level_downsample(a, level);
	uint8_t *pa = malloc((size_t)n * n * 3), *pb = malloc((size_t)n * n * 3);
	int diff = 0;
	*count = 0;
	for (int64_t y = 0; y < h; y += n)
		for (int64_t x = 0; x < w; x += n) {
			if (slide_read_region(a, level, (int64_t)(x * ds), (int64_t)(y * ds), n, n, pa, &e) ||
			    slide_read_region(b, level, (int64_t)(x * ds), (int64_t)(y * ds), n, n, pb, &e)) {
				printf("     %s\n", e.msg);
				diff++;
			} else if (memcmp(pa, pb, (size_t)n * n * 3)) {
				diff++;
			}
			(*count)++;
		}
	struct slide_stats sa, sb;
	slide_stats(a, &sa);
	slide_stats(b, &sb);
	if (sa.fast_tiles == 0 || sb.fast_tiles != 0 || sa.openslide_reads != 0)
		diff += 1000;
	free(pa);
	free(pb);
	slide_close(a);
	slide_close(b);
	return diff;
}

static void test_fast_path_identical(void)
{
	int n;
	CHECK(compare_paths(P_CM, 0, 256, &n) == 0 && n == 48, "level 0, 256: %d regions", n);
	CHECK(compare_paths(P_CM, 1, 512, &n) == 0, "level 1, 512");
	CHECK(compare_paths(P_CM, 4, 256, &n) == 0, "level 4 (one partial tile)");
	CHECK(compare_paths(P_RGB, 0, 256, &n) == 0, "rgb jpeg");
	CHECK(compare_paths(P_APERIO, 0, 256, &n) == 0, "aperio");
	CHECK(compare_paths(P_ODD, 0, 256, &n) == 0, "1000x700, edge tiles");
}

static void test_resample_area_average(void)
{
	struct err e = {0};
	struct slide *s;
	REQUIRE(!slide_open(&s, P_CM, &e), "%s", e.msg);
	struct slide_res r;
	slide_res_level(s, 0, &r);
	r.scale = 2;
	r.downsample = 2;
	uint8_t *big = malloc(128 * 128 * 3), *pat = malloc(64 * 64 * 3);
	REQUIRE(!slide_read_region(s, 0, 512, 512, 128, 128, big, &e), "%s", e.msg);
	REQUIRE(!slide_read_patch(s, &r, 512, 512, 64, pat, &e), "%s", e.msg);
	int bad = 0;
	for (int y = 0; y < 64; y++)
		for (int x = 0; x < 64; x++)
			for (int c = 0; c < 3; c++) {
				int sum = 0;
				for (int dy = 0; dy < 2; dy++)
					for (int dx = 0; dx < 2; dx++)
						sum += big[((2 * y + dy) * 128 + 2 * x + dx) * 3 + c];
				int want = (int)((sum / 4.0) + 0.5);
				if (abs(want - pat[(y * 64 + x) * 3 + c]) > 0)
					bad++;
			}
	CHECK(bad == 0, "%d samples differ from the 2x2 mean", bad);
	/* a fractional scale keeps the mean colour */
	REQUIRE(!slide_resolve(s, 0.375, 0, 0, 0, &r, &e), "%s", e.msg);
	CHECK(r.level == 0 && check_close(r.scale, 1.5, 1e-12, 0), "scale %g", r.scale);
	REQUIRE(!slide_read_patch(s, &r, 768, 768, 64, pat, &e), "%s", e.msg);
	REQUIRE(!slide_read_region(s, 0, 768, 768, 96, 96, big, &e), "%s", e.msg);
	double m1 = 0, m2 = 0;
	for (int i = 0; i < 64 * 64 * 3; i++)
		m1 += pat[i];
	for (int i = 0; i < 96 * 96 * 3; i++)
		m2 += big[i];
	m1 /= 64 * 64 * 3;
	m2 /= 96 * 96 * 3;
	CHECK(fabs(m1 - m2) < 0.5, "means %g vs %g", m1, m2);
	free(big);
	free(pat);
	slide_close(s);
}

static void test_corrupt_tile(void)
{
	char bad[700];
	snprintf(bad, sizeof bad, "%s/corrupt.tif", check_tmpdir());
	/* copy, then overwrite the middle of level 0 tile (2, 2) */
	FILE *in = fopen(P_CM, "rb"), *out = fopen(bad, "wb");
	REQUIRE(in && out, "copy");
	char buf[65536];
	size_t k;
	while ((k = fread(buf, 1, sizeof buf, in)) > 0)
		fwrite(buf, 1, k, out);
	fclose(in);
	fclose(out);
	TIFF *t = TIFFOpen(bad, "r");
	REQUIRE(t, "tiff");
	uint32_t idx = TIFFComputeTile(t, 512, 512, 0, 0);
	uint64_t off = TIFFGetStrileOffset(t, idx), cnt = TIFFGetStrileByteCount(t, idx);
	TIFFClose(t);
	FILE *f = fopen(bad, "r+b");
	REQUIRE(f && cnt > 200, "reopen");
	fseek(f, (long)(off + 20), SEEK_SET);
	for (int i = 0; i < 60; i++)
		fputc(0xFF, f);
	fseek(f, (long)(off + cnt / 2), SEEK_SET);
	for (int i = 0; i < (int)cnt / 2 - 2; i++)
		fputc(i * 37, f);
	fclose(f);
	struct err e = {0};
	struct slide *s;
	REQUIRE(!slide_open(&s, bad, &e), "%s", e.msg);
	uint8_t *pix = malloc(256 * 256 * 3);
	for (int fast = 1; fast >= 0; fast--) {
		slide_set_fast(s, fast);
		struct err e2 = {0};
		int rc = slide_read_region(s, 0, 512, 512, 256, 256, pix, &e2);
		CHECK(rc == ERR_FORMAT && strstr(e2.msg, "corrupt.tif"), "fast=%d: rc %d: %s", fast, rc, e2.msg);
		struct err e3 = {0};
		rc = slide_read_region(s, 0, 0, 0, 256, 256, pix, &e3);
		CHECK(rc == 0, "fast=%d: a good tile after a bad one: %s", fast, e3.msg);
	}
	struct slide_stats st;
	slide_stats(s, &st);
	CHECK(st.bad_tiles == 2 && st.reopens == 1, "bad %llu reopens %llu", (unsigned long long)st.bad_tiles,
	      (unsigned long long)st.reopens);
	free(pix);
	slide_close(s);
}

static void test_open_errors(void)
{
	struct err e = {0};
	struct slide *s;
	CHECK(slide_open(&s, "/nonexistent/x.tif", &e) == ERR_IO && strstr(e.msg, "/nonexistent/x.tif"), "%s", e.msg);
	char p[700];
	snprintf(p, sizeof p, "%s/text.tif", check_tmpdir());
	FILE *f = fopen(p, "w");
	fputs("hello, not a slide\n", f);
	fclose(f);
	err_clear(&e);
	CHECK(slide_open(&s, p, &e) == ERR_FORMAT && strstr(e.msg, "text.tif"), "%s", e.msg);
}

int main(void)
{
	RUN(test_generate);
	RUN(test_open_levels);
	RUN(test_mpp_sources);
	RUN(test_resolve);
	RUN(test_fast_path_identical);
	RUN(test_resample_area_average);
	RUN(test_corrupt_tile);
	RUN(test_open_errors);
	return check_summary();
}
