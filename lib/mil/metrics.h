/* metrics.h - ROC analysis: AUC with ties, DeLong and bootstrap confidence
 * intervals, ROC curves, Youden thresholds.
 *
 * AUC is the area under the ROC curve with ties handled by the trapezoid
 * rule, which equals the Mann-Whitney statistic with midranks:
 *   AUC = (sum of the positives' midranks - n1(n1+1)/2) / (n1 n0).
 * DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988) uses the
 * structural components V10 (per positive) and V01 (per negative),
 * computed from midranks as in Sun & Xu (2014):
 *   V10_i = (R_i - R1_i) / n0,  V01_j = 1 - (R_j - R0_j) / n1,
 *   var = s²(V10)/n1 + s²(V01)/n0   (sample variances, n-1).
 * The 95 % interval is AUC ± 1.959964 sqrt(var), clipped to [0,1].
 * The bootstrap resamples positives and negatives separately (stratified),
 * with lib/base/rng.h seeded by the caller, and takes the 2.5 and 97.5
 * percentiles (linear interpolation between order statistics).
 *
 * Thread safety: reentrant.  Errors: functions return NaN where a class is
 * empty; the others return 0 or ERR_NOMEM.
 */
#ifndef WENO_METRICS_H
#define WENO_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

struct auc_result {
	double auc;
	double var;            /* DeLong variance */
	double lo, hi;         /* DeLong 95 % interval */
	double boot_lo, boot_hi; /* bootstrap 95 % interval (NaN when not asked) */
	size_t n_pos, n_neg;
};

/* label: 1 positive, 0 negative; scores must be finite.  boot: number of
 * bootstrap resamples (0: none). */
int metrics_auc(const double *score, const uint8_t *label, size_t n, int boot, uint64_t seed,
                struct auc_result *out, struct err *e);

/* Two scores of the same cases (paired): the AUC of each, their difference
 * a - b with DeLong's variance for correlated AUCs (DeLong et al. 1988):
 *   var(A - B) = var(A) + var(B) - 2 cov(A, B),
 *   cov(A, B) = cov(V10a, V10b)/n1 + cov(V01a, V01b)/n0,
 * its 95 % interval (not clipped), z = diff / sd and the two-sided p-value
 * erfc(|z|/sqrt 2).  When the variance is 0, z is 0 or ±inf and p 1 or 0. */
struct auc_diff {
	double auc_a, auc_b, diff, var, lo, hi, z, p;
	size_t n_pos, n_neg;
};
int metrics_auc_paired(const double *a, const double *b, const uint8_t *label, size_t n,
                       struct auc_diff *out, struct err *e);

struct roc_point {
	double threshold;      /* predict positive when score >= threshold */
	double fpr, tpr;
};

/* The ROC curve from (0,0) to (1,1), one point per distinct score (in
 * decreasing threshold), *pts freed by the caller.  Returns the count or
 * a negative code. */
long metrics_roc(const double *score, const uint8_t *label, size_t n, struct roc_point **pts,
                 struct err *e);

/* The threshold that maximises Youden's J = tpr - fpr (the highest such
 * threshold on ties); NaN when a class is empty. */
double metrics_youden(const double *score, const uint8_t *label, size_t n);

struct confusion {
	size_t tp, fp, tn, fn;
	double accuracy, sensitivity, specificity;
};
void metrics_confusion(const double *score, const uint8_t *label, size_t n, double threshold,
                       struct confusion *c);

#endif
