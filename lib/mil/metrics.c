/* metrics.c - see metrics.h */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/rng.h"

struct item {
	double s;
	size_t i;
};

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->s < y->s)
		return -1;
	if (x->s > y->s)
		return 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/* Midranks (1-based) of v[0..n) into r. */
static int midranks(const double *v, size_t n, double *r, struct err *e)
{
	struct item *it = malloc((n ? n : 1) * sizeof *it);
	if (!it)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		it[i].s = v[i];
		it[i].i = i;
	}
	qsort(it, n, sizeof *it, cmp_item);
	for (size_t a = 0; a < n;) {
		size_t b = a;
		while (b + 1 < n && it[b + 1].s == it[a].s)
			b++;
		double mr = 0.5 * ((double)a + (double)b) + 1.0;
		for (size_t k = a; k <= b; k++)
			r[it[k].i] = mr;
		a = b + 1;
	}
	free(it);
	return 0;
}

static double svar(const double *v, size_t n)
{
	if (n < 2)
		return 0;
	double m = 0, s = 0;
	for (size_t i = 0; i < n; i++)
		m += v[i];
	m /= (double)n;
	for (size_t i = 0; i < n; i++)
		s += (v[i] - m) * (v[i] - m);
	return s / (double)(n - 1);
}

/* AUC by midranks of positives and negatives given as separate arrays;
 * var (DeLong) and the structural components v10 [n1], v01 [n0] when not
 * NULL. */
static int auc_core(const double *pos, size_t n1, const double *neg, size_t n0, double *auc, double *var,
                    double *v10, double *v01, struct err *e)
{
	size_t n = n1 + n0;
	double *all = malloc(n * sizeof *all), *r = malloc(n * sizeof *r);
	double *r1 = malloc((n1 ? n1 : 1) * sizeof *r1), *r0 = malloc((n0 ? n0 : 1) * sizeof *r0);
	if (!all || !r || !r1 || !r0) {
		free(all);
		free(r);
		free(r1);
		free(r0);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	memcpy(all, pos, n1 * sizeof *all);
	memcpy(all + n1, neg, n0 * sizeof *all);
	int rc = midranks(all, n, r, e);
	if (!rc)
		rc = midranks(pos, n1, r1, e);
	if (!rc)
		rc = midranks(neg, n0, r0, e);
	if (!rc) {
		double sum = 0;
		for (size_t i = 0; i < n1; i++)
			sum += r[i];
		*auc = (sum - (double)n1 * ((double)n1 + 1) / 2) / ((double)n1 * (double)n0);
		if (var || v10 || v01) {
			/* reuse r1 and r0 for V10 and V01 */
			for (size_t i = 0; i < n1; i++)
				r1[i] = (r[i] - r1[i]) / (double)n0;
			for (size_t j = 0; j < n0; j++)
				r0[j] = 1.0 - (r[n1 + j] - r0[j]) / (double)n1;
			if (var)
				*var = svar(r1, n1) / (double)n1 + svar(r0, n0) / (double)n0;
			if (v10)
				memcpy(v10, r1, n1 * sizeof *v10);
			if (v01)
				memcpy(v01, r0, n0 * sizeof *v01);
		}
	}
	free(all);
	free(r);
	free(r1);
	free(r0);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double percentile(const double *sorted, size_t n, double p)
{
	double h = (double)(n - 1) * p;
	size_t lo = (size_t)floor(h);
	size_t hi = lo + 1 < n ? lo + 1 : lo;
	return sorted[lo] + (h - (double)lo) * (sorted[hi] - sorted[lo]);
}

int metrics_auc(const double *score, const uint8_t *label, size_t n, int boot, uint64_t seed,
                struct auc_result *out, struct err *e)
{
	memset(out, 0, sizeof *out);
	out->auc = out->var = out->lo = out->hi = out->boot_lo = out->boot_hi = NAN;
	size_t n1 = 0, n0 = 0;
	for (size_t i = 0; i < n; i++)
		n1 += label[i] != 0;
	n0 = n - n1;
	out->n_pos = n1;
	out->n_neg = n0;
	if (!n1 || !n0)
		return 0;
	double *pos = malloc(n1 * sizeof *pos), *neg = malloc(n0 * sizeof *neg);
	if (!pos || !neg) {
		free(pos);
		free(neg);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	size_t a = 0, b = 0;
	for (size_t i = 0; i < n; i++) {
		if (label[i])
			pos[a++] = score[i];
		else
			neg[b++] = score[i];
	}
	int rc = auc_core(pos, n1, neg, n0, &out->auc, &out->var, NULL, NULL, e);
	if (!rc) {
		double half = 1.959963984540054 * sqrt(out->var);
		out->lo = fmax(0.0, out->auc - half);
		out->hi = fmin(1.0, out->auc + half);
	}
	if (!rc && boot > 0) {
		double *bp = malloc(n1 * sizeof *bp), *bn = malloc(n0 * sizeof *bn);
		double *aucs = malloc((size_t)boot * sizeof *aucs);
		if (!bp || !bn || !aucs)
			rc = err_set(e, ERR_NOMEM, "out of memory");
		struct rng r;
		rng_seed(&r, seed, 0xb007);
		for (int k = 0; !rc && k < boot; k++) {
			for (size_t i = 0; i < n1; i++)
				bp[i] = pos[rng_below(&r, (uint32_t)n1)];
			for (size_t i = 0; i < n0; i++)
				bn[i] = neg[rng_below(&r, (uint32_t)n0)];
			rc = auc_core(bp, n1, bn, n0, &aucs[k], NULL, NULL, NULL, e);
		}
		if (!rc) {
			qsort(aucs, (size_t)boot, sizeof *aucs, cmp_double);
			out->boot_lo = percentile(aucs, (size_t)boot, 0.025);
			out->boot_hi = percentile(aucs, (size_t)boot, 0.975);
		}
		free(bp);
		free(bn);
		free(aucs);
	}
	free(pos);
	free(neg);
	return rc;
}

/* sample covariance (n-1) of two series */
static double scov(const double *u, const double *v, size_t n)
{
	if (n < 2)
		return 0;
	double mu = 0, mv = 0, s = 0;
	for (size_t i = 0; i < n; i++)
		mu += u[i], mv += v[i];
	mu /= (double)n;
	mv /= (double)n;
	for (size_t i = 0; i < n; i++)
		s += (u[i] - mu) * (v[i] - mv);
	return s / (double)(n - 1);
}

int metrics_auc_paired(const double *a, const double *b, const uint8_t *label, size_t n,
                       struct auc_diff *out, struct err *e)
{
	memset(out, 0, sizeof *out);
	out->auc_a = out->auc_b = out->diff = out->var = out->lo = out->hi = out->z = out->p = NAN;
	size_t n1 = 0;
	for (size_t i = 0; i < n; i++)
		n1 += label[i] != 0;
	size_t n0 = n - n1;
	out->n_pos = n1;
	out->n_neg = n0;
	if (!n1 || !n0)
		return 0;
	/* positives of a, of b, negatives of a, of b; then V10 and V01 of each */
	double *buf = malloc(2 * (2 * n1 + 2 * n0) * sizeof *buf);
	if (!buf)
		return err_set(e, ERR_NOMEM, "out of memory");
	double *pa = buf, *pb = pa + n1, *na = pb + n1, *nb = na + n0;
	double *v10a = nb + n0, *v10b = v10a + n1, *v01a = v10b + n1, *v01b = v01a + n0;
	size_t i1 = 0, i0 = 0;
	for (size_t i = 0; i < n; i++) {
		if (label[i]) {
			pa[i1] = a[i];
			pb[i1++] = b[i];
		} else {
			na[i0] = a[i];
			nb[i0++] = b[i];
		}
	}
	double va, vb;
	int rc = auc_core(pa, n1, na, n0, &out->auc_a, &va, v10a, v01a, e);
	if (!rc)
		rc = auc_core(pb, n1, nb, n0, &out->auc_b, &vb, v10b, v01b, e);
	if (!rc) {
		double cov = scov(v10a, v10b, n1) / (double)n1 + scov(v01a, v01b, n0) / (double)n0;
		out->diff = out->auc_a - out->auc_b;
		out->var = fmax(0.0, va + vb - 2.0 * cov);
		double sd = sqrt(out->var), half = 1.959963984540054 * sd;
		out->lo = out->diff - half;
		out->hi = out->diff + half;
		if (sd > 0) {
			out->z = out->diff / sd;
			out->p = erfc(fabs(out->z) / sqrt(2.0));
		} else {
			/* no spread: the scores rank every pair alike in both */
			out->z = out->diff == 0 ? 0.0 : copysign(INFINITY, out->diff);
			out->p = out->diff == 0 ? 1.0 : 0.0;
		}
	}
	free(buf);
	return rc;
}

long metrics_roc(const double *score, const uint8_t *label, size_t n, struct roc_point **pts,
                 struct err *e)
{
	*pts = NULL;
	struct item *it = malloc((n ? n : 1) * sizeof *it);
	struct roc_point *p = malloc((n + 2) * sizeof *p);
	if (!it || !p) {
		free(it);
		free(p);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	size_t n1 = 0;
	for (size_t i = 0; i < n; i++) {
		it[i].s = -score[i]; /* descending scores */
		it[i].i = i;
		n1 += label[i] != 0;
	}
	size_t n0 = n - n1;
	qsort(it, n, sizeof *it, cmp_item);
	long k = 0;
	p[k++] = (struct roc_point){INFINITY, 0, 0};
	size_t tp = 0, fp = 0;
	for (size_t a = 0; a < n;) {
		size_t b = a;
		while (b < n && it[b].s == it[a].s) {
			if (label[it[b].i])
				tp++;
			else
				fp++;
			b++;
		}
		p[k++] = (struct roc_point){-it[a].s, n0 ? (double)fp / (double)n0 : 0, n1 ? (double)tp / (double)n1 : 0};
		a = b;
	}
	free(it);
	*pts = p;
	return k;
}

double metrics_youden(const double *score, const uint8_t *label, size_t n)
{
	struct roc_point *p;
	long k = metrics_roc(score, label, n, &p, NULL);
	if (k <= 0)
		return NAN;
	size_t n1 = 0;
	for (size_t i = 0; i < n; i++)
		n1 += label[i] != 0;
	if (!n1 || n1 == n) {
		free(p);
		return NAN;
	}
	double best = -2, thr = NAN;
	for (long i = 1; i < k; i++) {
		double j = p[i].tpr - p[i].fpr;
		if (j > best) {
			best = j;
			thr = p[i].threshold;
		}
	}
	free(p);
	return thr;
}

void metrics_confusion(const double *score, const uint8_t *label, size_t n, double threshold,
                       struct confusion *c)
{
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < n; i++) {
		int pred = score[i] >= threshold;
		if (label[i])
			pred ? c->tp++ : c->fn++;
		else
			pred ? c->fp++ : c->tn++;
	}
	c->accuracy = n ? (double)(c->tp + c->tn) / (double)n : NAN;
	c->sensitivity = c->tp + c->fn ? (double)c->tp / (double)(c->tp + c->fn) : NAN;
	c->specificity = c->tn + c->fp ? (double)c->tn / (double)(c->tn + c->fp) : NAN;
}
