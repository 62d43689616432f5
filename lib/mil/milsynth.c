/* milsynth.c - see milsynth.h */
#include "milsynth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../base/rng.h"

int milsynth_build(struct milsynth *m, const uint8_t *labels, uint32_t n_images, int pos_class,
                   double ratio, uint32_t bag_size, uint64_t seed, struct err *e)
{
	memset(m, 0, sizeof *m);
	if (!(ratio > 0 && ratio < 1))
		return err_set(e, ERR_USAGE, "positive ratio %g, expected 0 < r < 1", ratio);
	if (bag_size < 2)
		return err_set(e, ERR_USAGE, "bag size %u, expected at least 2", bag_size);
	uint32_t k = (uint32_t)((double)bag_size * ratio);
	if (k < 1 || k >= bag_size)
		return err_set(e, ERR_USAGE, "bag size %u with ratio %g gives %u positives per bag, expected 1..%u",
		               bag_size, ratio, k, bag_size - 1);
	uint32_t npos = 0, nneg = 0;
	for (uint32_t i = 0; i < n_images; i++) {
		if (labels[i] == pos_class)
			npos++;
		else
			nneg++;
	}
	if (!npos || !nneg)
		return err_set(e, ERR_USAGE, "class %d gives %u positive and %u negative images; need both",
		               pos_class, npos, nneg);
	uint32_t *pos = malloc(npos * sizeof *pos), *neg = malloc(nneg * sizeof *neg);
	if (!pos || !neg) {
		free(pos);
		free(neg);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	npos = nneg = 0;
	for (uint32_t i = 0; i < n_images; i++) {
		if (labels[i] == pos_class)
			pos[npos++] = i;
		else
			neg[nneg++] = i;
	}
	struct rng r;
	rng_seed(&r, seed, 0x5eed);
	rng_shuffle(&r, pos, npos);
	rng_shuffle(&r, neg, nneg);

	const double s = 0.5, rr = ratio;
	uint64_t P = (uint64_t)floor((double)nneg / ((1 - s) / (rr * s) + (1 - rr) / rr));
	if (P > npos)
		P = npos;
	P -= P % k;
	uint64_t negpos = (uint64_t)((double)P * (1 - rr) / rr);
	negpos -= negpos % (bag_size - k);
	uint64_t negneg = (uint64_t)((double)P * (1 - s) / (rr * s));
	negneg -= negneg % bag_size;
	uint64_t pb = P / k, nb_pos = negpos / (bag_size - k);
	if (pb != nb_pos) {
		if (pb > nb_pos)
			P -= k * (pb - nb_pos);
		pb = P / k < nb_pos ? P / k : nb_pos;
	}
	uint64_t nb = negneg / bag_size;
	if (!pb || !nb || negpos + negneg > nneg) {
		free(pos);
		free(neg);
		return err_set(e, ERR_USAGE, "%u positive and %u negative images make no bags at ratio %g and bag size %u",
		               npos, nneg, ratio, bag_size);
	}
	m->bag_size = bag_size;
	m->k = k;
	m->n_pos_bags = (uint32_t)pb;
	m->n_neg_bags = (uint32_t)nb;
	m->images = malloc((size_t)(pb + nb) * bag_size * sizeof *m->images);
	if (!m->images) {
		free(pos);
		free(neg);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	for (uint64_t j = 0; j < pb; j++) {
		uint32_t *b = m->images + j * bag_size;
		memcpy(b, pos + j * k, k * sizeof *b);
		memcpy(b + k, neg + j * (bag_size - k), (bag_size - k) * sizeof *b);
		rng_shuffle(&r, b, bag_size);
	}
	for (uint64_t j = 0; j < nb; j++)
		memcpy(m->images + (pb + j) * bag_size, neg + negpos + j * bag_size, bag_size * sizeof(uint32_t));
	free(pos);
	free(neg);
	return 0;
}

void milsynth_free(struct milsynth *m)
{
	free(m->images);
	memset(m, 0, sizeof *m);
}

static void pick(struct rng *r, uint32_t first, uint32_t count, double frac, uint8_t *is_val)
{
	uint32_t *idx = malloc((count ? count : 1) * sizeof *idx);
	if (!idx)
		return;
	for (uint32_t i = 0; i < count; i++)
		idx[i] = first + i;
	rng_shuffle(r, idx, count);
	uint32_t nv = (uint32_t)floor(frac * count + 0.5);
	for (uint32_t i = 0; i < nv && i < count; i++)
		is_val[idx[i]] = 1;
	free(idx);
}

void milsynth_val_split(const struct milsynth *m, double frac, uint64_t seed, uint8_t *is_val)
{
	struct rng r;
	rng_seed(&r, seed, 0xa1);
	memset(is_val, 0, m->n_pos_bags + m->n_neg_bags);
	pick(&r, 0, m->n_pos_bags, frac, is_val);
	pick(&r, m->n_pos_bags, m->n_neg_bags, frac, is_val);
}
