/* test_annot.c - ASAP XML and GeoJSON parsing, tumour fractions against brute
 * force point sampling, the generator's XML against its own mask. */
#include <locale.h>
#include <stdint.h>

#include "../../lib/wsi/annot.h"
#include "../../lib/base/rng.h"
#include "../../lib/wsi/slidegen.h"
#include "check.h"

static void test_numbers(void)
{
	double v;
	CHECK(!annot_parse_number("1.5", 3, &v) && v == 1.5, "1.5");
	CHECK(!annot_parse_number("1,5", 3, &v) && v == 1.5, "1,5 (comma locale)");
	CHECK(!annot_parse_number(" -2e3 ", 6, &v) && v == -2000, "-2e3");
	CHECK(!annot_parse_number("0.1", 3, &v) && v == 0.1, "0.1 exact");
	CHECK(!annot_parse_number("74952.1015625", 13, &v) && v == 74952.1015625, "camelyon value");
	CHECK(!annot_parse_number("1.25E-2", 7, &v) && v == 0.0125, "1.25E-2");
	CHECK(!annot_parse_number("0", 1, &v) && v == 0, "0");
	CHECK(!annot_parse_number("000123.000", 10, &v) && v == 123, "leading zeros");
	const char *bad[] = {"", "abc", "1.2.3", "1e", "inf", "nan", "--1", "1 2", ".", "1e99999"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(annot_parse_number(bad[i], strlen(bad[i]), &v) == -1, "'%s' accepted", bad[i]);
}

static const char *XML =
	"<?xml version=\"1.0\"?>\n<ASAP_Annotations><Annotations>\n"
	"<Annotation Name=\"A\" Type=\"Polygon\" PartOfGroup=\"_0\"><Coordinates>\n"
	"<Coordinate Order=\"2\" X=\"300\" Y=\"300\"/><Coordinate Order=\"0\" X=\"100\" Y=\"100\"/>"
	"<Coordinate Order=\"3\" X=\"100\" Y=\"300\"/><Coordinate Order=\"1\" X=\"300\" Y=\"100\"/>"
	"</Coordinates></Annotation>\n"
	"<Annotation Name=\"B\" Type=\"Polygon\" PartOfGroup=\"Tumor\"><Coordinates>"
	"<Coordinate Order=\"0\" X=\"1000,5\" Y=\"1000\"/><Coordinate Order=\"1\" X=\"1100.5\" Y=\"1000\"/>"
	"<Coordinate Order=\"2\" X=\"1100.5\" Y=\"1100\"/><Coordinate Order=\"3\" X=\"1000.5\" Y=\"1100\"/>"
	"</Coordinates></Annotation>\n"
	"<Annotation Name=\"X\" Type=\"Polygon\" PartOfGroup=\"_2\"><Coordinates>"
	"<Coordinate Order=\"0\" X=\"250\" Y=\"250\"/><Coordinate Order=\"1\" X=\"280\" Y=\"250\"/>"
	"<Coordinate Order=\"2\" X=\"280\" Y=\"280\"/><Coordinate Order=\"3\" X=\"250\" Y=\"280\"/>"
	"</Coordinates></Annotation>\n"
	"<Annotation Name=\"O\" Type=\"Polygon\" PartOfGroup=\"Other\"><Coordinates>"
	"<Coordinate Order=\"0\" X=\"0\" Y=\"0\"/><Coordinate Order=\"1\" X=\"9000\" Y=\"0\"/>"
	"<Coordinate Order=\"2\" X=\"9000\" Y=\"9000\"/></Coordinates></Annotation>\n"
	"<Annotation Name=\"D\" Type=\"Dot\" PartOfGroup=\"_0\"><Coordinates>"
	"<Coordinate Order=\"0\" X=\"5\" Y=\"5\"/></Coordinates></Annotation>\n"
	"</Annotations><AnnotationGroups><Group Name=\"_0\" PartOfGroup=\"None\"/></AnnotationGroups>"
	"</ASAP_Annotations>\n";

static void test_asap(void)
{
	struct annot *a;
	struct err e = {0};
	REQUIRE(!annot_parse_asap(&a, XML, strlen(XML), "t.xml", &e), "%s", e.msg);
	CHECK(annot_count(a, ANNOT_TUMOUR) == 2 && annot_count(a, ANNOT_EXCLUSION) == 1 && annot_ignored(a) == 2,
	      "counts %d %d %d", annot_count(a, ANNOT_TUMOUR), annot_count(a, ANNOT_EXCLUSION), annot_ignored(a));
	CHECK(annot_inside(a, 150, 150) && !annot_inside(a, 260, 260) && !annot_inside(a, 50, 50) &&
	          annot_inside(a, 1050, 1050) && !annot_inside(a, 1000.25, 1050),
	      "inside");
	/* exact: tumour [100,300]^2 minus [250,280]^2 inside the patch [200,400)^2 */
	double f = annot_fraction(a, 200, 200, 200);
	CHECK(check_close(f, (100.0 * 100 - 900) / 40000, 1e-9, 0), "fraction %.12g", f);
	CHECK(annot_fraction(a, 2000, 2000, 100) == 0, "outside");
	CHECK(annot_fraction(a, 1000.5, 1000, 100) == 1, "inside B: %g", annot_fraction(a, 1000.5, 1000, 100));
	annot_free(a);
	/* locale independence: a comma locale changes nothing */
	if (setlocale(LC_NUMERIC, "de_DE.UTF-8") || setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
		REQUIRE(!annot_parse_asap(&a, XML, strlen(XML), "t.xml", &e), "%s", e.msg);
		CHECK(check_close(annot_fraction(a, 200, 200, 200), (100.0 * 100 - 900) / 40000, 1e-9, 0), "in a comma locale");
		annot_free(a);
		setlocale(LC_NUMERIC, "C");
	}
}

static void test_asap_errors(void)
{
	struct annot *a;
	struct err e = {0};
	const char *bad1 = "<ASAP_Annotations><Annotations><Annotation PartOfGroup=\"_0\"><Coordinates>"
	                   "<Coordinate Order=\"0\" X=\"abc\" Y=\"1\"/></Coordinates></Annotation></Annotations></ASAP_Annotations>";
	CHECK(annot_parse_asap(&a, bad1, strlen(bad1), "b1.xml", &e) == ERR_FORMAT && strstr(e.msg, "b1.xml: line 1") &&
	          strstr(e.msg, "coordinate 0"),
	      "%s", e.msg);
	err_clear(&e);
	const char *bad2 = "<ASAP_Annotations><Annotations>";
	CHECK(annot_parse_asap(&a, bad2, strlen(bad2), "b2.xml", &e) == ERR_FORMAT && strstr(e.msg, "b2.xml: line"),
	      "%s", e.msg);
	err_clear(&e);
	const char *bad3 = "<Other/>";
	CHECK(annot_parse_asap(&a, bad3, strlen(bad3), "b3.xml", &e) == ERR_FORMAT && strstr(e.msg, "ASAP_Annotations"),
	      "%s", e.msg);
}

static const char *GJ =
	"{\"type\":\"FeatureCollection\",\"features\":[\n"
	" {\"type\":\"Feature\",\"properties\":{\"classification\":{\"name\":\"Tumor\"}},\"geometry\":{\"type\":\"Polygon\","
	"  \"coordinates\":[[[0,0],[100,0],[100,100],[0,100],[0,0]],[[40,40],[60,40],[60,60],[40,60],[40,40]]]}},\n"
	" {\"type\":\"Feature\",\"properties\":{\"name\":\"Stroma\"},\"geometry\":{\"type\":\"Polygon\","
	"  \"coordinates\":[[[0,0],[1000,0],[1000,1000],[0,0]]]}},\n"
	" {\"type\":\"Feature\",\"properties\":{},\"geometry\":{\"type\":\"MultiPolygon\",\"coordinates\":["
	"  [[[200,200],[300,200],[300,300],[200,300]]], [[[400,400],[500,400],[500,500],[400,500]]]]}},\n"
	" {\"type\":\"Feature\",\"properties\":{\"classification\":{\"name\":\"Exclusion\"}},\"geometry\":{\"type\":\"Polygon\","
	"  \"coordinates\":[[[200,200],[250,200],[250,250],[200,250]]]}},\n"
	" {\"type\":\"Feature\",\"properties\":null,\"geometry\":{\"type\":\"Point\",\"coordinates\":[1,2]}}\n"
	"]}";

static void test_geojson(void)
{
	struct annot *a;
	struct err e = {0};
	REQUIRE(!annot_parse_geojson(&a, GJ, strlen(GJ), "t.geojson", &e), "%s", e.msg);
	CHECK(annot_count(a, ANNOT_TUMOUR) == 3 && annot_count(a, ANNOT_EXCLUSION) == 1 && annot_ignored(a) == 2,
	      "counts %d %d %d", annot_count(a, ANNOT_TUMOUR), annot_count(a, ANNOT_EXCLUSION), annot_ignored(a));
	CHECK(annot_inside(a, 10, 10) && !annot_inside(a, 50, 50) && !annot_inside(a, 210, 210) && annot_inside(a, 260, 260),
	      "holes and exclusions");
	CHECK(check_close(annot_fraction(a, 0, 0, 100), 1 - 0.04, 1e-9, 0), "%g", annot_fraction(a, 0, 0, 100));
	CHECK(check_close(annot_fraction(a, 200, 200, 100), 0.75, 1e-9, 0), "%g", annot_fraction(a, 200, 200, 100));
	annot_free(a);
	const char *arr = "[{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10]]]},"
	                  "\"properties\":{\"classification\":\"_0\"}}]";
	REQUIRE(!annot_parse_geojson(&a, arr, strlen(arr), "arr", &e), "%s", e.msg);
	CHECK(annot_count(a, ANNOT_TUMOUR) == 1, "array of features");
	annot_free(a);
	const char *geom = "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10]]]}";
	REQUIRE(!annot_parse_geojson(&a, geom, strlen(geom), "geom", &e), "%s", e.msg);
	CHECK(annot_count(a, ANNOT_TUMOUR) == 1, "bare geometry");
	annot_free(a);
	const char *bad[] = {"{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,\"x\"]]]}", "{\"type\":", "[1,2,]",
	                     "{\"type\":\"FeatureCollection\"}", "{} x", "{\"a\":\"\\q\"}"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err_clear(&e);
		CHECK(annot_parse_geojson(&a, bad[i], strlen(bad[i]), "bad.json", &e) == ERR_FORMAT &&
		          strstr(e.msg, "bad.json: byte "),
		      "'%s': %s", bad[i], e.msg);
	}
}

/* random star or self-crossing polygon around (cx, cy) */
static void rand_poly(struct rng *r, double cx, double cy, double rad, int n, int cross, double *x, double *y)
{
	for (int i = 0; i < n; i++) {
		double t = cross ? rng_double(r) * 2 * M_PI : 2 * M_PI * i / n;
		double rr = rad * (0.3 + 0.7 * rng_double(r));
		x[i] = cx + rr * cos(t);
		y[i] = cy + rr * sin(t);
	}
}

static void test_fraction_vs_brute_force(void)
{
	struct rng r;
	rng_seed(&r, 42, 1);
	int worst_case = -1;
	double worst = 0;
	for (int trial = 0; trial < 12; trial++) {
		/* build a GeoJSON string with random tumours and exclusions */
		char *js = malloc(1 << 20);
		size_t n = 0;
		n += (size_t)sprintf(js + n, "{\"type\":\"FeatureCollection\",\"features\":[");
		int np = 1 + (int)rng_below(&r, 4);
		for (int p = 0; p < np + 2; p++) {
			int excl = p >= np;
			int nv = 3 + (int)rng_below(&r, 20), cross = rng_below(&r, 3) == 0;
			double x[32], y[32];
			rand_poly(&r, 500 + rng_double(&r) * 1000, 500 + rng_double(&r) * 1000, excl ? 200 : 500, nv, cross, x, y);
			n += (size_t)sprintf(js + n, "%s{\"type\":\"Feature\",\"properties\":{\"name\":\"%s\"},\"geometry\":"
			                            "{\"type\":\"Polygon\",\"coordinates\":[[",
			                     p ? "," : "", excl ? "_2" : "_0");
			for (int i = 0; i < nv; i++)
				n += (size_t)sprintf(js + n, "%s[%.17g,%.17g]", i ? "," : "", x[i], y[i]);
			n += (size_t)sprintf(js + n, "]]}}");
		}
		n += (size_t)sprintf(js + n, "]}");
		struct annot *a;
		struct err e = {0};
		int rc = annot_parse_geojson(&a, js, n, "rand", &e);
		free(js);
		REQUIRE(!rc, "%s", e.msg);
		int32_t px[24], py[24];
		float fr[24];
		double size = 150 + rng_double(&r) * 400;
		for (int k = 0; k < 24; k++) {
			px[k] = (int32_t)(rng_double(&r) * 1800);
			py[k] = (int32_t)(rng_double(&r) * 1800);
		}
		REQUIRE(!annot_fractions(a, 24, px, py, size, fr, &e), "%s", e.msg);
		for (int k = 0; k < 24; k++) {
			const int G = 300;
			int in = 0;
			for (int j = 0; j < G; j++)
				for (int i = 0; i < G; i++)
					in += annot_inside(a, px[k] + (i + 0.5) * size / G, py[k] + (j + 0.5) * size / G);
			double bf = (double)in / (G * G), f1 = annot_fraction(a, px[k], py[k], size);
			CHECK(fabs(fr[k] - f1) < 1e-6, "batch %g vs single %g", fr[k], f1);
			if (fabs(f1 - bf) > worst) {
				worst = fabs(f1 - bf);
				worst_case = trial;
			}
		}
		annot_free(a);
	}
	CHECK(worst < 0.005, "worst |scanline - brute force| = %g (trial %d)", worst, worst_case);
	printf("     worst |scanline - brute force (300x300 points)| = %.2e over 288 patches\n", worst);
}

static void test_generator_xml_matches_mask(void)
{
	struct slidegen_params p;
	slidegen_params_default(&p);
	p.width = 4096;
	p.height = 3072;
	p.tumours = 3;
	p.seed = 11;
	struct slidegen *g;
	struct err e = {0};
	REQUIRE(!slidegen_create(&g, &p, &e), "%s", e.msg);
	char path[600];
	snprintf(path, sizeof path, "%s/gen.xml", check_tmpdir());
	REQUIRE(!slidegen_write_xml(g, path, &e), "%s", e.msg);
	uint8_t *m;
	uint32_t w, h;
	REQUIRE(!slidegen_mask(g, SLIDEGEN_MASK_TUMOUR, 8, &m, &w, &h, &e), "%s", e.msg);
	struct annot *a;
	REQUIRE(!annot_load(&a, path, &e), "%s", e.msg);
	CHECK(annot_count(a, ANNOT_TUMOUR) == 3 && annot_count(a, ANNOT_EXCLUSION) >= 1, "counts");
	long diff = 0, pos = 0;
	for (uint32_t j = 0; j < h; j++)
		for (uint32_t i = 0; i < w; i++) {
			int in = annot_inside(a, (i + 0.5) * 8, (j + 0.5) * 8);
			diff += in != (m[(size_t)j * w + i] != 0);
			pos += in;
		}
	CHECK(diff == 0 && pos > 1000, "%ld of %u pixels differ, %ld inside", diff, w * h, pos);
	annot_free(a);
	free(m);
	slidegen_free(g);
}

int main(void)
{
	RUN(test_numbers);
	RUN(test_asap);
	RUN(test_asap_errors);
	RUN(test_geojson);
	RUN(test_fraction_vs_brute_force);
	RUN(test_generator_xml_matches_mask);
	return check_summary();
}
