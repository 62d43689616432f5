/* test_froc.c - the lesion-level FROC's pieces: the annotation raster against
 * the point rule, the evaluation mask (dilation against brute force, holes,
 * 8-connected labels, major axes, ITCs), the detection rules, the
 * challenge's CSV reader, the matching and the curve with the published
 * script's quirks (lib/wsi/FROC.md), numpy.interp's reading, the bootstrap. */
#include <stdint.h>

#include "../../lib/base/rng.h"
#include "../../lib/mil/froc.h"
#include "../../lib/wsi/annot.h"
#include "../../lib/wsi/lesion.h"
#include "check.h"

/* ---- annot_mask: every pixel as annot_inside says at its centre ---- */

static void check_mask(const struct annot *a, double ds, int64_t ox, int64_t oy, uint32_t w, uint32_t h,
                       const char *what)
{
	uint8_t *m = malloc((size_t)w * h);
	struct err e = {0};
	if (annot_mask(a, ds, ox, oy, w, h, m, &e)) {
		CHECK(0, "%s: %s", what, e.msg);
		free(m);
		return;
	}
	size_t bad = 0, on = 0;
	for (uint32_t r = 0; r < h; r++)
		for (uint32_t c = 0; c < w; c++) {
			int want = annot_inside(a, ((double)(ox + c) + 0.5) * ds, ((double)(oy + r) + 0.5) * ds);
			bad += m[(size_t)r * w + c] != want;
			on += want;
		}
	CHECK(bad == 0, "%s: %zu of %u pixels differ from annot_inside (%zu inside)", what, bad, w * h, on);
	free(m);
}

static void test_mask_matches_point_rule(void)
{
	/* squares on integer coordinates whose edges pass through pixel
	 * centres (ds 16: centres at 8, 24, ...), two sharing an edge, one
	 * touching at a corner, an exclusion sharing an edge with its tumour,
	 * a diagonal through centres, a bow tie */
	const char *gj =
		"{\"type\":\"FeatureCollection\",\"features\":["
		"{\"type\":\"Feature\",\"properties\":{\"classification\":{\"name\":\"Tumor\"}},\"geometry\":{\"type\":\"Polygon\","
		"\"coordinates\":[[[8,8],[72,8],[72,72],[8,72],[8,8]]]}},"
		"{\"type\":\"Feature\",\"properties\":{\"classification\":{\"name\":\"Tumor\"}},\"geometry\":{\"type\":\"Polygon\","
		"\"coordinates\":[[[72,8],[136,8],[136,72],[72,72]]]}},"
		"{\"type\":\"Feature\",\"properties\":{\"classification\":{\"name\":\"Tumor\"}},\"geometry\":{\"type\":\"Polygon\","
		"\"coordinates\":[[[136,72],[200,72],[200,136],[136,136]]]}},"
		"{\"type\":\"Feature\",\"properties\":{\"name\":\"_2\"},\"geometry\":{\"type\":\"Polygon\","
		"\"coordinates\":[[[8,8],[40,8],[40,40],[8,40]]]}},"
		"{\"type\":\"Feature\",\"properties\":{\"name\":\"_0\"},\"geometry\":{\"type\":\"Polygon\","
		"\"coordinates\":[[[0,200],[120,320],[0,320]]]}},"
		"{\"type\":\"Feature\",\"properties\":{},\"geometry\":{\"type\":\"Polygon\","
		"\"coordinates\":[[[200,200],[300,300],[300,200],[200,300]],[[240,240],[260,240],[260,260],[240,260]]]}}"
		"]}";
	struct annot *a;
	struct err e = {0};
	REQUIRE(!annot_parse_geojson(&a, gj, strlen(gj), "t.geojson", &e), "%s", e.msg);
	check_mask(a, 16, 0, 0, 24, 24, "aligned squares, ds 16");
	check_mask(a, 32, 0, 0, 12, 12, "ds 32");
	check_mask(a, 1, 0, 0, 320, 330, "ds 1");
	check_mask(a, 8, 5, 7, 30, 30, "offset grid");
	double x0, y0, x1, y1;
	CHECK(annot_bounds(a, ANNOT_TUMOUR, &x0, &y0, &x1, &y1) && x0 == 0 && y0 == 8 && x1 == 300 && y1 == 320,
	      "bounds %g %g %g %g", x0, y0, x1, y1);
	CHECK(annot_bounds(a, ANNOT_EXCLUSION, &x0, &y0, &x1, &y1) && x1 == 40, "exclusion bounds");
	annot_free(a);
	/* random star polygons with random exclusions */
	struct rng r;
	rng_seed(&r, 21, 1);
	for (int t = 0; t < 20; t++) {
		char buf[20000];
		size_t n = (size_t)snprintf(buf, sizeof buf, "{\"type\":\"FeatureCollection\",\"features\":[");
		for (int p = 0; p < 4; p++) {
			double cx = 50 + rng_double(&r) * 400, cy = 50 + rng_double(&r) * 400, rad = 10 + rng_double(&r) * 120;
			n += (size_t)snprintf(buf + n, sizeof buf - n, "%s{\"type\":\"Feature\",\"properties\":{\"name\":\"%s\"},"
			                      "\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[",
			                      p ? "," : "", p == 3 ? "_2" : "Tumor");
			for (int k = 0; k < 17; k++) {
				double ang = 2 * M_PI * k / 17, rr = rad * (0.5 + rng_double(&r));
				/* some vertices on integers, some on pixel centres */
				double x = cx + rr * cos(ang), y = cy + rr * sin(ang);
				if (k % 3 == 0) {
					x = round(x);
					y = round(y / 8) * 8 + 4;
				}
				n += (size_t)snprintf(buf + n, sizeof buf - n, "%s[%.17g,%.17g]", k ? "," : "", x, y);
			}
			n += (size_t)snprintf(buf + n, sizeof buf - n, "]]}}");
		}
		n += (size_t)snprintf(buf + n, sizeof buf - n, "]}");
		REQUIRE(!annot_parse_geojson(&a, buf, n, "r.geojson", &e), "%s", e.msg);
		check_mask(a, 8, 0, 0, 70, 70, "random stars, ds 8");
		check_mask(a, 3, 10, 20, 150, 150, "random stars, ds 3");
		annot_free(a);
	}
}

/* ---- the evaluation mask ---- */

static struct lesion_params params(int level, double mpp, double tol, double itc)
{
	struct lesion_params p = {level, mpp, tol, itc};
	return p;
}

static void test_params(void)
{
	struct lesion_params p;
	lesion_params_default(&p);
	CHECK(p.level == 5 && p.mpp == 0.243 && p.tolerance_um == 75 && p.itc_um == 275, "the challenge's values");
	struct err e = {0};
	p.level = 21;
	CHECK(lesion_params_check(&p, &e) == ERR_USAGE && strstr(e.msg, "level"), "level 21: %s", e.msg);
	lesion_params_default(&p);
	p.mpp = 0;
	err_clear(&e);
	CHECK(lesion_params_check(&p, &e) == ERR_USAGE, "mpp 0");
	/* the radius and ITC threshold of the challenge: 75/(0.243*32*2) and
	 * 275/(0.243*32) = 35.36 px (its docstring's number) */
	struct lesion_map *m;
	lesion_params_default(&p);
	uint8_t one = 1;
	REQUIRE(!lesion_map_from_mask(&m, &one, 0, 0, 1, 1, &p, &e), "%s", e.msg);
	CHECK(m->radius == 75 / (0.243 * 32 * 2) && fabs(m->itc_px - 35.36) < 0.01, "radius %g itc %g", m->radius,
	      m->itc_px);
	lesion_map_free(m);
}

static void test_dilation_brute_force(void)
{
	struct rng r;
	rng_seed(&r, 5, 2);
	const double radii[] = {0.5, 1, 1.2, 1.5, 2, 2.2361, 3.7, 5};
	for (int t = 0; t < 24; t++) {
		uint32_t w = 5 + rng_below(&r, 40), h = 5 + rng_below(&r, 30);
		uint8_t *tum = calloc((size_t)w * h, 1);
		int k = 1 + (int)rng_below(&r, 6);
		for (int i = 0; i < k; i++)
			tum[rng_below(&r, h) * w + rng_below(&r, w)] = 1;
		double rad = radii[t % 8];
		/* mpp 1, level 0, tolerance 2 rad: radius rad; no ITCs */
		struct lesion_params p = params(0, 1, 2 * rad, 0);
		struct lesion_map *m;
		struct err e = {0};
		REQUIRE(!lesion_map_from_mask(&m, tum, 0, 0, w, h, &p, &e), "%s", e.msg);
		size_t bad = 0;
		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = 0; x < w; x++) {
				double best = INFINITY;
				for (uint32_t yy = 0; yy < h; yy++)
					for (uint32_t xx = 0; xx < w; xx++)
						if (tum[yy * w + xx]) {
							double dx = (double)x - xx, dy = (double)y - yy;
							best = fmin(best, dx * dx + dy * dy);
						}
				int want = sqrt(best) < rad;
				/* holes may be filled: a dilated pixel must be labelled,
				 * an undilated one only when enclosed */
				if (want && !m->label[y * w + x])
					bad++;
			}
		CHECK(bad == 0, "trial %d (%ux%u, r %g): %zu dilated pixels unlabelled", t, w, h, rad, bad);
		lesion_map_free(m);
		free(tum);
	}
}

static void test_holes_labels_axes(void)
{
	struct err e = {0};
	struct lesion_map *m;
	/* a ring with a hole, a single pixel, a horizontal bar, and two pixels
	 * touching diagonally; radius 0.5 (no dilation beyond the pixels) */
	const char *pic[] = {
		".........................",
		".#####.............#.....",
		".#...#..............#....",
		".#...#...................",
		".#####...#########.......",
		".........................",
		"..#......................",
	};
	uint32_t w = 25, h = 7;
	uint8_t tum[25 * 7];
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++)
			tum[y * w + x] = pic[y][x] == '#';
	struct lesion_params p = params(0, 1, 1, 0);
	REQUIRE(!lesion_map_from_mask(&m, tum, 0, 0, w, h, &p, &e), "%s", e.msg);
	CHECK(m->n == 4, "%d regions, expected 4", m->n);
	if (m->n == 4) {
		CHECK(m->les[0].first_r == 1 && m->les[0].first_c == 1 && m->les[0].area == 20, "ring filled: area %u",
		      m->les[0].area);
		CHECK(m->les[1].first_c == 19 && m->les[1].area == 2, "diagonal pair joined (8-connected): area %u",
		      m->les[1].area);
		CHECK(m->les[2].first_r == 4 && m->les[2].area == 9, "bar: area %u", m->les[2].area);
		/* a bar of n pixels: variance (n^2 - 1)/12, major axis 4 sqrt of it */
		CHECK(fabs(m->les[2].major_axis - 4 * sqrt((81 - 1) / 12.0)) < 1e-12, "bar major axis %.17g",
		      m->les[2].major_axis);
		CHECK(m->les[3].area == 1 && m->les[3].major_axis == 0, "single pixel: major axis %g", m->les[3].major_axis);
		/* the filled 5x4 ring: variances 2 and 1.25, major axis 4 sqrt 2 */
		CHECK(fabs(m->les[0].major_axis - 4 * sqrt(2.0)) < 1e-12, "square major axis %.17g", m->les[0].major_axis);
	}
	CHECK(lesion_at(m, 3, 2) == 1 && lesion_at(m, 0, 0) == 0 && lesion_at(m, -1, 2) == 0 && lesion_at(m, 25, 1) == 0,
	      "lesion_at");
	lesion_map_free(m);
	/* ITC: with mpp 1, level 0, itc 10 µm, the bar (11.5 px) is not an
	 * ITC, the ring (5.66) is */
	p = params(0, 1, 1, 10);
	REQUIRE(!lesion_map_from_mask(&m, tum, 0, 0, w, h, &p, &e), "%s", e.msg);
	CHECK(m->n == 4 && m->les[0].itc && !m->les[2].itc && m->les[3].itc && m->n_itc == 3, "ITC flags");
	lesion_map_free(m);
	/* radius 1.5: the single pixel joins the ring, the diagonal pair the
	 * bar (lesions closer than the tolerance are one); 2.5: all one */
	p = params(0, 1, 3, 0);
	REQUIRE(!lesion_map_from_mask(&m, tum, 0, 0, w, h, &p, &e), "%s", e.msg);
	CHECK(m->n == 2 && m->les[0].area > 20 && lesion_at(m, 2, 6) == 1 && lesion_at(m, 19, 1) == 2,
	      "radius 1.5: %d regions, expected 2", m->n);
	lesion_map_free(m);
	p = params(0, 1, 5, 0);
	REQUIRE(!lesion_map_from_mask(&m, tum, 0, 0, w, h, &p, &e), "%s", e.msg);
	CHECK(m->n == 1, "radius 2.5: %d regions, expected 1", m->n);
	lesion_map_free(m);
	/* an empty mask: no lesions, nothing hit */
	memset(tum, 0, sizeof tum);
	REQUIRE(!lesion_map_from_mask(&m, tum, 0, 0, w, h, &p, &e), "%s", e.msg);
	CHECK(m->n == 0 && lesion_at(m, 3, 3) == 0, "empty");
	lesion_map_free(m);
}

static void test_lesions_from_annotation(void)
{
	/* level 2 (ds 4), mpp 1: radius 75/(1*4*2) = 9.375 px, ITC below 68.75
	 * px.  A 400x400 square (100 px, not an ITC) with an enclosed `_2`
	 * (filled back), a 40x40 square (10 px: an ITC) far away, and a
	 * square 60 level-0 px (15 px, < 2r) right of the big one: merged */
	const char *xml =
		"<ASAP_Annotations><Annotations>"
		"<Annotation Name=\"a\" Type=\"Polygon\" PartOfGroup=\"_0\"><Coordinates>"
		"<Coordinate Order=\"0\" X=\"1000\" Y=\"1000\"/><Coordinate Order=\"1\" X=\"1400\" Y=\"1000\"/>"
		"<Coordinate Order=\"2\" X=\"1400\" Y=\"1400\"/><Coordinate Order=\"3\" X=\"1000\" Y=\"1400\"/>"
		"</Coordinates></Annotation>"
		"<Annotation Name=\"x\" Type=\"Polygon\" PartOfGroup=\"_2\"><Coordinates>"
		"<Coordinate Order=\"0\" X=\"1100\" Y=\"1100\"/><Coordinate Order=\"1\" X=\"1300\" Y=\"1100\"/>"
		"<Coordinate Order=\"2\" X=\"1300\" Y=\"1300\"/><Coordinate Order=\"3\" X=\"1100\" Y=\"1300\"/>"
		"</Coordinates></Annotation>"
		"<Annotation Name=\"b\" Type=\"Polygon\" PartOfGroup=\"Tumor\"><Coordinates>"
		"<Coordinate Order=\"0\" X=\"3000\" Y=\"200\"/><Coordinate Order=\"1\" X=\"3040\" Y=\"200\"/>"
		"<Coordinate Order=\"2\" X=\"3040\" Y=\"240\"/><Coordinate Order=\"3\" X=\"3000\" Y=\"240\"/>"
		"</Coordinates></Annotation>"
		"<Annotation Name=\"c\" Type=\"Polygon\" PartOfGroup=\"_1\"><Coordinates>"
		"<Coordinate Order=\"0\" X=\"1460\" Y=\"1100\"/><Coordinate Order=\"1\" X=\"1700\" Y=\"1100\"/>"
		"<Coordinate Order=\"2\" X=\"1700\" Y=\"1300\"/><Coordinate Order=\"3\" X=\"1460\" Y=\"1300\"/>"
		"</Coordinates></Annotation>"
		"</Annotations></ASAP_Annotations>";
	struct annot *a;
	struct err e = {0};
	REQUIRE(!annot_parse_asap(&a, xml, strlen(xml), "t.xml", &e), "%s", e.msg);
	struct lesion_params p = params(2, 1, 75, 275);
	struct lesion_map *m;
	REQUIRE(!lesion_map_from_annot(&m, a, &p, &e), "%s", e.msg);
	CHECK(m->n == 2 && m->n_itc == 1, "%d lesions, %d ITCs; expected 2, 1", m->n, m->n_itc);
	if (m->n == 2) {
		/* raster order: the small square (row 50) comes first */
		CHECK(m->les[0].itc && !m->les[1].itc, "the small one is the ITC");
		CHECK(m->les[1].diameter_um > 700, "merged lesion %g µm", m->les[1].diameter_um);
	}
	int big = m->n == 2 ? 2 : 1;
	CHECK(lesion_at(m, 1200, 1200) == big, "inside the filled exclusion: %d", lesion_at(m, 1200, 1200));
	CHECK(lesion_at(m, 1430, 1200) == big, "between the touching squares: %d", lesion_at(m, 1430, 1200));
	/* the margin: the dilation reaches 9.375 px = 37.5 level-0 px */
	CHECK(lesion_at(m, 1000 - 30, 1200) == big && lesion_at(m, 1000 - 45, 1200) == 0, "margin %d %d",
	      lesion_at(m, 970, 1200), lesion_at(m, 955, 1200));
	CHECK(m->ox > 0 && m->oy > 0 && m->w < 700, "cropped grid at (%lld, %lld), %ux%u", (long long)m->ox,
	      (long long)m->oy, m->w, m->h);
	lesion_map_free(m);
	/* no annotation, or one without tumour */
	REQUIRE(!lesion_map_from_annot(&m, NULL, &p, &e), "%s", e.msg);
	CHECK(m->n == 0 && lesion_at(m, 1200, 1200) == 0, "no annotation");
	lesion_map_free(m);
	annot_free(a);
}

/* ---- detections ---- */

static void test_detect_rules(void)
{
	/* a 4x3 grid of 100-px patches; scores:
	 *   .9 .6 .1 .7
	 *   .2 .1 .1 .1
	 *   .1 .8 .1 .8   (the two .8 not touching: separate regions; the .7
	 *                  touches nothing at or above .5) */
	double sc[12] = {.9, .6, .1, .7, .2, .1, .1, .1, .1, .8, .1, .8};
	struct froc_patch p[13];
	for (int i = 0; i < 12; i++)
		p[i] = (struct froc_patch){(i % 4) * 100, (i / 4) * 100, sc[i]};
	p[12] = (struct froc_patch){500, 500, NAN};
	struct froc_det *d;
	size_t n;
	struct err e = {0};
	REQUIRE(!froc_detect(p, 13, 100, FROC_RULE_PATCH, 0.5, &d, &n, &e), "%s", e.msg);
	CHECK(n == 5 && d[0].x == 50 && d[0].y == 50 && d[0].conf == .9 && d[4].x == 350 && d[4].y == 250,
	      "patch rule: %zu", n);
	free(d);
	REQUIRE(!froc_detect(p, 13, 100, FROC_RULE_MAXIMA, 0.5, &d, &n, &e), "%s", e.msg);
	CHECK(n == 4, "maxima: %zu regions, expected 4", n);
	if (n == 4)
		CHECK(d[0].conf == .9 && d[0].x == 50 && d[1].conf == .7 && d[2].conf == .8 && d[2].x == 150 &&
		          d[3].x == 350,
		      "maxima peaks");
	free(d);
	/* at 0.15 the left block joins diagonally across (.2 at row 1, .8 at
	 * row 2) and the right .7/.8 stay apart from it only through .1s */
	REQUIRE(!froc_detect(p, 13, 100, FROC_RULE_MAXIMA, 0.15, &d, &n, &e), "%s", e.msg);
	CHECK(n == 3 && d[0].conf == .9, "maxima at 0.15: %zu", n);
	free(d);
	/* ties: the first in input order; a diagonal touch joins */
	struct froc_patch q[3] = {{0, 0, .5}, {100, 100, .5}, {300, 300, .5}};
	REQUIRE(!froc_detect(q, 3, 100, FROC_RULE_MAXIMA, 0.5, &d, &n, &e), "%s", e.msg);
	CHECK(n == 2 && d[0].x == 50 && d[1].x == 350, "ties and diagonals: %zu", n);
	free(d);
	/* overlapping patches (stride 50, side 100) join */
	struct froc_patch o[3] = {{0, 0, .6}, {50, 0, .7}, {100, 0, .65}};
	REQUIRE(!froc_detect(o, 3, 100, FROC_RULE_MAXIMA, 0.5, &d, &n, &e), "%s", e.msg);
	CHECK(n == 1 && d[0].x == 100 && d[0].conf == .7, "overlapping: %zu", n);
	free(d);
	CHECK(froc_detect(p, 12, 0, FROC_RULE_PATCH, 0.5, &d, &n, &e) == ERR_USAGE, "patch side 0");
}

static void test_csv(void)
{
	struct froc_det *d;
	size_t n;
	struct err e = {0};
	const char *ok = "confidence,x,y\r\n0.9,100,200\r\n\r\n 0.5 , 7.9 , -3.2 ,extra\n1e-3,0,0";
	REQUIRE(!froc_parse_csv(ok, strlen(ok), "a.csv", &d, &n, &e), "%s", e.msg);
	CHECK(n == 3 && d[0].conf == 0.9 && d[0].x == 100 && d[0].y == 200 && d[1].x == 7 && d[1].y == -4 &&
	          d[2].conf == 1e-3,
	      "header, CRLF, blank line, spaces, decimals floored, extra field: %zu", n);
	free(d);
	REQUIRE(!froc_parse_csv("", 0, "empty.csv", &d, &n, &e) && n == 0, "empty file: no detections");
	free(d);
	struct {
		const char *in, *msg;
	} bad[] = {
		{"0.9,1,2\n0.8,3\n", "b.csv: line 2: 2 fields"},
		{"0.9,1,2\nnan,3,4\n", "b.csv: line 2: confidence 'nan'"},
		{"0.9,1,2\n0.5,x,4\n", "b.csv: line 2: X 'x'"},
		{"0.9,1,2\ninf,1,1\n", "line 2: confidence"},
		{"0.9,1,2\n0.5,1e13,4\n", "line 2: X"},
		{"0x1p3,1,2\n0.5,1,y\n", "line 2: X '1', Y 'y'"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err_clear(&e);
		int rc = froc_parse_csv(bad[i].in, strlen(bad[i].in), "b.csv", &d, &n, &e);
		CHECK(rc == ERR_FORMAT && strstr(e.msg, bad[i].msg), "case %zu: rc %d: %s", i, rc, e.msg);
	}
	char b[40];
	double vals[] = {0.1, 0.7f, 1.0 / 3, 1e-300, 0.123456789012345678, 5};
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		froc_format_double(b, sizeof b, vals[i]);
		CHECK(strtod(b, NULL) == vals[i], "round trip %s", b);
	}
	froc_format_double(b, sizeof b, 0.1);
	CHECK(!strcmp(b, "0.1"), "shortest: %s", b);
}

/* ---- matching and the curve ---- */

static void test_curve_quirks(void)
{
	struct err e = {0};
	/* slide 0: 3 labels, label 2 an ITC; detections: two hits on label 1
	 * (0.6, 0.8: counts once, 0.8), one on the ITC (ignored), one hit on
	 * label 3 with confidence 0 (not a TP: the challenge needs > 0), two
	 * false positives 0.7 and 0.3.
	 * slide 1: normal, false positives 0.7 and 0.9. */
	struct froc_det d0[] = {{0, 0, 0.6}, {0, 0, 0.8}, {0, 0, 0.95}, {0, 0, 0}, {0, 0, 0.7}, {0, 0, 0.3}};
	int h0[] = {1, 1, 2, 3, 0, 0};
	uint8_t itc0[] = {0, 1, 0};
	struct froc_det d1[] = {{0, 0, 0.7}, {0, 0, 0.9}};
	struct froc_slide s[2];
	REQUIRE(!froc_slide_set(&s[0], d0, 6, h0, 3, itc0, &e), "%s", e.msg);
	REQUIRE(!froc_slide_set(&s[1], d1, 2, NULL, 0, NULL, &e), "%s", e.msg);
	CHECK(s[0].lesions == 2 && s[0].nfp == 2 && s[0].hits == 3 && s[0].itc_hits == 1 && s[0].tp[0] == 0.8f &&
	          s[0].tp[1] == 0 && s[0].tp[2] == 0,
	      "slide 0");
	struct froc_curve c;
	REQUIRE(!froc_compute(s, 2, NULL, &c, &e), "%s", e.msg);
	/* values: fp 0.3 0.7 0.7 0.9 (double), tp 0.8f 0 0 (float); distinct:
	 * 0, 0.3, 0.7, 0.8f, 0.9; the smallest (0) left out:
	 *   t=0.3: fp 4, tp 1;  t=0.7: fp 3, tp 1;  t=0.8f: fp 1, tp 1;
	 *   t=0.9: fp 1, tp 0;  then (0, 0) */
	double fps[] = {2, 1.5, 0.5, 0.5, 0}, sens[] = {0.5, 0.5, 0.5, 0, 0};
	REQUIRE(c.n == 5, "%zu points", c.n);
	for (int k = 0; k < 5; k++)
		CHECK(c.fps[k] == fps[k] && c.sens[k] == sens[k], "point %d: %g %g", k, c.fps[k], c.sens[k]);
	CHECK(c.thr[2] == (double)0.8f && isinf(c.thr[4]) && c.lesions == 2 && c.fp == 4 && c.tp == 1, "thresholds");
	/* numpy.interp over xp = 0, .5, .5, 1.5, 2 / fp = 0, 0, .5, .5, .5:
	 * .25 -> 0; .5 -> .5 (the last of the tie); 1 -> .5; 2, 4, 8 -> .5 */
	double at[] = {0, 0.5, 0.5, 0.5, 0.5, 0.5};
	for (int k = 0; k < FROC_NTARGETS; k++)
		CHECK(c.at[k] == at[k], "sensitivity at %g: %g, expected %g", froc_targets[k], c.at[k], at[k]);
	CHECK(fabs(c.score - 2.5 / 6) < 1e-15, "score %.17g", c.score);
	froc_curve_free(&c);
	froc_slide_free(&s[0]);
	froc_slide_free(&s[1]);
	/* the float32 quirk: a lesion hit at 0.7 stores 0.7f < 0.7; a false
	 * positive at 0.7 is kept as a double: two distinct thresholds, and at
	 * t = 0.7 the TP still counts (compared as floats) */
	struct froc_det d2[] = {{0, 0, 0.7}, {0, 0, 0.7}, {0, 0, 0.2}};
	int h2[] = {1, 0, 0};
	uint8_t itc2[] = {0, 0};
	REQUIRE(!froc_slide_set(&s[0], d2, 3, h2, 2, itc2, &e), "%s", e.msg);
	REQUIRE(!froc_compute(s, 1, NULL, &c, &e), "%s", e.msg);
	/* distinct: 0, 0.2, 0.7f, 0.7 -> points at 0.2, 0.7f, 0.7, end */
	CHECK(c.n == 4 && c.thr[1] == (double)0.7f && c.thr[2] == 0.7, "%zu points", c.n);
	if (c.n == 4)
		CHECK(c.fps[1] == 1 && c.sens[1] == 0.5 && c.fps[2] == 1 && c.sens[2] == 0.5, "float compare");
	froc_curve_free(&c);
	froc_slide_free(&s[0]);
	/* no lesions: undefined */
	struct froc_det d3[] = {{0, 0, 0.5}};
	REQUIRE(!froc_slide_set(&s[0], d3, 1, NULL, 0, NULL, &e), "%s", e.msg);
	err_clear(&e);
	CHECK(froc_compute(s, 1, NULL, &c, &e) == ERR_USAGE && strstr(e.msg, "no lesion"), "no lesions: %s", e.msg);
	froc_slide_free(&s[0]);
	/* every lesion hit, no zero among the values: the lowest real
	 * threshold is still left out (the published script's all_probs[1:]) */
	struct froc_det d4[] = {{0, 0, 0.9}, {0, 0, 0.4}};
	int h4[] = {1, 0};
	uint8_t itc4[] = {0};
	REQUIRE(!froc_slide_set(&s[0], d4, 2, h4, 1, itc4, &e), "%s", e.msg);
	REQUIRE(!froc_compute(s, 1, NULL, &c, &e), "%s", e.msg);
	CHECK(c.n == 2 && c.thr[0] == (double)0.9f && c.fps[0] == 0 && c.sens[0] == 1, "lowest left out: %zu points", c.n);
	froc_curve_free(&c);
	froc_slide_free(&s[0]);
}

static void test_interp(void)
{
	/* numpy.interp([.25,.5,1,2,4,8,.75,2.5], [0,.5,.5,1,2,2,3], [0,.1,.2,.3,.4,.5,.6])
	 * = [.05, .2, .3, .5, .6, .6, .25, .55] (numpy 1.24) */
	double xp[] = {0, .5, .5, 1, 2, 2, 3}, fp[] = {0, .1, .2, .3, .4, .5, .6};
	double fps[7], sens[7];
	for (int i = 0; i < 7; i++) {
		fps[6 - i] = xp[i];
		sens[6 - i] = fp[i];
	}
	struct froc_curve c = {.n = 7, .fps = fps, .sens = sens};
	double x[] = {.25, .5, 1, 2, 4, 8, .75, 2.5}, want[] = {.05, .2, .3, .5, .6, .6, .25, .55};
	for (int i = 0; i < 8; i++)
		CHECK(fabs(froc_sens_at(&c, x[i]) - want[i]) < 1e-15, "interp(%g) = %.17g, numpy %g", x[i],
		      froc_sens_at(&c, x[i]), want[i]);
}

static void test_bootstrap(void)
{
	struct err e = {0};
	struct froc_slide s[6];
	struct rng r;
	rng_seed(&r, 9, 3);
	for (int i = 0; i < 6; i++) {
		struct froc_det d[8];
		int h[8];
		uint8_t itc[2] = {0, 0};
		for (int k = 0; k < 8; k++) {
			d[k] = (struct froc_det){0, 0, rng_double(&r)};
			h[k] = i < 3 && k < 2 ? k + 1 : 0;
		}
		REQUIRE(!froc_slide_set(&s[i], d, 8, i < 3 ? h : NULL, i < 3 ? 2 : 0, itc, &e), "%s", e.msg);
	}
	double lo[7], hi[7], lo2[7], hi2[7];
	REQUIRE(!froc_bootstrap(s, 6, 300, 1, lo, hi, &e), "%s", e.msg);
	REQUIRE(!froc_bootstrap(s, 6, 300, 1, lo2, hi2, &e), "%s", e.msg);
	struct froc_curve c;
	REQUIRE(!froc_compute(s, 6, NULL, &c, &e), "%s", e.msg);
	CHECK(!memcmp(lo, lo2, sizeof lo) && !memcmp(hi, hi2, sizeof hi), "same seed, same interval");
	CHECK(lo[6] <= c.score && c.score <= hi[6] && lo[6] < hi[6], "score %g in [%g, %g]", c.score, lo[6], hi[6]);
	froc_curve_free(&c);
	/* identical slides: every resample is the same */
	struct froc_slide same[4] = {s[0], s[0], s[3], s[3]};
	REQUIRE(!froc_bootstrap(same, 4, 50, 2, lo, hi, &e), "%s", e.msg);
	REQUIRE(!froc_compute(same, 4, NULL, &c, &e), "%s", e.msg);
	CHECK(lo[6] == c.score && hi[6] == c.score, "degenerate: [%g, %g] vs %g", lo[6], hi[6], c.score);
	froc_curve_free(&c);
	for (int i = 0; i < 6; i++)
		froc_slide_free(&s[i]);
}

int main(void)
{
	RUN(test_mask_matches_point_rule);
	RUN(test_params);
	RUN(test_dilation_brute_force);
	RUN(test_holes_labels_axes);
	RUN(test_lesions_from_annotation);
	RUN(test_detect_rules);
	RUN(test_csv);
	RUN(test_curve_quirks);
	RUN(test_interp);
	RUN(test_bootstrap);
	return check_summary();
}
