/* rng.h - the project's one random number generator.
 *
 * Algorithm: PCG32, the XSH-RR output function over a 64-bit linear
 * congruential state (M. E. O'Neill, "PCG: A Family of Simple Fast
 * Space-Efficient Statistically Good Algorithms for Random Number
 * Generation", 2014), with multiplier 6364136223846793005 and an odd stream
 * increment.  Seeding follows pcg32_srandom_r: state = 0, inc = 2*stream+1,
 * step, state += seed, step.  Derived draws:
 *   rng_float   : (u32 >> 8) * 2^-24, in [0,1)
 *   rng_double  : ((u32a >> 5) * 2^26 + (u32b >> 6)) * 2^-53, in [0,1)
 *   rng_below(n): Lemire's multiply-and-reject, unbiased in [0,n)
 *   rng_normal  : Box-Muller on two rng_double draws (no cached second value)
 *   rng_shuffle : Fisher-Yates from the last element down, j = rng_below(i+1)
 *   rng_advance : the state after n rng_u32 draws, in O(log n) steps
 *                 (Brown, "Random Number Generation with Arbitrary Strides")
 * These definitions are part of the project's reproducibility promise: the
 * same seed gives the same bags, splits and models on every machine.
 *
 * Thread safety: a struct rng is plain data; give each thread its own.
 * No errors.
 */
#ifndef WENO_RNG_H
#define WENO_RNG_H

#include <stddef.h>
#include <stdint.h>

struct rng {
	uint64_t state;
	uint64_t inc;
};

void rng_seed(struct rng *r, uint64_t seed, uint64_t stream);
uint32_t rng_u32(struct rng *r);
float rng_float(struct rng *r);
double rng_double(struct rng *r);
uint32_t rng_below(struct rng *r, uint32_t n);
double rng_normal(struct rng *r);
void rng_shuffle(struct rng *r, uint32_t *v, size_t n);
void rng_advance(struct rng *r, uint64_t n);

#endif
