/* test_core.c - rng, afile, err, textfile */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "check.h"
#include "../../lib/base/afile.h"
#include "../../lib/base/err.h"
#include "../../lib/base/rng.h"
#include "../../lib/base/textfile.h"

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

static char *tmp_file(const char *name, const void *bytes, size_t n)
{
	static char path[512];
	const char *d = getenv("WENO_TEST_TMP");
	snprintf(path, sizeof path, "%s/%s.%d", d && *d ? d : "/tmp", name, (int)getpid());
	FILE *f = fopen(path, "wb");
	if (f) {
		fwrite(bytes, 1, n, f);
		fclose(f);
	}
	return path;
}

/* every line of a file, joined by '|' */
static int read_all(const char *path, size_t max, char *out, size_t cap, struct err *e)
{
	struct textfile t;
	int rc = textfile_open(&t, path, 0, e);
	if (rc)
		return rc;
	if (max)
		t.max = max;
	out[0] = 0;
	while ((rc = textfile_next(&t, e)) == 1)
		snprintf(out + strlen(out), cap - strlen(out), "%s|", t.line);
	textfile_close(&t);
	return rc;
}

static void test_textfile_lines(void)
{
	struct err e = {0};
	char got[256];
	/* a byte-order mark, CR LF, an empty line, a last line without LF */
	const char a[] = "\xef\xbb\xbfid\tlabel\r\nx\t1\n\nlast";
	char *p = tmp_file("tf-a", a, sizeof a - 1);
	CHECK(read_all(p, 0, got, sizeof got, &e) == 0 && !strcmp(got, "id\tlabel|x\t1||last|"), "got '%s' (%s)",
	      got, e.msg);
	unlink(p);
	/* a BOM only counts at the start */
	const char b[] = "a\n\xef\xbb\xbf" "b\n";
	p = tmp_file("tf-b", b, sizeof b - 1);
	CHECK(read_all(p, 0, got, sizeof got, &e) == 0 && !strcmp(got, "a|\xef\xbb\xbf" "b|"), "got '%s'", got);
	unlink(p);
	/* a line past the limit: an error naming the line, not a truncation */
	char big[9000];
	memset(big, 'x', sizeof big);
	memcpy(big, "ok\n", 3);
	big[sizeof big - 1] = '\n';
	p = tmp_file("tf-c", big, sizeof big);
	err_clear(&e);
	CHECK(read_all(p, 5000, got, sizeof got, &e) == ERR_LIMIT && strstr(e.msg, "line 2: longer than 5000 bytes"),
	      "%s", e.msg);
	err_clear(&e);
	CHECK(read_all(p, 10000, got, sizeof got, &e) == 0, "under the limit: %s", e.msg);
	unlink(p);
	/* a NUL byte inside a line */
	const char d[] = "a\nb\0c\nd\n";
	p = tmp_file("tf-d", d, sizeof d - 1);
	err_clear(&e);
	CHECK(read_all(p, 0, got, sizeof got, &e) == ERR_FORMAT && strstr(e.msg, "line 2: a NUL byte"), "%s", e.msg);
	unlink(p);
}

static void test_textfile_not_regular(void)
{
	struct err e = {0};
	struct textfile t;
	/* a FIFO without a writer: refused at once, not a hang */
	char fifo[512];
	const char *d = getenv("WENO_TEST_TMP");
	snprintf(fifo, sizeof fifo, "%s/tf-fifo.%d", d && *d ? d : "/tmp", (int)getpid());
	REQUIRE(mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
	CHECK(textfile_open(&t, fifo, 0, &e) == ERR_IO && strstr(e.msg, "a FIFO, expected a regular file"), "%s",
	      e.msg);
	err_clear(&e);
	CHECK(textfile_check_regular(fifo, &e) == ERR_IO && strstr(e.msg, "FIFO"), "check: %s", e.msg);
	unlink(fifo);
	err_clear(&e);
	CHECK(textfile_open(&t, "/dev/zero", 0, &e) == ERR_IO && strstr(e.msg, "a device"), "%s", e.msg);
	err_clear(&e);
	CHECK(textfile_open(&t, "/", 0, &e) == ERR_IO && strstr(e.msg, "a directory"), "%s", e.msg);
	err_clear(&e);
	CHECK(textfile_open(&t, "/nonexistent/x.tsv", 0, &e) == ERR_IO && strstr(e.msg, "cannot open"), "%s", e.msg);
	err_clear(&e);
	CHECK(textfile_open(&t, "-", 0, &e) == ERR_IO, "'-' is a file name unless stdin is allowed");
	err_clear(&e);
	CHECK(textfile_open(&t, "-", 1, &e) == 0 && t.is_stdin, "'-' is stdin when allowed: %s", e.msg);
	textfile_close(&t);
}

static char notices[2048];
static void keep_notice(const char *msg)
{
	snprintf(notices + strlen(notices), sizeof notices - strlen(notices), "%s\n", msg);
}

static void touch(const char *path, size_t n)
{
	FILE *f = fopen(path, "wb");
	for (size_t i = 0; f && i < n; i++)
		fputc('x', f);
	if (f)
		fclose(f);
}

/* a killed writer's temporary is removed by the next writer into the
 * folder, and said; a live writer's and another host's are left */
static void test_afile_stale_temporaries(void)
{
	char dir[512], host[256] = "", tag[32] = "", dead[768], live[768], other[768], legacy[768];
	snprintf(dir, sizeof dir, "%s/stale.%d", getenv("WENO_TEST_TMP") ? getenv("WENO_TEST_TMP") : "/tmp",
	         (int)getpid());
	REQUIRE(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	gethostname(host, sizeof host - 1);
	for (size_t i = 0, k = 0; host[i] && k < 16; i++)
		if ((host[i] >= 'a' && host[i] <= 'z') || (host[i] >= 'A' && host[i] <= 'Z') ||
		    (host[i] >= '0' && host[i] <= '9') || host[i] == '-')
			tag[k++] = host[i];
	/* a pid that is gone: a child that has exited and been reaped */
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	snprintf(dead, sizeof dead, "%s/.m.model.last.tmp-%s.%d-AbC123", dir, tag, (int)child);
	snprintf(live, sizeof live, "%s/.m.model.tmp-%s.%d-XyZ789", dir, tag, (int)getpid());
	snprintf(other, sizeof other, "%s/.m.model.tmp-otherhost.%d-QqQ000", dir, (int)child);
	snprintf(legacy, sizeof legacy, "%s/.m.model.tmp-LeGaCy", dir);
	touch(dead, 2000000);
	touch(live, 10);
	touch(other, 10);
	touch(legacy, 10);
	notices[0] = 0;
	afile_set_notice(keep_notice);
	char out[600];
	snprintf(out, sizeof out, "%s/m.model", dir);
	struct err e = {0};
	struct afile af;
	REQUIRE(afile_open(&af, out, &e) == 0, "%s", e.msg);
	CHECK(strstr(af.tmp, ".m.model.tmp-") && strstr(af.tmp, tag), "temporary %s", af.tmp);
	REQUIRE(afile_commit(&af, &e) == 0, "%s", e.msg);
	CHECK(access(dead, F_OK) != 0, "the dead writer's temporary is still there");
	CHECK(strstr(notices, "removed '") && strstr(notices, "(2.0 MB), the temporary file of an earlier run"),
	      "notice: '%s'", notices);
	CHECK(access(live, F_OK) == 0 && access(other, F_OK) == 0 && access(legacy, F_OK) == 0,
	      "a live writer's, another host's or an old-style temporary was removed");
	afile_set_notice(NULL);
	unlink(live), unlink(other), unlink(legacy), unlink(out);
	rmdir(dir);
}

/* an output that is an input (the same file by any name) is refused */
static void test_afile_protect(void)
{
	char in[600], hard[600], sym[600], other[600];
	const char *d = getenv("WENO_TEST_TMP") ? getenv("WENO_TEST_TMP") : "/tmp";
	snprintf(in, sizeof in, "%s/in.%d.tsv", d, (int)getpid());
	snprintf(hard, sizeof hard, "%s/hard.%d.tsv", d, (int)getpid());
	snprintf(sym, sizeof sym, "%s/sym.%d.tsv", d, (int)getpid());
	snprintf(other, sizeof other, "%s/other.%d.tsv", d, (int)getpid());
	touch(in, 5);
	REQUIRE(link(in, hard) == 0 && symlink(in, sym) == 0, "links");
	struct err e = {0};
	struct afile af;
	REQUIRE(afile_protect(in, &e) == 0 && afile_protect("-", &e) == 0 &&
	            afile_protect("/nonexistent/x", &e) == 0, "%s", e.msg);
	const char *same[] = {in, hard, sym};
	for (int i = 0; i < 3; i++) {
		err_clear(&e);
		CHECK(afile_open(&af, same[i], &e) == ERR_USAGE && strstr(e.msg, "it is the input") &&
		          strstr(e.msg, in),
		      "%s: %s", same[i], e.msg);
	}
	struct stat st;
	CHECK(stat(in, &st) == 0 && st.st_size == 5, "the input changed");
	err_clear(&e);
	CHECK(afile_open(&af, other, &e) == 0, "another file: %s", e.msg);
	afile_abort(&af);
	unlink(in), unlink(hard), unlink(sym);
}

int main(void)
{
	RUN(test_pcg32_reference_vector);
	RUN(test_rng_advance);
	RUN(test_rng_below_and_shuffle);
	RUN(test_afile_commit_and_abort);
	RUN(test_err_first_wins);
	RUN(test_textfile_lines);
	RUN(test_textfile_not_regular);
	RUN(test_afile_stale_temporaries);
	RUN(test_afile_protect);
	return check_summary();
}
