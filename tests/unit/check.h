/* check.h - the unit-test harness: each test binary is a list of cases.
 *
 *   static void test_something(void) { CHECK(x == 1, "x is %d", x); }
 *   int main(void) { RUN(test_something); return check_summary(); }
 *
 * Each case prints "PASS name", "FAIL name: where: why" or "SKIP name: why";
 * the binary exits 1 when any case failed.  tests/run.sh adds them up.
 * CHECK_ONLY=case1,case2 in the environment runs only the cases named.
 */
#ifndef WENO_CHECK_H
#define WENO_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failed_cases, check_case_failed, check_case_skipped;
static char check_skip_reason[256];

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			if (!check_case_failed)                                       \
				printf("FAIL %s: %s:%d: ", check_case_name, __FILE__, __LINE__); \
			else                                                          \
				printf("     %s:%d: ", __FILE__, __LINE__);               \
			printf(__VA_ARGS__);                                          \
			printf("  [%s]\n", #cond);                                    \
			check_case_failed = 1;                                        \
		}                                                                     \
	} while (0)

/* Like CHECK (cond evaluated once), and stops the current case on failure. */
#define REQUIRE(cond, ...)                                                            \
	do {                                                                          \
		int check_ok_ = !!(cond);                                             \
		CHECK(check_ok_, __VA_ARGS__);                                        \
		if (!check_ok_)                                                       \
			return;                                                       \
	} while (0)

#define SKIP(...)                                                                     \
	do {                                                                          \
		snprintf(check_skip_reason, sizeof check_skip_reason, __VA_ARGS__);  \
		check_case_skipped = 1;                                               \
		return;                                                               \
	} while (0)

static const char *check_case_name = "";

/* CHECK_ONLY=case1,case2 in the environment runs only those cases */
static inline int check_selected(const char *name)
{
	const char *only = getenv("CHECK_ONLY");
	if (!only || !*only)
		return 1;
	size_t n = strlen(name);
	for (const char *p = only; (p = strstr(p, name)) != NULL; p += n)
		if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

#define RUN(fn)                                                                       \
	if (check_selected(#fn))                                                      \
	do {                                                                          \
		check_case_name = #fn;                                                \
		check_case_failed = check_case_skipped = 0;                           \
		fn();                                                                 \
		if (check_case_failed)                                                \
			check_failed_cases++;                                         \
		else if (check_case_skipped)                                          \
			printf("SKIP %s: %s\n", #fn, check_skip_reason);              \
		else                                                                  \
			printf("PASS %s\n", #fn);                                     \
		fflush(stdout);                                                       \
	} while (0)

static inline int check_summary(void)
{
	return check_failed_cases ? 1 : 0;
}

/* |a-b| <= atol + rtol*|b| */
static inline int check_close(double a, double b, double atol, double rtol)
{
	return fabs(a - b) <= atol + rtol * fabs(b);
}

/* A fresh scratch directory under $TMPDIR (or /tmp), removed by the runner. */
static inline const char *check_tmpdir(void)
{
	static char dir[512];
	if (!dir[0]) {
		const char *base = getenv("WENO_TEST_TMP");
		if (!base)
			base = getenv("TMPDIR");
		snprintf(dir, sizeof dir, "%s/wenotest.XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			exit(1);
		}
	}
	return dir;
}

#endif
