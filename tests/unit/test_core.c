/* test_core.c - rng, afile, err */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "check.h"
#include "../../lib/base/afile.h"
#include "../../lib/base/err.h"
#include "../../lib/base/rng.h"

static void test_pcg32_reference_vector(void)
{
	/* pcg32-demo: pcg32_srandom_r(&rng, 42u, 54u) prints these first six */
	static const uint32_t want[6] = {0xa15c02b7, 0x7b47f409, 0xba1d3330,
	                                 0x83d2f293, 0xbfa4784b, 0xcbed606e};
	struct rng r;
	rng_seed(&r, 42, 54);
	for (int i = 0; i < 6; i++) {
		uint32_t got = rng_u32(&r);
		CHECK(got == want[i], "draw %d: 0x%08x, want 0x%08x", i, got, want[i]);
	}
}

/* rng_advance(n) lands where n draws do, for n across the bits */
static void test_rng_advance(void)
{
	static const uint64_t ns[] = {0, 1, 2, 3, 17, 255, 256, 1000, 65537, 300001};
	for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
		struct rng a, b;
		rng_seed(&a, 99, 5);
		rng_seed(&b, 99, 5);
		for (uint64_t i = 0; i < ns[k]; i++)
			rng_u32(&a);
		rng_advance(&b, ns[k]);
		CHECK(a.state == b.state && a.inc == b.inc && rng_u32(&a) == rng_u32(&b),
		      "advance %llu: state %016llx, %llu draws give %016llx", (unsigned long long)ns[k],
		      (unsigned long long)b.state, (unsigned long long)ns[k],
		      (unsigned long long)a.state);
	}
}

static void test_rng_below_and_shuffle(void)
{
	struct rng r;
	rng_seed(&r, 7, 1);
	int hist[10] = {0};
	for (int i = 0; i < 100000; i++) {
		uint32_t v = rng_below(&r, 10);
		REQUIRE(v < 10, "rng_below gave %u", v);
		hist[v]++;
	}
	for (int i = 0; i < 10; i++)
		CHECK(hist[i] > 9500 && hist[i] < 10500, "bucket %d has %d of 100000", i, hist[i]);
	uint32_t v[100], seen[100] = {0};
	for (uint32_t i = 0; i < 100; i++)
		v[i] = i;
	rng_shuffle(&r, v, 100);
	int moved = 0;
	for (uint32_t i = 0; i < 100; i++) {
		seen[v[i]]++;
		moved += v[i] != i;
	}
	for (int i = 0; i < 100; i++)
		CHECK(seen[i] == 1, "value %d appears %u times", i, seen[i]);
	CHECK(moved > 90, "only %d of 100 moved", moved);
	double s = 0, s2 = 0;
	for (int i = 0; i < 100000; i++) {
		double x = rng_normal(&r);
		s += x;
		s2 += x * x;
	}
	CHECK(fabs(s / 1e5) < 0.02 && fabs(s2 / 1e5 - 1) < 0.03, "normal mean %g var %g", s / 1e5, s2 / 1e5);
	float f = rng_float(&r);
	double d = rng_double(&r);
	CHECK(f >= 0 && f < 1 && d >= 0 && d < 1, "float %g double %g", (double)f, d);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)))
		n += de->d_name[0] != '.' || (de->d_name[1] && de->d_name[1] != '.');
	if (d)
		closedir(d);
	return n;
}

static void test_afile_commit_and_abort(void)
{
	char dir[600], path[700];
	snprintf(dir, sizeof dir, "%s/afile", check_tmpdir());
	mkdir(dir, 0755);
	snprintf(path, sizeof path, "%s/out.txt", dir);
	struct err e = {0};
	REQUIRE(afile_write_all(path, "old\n", 4, &e) == 0, "%s", e.msg);
	struct afile af;
	REQUIRE(afile_open(&af, path, &e) == 0, "%s", e.msg);
	fputs("new and longer\n", af.fp);
	CHECK(count_entries(dir) == 2, "temporary beside the target");
	afile_abort(&af);
	CHECK(count_entries(dir) == 1, "abort leaves only the old file (%d entries)", count_entries(dir));
	FILE *f = fopen(path, "r");
	char buf[64] = {0};
	REQUIRE(f, "old file gone");
	CHECK(fgets(buf, sizeof buf, f) && !strcmp(buf, "old\n"), "content '%s'", buf);
	fclose(f);
	REQUIRE(afile_open(&af, path, &e) == 0, "%s", e.msg);
	fputs("new\n", af.fp);
	REQUIRE(afile_commit(&af, &e) == 0, "%s", e.msg);
	f = fopen(path, "r");
	CHECK(f && fgets(buf, sizeof buf, f) && !strcmp(buf, "new\n"), "content '%s'", buf);
	if (f)
		fclose(f);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0044), "committed file is readable by others (%o)", st.st_mode);
	struct stat dn;
	CHECK(afile_write_all("/dev/null", "x", 1, &e) == 0, "/dev/null: %s", e.msg);
	CHECK(stat("/dev/null", &dn) == 0 && S_ISCHR(dn.st_mode), "/dev/null is still a device");
	CHECK(afile_write_all("/nonexistent-dir/x", "a", 1, &e) == ERR_IO, "error code %d", e.code);
	CHECK(strstr(e.msg, "/nonexistent-dir") != NULL, "message names the path: %s", e.msg);
}

static void test_err_first_wins(void)
{
	struct err e = {0};
	CHECK(err_set(&e, ERR_IO, "first %d", 1) == ERR_IO, "return code");
	err_set(&e, ERR_FORMAT, "second");
	CHECK(e.code == ERR_IO && !strcmp(e.msg, "first 1"), "got %d '%s'", e.code, e.msg);
	err_clear(&e);
	CHECK(e.code == 0 && !e.msg[0], "cleared");
}

int main(void)
{
	RUN(test_pcg32_reference_vector);
	RUN(test_rng_advance);
	RUN(test_rng_below_and_shuffle);
	RUN(test_afile_commit_and_abort);
	RUN(test_err_first_wins);
	return check_summary();
}
