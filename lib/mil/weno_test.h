/* weno_test.h - the trainer's test hooks (struct weno_test in weno.h):
 * hashed initialisation, an order file, a trace.  Internal to lib/mil.
 *
 * Thread safety: plain data.  Errors: negative ERR_* naming the file and
 * the line.
 */
#ifndef WENO_WENO_TEST_H
#define WENO_WENO_TEST_H

#include <stdint.h>
#include <stdio.h>

#include "../base/err.h"
#include "../nn/net.h"

/* The parameters of m from the integer hash of tests/golden/make_nn_golden.py
 * (tensor t from hash(i, t0 + t)); BN running mean 0, variance 1. */
int weno_test_fill(struct nn_module *m, uint32_t t0, struct err *e);

/* The passes' orders of an order file (WENO_TEST_ORDER). */
struct weno_order {
	int nepochs;
	uint32_t **teacher, **student;  /* [epoch] positions, NULL when absent */
	uint64_t *nteacher, *nstudent;  /* [epoch] counts */
};

int weno_order_load(struct weno_order *o, const char *path, struct err *e);
void weno_order_free(struct weno_order *o);
/* Epoch's (0-based) order of the teacher (which 0) or the student pass
 * (which 1): copies its n positions, each below n, into out; an error
 * naming the file when the epoch has no line, the count differs or a
 * position is out of range or repeated. */
int weno_order_get(const struct weno_order *o, const char *path, int which, int epoch, uint32_t *out,
                   uint64_t n, struct err *e);

/* Trace lines "sums" and "state" of module m (named mod) after a pass. */
void weno_test_trace_module(FILE *f, int epoch, const char *pass, const char *mod, const struct nn_module *m);

#endif
