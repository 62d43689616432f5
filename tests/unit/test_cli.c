/* test_cli.c - tools/cli.c: the x-alloc wrappers and the option values
 * written as provenance.  cli.c is not in libweno.a (it is the tools'), so
 * it is compiled in here. */
#include "../../tools/cli.c"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static int o_flag, o_int = 7;
static long long o_i64 = -3;
static double o_dbl = 0.1;
static const char *o_str = "a=b", *o_unset;

static const struct cli_opt OPTS[] = {
	{"flag", 0, CLI_FLAG, &o_flag, NULL, "", NULL},
	{"int", 0, CLI_INT, &o_int, "N", "", NULL},
	{"i64", 0, CLI_I64, &o_i64, "N", "", NULL},
	{"dbl", 0, CLI_DOUBLE, &o_dbl, "X", "", NULL},
	{"str", 0, CLI_STRING, &o_str, "S", "", NULL},
	{"unset", 0, CLI_STRING, &o_unset, "S", "", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};
static const struct cli CLI = {"test-cli", "", "", NULL, OPTS, 0, -1};

/* Runs fn in a child with stderr in a file; returns its exit status (-1 when
 * it did not exit) and its stderr in err. */
static int in_child(void (*fn)(void), char *err, size_t cap)
{
	char path[600];
	snprintf(path, sizeof path, "%s/stderr", check_tmpdir());
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (!freopen(path, "w", stderr))
			_exit(99);
		fn();
		_exit(0);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(err, 1, cap - 1, f) : 0;
	err[n] = 0;
	if (f)
		fclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* volatile: the compiler would refuse the sizes it can see */
static volatile size_t huge = SIZE_MAX / 2;
static void huge_malloc(void) { xmalloc(huge); }
static void huge_realloc(void) { xrealloc(NULL, huge); }
static void overflowing_calloc(void) { xcalloc(huge, 4); }

static void test_xalloc_out_of_memory(void)
{
	char *argv[] = {"test-cli", NULL}, **pos, err[512];
	int np;
	REQUIRE(cli_parse(&CLI, 1, argv, &np, &pos) == CLI_OK, "cli_parse");
	int st = in_child(huge_malloc, err, sizeof err);
	char want[128];
	snprintf(want, sizeof want, "test-cli: out of memory (allocating %zu bytes)\n", SIZE_MAX / 2);
	CHECK(st == 1 && !strcmp(err, want), "xmalloc: status %d, stderr '%s'", st, err);
	st = in_child(huge_realloc, err, sizeof err);
	CHECK(st == 1 && !strcmp(err, want), "xrealloc: status %d, stderr '%s'", st, err);
	st = in_child(overflowing_calloc, err, sizeof err);
	snprintf(want, sizeof want, "test-cli: out of memory (allocating %zu x 4 bytes)\n", SIZE_MAX / 2);
	CHECK(st == 1 && !strcmp(err, want), "xcalloc: status %d, stderr '%s'", st, err);
}

static void test_xalloc_small(void)
{
	void *z = xmalloc(0), *c = xcalloc(0, 8);
	CHECK(z && c, "0 bytes still give a pointer to free");
	free(z);
	free(c);
	char *s = xstrfmt("%s-%04d", "bag", 12), *d = xstrdup(s);
	CHECK(!strcmp(s, "bag-0012") && !strcmp(d, s) && d != s, "'%s' '%s'", s, d);
	free(s);
	free(d);
	char *big = xstrfmt("%5000s|", "x");
	CHECK(strlen(big) == 5001 && big[5000] == '|', "xstrfmt allocates to fit: %zu", strlen(big));
	free(big);
}

static int collect(void *arg, const char *name, const char *value)
{
	char **s = arg, *t = xstrfmt("%s[%s:%s]", *s, name, value);
	free(*s);
	*s = t;
	return 0;
}

static int stop_at_dbl(void *arg, const char *name, const char *value)
{
	(void)value;
	++*(int *)arg;
	return strcmp(name, "dbl") ? 0 : 5;
}

static void test_params(void)
{
	char buf[256];
	size_t n = cli_params(&CLI, "int", buf, sizeof buf);
	const char *want = "flag=0\ni64=-3\ndbl=0.1\nstr=a=b\n";
	CHECK(n == strlen(want) && !strcmp(buf, want), "cli_params: '%s'", buf);
	n = cli_params(&CLI, "int", buf, 10);
	CHECK(n == 9 && !strcmp(buf, "flag=0\ni6"), "truncated to cap - 1: %zu '%s'", n, buf);
	char *a = cli_params_alloc(&CLI, "int");
	CHECK(!strcmp(a, want), "cli_params_alloc: '%s'", a);
	free(a);
	char *s = xstrdup("");
	CHECK(cli_params_each(&CLI, "flag,i64", collect, &s) == 0, "each returns 0");
	CHECK(!strcmp(s, "[int:7][dbl:0.1][str:a=b]"), "cli_params_each: '%s'", s);
	free(s);
	int calls = 0;
	CHECK(cli_params_each(&CLI, NULL, stop_at_dbl, &calls) == 5 && calls == 4, "stops at fn's first non-zero: %d calls",
	      calls);
}

static void test_params_long_value(void)
{
	char *v = xmalloc(20001);
	memset(v, 'v', 20000);
	v[20000] = 0;
	const char *old = o_str;
	o_str = v;
	char *a = cli_params_alloc(&CLI, "flag,int,i64,dbl");
	CHECK(strlen(a) == 20005 && !strncmp(a, "str=vvv", 7) && a[20004] == '\n', "%zu bytes", strlen(a));
	free(a);
	o_str = old;
	free(v);
}

int main(void)
{
	RUN(test_xalloc_out_of_memory);
	RUN(test_xalloc_small);
	RUN(test_params);
	RUN(test_params_long_value);
	return check_summary();
}
