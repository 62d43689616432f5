/* test_metrics.c - AUC against scikit-learn, DeLong against its definition
 * (one AUC, and the paired test of two), ROC, Youden, bootstrap.  Golden
 * files: tests/golden/make_auc_golden.py, make_auc_paired_golden.py. */
#include <stdint.h>

#include "check.h"
#include "../../lib/mil/metrics.h"

#define MAXN 800

static void test_auc_matches_sklearn_and_delong(void)
{
	FILE *fc = fopen("tests/golden/auc_cases.tsv", "r"), *fe = fopen("tests/golden/auc_expected.tsv", "r");
	REQUIRE(fc && fe, "golden files missing (run from the repository root)");
	char line[256];
	if (!fgets(line, sizeof line, fc) || !fgets(line, sizeof line, fe)) {
		CHECK(0, "empty golden files");
		return;
	}
	static double s[MAXN];
	static uint8_t y[MAXN];
	int cases = 0, pending_case = -1;
	double ps = 0;
	int py = 0;
	double worst_auc = 0, worst_var = 0;
	for (;;) {
		int k, n = 0;
		if (pending_case >= 0) {
			k = pending_case;
			s[n] = ps;
			y[n++] = (uint8_t)py;
			pending_case = -1;
		} else if (fscanf(fc, "%d %lf %d", &k, &ps, &py) == 3) {
			s[n] = ps;
			y[n++] = (uint8_t)py;
		} else
			break;
		int c2;
		while (fscanf(fc, "%d %lf %d", &c2, &ps, &py) == 3) {
			if (c2 != k) {
				pending_case = c2;
				break;
			}
			REQUIRE(n < MAXN, "case too long");
			s[n] = ps;
			y[n++] = (uint8_t)py;
		}
		int ek;
		double eauc, evar;
		REQUIRE(fscanf(fe, "%d %lf %lf", &ek, &eauc, &evar) == 3 && ek == k, "expected row for case %d", k);
		struct auc_result r;
		struct err e = {0};
		REQUIRE(metrics_auc(s, y, (size_t)n, 0, 0, &r, &e) == 0, "%s", e.msg);
		CHECK(fabs(r.auc - eauc) <= 1e-9, "case %d: auc %.17g, sklearn %.17g", k, r.auc, eauc);
		CHECK(fabs(r.var - evar) <= 1e-12 + 1e-9 * evar, "case %d: delong var %.17g, expected %.17g", k, r.var, evar);
		worst_auc = fmax(worst_auc, fabs(r.auc - eauc));
		worst_var = fmax(worst_var, fabs(r.var - evar));
		cases++;
	}
	fclose(fc);
	fclose(fe);
	CHECK(cases == 40, "read %d cases", cases);
	printf("  (40 cases: max |auc - sklearn| %.3g, max |var - delong| %.3g)\n", worst_auc, worst_var);
}

/* DeLong's paired test against its definition (tests/golden/make_auc_paired_golden.py) */
static void test_auc_paired_matches_definition(void)
{
	FILE *fc = fopen("tests/golden/auc_paired_cases.tsv", "r");
	FILE *fe = fopen("tests/golden/auc_paired_expected.tsv", "r");
	REQUIRE(fc && fe, "golden files missing (run from the repository root)");
	char line[256];
	REQUIRE(fgets(line, sizeof line, fc) && fgets(line, sizeof line, fe), "empty golden files");
	static double a[MAXN], b[MAXN];
	static uint8_t y[MAXN];
	int cases = 0, k, lab, pk = -1, plab = 0;
	double pa = 0, pb = 0, worst = 0;
	for (;;) {
		int n = 0;
		if (pk >= 0) {
			k = pk, a[0] = pa, b[0] = pb, y[0] = (uint8_t)plab, n = 1, pk = -1;
		} else if (fscanf(fc, "%d %d %lf %lf", &k, &lab, &pa, &pb) == 4) {
			a[0] = pa, b[0] = pb, y[0] = (uint8_t)lab, n = 1;
		} else {
			break;
		}
		int c2;
		while (fscanf(fc, "%d %d %lf %lf", &c2, &plab, &pa, &pb) == 4) {
			if (c2 != k) {
				pk = c2;
				break;
			}
			REQUIRE(n < MAXN, "case too long");
			a[n] = pa, b[n] = pb, y[n++] = (uint8_t)plab;
		}
		int ek;
		double ea, eb, ed, ev, ez, ep;
		REQUIRE(fscanf(fe, "%d %lf %lf %lf %lf %lf %lf", &ek, &ea, &eb, &ed, &ev, &ez, &ep) == 7 &&
		                ek == k, "expected row for case %d", k);
		struct auc_diff d;
		struct err e = {0};
		REQUIRE(metrics_auc_paired(a, b, y, (size_t)n, &d, &e) == 0, "%s", e.msg);
		CHECK(fabs(d.auc_a - ea) <= 1e-9 && fabs(d.auc_b - eb) <= 1e-9 && fabs(d.diff - ed) <= 1e-9,
		      "case %d: aucs %.17g %.17g diff %.17g, expected %.17g %.17g %.17g", k, d.auc_a, d.auc_b,
		      d.diff, ea, eb, ed);
		CHECK(fabs(d.var - ev) <= 1e-13 + 1e-9 * ev, "case %d: var %.17g, expected %.17g", k, d.var,
		      ev);
		CHECK(isinf(ez) ? d.z == ez : fabs(d.z - ez) <= 1e-9 + 1e-7 * fabs(ez),
		      "case %d: z %.17g, expected %.17g", k, d.z, ez);
		CHECK(fabs(d.p - ep) <= 1e-12 + 1e-7 * ep, "case %d: p %.17g, expected %.17g", k, d.p, ep);
		CHECK(d.lo <= d.diff && d.diff <= d.hi, "case %d: interval [%g, %g] misses %g", k, d.lo,
		      d.hi, d.diff);
		worst = fmax(worst, fabs(d.var - ev));
		cases++;
	}
	fclose(fc);
	fclose(fe);
	CHECK(cases == 24, "read %d cases", cases);
	/* the same score twice: no difference, p = 1 */
	struct auc_diff d;
	struct err e = {0};
	for (int i = 0; i < 20; i++)
		a[i] = (double)(i % 7), y[i] = (uint8_t)(i % 3 == 0);
	REQUIRE(metrics_auc_paired(a, a, y, 20, &d, &e) == 0, "%s", e.msg);
	CHECK(d.diff == 0 && d.var == 0 && d.p == 1 && d.z == 0, "a vs a: diff %g var %g p %g", d.diff,
	      d.var, d.p);
	/* one class only: NaN, not an error */
	memset(y, 0, 20);
	REQUIRE(metrics_auc_paired(a, a, y, 20, &d, &e) == 0, "%s", e.msg);
	CHECK(isnan(d.diff) && isnan(d.p) && d.n_pos == 0, "one class: diff %g", d.diff);
	printf("  (24 cases: max |var - definition| %.3g)\n", worst);
}

static void test_roc_and_youden(void)
{
	double s[] = {0.9, 0.8, 0.8, 0.3, 0.2, 0.1};
	uint8_t y[] = {1, 1, 0, 1, 0, 0};
	struct roc_point *p;
	long k = metrics_roc(s, y, 6, &p, NULL);
	REQUIRE(k == 6, "points %ld", k); /* (0,0) + 5 distinct scores */
	CHECK(p[0].fpr == 0 && p[0].tpr == 0, "starts at 0,0");
	CHECK(p[2].threshold == 0.8 && fabs(p[2].tpr - 2.0 / 3) < 1e-12 && fabs(p[2].fpr - 1.0 / 3) < 1e-12,
	      "tie at 0.8 is one point (%g, %g)", p[2].fpr, p[2].tpr);
	CHECK(p[5].fpr == 1 && p[5].tpr == 1, "ends at 1,1");
	/* trapezoid area equals the AUC */
	double area = 0;
	for (long i = 1; i < k; i++)
		area += (p[i].fpr - p[i - 1].fpr) * (p[i].tpr + p[i - 1].tpr) / 2;
	struct auc_result r;
	metrics_auc(s, y, 6, 0, 0, &r, NULL);
	CHECK(fabs(area - r.auc) < 1e-12, "trapezoid %g vs auc %g", area, r.auc);
	free(p);
	double t = metrics_youden(s, y, 6);
	CHECK(t == 0.3, "youden threshold %g", t); /* tpr 1, fpr 1/3 */
	struct confusion c;
	metrics_confusion(s, y, 6, t, &c);
	CHECK(c.tp == 3 && c.fp == 1 && c.tn == 2 && c.fn == 0, "confusion %zu %zu %zu %zu", c.tp, c.fp, c.tn, c.fn);
	CHECK(fabs(c.specificity - 2.0 / 3) < 1e-12 && c.sensitivity == 1, "sens/spec");
}

static void test_bootstrap_brackets_auc(void)
{
	enum { N = 400 };
	double s[N];
	uint8_t y[N];
	for (int i = 0; i < N; i++) {
		y[i] = (uint8_t)(i % 3 == 0);
		s[i] = (double)((i * 7919) % 101) / 100.0 + (y[i] ? 0.3 : 0);
	}
	struct auc_result a, b;
	struct err e = {0};
	REQUIRE(metrics_auc(s, y, N, 1000, 7, &a, &e) == 0, "%s", e.msg);
	REQUIRE(metrics_auc(s, y, N, 1000, 7, &b, &e) == 0, "%s", e.msg);
	CHECK(a.boot_lo < a.auc && a.auc < a.boot_hi, "bootstrap [%g, %g] around %g", a.boot_lo, a.boot_hi, a.auc);
	CHECK(a.boot_lo == b.boot_lo && a.boot_hi == b.boot_hi, "same seed, same interval");
	CHECK(fabs((a.boot_hi - a.boot_lo) - (a.hi - a.lo)) < 0.35 * (a.hi - a.lo),
	      "bootstrap width %g vs delong width %g", a.boot_hi - a.boot_lo, a.hi - a.lo);
	uint8_t one[3] = {1, 1, 1};
	REQUIRE(metrics_auc(s, one, 3, 0, 0, &a, &e) == 0, "%s", e.msg);
	CHECK(isnan(a.auc), "one class gives NaN");
}

int main(void)
{
	RUN(test_auc_matches_sklearn_and_delong);
	RUN(test_auc_paired_matches_definition);
	RUN(test_roc_and_youden);
	RUN(test_bootstrap_brackets_auc);
	return check_summary();
}
