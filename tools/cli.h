/* cli.h - the option table shared by every tool.
 *
 * A tool declares its options in a table; cli_parse fills the destinations,
 * handles -h/--help (usage on stdout, exit status 0), --version and -q/--quiet,
 * and returns the positional arguments.  Bad usage prints
 * "prog: message" and "try 'prog --help'" on stderr and returns CLI_USAGE;
 * the tool exits 2.  Numbers are parsed strictly in the C locale.
 *
 * cli_params writes every option's value as "name=value" lines, which tools
 * store in their outputs' provenance.
 *
 * Allocation in the tools follows one rule, as git's wrapper.c: xmalloc,
 * xcalloc, xrealloc, xstrdup and xstrfmt never return NULL.  When memory
 * runs out they print "prog: out of memory (allocating N bytes)" on stderr
 * and exit 1, prog being the program whose options cli_parse read last.  A
 * tool has nothing better to do then, and a check at every call is a check
 * forgotten somewhere.  lib/ never exits: it returns ERR_NOMEM and its
 * caller decides.
 */
#ifndef WENO_CLI_H
#define WENO_CLI_H

#include <stddef.h>

enum cli_type { CLI_FLAG, CLI_INT, CLI_I64, CLI_DOUBLE, CLI_STRING };

struct cli_opt {
	const char *name;       /* long name, without the dashes */
	char short_name;        /* 0 when none */
	enum cli_type type;
	void *dest;             /* int*, long long*, double* or const char** */
	const char *metavar;    /* shown in help: "N", "FILE", ... */
	const char *help;
	const char *choices;    /* "a|b|c" to restrict a CLI_STRING, else NULL */
};

struct cli {
	const char *prog;
	const char *usage;      /* after the program name: "[options] FILE..." */
	const char *summary;    /* what the tool does, shown first in --help */
	const char *epilog;     /* examples, exit codes */
	const struct cli_opt *opts; /* terminated by an entry with name NULL */
	int min_pos, max_pos;   /* positional count bounds; max -1 unbounded */
};

enum { CLI_OK = 0, CLI_EXIT = 1, CLI_USAGE = 2 };

extern int cli_quiet;           /* set by -q/--quiet */
extern const char *cli_prog;    /* set by cli_parse: the name in error lines */

/* On CLI_OK, *npos and *pos give the positional arguments (pointers into
 * argv).  CLI_EXIT: help or version was printed; exit 0.  CLI_USAGE: exit 2. */
int cli_parse(const struct cli *c, int argc, char **argv, int *npos, char ***pos);

/* Prints "prog: message" on stderr, then "try 'prog --help'", returns 2. */
int cli_usage_error(const struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Writes "name=value\n" for every option (flags as 0/1, unset strings
 * skipped) into buf; returns the length (truncated to cap-1).  skip lists
 * option names left out, comma-separated ("output,threads": where a file
 * goes and how many threads wrote it do not change what is in it). */
size_t cli_params(const struct cli *c, const char *skip, char *buf, size_t cap);

/* The same lines in a string allocated to fit, never truncated; the caller
 * frees it. */
char *cli_params_alloc(const struct cli *c, const char *skip);

/* Calls fn(arg, name, value) for each option that cli_params writes, in
 * table order, with the value as cli_params writes it; stops at the first
 * non-zero return of fn and returns it, else 0. */
int cli_params_each(const struct cli *c, const char *skip,
                    int (*fn)(void *arg, const char *name, const char *value), void *arg);

/* Flushes and closes stdout: 0 when everything written arrived, else 1
 * after "prog: cannot write to standard output: reason" on stderr.  A
 * tool that prints its results calls it last and exits 1 on 1. */
int cli_close_stdout(void);

/* Registers an input file that no output of this run may overwrite
 * (lib/base/afile.h's afile_protect; out of memory exits 1). */
void cli_protect(const char *path);

/* Prints "prog: msg" on stderr (the tool's error convention). */
void cli_error(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The x-alloc wrappers (see the top of this file): like malloc, calloc,
 * realloc and strdup, but they exit 1 instead of returning NULL, and a
 * request of 0 bytes still returns a pointer to free.  xcalloc also fails
 * when n * size overflows.  The caller frees what they return. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
/* printf into a string allocated to fit; the caller frees it */
char *xstrfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
