/* cli.c - see cli.h */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/base/afile.h"
#include "../lib/base/progress.h"
#include "../lib/base/version.h"

int cli_quiet;
const char *cli_prog = "weno-tools";

/* Out of memory: one message, then exit 1.  The critical section keeps two
 * threads that run out together from calling exit at once. */
static void die_nomem(size_t n, size_t size)
{
#pragma omp critical(cli_die_nomem)
	{
		if (n == 1)
			fprintf(stderr, "%s: out of memory (allocating %zu bytes)\n", cli_prog, size);
		else
			fprintf(stderr, "%s: out of memory (allocating %zu x %zu bytes)\n", cli_prog, n, size);
		exit(1);
	}
}

void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (!p)
		die_nomem(1, size);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	if (!n || !size)
		n = size = 1;
	void *p = calloc(n, size); /* calloc checks n * size */
	if (!p)
		die_nomem(n, size);
	return p;
}

void *xrealloc(void *p, size_t size)
{
	void *q = realloc(p, size ? size : 1);
	if (!q)
		die_nomem(1, size);
	return q;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

char *xstrfmt(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) { /* an encoding error: nothing sensible to return */
		fprintf(stderr, "%s: cannot format '%s'\n", cli_prog, fmt);
		exit(1);
	}
	char *s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

void cli_error(const char *prog, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_usage_error(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s: ", c->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\ntry '%s --help'\n", c->prog);
	return CLI_USAGE;
}

static void print_help(const struct cli *c)
{
	printf("usage: %s %s\n\n%s\n\noptions:\n", c->prog, c->usage, c->summary);
	for (const struct cli_opt *o = c->opts; o && o->name; o++) {
		char left[96];
		int n = 0;
		if (o->short_name)
			n = snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->name);
		else
			n = snprintf(left, sizeof left, "      --%s", o->name);
		if (o->type != CLI_FLAG && n < (int)sizeof left)
			snprintf(left + n, sizeof left - (size_t)n, " %s", o->metavar ? o->metavar : "X");
		printf("%-30s %s", left, o->help ? o->help : "");
		if (o->choices)
			printf(" (%s)", o->choices);
		switch (o->type) {
		case CLI_INT:
			printf(" [%d]", *(int *)o->dest);
			break;
		case CLI_I64:
			printf(" [%lld]", *(long long *)o->dest);
			break;
		case CLI_DOUBLE:
			printf(" [%g]", *(double *)o->dest);
			break;
		case CLI_STRING:
			if (*(const char **)o->dest)
				printf(" [%s]", *(const char **)o->dest);
			break;
		case CLI_FLAG:
			break;
		}
		putchar('\n');
	}
	printf("  -q, --quiet                  no progress bar\n");
	printf("  -h, --help                   show this help and exit\n");
	printf("      --version                show the version and exit\n");
	if (c->epilog)
		printf("\n%s\n", c->epilog);
	printf("\ndocumentation: the section on %s in tools/README.md of weno-tools' source\n",
	       c->prog);
}

static int in_choices(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *p = choices;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);
		if (len == n && !strncmp(p, v, n))
			return 1;
		if (!bar)
			break;
		p = bar + 1;
	}
	return 0;
}

static int set_value(const struct cli *c, const struct cli_opt *o, const char *v)
{
	char *end;
	errno = 0;
	switch (o->type) {
	case CLI_INT: {
		long x = strtol(v, &end, 10);
		if (!*v || *end || errno || x < INT_MIN || x > INT_MAX)
			return cli_usage_error(c, "--%s: expected an integer, got '%s'", o->name, v);
		*(int *)o->dest = (int)x;
		break;
	}
	case CLI_I64: {
		long long x = strtoll(v, &end, 10);
		if (!*v || *end || errno)
			return cli_usage_error(c, "--%s: expected an integer, got '%s'", o->name, v);
		*(long long *)o->dest = x;
		break;
	}
	case CLI_DOUBLE: {
		double x = strtod(v, &end);
		if (!*v || *end || errno || x != x)
			return cli_usage_error(c, "--%s: expected a number, got '%s'", o->name, v);
		*(double *)o->dest = x;
		break;
	}
	case CLI_STRING:
		if (o->choices && !in_choices(o->choices, v))
			return cli_usage_error(c, "--%s: expected one of %s, got '%s'", o->name,
			                       o->choices, v);
		*(const char **)o->dest = v;
		break;
	case CLI_FLAG:
		*(int *)o->dest = 1;
		break;
	}
	return CLI_OK;
}

int cli_close_stdout(void)
{
	/* a full disk, /dev/full, a closed pipe: the data did not all arrive,
	 * which a tool must say and exit 1 for, as git does */
	errno = 0;
	int bad = fflush(stdout) != 0 || ferror(stdout);
	int err = errno;
	if (fclose(stdout) != 0 && !bad) {
		bad = 1;
		err = errno;
	}
	if (!bad)
		return 0;
	fprintf(stderr, "%s: cannot write to standard output%s%s\n", cli_prog, err ? ": " : "",
	        err ? strerror(err) : "");
	return 1;
}

void cli_protect(const char *path)
{
	struct err e = {0};
	if (path && afile_protect(path, &e)) {
		fprintf(stderr, "%s: %s\n", cli_prog, e.msg);
		exit(1);
	}
}

/* what lib/base/afile did beside its result, as "prog: msg" */
static void print_notice(const char *msg)
{
	fprintf(stderr, "%s: %s\n", cli_prog, msg);
}

int cli_parse(const struct cli *c, int argc, char **argv, int *npos, char ***pos)
{
	int np = 0, only_pos = 0;
	cli_prog = c->prog;
	afile_set_notice(print_notice);
	for (int i = 1; i < argc; i++) {
		char *a = argv[i];
		if (only_pos || a[0] != '-' || !a[1]) {
			argv[++np] = a; /* compact positionals at argv[1..] */
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_help(c);
			if (cli_close_stdout())
				exit(1);
			return CLI_EXIT;
		}
		if (!strcmp(a, "--version")) {
			printf("%s %s\n", c->prog, WENO_VERSION);
			if (cli_close_stdout())
				exit(1);
			return CLI_EXIT;
		}
		if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			cli_quiet = 1;
			progress_set_quiet(1);
			continue;
		}
		const struct cli_opt *o = NULL;
		const char *val = NULL;
		if (a[1] == '-') {
			const char *name = a + 2, *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			for (const struct cli_opt *q = c->opts; q && q->name; q++)
				if (strlen(q->name) == len && !strncmp(q->name, name, len))
					o = q;
			if (!o)
				return cli_usage_error(c, "unknown option '--%.*s'", (int)len, name);
			if (eq) {
				if (o->type == CLI_FLAG)
					return cli_usage_error(c, "option '--%s' takes no value", o->name);
				val = eq + 1;
			}
		} else {
			for (const struct cli_opt *q = c->opts; q && q->name; q++)
				if (q->short_name == a[1])
					o = q;
			if (!o)
				return cli_usage_error(c, "unknown option '-%c'", a[1]);
			if (a[2]) {
				if (o->type == CLI_FLAG)
					return cli_usage_error(c, "option '-%c' takes no value", a[1]);
				val = a + 2;
			}
		}
		if (o->type != CLI_FLAG && !val) {
			if (i + 1 >= argc)
				return cli_usage_error(c, "option '--%s' needs a value", o->name);
			val = argv[++i];
		}
		int rc = set_value(c, o, val);
		if (rc)
			return rc;
	}
	if (np < c->min_pos)
		return cli_usage_error(c, "expected %s%d argument%s", c->max_pos == c->min_pos ? "" : "at least ",
		                       c->min_pos, c->min_pos == 1 ? "" : "s");
	if (c->max_pos >= 0 && np > c->max_pos)
		return cli_usage_error(c, "too many arguments (at most %d)", c->max_pos);
	*npos = np;
	*pos = argv + 1;
	return CLI_OK;
}

static int skipped(const char *skip, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = skip; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return 1;
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

int cli_params_each(const struct cli *c, const char *skip,
                    int (*fn)(void *arg, const char *name, const char *value), void *arg)
{
	for (const struct cli_opt *o = c->opts; o && o->name; o++) {
		char num[32];
		const char *v = num;
		if (skipped(skip, o->name))
			continue;
		switch (o->type) {
		case CLI_FLAG:
		case CLI_INT:
			snprintf(num, sizeof num, "%d", *(int *)o->dest);
			break;
		case CLI_I64:
			snprintf(num, sizeof num, "%lld", *(long long *)o->dest);
			break;
		case CLI_DOUBLE: {
			/* the shortest text that reads back as the same double */
			double x = *(double *)o->dest;
			for (int prec = 1; prec <= 17; prec++) {
				snprintf(num, sizeof num, "%.*g", prec, x);
				if (strtod(num, NULL) == x)
					break;
			}
			break;
		}
		case CLI_STRING:
			v = *(const char **)o->dest;
			break;
		}
		if (!v)
			continue;
		int rc = fn(arg, o->name, v);
		if (rc)
			return rc;
	}
	return 0;
}

/* "name=value\n" lines appended to a buffer: at most cap - 1 bytes kept,
 * len counts them all */
struct params_text {
	char *buf;
	size_t cap, len;
};

static int params_append(void *arg, const char *name, const char *value)
{
	struct params_text *t = arg;
	size_t n = strlen(name) + strlen(value) + 2;
	if (t->len < t->cap)
		snprintf(t->buf + t->len, t->cap - t->len, "%s=%s\n", name, value);
	t->len += n;
	return 0;
}

size_t cli_params(const struct cli *c, const char *skip, char *buf, size_t cap)
{
	if (!cap)
		return 0;
	struct params_text t = {buf, cap, 0};
	buf[0] = 0;
	cli_params_each(c, skip, params_append, &t);
	return t.len < cap ? t.len : cap - 1;
}

char *cli_params_alloc(const struct cli *c, const char *skip)
{
	struct params_text t = {NULL, 0, 0};
	cli_params_each(c, skip, params_append, &t); /* measures */
	t.cap = t.len + 1;
	t.buf = xmalloc(t.cap);
	t.buf[0] = 0;
	t.len = 0;
	cli_params_each(c, skip, params_append, &t);
	return t.buf;
}
