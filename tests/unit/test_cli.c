/* test_cli.c - tools/cli.c: the x-alloc wrappers.  cli.c is not in
 * libweno.a (it is the tools'), so it is compiled in here. */
#include "../../tools/cli.c"

#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

static const struct cli_opt OPTS[] = {
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

int main(void)
{
	RUN(test_xalloc_out_of_memory);
	RUN(test_xalloc_small);
	return check_summary();
}
