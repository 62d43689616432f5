/* test_tissue.c - the CLAM-compatible segmenter: masks of generated slides
 * against the generator's own mask, area and hole filtering, presets, tissue
 * fractions, contours and their tracing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/base/progress.h"
#include "../../lib/base/rng.h"
#include "../../lib/wsi/slide.h"
#include "../../lib/wsi/slidegen.h"
#include "../../lib/wsi/tissue.h"
#include "check.h"

static double iou(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i_ = 0, u = 0;
	for (size_t i = 0; i < n; i++) {
		int x = a[i] != 0, y = b[i] != 0;
		i_ += x && y;
		u += x || y;
	}
	return u ? (double)i_ / u : 1;
}

static void one_slide(uint32_t w, uint32_t h, int blobs, uint64_t seed, int seg_level, double min_iou, double max_seconds)
{
	struct slidegen_params p;
	slidegen_params_default(&p);
	p.width = w;
	p.height = h;
	p.seed = seed;
	p.tumours = 2;
	p.blobs = blobs;
	struct slidegen *g;
	struct err e = {0};
	REQUIRE(!slidegen_create(&g, &p, &e), "%s", e.msg);
	char path[600];
	snprintf(path, sizeof path, "%s/t%llu.tif", check_tmpdir(), (unsigned long long)seed);
	REQUIRE(!slidegen_write_tiff(g, path, &e), "%s", e.msg);
	struct slide *s;
	REQUIRE(!slide_open(&s, path, &e), "%s", e.msg);
	struct tissue_params tp;
	tissue_params_default(&tp);
	tp.seg_level = seg_level;
	tp.a_t = 1; /* generated slides are small */
	struct tissue_mask m;
	double t0 = progress_now();
	int rc = tissue_segment(s, &tp, &m, &e);
	double dt = progress_now() - t0;
	REQUIRE(!rc, "%s", e.msg);
	uint8_t *gm;
	uint32_t gw, gh;
	REQUIRE(!slidegen_mask(g, SLIDEGEN_MASK_TISSUE, (uint32_t)m.ds, &gm, &gw, &gh, &e), "%s", e.msg);
	REQUIRE(gw == m.w && gh == m.h, "mask sizes %ux%u vs %ux%u", gw, gh, m.w, m.h);
	double v = iou(m.m, gm, (size_t)gw * gh);
	CHECK(v >= min_iou, "seed %llu level %d (ds %g): IoU %.4f", (unsigned long long)seed, m.level, m.ds, v);
	CHECK(dt < max_seconds, "segmentation took %.3f s", dt);
	printf("     %ux%u seed %llu: level %d (%ux%u, ds %g), IoU %.4f, %.1f ms\n", w, h, (unsigned long long)seed,
	       m.level, m.w, m.h, m.ds, v, dt * 1000);
	free(gm);
	tissue_mask_free(&m);
	slide_close(s);
	slidegen_free(g);
}

static void test_iou_generated(void)
{
	/* the JPEG tiles bleed colour about one pixel past the tissue edge at
	 * every level, so the IoU is measured where the tissue spans a few
	 * hundred pixels of the segmented level */
	one_slide(4096, 3072, 1, 21, 3, 0.95, 1.0);
	one_slide(8192, 6144, 2, 22, 4, 0.95, 1.0);
	one_slide(8192, 6144, 1, 23, 4, 0.95, 1.0);
	one_slide(8192, 6144, 1, 24, -1, 0.0, 1.0); /* 64x as CLAM picks it: reported */
}

/* a synthetic image: saturated squares on white */
static uint8_t *canvas(uint32_t w, uint32_t h)
{
	uint8_t *p = malloc((size_t)w * h * 3);
	memset(p, 245, (size_t)w * h * 3);
	return p;
}

static void paint(uint8_t *p, uint32_t w, uint32_t x0, uint32_t y0, uint32_t x1, uint32_t y1, int on)
{
	for (uint32_t y = y0; y < y1; y++)
		for (uint32_t x = x0; x < x1; x++) {
			uint8_t *q = p + ((size_t)y * w + x) * 3;
			q[0] = on ? 220 : 245;
			q[1] = on ? 150 : 245;
			q[2] = on ? 200 : 245;
		}
}

static void test_filters(void)
{
	struct tissue_params tp;
	tissue_params_default(&tp);
	tp.mthresh = 1;
	tp.close = 0;
	/* ds = 512: one mask pixel is one reference patch; a_t = 100, a_h = 16 */
	const uint32_t W = 200, H = 100;
	uint8_t *img = canvas(W, H);
	paint(img, W, 10, 10, 60, 60, 1);   /* 2500 px of tissue */
	paint(img, W, 20, 20, 30, 30, 0);   /* a 100 px hole: kept */
	paint(img, W, 40, 40, 43, 43, 0);   /* a 9 px hole: filled (< a_h) */
	paint(img, W, 100, 10, 108, 18, 1); /* a 64 px blob: dropped (< a_t) */
	paint(img, W, 120, 10, 190, 90, 1); /* tissue with 10 holes of 25 px */
	for (int k = 0; k < 10; k++)
		paint(img, W, 125 + 6 * (uint32_t)k, 20, 130 + 6 * (uint32_t)k, 25, 0);
	struct tissue_mask m;
	struct err e = {0};
	REQUIRE(!tissue_segment_rgb(img, W, H, 512, &tp, &m, &e), "%s", e.msg);
	CHECK(m.m[25 * W + 25] == 0, "big hole kept");
	CHECK(m.m[41 * W + 41] == 1, "small hole filled");
	CHECK(m.m[14 * W + 104] == 0, "small blob dropped");
	CHECK(m.components == 2, "components %d", m.components);
	int open = 0;
	for (int k = 0; k < 10; k++)
		open += m.m[22 * W + 127 + 6 * (uint32_t)k] == 0;
	CHECK(open == 8 && m.holes == 9, "max_n_holes: %d of 10 holes open, %d kept in all", open, m.holes);
	/* tissue fraction: exact over the piecewise constant mask */
	CHECK(check_close(tissue_fraction(&m, 10 * 512, 10 * 512, 5 * 512), 1, 1e-12, 0), "full");
	CHECK(check_close(tissue_fraction(&m, 7.5 * 512, 12 * 512, 5 * 512), 0.5, 1e-12, 0), "half: %g",
	      tissue_fraction(&m, 7.5 * 512, 12 * 512, 5 * 512));
	CHECK(tissue_fraction(&m, 0, 0, 512) == 0, "empty");
	char path[600];
	snprintf(path, sizeof path, "%s/c.geojson", check_tmpdir());
	REQUIRE(!tissue_write_geojson(&m, path, &e), "%s", e.msg);
	FILE *f = fopen(path, "r");
	char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	int feats = 0, rings = 0;
	for (char *q = buf; (q = strstr(q, "\"Feature\"")); q++)
		feats++;
	for (char *q = buf; (q = strstr(q, "[[")); q++)
		rings++;
	/* 2 features; rings: 2 outer + 1 + 8 holes; each feature opens with "[[[" (2 matches) */
	CHECK(feats == 2 && rings == 2 * 2 + 9, "features %d, ring openings %d", feats, rings);
	CHECK(strstr(buf, "[5120,5120]") != NULL, "level-0 coordinates");
	tissue_mask_free(&m);
	/* Otsu and sthresh */
	img = canvas(64, 64);
	paint(img, 64, 0, 0, 32, 64, 1);
	tp.use_otsu = 1;
	tp.a_t = 0;
	REQUIRE(!tissue_segment_rgb(img, 64, 64, 1, &tp, &m, &e), "%s", e.msg);
	CHECK(m.threshold == 0 && m.m[10] == 1 && m.m[50] == 0, "otsu threshold %d", m.threshold);
	tissue_mask_free(&m);
}

static void test_presets(void)
{
	struct tissue_params p;
	struct err e = {0};
	REQUIRE(!tissue_preset(&p, "tcga", &e), "%s", e.msg);
	CHECK(p.sthresh == 8 && p.mthresh == 7 && p.close == 4 && p.a_t == 16 && p.a_h == 4 && p.max_n_holes == 8, "tcga");
	REQUIRE(!tissue_preset(&p, "bwh_biopsy", &e), "%s", e.msg);
	CHECK(p.sthresh == 15 && p.mthresh == 11 && p.close == 2 && p.a_t == 1 && p.a_h == 1 && p.max_n_holes == 2,
	      "bwh_biopsy");
	REQUIRE(!tissue_preset(&p, "bwh_resection", &e), "%s", e.msg);
	CHECK(p.sthresh == 15 && p.mthresh == 11 && p.close == 4 && p.a_t == 100 && p.a_h == 16 && p.max_n_holes == 8,
	      "bwh_resection");
	REQUIRE(!tissue_preset(&p, "default", &e), "%s", e.msg);
	CHECK(p.seg_level == -1 && p.sthresh == 8 && p.mthresh == 7 && p.close == 4 && !p.use_otsu && p.a_t == 100 &&
	          p.a_h == 16 && p.max_n_holes == 8,
	      "CLAM defaults");
	CHECK(tissue_preset(&p, "nope", &e) == ERR_USAGE && strstr(e.msg, "tcga"), "%s", e.msg);
}

/* a mask from rows of '#' (tissue) and '.' */
static struct tissue_mask mask_of(const char *const *rows, uint32_t h)
{
	struct tissue_mask m;
	memset(&m, 0, sizeof m);
	m.h = h;
	m.w = (uint32_t)strlen(rows[0]);
	m.ds = 1;
	m.m = calloc((size_t)m.w * m.h, 1);
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < m.w; x++)
			m.m[(size_t)y * m.w + x] = rows[y][x] == '#';
	return m;
}

/* what every tracing must hold: the ring areas sum to the tissue pixels,
 * every vertex lies on the grid of pixel corners, consecutive vertices are
 * joined by an axis-parallel edge and turn at every vertex, every hole has
 * an outer owner whose box holds it */
static void check_contours(const struct tissue_mask *m, const struct tissue_contours *c, const char *what)
{
	double sum = 0;
	size_t px = 0;
	for (size_t i = 0; i < (size_t)m->w * m->h; i++)
		px += m->m[i] != 0;
	for (size_t r = 0; r < c->nrings; r++) {
		const struct tissue_ring *g = &c->rings[r];
		sum += g->area;
		CHECK(g->n >= 4 && g->start + g->n <= c->nv, "%s: ring %zu has %zu vertices", what, r, g->n);
		for (size_t v = 0; v < g->n; v++) {
			size_t a = g->start + v, b = g->start + (v + 1) % g->n, p = g->start + (v + g->n - 1) % g->n;
			long x = c->x[a], y = c->y[a];
			CHECK(x >= 0 && y >= 0 && x <= (long)m->w && y <= (long)m->h, "%s: vertex (%ld, %ld) outside", what, x, y);
			CHECK((c->x[b] == x) != (c->y[b] == y), "%s: ring %zu edge %zu is not axis-parallel", what, r, v);
			long ax = x - c->x[p], ay = y - c->y[p], bx = c->x[b] - x, by = c->y[b] - y;
			CHECK(ax * by - ay * bx != 0, "%s: ring %zu vertex %zu does not turn", what, r, v);
		}
		if (g->area < 0) {
			CHECK(g->owner >= 0 && c->rings[g->owner].area > 0, "%s: hole %zu without owner", what, r);
			if (g->owner >= 0) {
				const struct tissue_ring *o = &c->rings[g->owner];
				CHECK(g->minx >= o->minx && g->maxx <= o->maxx && g->miny >= o->miny && g->maxy <= o->maxy,
				      "%s: hole %zu outside its owner's box", what, r);
			}
		} else {
			CHECK(g->owner == (long)r, "%s: outer ring %zu owned by %ld", what, r, g->owner);
		}
	}
	CHECK(sum == (double)px, "%s: ring areas sum to %g, %zu tissue pixels", what, sum, px);
}

static void test_trace_shapes(void)
{
	struct err e = {0};
	struct tissue_contours c;
	static const char *const one[] = {"...", ".#.", "..."};
	struct tissue_mask m = mask_of(one, 3);
	REQUIRE(!tissue_trace(&m, &c, &e), "%s", e.msg);
	CHECK(c.nrings == 1 && c.rings[0].n == 4 && c.rings[0].area == 1, "one pixel: %zu rings", c.nrings);
	CHECK(c.rings[0].minx == 1 && c.rings[0].maxx == 2 && c.rings[0].miny == 1 && c.rings[0].maxy == 2,
	      "one pixel's box");
	check_contours(&m, &c, "one pixel");
	tissue_contours_free(&c);
	free(m.m);

	/* a ring of tissue around a hole holding an island: the hole belongs
	 * to the ring (the island's box cannot hold it), the island is an
	 * outer ring of its own */
	static const char *const nest[] = {"#######", "#.....#", "#.###.#", "#.###.#", "#.....#", "#######"};
	m = mask_of(nest, 6);
	REQUIRE(!tissue_trace(&m, &c, &e), "%s", e.msg);
	CHECK(c.nrings == 3, "nested: %zu rings", c.nrings);
	if (c.nrings == 3) {
		CHECK(c.rings[0].area == 42 && c.rings[1].area == -20 && c.rings[2].area == 6,
		      "nested areas %g %g %g", c.rings[0].area, c.rings[1].area, c.rings[2].area);
		CHECK(c.rings[1].owner == 0, "the hole's owner is the ring, not %ld", c.rings[1].owner);
	}
	check_contours(&m, &c, "nested");
	tissue_contours_free(&c);
	free(m.m);

	/* diagonal neighbours are one component (8-connected): one ring */
	static const char *const diag[] = {"#..", ".#.", "..#"};
	m = mask_of(diag, 3);
	REQUIRE(!tissue_trace(&m, &c, &e), "%s", e.msg);
	CHECK(c.nrings == 1 && c.rings[0].area == 3, "diagonal: %zu rings", c.nrings);
	check_contours(&m, &c, "diagonal");
	tissue_contours_free(&c);
	free(m.m);

	/* two blobs, the second with two holes */
	static const char *const two[] = {"##......", "##.#####", "...#.#.#", "...#####"};
	m = mask_of(two, 4);
	REQUIRE(!tissue_trace(&m, &c, &e), "%s", e.msg);
	size_t outer = 0, holes = 0;
	for (size_t r = 0; r < c.nrings; r++)
		c.rings[r].area > 0 ? outer++ : holes++;
	CHECK(outer == 2 && holes == 2, "two blobs: %zu outer rings, %zu holes", outer, holes);
	check_contours(&m, &c, "two blobs");
	tissue_contours_free(&c);
	free(m.m);

	/* an empty mask: no ring */
	static const char *const none[] = {"....", "...."};
	m = mask_of(none, 2);
	REQUIRE(!tissue_trace(&m, &c, &e), "%s", e.msg);
	CHECK(c.nrings == 0 && c.nv == 0, "empty: %zu rings", c.nrings);
	tissue_contours_free(&c);
	free(m.m);
}

/* random masks of several densities: the invariants of check_contours */
static void test_trace_random(void)
{
	struct err e = {0};
	struct rng r;
	rng_seed(&r, 2026, 12);
	for (int t = 0; t < 300 && !check_case_failed; t++) {
		struct tissue_mask m;
		memset(&m, 0, sizeof m);
		m.w = 1 + rng_u32(&r) % 24;
		m.h = 1 + rng_u32(&r) % 17;
		m.ds = 1;
		double p = 0.2 + 0.6 * rng_float(&r);
		m.m = malloc((size_t)m.w * m.h);
		for (size_t i = 0; i < (size_t)m.w * m.h; i++)
			m.m[i] = rng_float(&r) < p;
		struct tissue_contours c;
		REQUIRE(!tissue_trace(&m, &c, &e), "%s", e.msg);
		char what[64];
		snprintf(what, sizeof what, "random mask %d (%ux%u)", t, m.w, m.h);
		check_contours(&m, &c, what);
		tissue_contours_free(&c);
		free(m.m);
	}
}

int main(void)
{
	RUN(test_trace_shapes);
	RUN(test_trace_random);
	RUN(test_iou_generated);
	RUN(test_filters);
	RUN(test_presets);
	return check_summary();
}
