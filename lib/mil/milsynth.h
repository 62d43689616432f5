/* milsynth.h - the paper's synthetic MIL construction (lib/mil/README.md).
 *
 * From the class labels of one split of a labelled image set, one class
 * positive and the rest negative, builds bags of n images with exactly
 * k = int(n*r) positives in every positive bag, about half the bags positive,
 * each image used at most once:
 *   1. shuffle the positive and the negative indices (seeded);
 *   2. P = floor(N_neg / ((1-s)/(r*s) + (1-r)/r)), s = 0.5; P = min(P, N_pos);
 *      P -= P % k;
 *   3. NegPos = int(P*(1-r)/r) rounded down to a multiple of n-k;
 *      NegNeg = int(P*(1-s)/(r*s)) rounded down to a multiple of n;
 *   4. if P/k != NegPos/(n-k), P -= k * (P/k - NegPos/(n-k));
 *   5. positive bag j: positives [j*k, (j+1)*k) and negatives
 *      [j*(n-k), (j+1)*(n-k)), shuffled within the bag; negative bag j:
 *      negatives NegPos + [j*n, (j+1)*n).
 * The arithmetic is done in double in the order written, as the authors'
 * Python does, so the counts match theirs exactly.
 * Random draws (lib/base/rng.h, stream 0x5eed): shuffle positives, shuffle
 * negatives, then one in-bag shuffle per positive bag in order.
 *
 * Thread safety: pure functions.  Errors: negative ERR_* with a message.
 */
#ifndef WENO_MILSYNTH_H
#define WENO_MILSYNTH_H

#include <stdint.h>

#include "../base/err.h"

struct milsynth {
	uint32_t bag_size;       /* n */
	uint32_t k;              /* positives per positive bag */
	uint32_t n_pos_bags, n_neg_bags;
	uint32_t *images;        /* (n_pos_bags + n_neg_bags) * n image indices;
	                            positive bags first (owned: milsynth_free) */
};

/* labels: n_images class indices; the bags use images whose label is
 * pos_class as positives and all others as negatives. */
int milsynth_build(struct milsynth *m, const uint8_t *labels, uint32_t n_images, int pos_class,
                   double ratio, uint32_t bag_size, uint64_t seed, struct err *e);
void milsynth_free(struct milsynth *m);

/* Chooses a stratified validation subset of bags: marks round(frac * count)
 * of the positive and of the negative bags (in a seeded shuffle) in
 * is_val[bag].  Bags are indexed as in struct milsynth. */
void milsynth_val_split(const struct milsynth *m, double frac, uint64_t seed, uint8_t *is_val);

#endif
