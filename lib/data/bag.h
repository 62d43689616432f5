/* bag.h - the bag container (formats/bag.md): tile streams and bags.
 *
 * One file type carries what wsi-tile streams and what bag-pack finalises:
 * a header (id, label, instance kind and shape, provenance), then chunks of
 * instances, each one zstd frame with a CRC-32, then a trailer with counts
 * and a chunk index.  Writers need not know the instance count in advance;
 * readers go sequentially holding one chunk in memory.
 *
 * Thread safety: a reader or writer belongs to one thread at a time;
 * different handles are independent.
 * Errors: functions return 0 (or a count) on success and a negative ERR_*
 * code on failure, with a message in e naming the file, the byte offset and
 * the field.  A failed handle is sticky: later calls return the same code.
 */
#ifndef WENO_BAG_H
#define WENO_BAG_H

#include <stdint.h>
#include <stdio.h>

#include "../base/err.h"

enum bag_kind { BAG_PIXELS = 1, BAG_FEATURES = 2, BAG_COORDS = 3 /* no payload */ };

#define BAG_LABEL_UNKNOWN 255     /* bag label: 0, 1 or unknown */
#define BAG_ID_MAX 255            /* bytes in a bag id */
#define BAG_META_MAX (1u << 20)   /* bytes of provenance text */
#define BAG_DIM_MAX 65536u        /* H, W (pixels) or D (features) */
#define BAG_CHANNELS_MAX 4u
#define BAG_INSTANCE_BYTES_MAX (64u << 20)
#define BAG_CHUNK_MAX_INSTANCES 65536u
#define BAG_CHUNK_MAX_RAW (256u << 20)

struct bag_header {
	char id[BAG_ID_MAX + 1];   /* NUL-terminated */
	int label;                 /* 0, 1 or BAG_LABEL_UNKNOWN */
	int kind;                  /* enum bag_kind */
	uint32_t height, width, channels;   /* BAG_PIXELS: H x W x C, u8, HWC */
	uint32_t dim;                       /* BAG_FEATURES: D float32 */
	int32_t level;             /* pyramid level read, -1 unknown */
	double mpp;                /* µm per pixel of the instances, 0 unknown */
	double downsample;         /* level-0 pixels per instance pixel, 0 unknown */
	uint32_t patch_level0;     /* patch side in level-0 pixels, 0 unknown */
	char *meta;                /* "key=value\n" provenance lines (owned by
	                              the header; bag_header_free frees it) */
	uint32_t meta_len;
};

/* Per-instance record; label and tissue are negative when unknown. */
struct bag_inst {
	int32_t x, y;              /* level-0 top-left */
	float tissue;              /* tissue area fraction in [0,1] */
	float label;               /* tumour/positive fraction in [0,1] */
};

void bag_header_init(struct bag_header *h);
void bag_header_free(struct bag_header *h);
/* Copies src into dst (deep: the meta text too). */
int bag_header_copy(struct bag_header *dst, const struct bag_header *src, struct err *e);
/* Appends "key=value\n" to the provenance text. */
int bag_header_meta_add(struct bag_header *h, const char *key, const char *value, struct err *e);
/* Finds key in the provenance text; copies its value into out (NUL-terminated)
 * and returns its length, or -1 when absent. */
int bag_header_meta_get(const struct bag_header *h, const char *key, char *out, size_t cap);
/* Bytes of one instance's payload (H*W*C, or 4*D). */
uint64_t bag_instance_bytes(const struct bag_header *h);

/* ---- writing ---- */
struct bag_writer;

/* Opens path for writing ("-" is stdout; anything else is written to a
 * temporary name and renamed by bag_writer_close).  level is the zstd
 * level (0: the default, 3).  chunk_instances 0 picks about 1 MiB of
 * payload per chunk. */
int bag_writer_open(struct bag_writer **w, const char *path, const struct bag_header *h,
                    int level, uint32_t chunk_instances, struct err *e);
/* Adds one instance; data holds bag_instance_bytes() bytes (NULL for
 * BAG_COORDS, whose instances have no payload). */
int bag_writer_add(struct bag_writer *w, const struct bag_inst *inst, const void *data,
                   struct err *e);
/* A chunk as stored: checked (CRC) but not decompressed. */
struct bag_raw_chunk {
	uint32_t n;                /* instances */
	uint32_t raw_size;         /* bytes once decompressed */
	uint32_t comp_size;        /* bytes of the zstd frame */
	const uint8_t *comp;       /* the frame, owned by the reader */
};

/* Appends a stored chunk verbatim (bag-pack finalises a stream this way,
 * without recompressing).  Any partly filled chunk is flushed first. */
int bag_writer_add_raw(struct bag_writer *w, const struct bag_raw_chunk *rc, struct err *e);
/* Flushes the last chunk, writes the trailer, commits the file.  Frees w. */
int bag_writer_close(struct bag_writer *w, struct err *e);
/* Discards everything written (removes the temporary).  Frees w. */
void bag_writer_abort(struct bag_writer *w);
uint64_t bag_writer_count(const struct bag_writer *w);

/* ---- reading ---- */
struct bag_reader;

struct bag_chunk {
	uint32_t n;                /* instances in this chunk */
	uint64_t first;            /* index of the first instance in the bag */
	const struct bag_inst *inst;   /* n records */
	const uint8_t *data;       /* n * instance_bytes, owned by the reader,
	                              valid until the next call */
};

/* Opens path ("-" is stdin) and reads and checks the header. */
int bag_open(struct bag_reader **r, const char *path, struct err *e);
const struct bag_header *bag_reader_header(const struct bag_reader *r);
/* Reads the next chunk: returns 1 with *c filled, 0 at the end (after the
 * trailer was read and checked against what was read), or < 0. */
int bag_read_chunk(struct bag_reader *r, struct bag_chunk *c, struct err *e);
/* Reads the next chunk without decompressing it (CRC checked): 1, 0 at the
 * end, or < 0.  Do not mix with bag_read_chunk on one reader. */
int bag_read_raw_chunk(struct bag_reader *r, struct bag_raw_chunk *rc, struct err *e);
/* Counts from the trailer, valid after bag_read_chunk returned 0. */
uint64_t bag_reader_count(const struct bag_reader *r);
/* Instances read so far, and of those the labelled (label >= 0) and the
 * positive (label > 0) ones. */
void bag_reader_counts(const struct bag_reader *r, uint64_t *n, uint64_t *labelled, uint64_t *positive);
/* The path the reader was opened with. */
const char *bag_reader_path(const struct bag_reader *r);
void bag_close(struct bag_reader *r);

/* Reads a whole bag into memory: *inst (n records) and *data (n *
 * instance_bytes), both freed by the caller with free(). */
int bag_load(const char *path, struct bag_header *h, uint64_t *n, struct bag_inst **inst,
             uint8_t **data, struct err *e);

#endif
