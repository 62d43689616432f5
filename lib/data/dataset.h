/* dataset.h - a training set on disk: a manifest and its bags, read as
 * float instances for the networks.
 *
 * dataset_open reads the manifest and every bag's header, and checks that
 * the bags agree on the instance kind and shape (pixels H x W x C, or
 * features of dimension D) and that each bag's label matches the manifest.
 * dataset_load_bag reads one bag into float instances: pixels scaled to
 * [0,1] and laid out CHW (the networks' NCHW), features as stored.  Bags are
 * read from disk each time unless they fit in the cache (cache_bytes of
 * decoded floats, filled on first use), so data larger than memory trains
 * with memory bounded by the cache plus a few bags.
 *
 * Thread safety: one thread at a time.  Errors: negative ERR_* with a
 * message naming the bag file.
 */
#ifndef WENO_DATASET_H
#define WENO_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "bag.h"
#include "../base/err.h"
#include "manifest.h"

struct dataset {
	struct manifest man;
	int kind;                    /* BAG_PIXELS or BAG_FEATURES */
	uint32_t c, h, w;            /* pixels: channels, height, width; features: D, 1, 1 */
	uint32_t in_dim;             /* floats per instance: C*H*W or D */
	size_t cache_cap, cache_used; /* bytes */
	float **cache_x;             /* [bags] cached instances, or NULL */
	struct bag_inst **cache_inst;
	uint64_t *n;                 /* [bags] instances, from the bag files */
};

int dataset_open(struct dataset *ds, const char *manifest_path, size_t cache_bytes, struct err *e);
void dataset_close(struct dataset *ds);

/* Loads bag b (a manifest row index).  *x [n][in_dim] and *inst [n] point
 * either into the cache or into *buf / *ibuf, which are grown as needed and
 * owned by the caller (free them when done).  Valid until the next call
 * with the same buffers. */
int dataset_load_bag(struct dataset *ds, uint32_t b, const float **x, const struct bag_inst **inst,
                     uint64_t *n, float **buf, size_t *buf_cap, struct bag_inst **ibuf,
                     size_t *ibuf_cap, struct err *e);

/* The manifest rows of a split, in manifest order; *count set.  Caller frees. */
uint32_t *dataset_split(const struct dataset *ds, int split, uint32_t *count);

/* Instances in the bags of a split. */
uint64_t dataset_split_instances(const struct dataset *ds, int split);

#endif
