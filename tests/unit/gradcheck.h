/* gradcheck.h - finite-difference gradient checking for the nn tests.
 *
 * A check is a scalar function L(vars) evaluated in double (loss) and a
 * function that fills the analytic gradients dL/dvar (grad).  For each
 * variable, up to max_samples elements (all when fewer) are perturbed by
 * +-h and the central difference (L(x+h) - L(x-h)) / 2h is compared with the
 * analytic value: |fd - an| <= max(atol', noise') + rtol * max(|fd|, |an|),
 * where atol' is atol scaled by the largest analytic gradient of that
 * variable (capped at 1) and noise' = noise * (|L+| + |L-|) / 2h is the
 * float32 rounding of L seen through the quotient.  With tries > 1, the
 * steps h/4, h/16... are tried when h disagrees (a ReLU or max-pool kink
 * crossed by one step); an element passes if one step agrees.
 * corrupt != 0 multiplies one analytic element by 1.1 before comparing: used
 * to show that a wrong gradient fails.
 */
#ifndef WENO_GRADCHECK_H
#define WENO_GRADCHECK_H

#include <math.h>
#include <stdio.h>

#include "../../lib/base/rng.h"

struct gvar {
	const char *name;
	float *x, *dx;
	size_t n;
};

struct gopts {
	double h, atol, rtol;
	double noise;          /* relative rounding noise of L (0: none assumed) */
	int tries;             /* step sizes h, h/4, h/16...: pass if one agrees */
	int max_samples;
	int corrupt;
};

/* returns the number of mismatching elements (printed, the first few) */
static int gradcheck(const char *what, double (*loss)(void *), void (*grad)(void *), void *ctx,
                     struct gvar *v, int nv, const struct gopts *o)
{
	int bad = 0;
	for (int k = 0; k < nv; k++)
		for (size_t i = 0; i < v[k].n; i++)
			v[k].dx[i] = 0.0f;
	grad(ctx);
	if (o->corrupt && nv > 0 && v[0].n > 0) {
		size_t imax = 0;
		for (size_t i = 0; i < v[0].n; i++)
			if (fabsf(v[0].dx[i]) > fabsf(v[0].dx[imax]))
				imax = i;
		v[0].dx[imax] = v[0].dx[imax] * 1.1f + 1e-3f;
	}
	struct rng r;
	rng_seed(&r, 7, 3);
	for (int k = 0; k < nv; k++) {
		double gmax = 0.0;
		for (size_t i = 0; i < v[k].n; i++)
			if (fabs(v[k].dx[i]) > gmax)
				gmax = fabs(v[k].dx[i]);
		size_t cnt = v[k].n;
		int all = (int)cnt <= o->max_samples;
		int samples = all ? (int)cnt : o->max_samples;
		/* always include the largest-gradient element */
		size_t imax = 0;
		for (size_t i = 0; i < v[k].n; i++)
			if (fabsf(v[k].dx[i]) > fabsf(v[k].dx[imax]))
				imax = i;
		for (int s = 0; s < samples; s++) {
			size_t i = all ? (size_t)s : (s == 0 ? imax : rng_below(&r, (uint32_t)cnt));
			float x0 = v[k].x[i];
			double an = v[k].dx[i], fd = 0.0, tol = 0.0;
			/* h, h/4, h/16: a kink crossed at one step size rarely is at all */
			for (int tries = 0; tries < (o->tries > 0 ? o->tries : 1); tries++) {
				double h = o->h / (double)(1 << (2 * tries));
				v[k].x[i] = (float)(x0 + h);
				double hp = (double)v[k].x[i] - x0;
				double lp = loss(ctx);
				v[k].x[i] = (float)(x0 - h);
				double hm = x0 - (double)v[k].x[i];
				double lm = loss(ctx);
				v[k].x[i] = x0;
				fd = (lp - lm) / (hp + hm);
				/* float32 rounding of L, seen through the difference quotient */
				double noise = o->noise * (fabs(lp) + fabs(lm)) / (hp + hm);
				double a = o->atol * (gmax > 1.0 ? 1.0 : gmax);
				tol = (a > noise ? a : noise) + o->rtol * fmax(fabs(fd), fabs(an));
				if (fabs(fd - an) <= tol)
					break;
			}
			if (!(fabs(fd - an) <= tol)) {
				if (bad < 5)
					printf("     %s: %s[%zu]: finite difference %.8g, analytic %.8g "
					       "(tol %.3g)\n", what, v[k].name, i, fd, an, tol);
				bad++;
			}
		}
	}
	return bad;
}

#endif
