/* dataset.c - see dataset.h */
#include "dataset.h"

#include <stdlib.h>
#include <string.h>

#include "../base/textfile.h"

int dataset_open(struct dataset *ds, const char *manifest_path, size_t cache_bytes, struct err *e)
{
	memset(ds, 0, sizeof *ds);
	int rc = manifest_read(&ds->man, manifest_path, e);
	if (rc)
		return rc;
	uint32_t nb = ds->man.n;
	ds->cache_x = calloc(nb, sizeof *ds->cache_x);
	ds->cache_inst = calloc(nb, sizeof *ds->cache_inst);
	ds->n = calloc(nb, sizeof *ds->n);
	if (!ds->cache_x || !ds->cache_inst || !ds->n) {
		dataset_close(ds);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	ds->cache_cap = cache_bytes;
	const char *first = NULL;
	for (uint32_t b = 0; b < nb; b++) {
		const struct manifest_row *row = &ds->man.rows[b];
		struct bag_reader *r;
		/* a FIFO or a device named in a manifest would hang or never end */
		rc = textfile_check_regular(row->path, e);
		if (!rc)
			rc = bag_open(&r, row->path, e);
		if (rc) {
			/* the reader's message, then which bag of which manifest */
			char msg[ERR_MSG_MAX];
			snprintf(msg, sizeof msg, "%s", e->msg);
			err_clear(e);
			err_set(e, rc, "%s (bag '%s' of %s)", msg, row->bag_id, manifest_path);
			break;
		}
		const struct bag_header *h = bag_reader_header(r);
		uint32_t c = h->kind == BAG_PIXELS ? h->channels : h->dim;
		uint32_t hh = h->kind == BAG_PIXELS ? h->height : 1, ww = h->kind == BAG_PIXELS ? h->width : 1;
		if (h->kind != BAG_PIXELS && h->kind != BAG_FEATURES)
			rc = err_set(e, ERR_FORMAT, "%s: holds coordinates only; training needs pixels or features", row->path);
		else if (!first) {
			first = row->path;
			ds->kind = h->kind;
			ds->c = c;
			ds->h = hh;
			ds->w = ww;
			ds->in_dim = c * hh * ww;
		} else if (h->kind != ds->kind || c != ds->c || hh != ds->h || ww != ds->w)
			rc = err_set(e, ERR_FORMAT, "bags disagree: %s holds %s %ux%ux%u, %s holds %s %ux%ux%u", first,
			             ds->kind == BAG_PIXELS ? "pixels" : "features", ds->h, ds->w, ds->c, row->path,
			             h->kind == BAG_PIXELS ? "pixels" : "features", hh, ww, c);
		if (!rc && h->label != BAG_LABEL_UNKNOWN && h->label != row->label)
			rc = err_set(e, ERR_FORMAT, "%s: bag label %d, but %s says %d for '%s'", row->path, h->label,
			             manifest_path, row->label, row->bag_id);
		bag_close(r);
		ds->n[b] = row->n_instances;
		if (rc)
			break;
	}
	if (rc)
		dataset_close(ds);
	return rc;
}

void dataset_close(struct dataset *ds)
{
	for (uint32_t b = 0; ds->cache_x && b < ds->man.n; b++) {
		free(ds->cache_x[b]);
		free(ds->cache_inst[b]);
	}
	free(ds->cache_x);
	free(ds->cache_inst);
	free(ds->n);
	manifest_free(&ds->man);
	memset(ds, 0, sizeof *ds);
}

static int grow(void **p, size_t *cap, size_t need, struct err *e)
{
	if (need <= *cap)
		return 0;
	void *q = realloc(*p, need);
	if (!q)
		return err_set(e, ERR_NOMEM, "out of memory allocating %zu bytes", need);
	*p = q;
	*cap = need;
	return 0;
}

int dataset_load_bag(struct dataset *ds, uint32_t b, const float **x, const struct bag_inst **inst,
                     uint64_t *n, float **buf, size_t *buf_cap, struct bag_inst **ibuf,
                     size_t *ibuf_cap, struct err *e)
{
	if (ds->cache_x[b]) {
		*x = ds->cache_x[b];
		*inst = ds->cache_inst[b];
		*n = ds->n[b];
		return 0;
	}
	const char *path = ds->man.rows[b].path;
	struct bag_reader *r;
	int rc = bag_open(&r, path, e);
	if (rc)
		return rc;
	uint64_t count = 0;
	struct bag_chunk c;
	const uint32_t D = ds->in_dim, HW = ds->h * ds->w, C = ds->c;
	while ((rc = bag_read_chunk(r, &c, e)) > 0) {
		if (grow((void **)buf, buf_cap, (size_t)(count + c.n) * D * sizeof(float), e) ||
		    grow((void **)ibuf, ibuf_cap, (size_t)(count + c.n) * sizeof(struct bag_inst), e)) {
			rc = ERR_NOMEM;
			break;
		}
		memcpy(*ibuf + count, c.inst, c.n * sizeof *c.inst);
		float *out = *buf + (size_t)count * D;
		if (ds->kind == BAG_PIXELS) {
			for (uint32_t i = 0; i < c.n; i++) { /* HWC u8 -> CHW float in [0,1] */
				const uint8_t *px = c.data + (size_t)i * D;
				float *o = out + (size_t)i * D;
				for (uint32_t p = 0; p < HW; p++)
					for (uint32_t ch = 0; ch < C; ch++)
						o[(size_t)ch * HW + p] = (float)px[(size_t)p * C + ch] * (1.0f / 255.0f);
			}
		} else {
			memcpy(out, c.data, (size_t)c.n * D * sizeof(float));
		}
		count += c.n;
	}
	bag_close(r);
	if (rc < 0)
		return rc;
	if (count != ds->man.rows[b].n_instances && ds->man.rows[b].n_instances)
		return err_set(e, ERR_FORMAT, "%s: %llu instances, the manifest %s says %llu", path,
		               (unsigned long long)count, ds->man.path, (unsigned long long)ds->man.rows[b].n_instances);
	ds->n[b] = count;
	*x = *buf;
	*inst = *ibuf;
	*n = count;
	size_t bytes = (size_t)count * (D * sizeof(float) + sizeof(struct bag_inst));
	if (ds->cache_used + bytes <= ds->cache_cap) {
		float *cx = malloc((size_t)count * D * sizeof(float) + 1);
		struct bag_inst *ci = malloc(count * sizeof *ci + 1);
		if (cx && ci) {
			memcpy(cx, *buf, (size_t)count * D * sizeof(float));
			memcpy(ci, *ibuf, count * sizeof *ci);
			ds->cache_x[b] = cx;
			ds->cache_inst[b] = ci;
			ds->cache_used += bytes;
			*x = cx;
			*inst = ci;
		} else {
			free(cx);
			free(ci);
		}
	}
	return 0;
}

uint32_t *dataset_split(const struct dataset *ds, int split, uint32_t *count)
{
	uint32_t *v = malloc((ds->man.n + 1) * sizeof *v), k = 0;
	if (!v) {
		*count = 0;
		return NULL;
	}
	for (uint32_t b = 0; b < ds->man.n; b++)
		if (ds->man.rows[b].split == split)
			v[k++] = b;
	*count = k;
	return v;
}

uint64_t dataset_split_instances(const struct dataset *ds, int split)
{
	uint64_t s = 0;
	for (uint32_t b = 0; b < ds->man.n; b++)
		if (ds->man.rows[b].split == split)
			s += ds->n[b];
	return s;
}
