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

/* An FROC plot: sensitivity [0,1] against mean false positives per slide,
 * the x axis linear from 0 to 1/8 and base-2 logarithmic from 1/8 to 16
 * (the layout of the Camelyon16 paper's figure), points beyond 16 drawn at
 * 16.  at (NULL: none) marks the first curve's sensitivity at 1/4, 1/2, 1,
 * 2, 4 and 8, with dotted lines at those six rates. */
int plot_froc_svg(const char *path, const char *title, const struct plot_curve *c, int n, const double at[6],
                  struct err *e);

#endif
