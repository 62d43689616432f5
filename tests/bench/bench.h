/* bench.h - what the benchmarks share: a positive integer from the
 * environment (or the default), and the clock of lib/base/progress.h. */
#ifndef WENO_BENCH_H
#define WENO_BENCH_H

#include <stdlib.h>

#include "../../lib/base/progress.h"

static inline int env_int(const char *k, int d)
{
	const char *v = getenv(k);
	return v && atoi(v) > 0 ? atoi(v) : d;
}

#endif
