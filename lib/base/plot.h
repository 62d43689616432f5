/* plot.h - small SVG charts (ROC curves, training curves), written
 * atomically.  Thread safety: reentrant.  Errors: negative ERR_*. */
#ifndef WENO_PLOT_H
#define WENO_PLOT_H

#include "err.h"
#include "../mil/metrics.h"

struct plot_curve {
	const char *name;          /* legend text */
	const double *x, *y;       /* n points */
	long n;
};

/* A square plot of [0,1]x[0,1] with a diagonal reference line (ROC). */
int plot_roc_svg(const char *path, const char *title, const struct plot_curve *c, int n, struct err *e);

#endif
