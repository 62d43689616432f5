/* bag.c - the bag container, see bag.h and formats/bag.md */
#include "bag.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameHeader: a frame's flags and window */
#include <zstd.h>

#include "../base/afile.h"

static const uint8_t MAGIC[8] = {0x89, 'W', 'B', 'A', 'G', '\r', '\n', 0x1a};
static const uint8_t END_MAGIC[8] = {'W', 'B', 'A', 'G', 'E', 'N', 'D', '\n'};
#define VERSION_MAJOR 1
#define VERSION_MINOR 0
#define FIXED_HEADER 64
#define CHUNK_HEADER 20
#define TRAILER_FIXED 32
#define MAX_CHUNKS (1u << 24)

/* Fuzz builds skip the checksum comparisons (never the size checks), so that
 * the fuzzer reaches the code behind them. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define FUZZING 1
#else
#define FUZZING 0
#endif

/* ---- little-endian helpers ---- */
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | ((uint64_t)get32(p + 4) << 32); }
static void putf64(uint8_t *p, double d)
{
	uint64_t u;
	memcpy(&u, &d, 8);
	put64(p, u);
}
static double getf64(const uint8_t *p)
{
	uint64_t u = get64(p);
	double d;
	memcpy(&d, &u, 8);
	return d;
}

static uint32_t crc(uint32_t c, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
		c = (uint32_t)crc32(c, b, k);
		b += k;
		n -= k;
	}
	return c;
}

/* ---- header ---- */
void bag_header_init(struct bag_header *h)
{
	memset(h, 0, sizeof *h);
	h->label = BAG_LABEL_UNKNOWN;
	h->level = -1;
}

void bag_header_free(struct bag_header *h)
{
	free(h->meta);
	h->meta = NULL;
	h->meta_len = 0;
}

int bag_header_copy(struct bag_header *dst, const struct bag_header *src, struct err *e)
{
	*dst = *src;
	dst->meta = NULL;
	if (src->meta_len) {
		dst->meta = err_malloc(e, src->meta_len + 1);
		if (!dst->meta)
			return ERR_NOMEM;
		memcpy(dst->meta, src->meta, src->meta_len);
		dst->meta[src->meta_len] = 0;
	}
	return 0;
}

int bag_header_meta_add(struct bag_header *h, const char *key, const char *value, struct err *e)
{
	size_t kl = strlen(key), vl = strlen(value);
	if (!kl || strchr(key, '=') || strchr(key, '\n'))
		return err_set(e, ERR_USAGE, "provenance key '%s' must be non-empty without '=' or newline", key);
	if ((size_t)h->meta_len + kl + vl + 2 > BAG_META_MAX)
		return err_set(e, ERR_LIMIT, "provenance text over %u bytes", BAG_META_MAX);
	char *m = realloc(h->meta, h->meta_len + kl + vl + 3);
	if (!m)
		return err_set(e, ERR_NOMEM, "out of memory");
	h->meta = m;
	char *p = m + h->meta_len;
	memcpy(p, key, kl);
	p[kl] = '=';
	for (size_t i = 0; i < vl; i++) /* values are one line */
		p[kl + 1 + i] = value[i] == '\n' ? ' ' : value[i];
	p[kl + 1 + vl] = '\n';
	h->meta_len += (uint32_t)(kl + vl + 2);
	m[h->meta_len] = 0;
	return 0;
}

int bag_header_meta_get(const struct bag_header *h, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);
	const char *p = h->meta, *end = h->meta ? h->meta + h->meta_len : NULL;
	int found = -1;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if ((size_t)(le - p) > kl && !memcmp(p, key, kl) && p[kl] == '=') {
			size_t vl = (size_t)(le - p) - kl - 1;
			if (cap) {
				size_t c = vl < cap - 1 ? vl : cap - 1;
				memcpy(out, p + kl + 1, c);
				out[c] = 0;
			}
			found = (int)vl; /* the last occurrence wins */
		}
		p = le + 1;
	}
	return found;
}

uint64_t bag_instance_bytes(const struct bag_header *h)
{
	if (h->kind == BAG_PIXELS)
		return (uint64_t)h->height * h->width * h->channels;
	if (h->kind == BAG_FEATURES)
		return 4ull * h->dim;
	return 0;
}

static int check_header(const struct bag_header *h, const char *path, struct err *e)
{
	switch (h->kind) {
	case BAG_PIXELS:
		if (!h->height || !h->width || h->height > BAG_DIM_MAX || h->width > BAG_DIM_MAX ||
		    !h->channels || h->channels > BAG_CHANNELS_MAX)
			return err_set(e, ERR_FORMAT, "%s: pixel instances of %ux%ux%u, expected 1..%u x 1..%u x 1..%u",
			               path, h->height, h->width, h->channels, BAG_DIM_MAX, BAG_DIM_MAX, BAG_CHANNELS_MAX);
		if (bag_instance_bytes(h) > BAG_INSTANCE_BYTES_MAX)
			return err_set(e, ERR_LIMIT, "%s: %llu bytes per instance, at most %u", path,
			               (unsigned long long)bag_instance_bytes(h), BAG_INSTANCE_BYTES_MAX);
		break;
	case BAG_FEATURES:
		if (!h->dim || h->dim > BAG_DIM_MAX)
			return err_set(e, ERR_FORMAT, "%s: feature dimension %u, expected 1..%u", path, h->dim, BAG_DIM_MAX);
		break;
	case BAG_COORDS:
		break;
	default:
		return err_set(e, ERR_FORMAT, "%s: instance kind %d, expected 1 (pixels), 2 (features) or 3 (coordinates)",
		               path, h->kind);
	}
	if (h->kind != BAG_FEATURES && h->dim)
		return err_set(e, ERR_FORMAT, "%s: feature dimension %u in a bag of %s, expected 0", path, h->dim,
		               h->kind == BAG_PIXELS ? "pixels" : "coordinates");
	if (h->label != 0 && h->label != 1 && h->label != BAG_LABEL_UNKNOWN)
		return err_set(e, ERR_FORMAT, "%s: bag label %d, expected 0, 1 or 255 (unknown)", path, h->label);
	if (strlen(h->id) > BAG_ID_MAX)
		return err_set(e, ERR_LIMIT, "%s: bag id longer than %d bytes", path, BAG_ID_MAX);
	if (h->meta_len > BAG_META_MAX)
		return err_set(e, ERR_LIMIT, "%s: provenance over %u bytes", path, BAG_META_MAX);
	return 0;
}

/* ---- writer ---- */
struct bag_writer {
	struct afile af;
	char *path;
	struct bag_header h;
	uint64_t inst_bytes;
	uint32_t cap;              /* instances per chunk */
	uint32_t n;                /* instances buffered */
	int32_t *x, *y;
	float *tissue, *label;
	uint8_t *data;
	uint8_t *comp;
	size_t comp_cap;
	ZSTD_CCtx *cctx;
	uint64_t offset;           /* bytes written so far */
	uint64_t count, labelled, positive;
	uint64_t *index;           /* 2 per chunk: offset, first instance */
	uint32_t n_chunks, index_cap;
	int failed;
};

static int wwrite(struct bag_writer *w, const void *p, size_t n, struct err *e)
{
	if (n && fwrite(p, 1, n, w->af.fp) != n) {
		w->failed = ERR_IO;
		return err_sys(e, ERR_IO, "%s: cannot write at byte %llu", w->path, (unsigned long long)w->offset);
	}
	w->offset += n;
	return 0;
}

static int write_header(struct bag_writer *w, struct err *e)
{
	const struct bag_header *h = &w->h;
	size_t idl = strlen(h->id);
	size_t total = FIXED_HEADER + idl + h->meta_len + 4;
	uint8_t *b = err_malloc(e, total);
	if (!b)
		return ERR_NOMEM;
	memset(b, 0, FIXED_HEADER);
	memcpy(b, MAGIC, 8);
	put16(b + 8, VERSION_MAJOR);
	put16(b + 10, VERSION_MINOR);
	put32(b + 12, (uint32_t)total);
	b[16] = (uint8_t)h->kind;
	b[17] = (uint8_t)h->label;
	put16(b + 18, (uint16_t)idl);
	put32(b + 20, h->kind == BAG_PIXELS ? h->height : 0);
	put32(b + 24, h->kind == BAG_PIXELS ? h->width : 0);
	put32(b + 28, h->kind == BAG_PIXELS ? h->channels : 0);
	put32(b + 32, h->kind == BAG_FEATURES ? h->dim : 0);
	put32(b + 36, (uint32_t)h->level);
	put32(b + 40, h->patch_level0);
	putf64(b + 44, h->mpp);
	putf64(b + 52, h->downsample);
	put32(b + 60, h->meta_len);
	memcpy(b + FIXED_HEADER, h->id, idl);
	if (h->meta_len)
		memcpy(b + FIXED_HEADER + idl, h->meta, h->meta_len);
	put32(b + total - 4, crc(0, b, total - 4));
	int rc = wwrite(w, b, total, e);
	free(b);
	return rc;
}

int bag_writer_open(struct bag_writer **wp, const char *path, const struct bag_header *h,
                    int level, uint32_t chunk_instances, struct err *e)
{
	*wp = NULL;
	int rc = check_header(h, path, e);
	if (rc)
		return rc;
	struct bag_writer *w = err_calloc(e, 1, sizeof *w);
	if (!w)
		return ERR_NOMEM;
	w->path = strdup(path);
	if (!w->path || bag_header_copy(&w->h, h, e)) {
		free(w->path);
		free(w);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	w->inst_bytes = bag_instance_bytes(h);
	if (!chunk_instances) {
		uint64_t per = (1u << 20) / (w->inst_bytes + 16);
		chunk_instances = per < 1 ? 1 : per > 4096 ? 4096 : (uint32_t)per;
	}
	if (chunk_instances > BAG_CHUNK_MAX_INSTANCES)
		chunk_instances = BAG_CHUNK_MAX_INSTANCES;
	while (chunk_instances > 1 && (uint64_t)chunk_instances * (w->inst_bytes + 16) > BAG_CHUNK_MAX_RAW)
		chunk_instances /= 2;
	w->cap = chunk_instances;
	size_t raw = (size_t)w->cap * (w->inst_bytes + 16);
	w->comp_cap = ZSTD_compressBound(raw);
	w->x = malloc(w->cap * sizeof *w->x);
	w->y = malloc(w->cap * sizeof *w->y);
	w->tissue = malloc(w->cap * sizeof *w->tissue);
	w->label = malloc(w->cap * sizeof *w->label);
	w->data = malloc(w->inst_bytes ? (size_t)w->cap * w->inst_bytes : 1);
	w->comp = malloc(w->comp_cap);
	w->cctx = ZSTD_createCCtx();
	if (!w->x || !w->y || !w->tissue || !w->label || !w->data || !w->comp || !w->cctx) {
		err_set(e, ERR_NOMEM, "out of memory for a chunk of %u instances", w->cap);
		bag_writer_abort(w);
		return ERR_NOMEM;
	}
	ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, level ? level : 3);
	ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_contentSizeFlag, 1);
	rc = afile_open(&w->af, path, e);
	if (rc) {
		free(w->path);
		w->path = NULL;
		bag_writer_abort(w);
		return rc;
	}
	rc = write_header(w, e);
	if (rc) {
		bag_writer_abort(w);
		return rc;
	}
	*wp = w;
	return 0;
}

static int index_push(struct bag_writer *w, uint64_t first, struct err *e)
{
	if (w->n_chunks >= MAX_CHUNKS)
		return err_set(e, ERR_LIMIT, "%s: more than %u chunks", w->path, MAX_CHUNKS);
	if (w->n_chunks == w->index_cap) {
		uint32_t nc = w->index_cap ? w->index_cap * 2 : 64;
		uint64_t *ni = realloc(w->index, (size_t)nc * 2 * sizeof *ni);
		if (!ni)
			return err_set(e, ERR_NOMEM, "out of memory");
		w->index = ni;
		w->index_cap = nc;
	}
	w->index[2 * w->n_chunks] = w->offset;
	w->index[2 * w->n_chunks + 1] = first;
	w->n_chunks++;
	return 0;
}

static int write_chunk_frame(struct bag_writer *w, uint32_t n, uint32_t raw_size,
                             const uint8_t *comp, uint32_t comp_size, struct err *e)
{
	uint8_t hdr[CHUNK_HEADER];
	memcpy(hdr, "CHNK", 4);
	put32(hdr + 4, n);
	put32(hdr + 8, raw_size);
	put32(hdr + 12, comp_size);
	uint32_t c = crc(crc(0, hdr, 16), comp, comp_size);
	put32(hdr + 16, c);
	int rc = index_push(w, w->count, e);
	if (!rc)
		rc = wwrite(w, hdr, CHUNK_HEADER, e);
	if (!rc)
		rc = wwrite(w, comp, comp_size, e);
	return rc;
}

static int flush_chunk(struct bag_writer *w, struct err *e)
{
	if (!w->n)
		return 0;
	uint32_t n = w->n;
	size_t raw = (size_t)n * (16 + w->inst_bytes);
	ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
	ZSTD_CCtx_setPledgedSrcSize(w->cctx, raw);
	ZSTD_outBuffer out = {w->comp, w->comp_cap, 0};
	const void *parts[5] = {w->x, w->y, w->tissue, w->label, w->data};
	size_t sizes[5] = {4u * n, 4u * n, 4u * n, 4u * n, (size_t)n * w->inst_bytes};
	for (int i = 0; i < 5; i++) {
		ZSTD_inBuffer in = {parts[i], sizes[i], 0};
		ZSTD_EndDirective end = i == 4 ? ZSTD_e_end : ZSTD_e_continue;
		size_t r;
		do {
			r = ZSTD_compressStream2(w->cctx, &out, &in, end);
			if (ZSTD_isError(r)) {
				w->failed = ERR_IO;
				return err_set(e, ERR_IO, "%s: zstd compression failed: %s", w->path, ZSTD_getErrorName(r));
			}
		} while (end == ZSTD_e_end ? r != 0 : in.pos < in.size);
	}
	int rc = write_chunk_frame(w, n, (uint32_t)raw, w->comp, (uint32_t)out.pos, e);
	if (rc)
		return rc;
	w->count += n;
	w->n = 0;
	return 0;
}

int bag_writer_add(struct bag_writer *w, const struct bag_inst *inst, const void *data, struct err *e)
{
	if (w->failed)
		return w->failed;
	if (!(inst->tissue <= 1.0f) && !(inst->tissue < 0) ) /* NaN or > 1 */
		return err_set(e, ERR_USAGE, "%s: instance %llu: tissue fraction %g outside [0,1]", w->path,
		               (unsigned long long)(w->count + w->n), (double)inst->tissue);
	if (!(inst->label <= 1.0f) && !(inst->label < 0))
		return err_set(e, ERR_USAGE, "%s: instance %llu: label %g outside [0,1]", w->path,
		               (unsigned long long)(w->count + w->n), (double)inst->label);
	uint32_t i = w->n;
	w->x[i] = inst->x;
	w->y[i] = inst->y;
	w->tissue[i] = inst->tissue < 0 ? -1.0f : inst->tissue;
	w->label[i] = inst->label < 0 ? -1.0f : inst->label;
	if (inst->label >= 0) {
		w->labelled++;
		if (inst->label > 0)
			w->positive++;
	}
	if (w->inst_bytes) {
		if (data)
			memcpy(w->data + (size_t)i * w->inst_bytes, data, w->inst_bytes);
		else
			memset(w->data + (size_t)i * w->inst_bytes, 0, w->inst_bytes);
	}
	if (++w->n == w->cap)
		return flush_chunk(w, e);
	return 0;
}

int bag_writer_add_raw(struct bag_writer *w, const struct bag_raw_chunk *rc_, struct err *e)
{
	if (w->failed)
		return w->failed;
	int rc = flush_chunk(w, e);
	if (rc)
		return rc;
	if ((uint64_t)rc_->raw_size != (uint64_t)rc_->n * (16 + w->inst_bytes))
		return err_set(e, ERR_USAGE, "%s: copied chunk of %u instances has %u bytes, expected %llu",
		               w->path, rc_->n, rc_->raw_size, (unsigned long long)rc_->n * (16 + w->inst_bytes));
	/* the counts of labelled and positive instances need the labels: read
	 * them from the frame (they are the first 16n bytes) */
	ZSTD_DCtx *d = ZSTD_createDCtx();
	size_t need = (size_t)rc_->n * 16;
	uint8_t *head = malloc(need ? need : 1);
	if (!d || !head) {
		ZSTD_freeDCtx(d);
		free(head);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	ZSTD_inBuffer in = {rc_->comp, rc_->comp_size, 0};
	ZSTD_outBuffer out = {head, need, 0};
	while (out.pos < need) {
		size_t r = ZSTD_decompressStream(d, &out, &in);
		if (ZSTD_isError(r) || (r == 0 && out.pos < need) || (in.pos == in.size && out.pos < need)) {
			ZSTD_freeDCtx(d);
			free(head);
			return err_set(e, ERR_FORMAT, "%s: copied chunk does not decompress", w->path);
		}
	}
	ZSTD_freeDCtx(d);
	for (uint32_t i = 0; i < rc_->n; i++) {
		float l;
		uint32_t u = get32(head + 12u * rc_->n + 4u * i);
		memcpy(&l, &u, 4);
		if (l >= 0) {
			w->labelled++;
			if (l > 0)
				w->positive++;
		}
	}
	free(head);
	rc = write_chunk_frame(w, rc_->n, rc_->raw_size, rc_->comp, rc_->comp_size, e);
	if (!rc)
		w->count += rc_->n;
	return rc;
}

uint64_t bag_writer_count(const struct bag_writer *w)
{
	return w->count + w->n;
}

static void writer_free(struct bag_writer *w)
{
	free(w->x);
	free(w->y);
	free(w->tissue);
	free(w->label);
	free(w->data);
	free(w->comp);
	free(w->index);
	free(w->path);
	ZSTD_freeCCtx(w->cctx);
	bag_header_free(&w->h);
	free(w);
}

int bag_writer_close(struct bag_writer *w, struct err *e)
{
	int rc = w->failed ? w->failed : flush_chunk(w, e);
	if (!rc) {
		size_t tsz = TRAILER_FIXED + (size_t)w->n_chunks * 16 + 4 + 16;
		uint8_t *t = err_malloc(e, tsz);
		if (!t)
			rc = ERR_NOMEM;
		else {
			memcpy(t, "TRLR", 4);
			put32(t + 4, w->n_chunks);
			put64(t + 8, w->count);
			put64(t + 16, w->labelled);
			put64(t + 24, w->positive);
			for (uint32_t i = 0; i < w->n_chunks; i++) {
				put64(t + TRAILER_FIXED + 16 * (size_t)i, w->index[2 * i]);
				put64(t + TRAILER_FIXED + 16 * (size_t)i + 8, w->index[2 * i + 1]);
			}
			size_t body = TRAILER_FIXED + (size_t)w->n_chunks * 16;
			put32(t + body, crc(0, t, body));
			put64(t + body + 4, tsz);
			memcpy(t + body + 12, END_MAGIC, 8);
			rc = wwrite(w, t, tsz, e);
			free(t);
		}
	}
	if (!rc)
		rc = afile_commit(&w->af, e);
	else
		afile_abort(&w->af);
	writer_free(w);
	return rc;
}

void bag_writer_abort(struct bag_writer *w)
{
	if (!w)
		return;
	if (w->af.fp || w->af.tmp)
		afile_abort(&w->af);
	writer_free(w);
}

/* ---- reader ---- */
struct bag_reader {
	FILE *fp;
	int own_fp;
	char *path;
	int64_t file_len;          /* -1 when unknown (a pipe) */
	uint64_t offset;
	struct bag_header h;
	uint64_t inst_bytes;
	ZSTD_DCtx *dctx;
	uint8_t *comp;
	size_t comp_cap;
	uint8_t *raw;
	size_t raw_cap;
	struct bag_inst *inst;
	uint32_t inst_cap;
	uint64_t count, labelled, positive;
	uint64_t *index;           /* offset, first per chunk read */
	uint32_t n_chunks, index_cap;
	int done;
	int failed;
};

static int rfail(struct bag_reader *r, int code)
{
	r->failed = code;
	return code;
}

static int rread(struct bag_reader *r, void *p, size_t n, const char *what, struct err *e)
{
	size_t got = n ? fread(p, 1, n, r->fp) : 0;
	if (got != n) {
		if (ferror(r->fp))
			err_sys(e, ERR_IO, "%s: byte %llu: cannot read %s", r->path,
			        (unsigned long long)(r->offset + got), what);
		else
			err_set(e, ERR_FORMAT, "%s: byte %llu: file ends inside %s (%zu of %zu bytes)", r->path,
			        (unsigned long long)(r->offset + got), what, got, n);
		r->offset += got;
		return rfail(r, e && e->code ? e->code : ERR_FORMAT);
	}
	r->offset += n;
	return 0;
}

static int remaining_ok(struct bag_reader *r, uint64_t n, const char *what, struct err *e)
{
	if (r->file_len >= 0 && n > (uint64_t)r->file_len - r->offset) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: %s declares %llu bytes but only %llu remain in the file",
		        r->path, (unsigned long long)r->offset, what, (unsigned long long)n,
		        (unsigned long long)((uint64_t)r->file_len - r->offset));
		return rfail(r, ERR_FORMAT);
	}
	return 0;
}

static int read_header(struct bag_reader *r, struct err *e)
{
	uint8_t f[FIXED_HEADER];
	int rc = rread(r, f, 8, "the magic number", e);
	if (rc)
		return rc;
	if (memcmp(f, MAGIC, 8)) {
		err_set(e, ERR_FORMAT, "%s: byte 0: bad magic number, not a bag file (expected 89 57 42 41 47 0d 0a 1a)", r->path);
		return rfail(r, ERR_FORMAT);
	}
	rc = rread(r, f + 8, FIXED_HEADER - 8, "the header", e);
	if (rc)
		return rc;
	uint16_t major = get16(f + 8), minor = get16(f + 10);
	if (major != VERSION_MAJOR) {
		err_set(e, ERR_FORMAT, "%s: byte 8: format version %u.%u, this reader knows %d.x%s", r->path, major,
		        minor, VERSION_MAJOR, major > VERSION_MAJOR ? "\nhint: a newer version of the toolkit wrote it" : "");
		return rfail(r, ERR_FORMAT);
	}
	uint32_t hsize = get32(f + 12), idl = get16(f + 18), metal = get32(f + 60);
	if (idl > BAG_ID_MAX) {
		err_set(e, ERR_FORMAT, "%s: byte 18: id length %u, at most %d", r->path, idl, BAG_ID_MAX);
		return rfail(r, ERR_FORMAT);
	}
	if (metal > BAG_META_MAX) {
		err_set(e, ERR_LIMIT, "%s: byte 60: provenance length %u, at most %u", r->path, metal, BAG_META_MAX);
		return rfail(r, ERR_LIMIT);
	}
	if (hsize < (uint64_t)FIXED_HEADER + idl + metal + 4 || hsize > FIXED_HEADER + BAG_ID_MAX + BAG_META_MAX + 4096u) {
		err_set(e, ERR_FORMAT, "%s: byte 12: header size %u, expected %u (64 + id + provenance + 4)", r->path,
		        hsize, FIXED_HEADER + idl + metal + 4);
		return rfail(r, ERR_FORMAT);
	}
	rc = remaining_ok(r, hsize - FIXED_HEADER, "the header", e);
	if (rc)
		return rc;
	uint8_t *b = err_malloc(e, hsize);
	if (!b)
		return rfail(r, ERR_NOMEM);
	memcpy(b, f, FIXED_HEADER);
	rc = rread(r, b + FIXED_HEADER, hsize - FIXED_HEADER, "the header", e);
	if (rc) {
		free(b);
		return rc;
	}
	uint32_t stored = get32(b + hsize - 4), computed = crc(0, b, hsize - 4);
	if (stored != computed && !FUZZING) {
		err_set(e, ERR_FORMAT, "%s: byte %u: header checksum 0x%08x, computed 0x%08x: the header is corrupt",
		        r->path, hsize - 4, stored, computed);
		free(b);
		return rfail(r, ERR_FORMAT);
	}
	struct bag_header *h = &r->h;
	bag_header_init(h);
	h->kind = b[16];
	h->label = b[17];
	h->height = get32(b + 20);
	h->width = get32(b + 24);
	h->channels = get32(b + 28);
	h->dim = get32(b + 32);
	h->level = (int32_t)get32(b + 36);
	h->patch_level0 = get32(b + 40);
	h->mpp = getf64(b + 44);
	h->downsample = getf64(b + 52);
	memcpy(h->id, b + FIXED_HEADER, idl);
	h->id[idl] = 0;
	if (memchr(h->id, 0, idl)) {
		err_set(e, ERR_FORMAT, "%s: byte %d: bag id contains a NUL byte", r->path, FIXED_HEADER);
		free(b);
		return rfail(r, ERR_FORMAT);
	}
	if (metal) {
		h->meta = malloc(metal + 1);
		if (!h->meta) {
			free(b);
			err_set(e, ERR_NOMEM, "out of memory");
			return rfail(r, ERR_NOMEM);
		}
		memcpy(h->meta, b + FIXED_HEADER + idl, metal);
		h->meta[metal] = 0;
		h->meta_len = metal;
	}
	free(b);
	if (!(h->mpp >= 0 && h->mpp < 1e6) || !(h->downsample >= 0 && h->downsample < 1e9)) {
		err_set(e, ERR_FORMAT, "%s: byte 44: µm/px %g or downsample %g not a sane number", r->path, h->mpp,
		        h->downsample);
		return rfail(r, ERR_FORMAT);
	}
	rc = check_header(h, r->path, e);
	if (rc)
		return rfail(r, rc);
	r->inst_bytes = bag_instance_bytes(h);
	return 0;
}

int bag_open(struct bag_reader **rp, const char *path, struct err *e)
{
	*rp = NULL;
	struct bag_reader *r = err_calloc(e, 1, sizeof *r);
	if (!r)
		return ERR_NOMEM;
	r->path = strdup(!strcmp(path, "-") ? "<stdin>" : path);
	if (!r->path) {
		free(r);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	r->file_len = -1;
	if (!strcmp(path, "-")) {
		r->fp = stdin;
	} else {
		r->fp = fopen(path, "rb");
		if (!r->fp) {
			err_sys(e, ERR_IO, "cannot open '%s'", path);
			free(r->path);
			free(r);
			return ERR_IO;
		}
		r->own_fp = 1;
	}
	struct stat st;
	if (!fstat(fileno(r->fp), &st) && S_ISREG(st.st_mode))
		r->file_len = st.st_size;
	r->dctx = ZSTD_createDCtx();
	int rc = r->dctx ? read_header(r, e) : err_set(e, ERR_NOMEM, "out of memory");
	if (rc) {
		bag_close(r);
		return rc;
	}
	*rp = r;
	return 0;
}

const struct bag_header *bag_reader_header(const struct bag_reader *r)
{
	return &r->h;
}

const char *bag_reader_path(const struct bag_reader *r)
{
	return r->path;
}

uint64_t bag_reader_count(const struct bag_reader *r)
{
	return r->count;
}

void bag_reader_counts(const struct bag_reader *r, uint64_t *n, uint64_t *labelled, uint64_t *positive)
{
	*n = r->count;
	*labelled = r->labelled;
	*positive = r->positive;
}

static int grow(void **p, size_t *cap, size_t need, struct err *e)
{
	if (need <= *cap)
		return 0;
	void *np = realloc(*p, need);
	if (!np)
		return err_set(e, ERR_NOMEM, "out of memory allocating %zu bytes", need);
	*p = np;
	*cap = need;
	return 0;
}

static int read_trailer(struct bag_reader *r, uint64_t at, struct err *e)
{
	uint8_t f[TRAILER_FIXED];
	memcpy(f, "TRLR", 4);
	int rc = rread(r, f + 4, TRAILER_FIXED - 4, "the trailer", e);
	if (rc)
		return rc;
	uint32_t nch = get32(f + 4);
	uint64_t n = get64(f + 8), lab = get64(f + 16), pos = get64(f + 24);
	if (nch != r->n_chunks) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: trailer counts %u chunks, the file has %u", r->path,
		        (unsigned long long)(at + 4), nch, r->n_chunks);
		return rfail(r, ERR_FORMAT);
	}
	if (n != r->count || lab != r->labelled || pos != r->positive) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: trailer counts %llu instances (%llu labelled, %llu positive), "
		        "the chunks hold %llu (%llu, %llu)", r->path, (unsigned long long)(at + 8),
		        (unsigned long long)n, (unsigned long long)lab, (unsigned long long)pos,
		        (unsigned long long)r->count, (unsigned long long)r->labelled, (unsigned long long)r->positive);
		return rfail(r, ERR_FORMAT);
	}
	uint32_t c = crc(0, f, TRAILER_FIXED);
	for (uint32_t i = 0; i < nch; i++) {
		uint8_t ent[16];
		rc = rread(r, ent, 16, "the chunk index", e);
		if (rc)
			return rc;
		c = crc(c, ent, 16);
		if (get64(ent) != r->index[2 * i] || get64(ent + 8) != r->index[2 * i + 1]) {
			err_set(e, ERR_FORMAT, "%s: byte %llu: chunk index entry %u says offset %llu, first %llu; "
			        "the chunk is at %llu, first %llu", r->path, (unsigned long long)(r->offset - 16), i,
			        (unsigned long long)get64(ent), (unsigned long long)get64(ent + 8),
			        (unsigned long long)r->index[2 * i], (unsigned long long)r->index[2 * i + 1]);
			return rfail(r, ERR_FORMAT);
		}
	}
	uint8_t tail[20];
	rc = rread(r, tail, 20, "the trailer end", e);
	if (rc)
		return rc;
	if (get32(tail) != c && !FUZZING) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: trailer checksum 0x%08x, computed 0x%08x", r->path,
		        (unsigned long long)(r->offset - 20), get32(tail), c);
		return rfail(r, ERR_FORMAT);
	}
	if (get64(tail + 4) != r->offset - at || memcmp(tail + 12, END_MAGIC, 8)) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: bad trailer end (size %llu, expected %llu, or end magic)",
		        r->path, (unsigned long long)(r->offset - 16), (unsigned long long)get64(tail + 4),
		        (unsigned long long)(r->offset - at));
		return rfail(r, ERR_FORMAT);
	}
	if (r->file_len >= 0 && (uint64_t)r->file_len != r->offset) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: %llu bytes of garbage after the trailer", r->path,
		        (unsigned long long)r->offset, (unsigned long long)((uint64_t)r->file_len - r->offset));
		return rfail(r, ERR_FORMAT);
	}
	r->done = 1;
	return 0;
}

/* Reads the next chunk header and frame (CRC checked).  1, 0 at the end, < 0. */
/* What formats/bag.md asks of a chunk's zstd frame, checked from its
 * header alone, so that a chunk copied without decompression (bag-pack
 * finalising a stream) meets the same rules as one decompressed: one
 * frame declaring its content size (equal to the chunk's payload) and a
 * content checksum, and a window that a default decoder accepts. */
static int check_frame(struct bag_reader *r, const uint8_t *comp, uint32_t comp_size, uint32_t raw,
                       uint64_t at, struct err *e)
{
	ZSTD_frameHeader fh;
	size_t z = ZSTD_getFrameHeader(&fh, comp, comp_size);
	const char *why = NULL;
	if (z != 0 || fh.frameType != ZSTD_frame)
		why = "is not a zstd frame";
	else if (fh.frameContentSize != raw)
		why = fh.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN ? "does not declare its content size"
		                                                    : "declares another content size than the chunk";
	else if (!fh.checksumFlag)
		why = "has no content checksum";
	else if (fh.windowSize > ((uint64_t)1 << ZSTD_WINDOWLOG_LIMIT_DEFAULT))
		why = "needs a window larger than a default decoder accepts (128 MiB)";
	if (!why)
		return 0;
	err_set(e, ERR_FORMAT, "%s: byte %llu: chunk %u: the zstd frame %s (formats/bag.md)", r->path,
	        (unsigned long long)(at + CHUNK_HEADER), r->n_chunks, why);
	return rfail(r, ERR_FORMAT);
}

/* the instance fields of a chunk of n (x[n], y[n], tissue[n], label[n]):
 * tissue and label at most 1, negative meaning unknown, never NaN */
static int check_fields(struct bag_reader *r, const uint8_t *p, uint32_t n, struct err *e)
{
	for (uint32_t i = 0; i < n; i++) {
		float t, l;
		uint32_t u = get32(p + 4 * (2 * (size_t)n + i));
		memcpy(&t, &u, 4);
		u = get32(p + 4 * (3 * (size_t)n + i));
		memcpy(&l, &u, 4);
		if (!(t <= 1.0f) || !(l <= 1.0f)) {
			err_set(e, ERR_FORMAT, "%s: chunk %u: instance %llu: tissue %g or label %g outside [0,1] "
			        "(negative means unknown)", r->path, r->n_chunks - 1,
			        (unsigned long long)(r->count + i), (double)t, (double)l);
			return rfail(r, ERR_FORMAT);
		}
	}
	return 0;
}

static int next_frame(struct bag_reader *r, struct bag_raw_chunk *rc_, struct err *e)
{
	if (r->failed)
		return r->failed;
	if (r->done)
		return 0;
	uint64_t at = r->offset;
	uint8_t hdr[CHUNK_HEADER];
	int rc = rread(r, hdr, 4, "a chunk tag", e);
	if (rc)
		return rc;
	if (!memcmp(hdr, "TRLR", 4)) {
		rc = read_trailer(r, at, e);
		return rc ? rc : 0;
	}
	if (memcmp(hdr, "CHNK", 4)) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: expected a chunk (\"CHNK\") or the trailer (\"TRLR\")",
		        r->path, (unsigned long long)at);
		return rfail(r, ERR_FORMAT);
	}
	rc = rread(r, hdr + 4, CHUNK_HEADER - 4, "a chunk header", e);
	if (rc)
		return rc;
	uint32_t n = get32(hdr + 4), raw = get32(hdr + 8), comp = get32(hdr + 12);
	if (!n || n > BAG_CHUNK_MAX_INSTANCES) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: chunk %u holds %u instances, expected 1..%u", r->path,
		        (unsigned long long)(at + 4), r->n_chunks, n, BAG_CHUNK_MAX_INSTANCES);
		return rfail(r, ERR_FORMAT);
	}
	if ((uint64_t)raw != (uint64_t)n * (16 + r->inst_bytes) || raw > BAG_CHUNK_MAX_RAW) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: chunk %u declares %u bytes of payload, expected %llu "
		        "(%u instances of 16 + %llu bytes, at most %u)", r->path, (unsigned long long)(at + 8),
		        r->n_chunks, raw, (unsigned long long)n * (16 + r->inst_bytes), n,
		        (unsigned long long)r->inst_bytes, BAG_CHUNK_MAX_RAW);
		return rfail(r, ERR_FORMAT);
	}
	if (!comp || comp > ZSTD_compressBound(raw)) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: chunk %u declares %u compressed bytes, expected 1..%zu",
		        r->path, (unsigned long long)(at + 12), r->n_chunks, comp, ZSTD_compressBound(raw));
		return rfail(r, ERR_FORMAT);
	}
	rc = remaining_ok(r, comp, "a chunk", e);
	if (rc)
		return rc;
	if (grow((void **)&r->comp, &r->comp_cap, comp, e))
		return rfail(r, ERR_NOMEM);
	rc = rread(r, r->comp, comp, "a chunk", e);
	if (rc)
		return rc;
	uint32_t c = crc(crc(0, hdr, 16), r->comp, comp);
	if (c != get32(hdr + 16) && !FUZZING) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: chunk %u (instances %llu..%llu): checksum 0x%08x, computed 0x%08x: "
		        "the chunk is corrupt", r->path, (unsigned long long)at, r->n_chunks,
		        (unsigned long long)r->count, (unsigned long long)(r->count + n - 1), get32(hdr + 16), c);
		return rfail(r, ERR_FORMAT);
	}
	if ((rc = check_frame(r, r->comp, comp, raw, at, e)))
		return rc;
	if (r->n_chunks >= MAX_CHUNKS) {
		err_set(e, ERR_LIMIT, "%s: byte %llu: more than %u chunks", r->path, (unsigned long long)at, MAX_CHUNKS);
		return rfail(r, ERR_LIMIT);
	}
	if (r->n_chunks == r->index_cap) {
		size_t cap = (size_t)r->index_cap * 2 * sizeof(uint64_t);
		uint32_t nc = r->index_cap ? r->index_cap * 2 : 64;
		if (grow((void **)&r->index, &cap, (size_t)nc * 2 * sizeof(uint64_t), e))
			return rfail(r, ERR_NOMEM);
		r->index_cap = nc;
	}
	r->index[2 * r->n_chunks] = at;
	r->index[2 * r->n_chunks + 1] = r->count;
	r->n_chunks++;
	rc_->n = n;
	rc_->raw_size = raw;
	rc_->comp_size = comp;
	rc_->comp = r->comp;
	return 1;
}

static int count_labels(struct bag_reader *r, const uint8_t *labels, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		float l;
		memcpy(&l, labels + 4 * (size_t)i, 4);
		if (l >= 0) {
			r->labelled++;
			if (l > 0)
				r->positive++;
		}
	}
	return 0;
}

int bag_read_raw_chunk(struct bag_reader *r, struct bag_raw_chunk *rc_, struct err *e)
{
	int rc = next_frame(r, rc_, e);
	if (rc <= 0)
		return rc;
	/* the labels are needed for the trailer's counts: decompress the
	 * leading 16n bytes only */
	size_t need = (size_t)rc_->n * 16;
	if (grow((void **)&r->raw, &r->raw_cap, need, e))
		return rfail(r, ERR_NOMEM);
	ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_only);
	ZSTD_inBuffer in = {rc_->comp, rc_->comp_size, 0};
	ZSTD_outBuffer out = {r->raw, need, 0};
	while (out.pos < need) {
		size_t z = ZSTD_decompressStream(r->dctx, &out, &in);
		if (ZSTD_isError(z) || (in.pos == in.size && out.pos < need) || (z == 0 && out.pos < need)) {
			err_set(e, ERR_FORMAT, "%s: chunk %u: zstd frame does not decompress: %s", r->path,
			        r->n_chunks - 1, ZSTD_isError(z) ? ZSTD_getErrorName(z) : "too short");
			return rfail(r, ERR_FORMAT);
		}
	}
	if ((rc = check_fields(r, r->raw, rc_->n, e)))
		return rc;
	count_labels(r, r->raw + 12 * (size_t)rc_->n, rc_->n);
	r->count += rc_->n;
	return 1;
}

int bag_read_chunk(struct bag_reader *r, struct bag_chunk *c, struct err *e)
{
	struct bag_raw_chunk rc_;
	uint64_t at = r->offset;
	int rc = next_frame(r, &rc_, e);
	if (rc <= 0)
		return rc;
	if (grow((void **)&r->raw, &r->raw_cap, rc_.raw_size, e))
		return rfail(r, ERR_NOMEM);
	unsigned long long fcs = ZSTD_getFrameContentSize(rc_.comp, rc_.comp_size);
	if (fcs != rc_.raw_size) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: chunk %u: zstd frame %s, expected %u bytes", r->path,
		        (unsigned long long)(at + CHUNK_HEADER), r->n_chunks - 1,
		        fcs == ZSTD_CONTENTSIZE_ERROR ? "is not a valid frame" : "declares another size", rc_.raw_size);
		return rfail(r, ERR_FORMAT);
	}
	size_t z = ZSTD_decompressDCtx(r->dctx, r->raw, rc_.raw_size, rc_.comp, rc_.comp_size);
	if (ZSTD_isError(z) || z != rc_.raw_size) {
		err_set(e, ERR_FORMAT, "%s: byte %llu: chunk %u: zstd frame does not decompress: %s", r->path,
		        (unsigned long long)(at + CHUNK_HEADER), r->n_chunks - 1,
		        ZSTD_isError(z) ? ZSTD_getErrorName(z) : "short output");
		return rfail(r, ERR_FORMAT);
	}
	uint32_t n = rc_.n;
	if (n > r->inst_cap) {
		size_t cap = (size_t)r->inst_cap * sizeof *r->inst;
		if (grow((void **)&r->inst, &cap, (size_t)n * sizeof *r->inst, e))
			return rfail(r, ERR_NOMEM);
		r->inst_cap = n;
	}
	const uint8_t *p = r->raw;
	for (uint32_t i = 0; i < n; i++) {
		struct bag_inst *in = &r->inst[i];
		uint32_t u;
		in->x = (int32_t)get32(p + 4 * (size_t)i);
		in->y = (int32_t)get32(p + 4 * ((size_t)n + i));
		u = get32(p + 4 * (2 * (size_t)n + i));
		memcpy(&in->tissue, &u, 4);
		u = get32(p + 4 * (3 * (size_t)n + i));
		memcpy(&in->label, &u, 4);
	}
	if ((rc = check_fields(r, p, n, e)))
		return rc;
	count_labels(r, p + 12 * (size_t)n, n);
	c->n = n;
	c->first = r->count;
	c->inst = r->inst;
	c->data = r->raw + 16 * (size_t)n;
	r->count += n;
	return 1;
}

void bag_close(struct bag_reader *r)
{
	if (!r)
		return;
	if (r->own_fp && r->fp)
		fclose(r->fp);
	ZSTD_freeDCtx(r->dctx);
	free(r->comp);
	free(r->raw);
	free(r->inst);
	free(r->index);
	free(r->path);
	bag_header_free(&r->h);
	free(r);
}

int bag_load(const char *path, struct bag_header *h, uint64_t *n, struct bag_inst **inst,
             uint8_t **data, struct err *e)
{
	struct bag_reader *r;
	*n = 0;
	*inst = NULL;
	*data = NULL;
	int rc = bag_open(&r, path, e);
	if (rc)
		return rc;
	uint64_t cap = 0, count = 0, ib = r->inst_bytes;
	struct bag_chunk c;
	while ((rc = bag_read_chunk(r, &c, e)) > 0) {
		if (count + c.n > cap) {
			uint64_t nc = cap ? cap * 2 : 1024;
			while (nc < count + c.n)
				nc *= 2;
			struct bag_inst *ni = realloc(*inst, nc * sizeof **inst);
			if (ni)
				*inst = ni;
			uint8_t *nd = ib ? realloc(*data, nc * ib) : *data;
			if (ib && nd)
				*data = nd;
			if (!ni || (ib && !nd)) {
				rc = err_set(e, ERR_NOMEM, "%s: out of memory loading %llu instances", path,
				             (unsigned long long)nc);
				break;
			}
			cap = nc;
		}
		memcpy(*inst + count, c.inst, c.n * sizeof *c.inst);
		if (ib)
			memcpy(*data + count * ib, c.data, c.n * ib);
		count += c.n;
	}
	if (!rc)
		rc = bag_header_copy(h, &r->h, e);
	bag_close(r);
	if (rc) {
		free(*inst);
		free(*data);
		*inst = NULL;
		*data = NULL;
		return rc;
	}
	*n = count;
	return 0;
}
