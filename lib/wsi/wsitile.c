/* wsitile.c - see wsitile.h */
#include "wsitile.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../base/afile.h"
#include "annot.h"
#include "../data/bag.h"
#include "../base/img.h"
#include "../base/jsonout.h"
#include "../base/progress.h"
#include "../base/rng.h"
#include "slide.h"

#define BATCH_BYTES (32u << 20)
#define WARN_MAX 20

struct cand {
	int32_t x, y;
	float tissue, label;
};

static void warnf(const struct wsitile_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warnf(const struct wsitile_opts *o, const char *fmt, ...)
{
	if (!o->warn)
		return;
	char buf[ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	o->warn(o->arg, buf);
}

static void base_id(const char *path, char *out, size_t cap)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	snprintf(out, cap, "%s", b);
	char *dot = strrchr(out, '.');
	if (dot && dot != out)
		*dot = 0;
}

/* the thumbnail: the coarsest level at least 1024 px on its long side (at
 * most 4096), background (outside the tissue mask) tinted, kept patches
 * outlined (green; red when the tumour fraction is at least 0.25) */
static int write_thumbnail(struct slide *s, const char *path, const struct tissue_mask *m, const struct cand *c,
                           size_t n, double patch0, struct err *e)
{
	int L = 0;
	for (int k = slide_level_count(s) - 1; k >= 0; k--) {
		int64_t w, h;
		slide_level_size(s, k, &w, &h);
		if ((w > h ? w : h) >= 1024) {
			L = (w > h ? w : h) > 4096 && k + 1 < slide_level_count(s) ? k + 1 : k;
			break;
		}
	}
	int64_t W, H;
	slide_level_size(s, L, &W, &H);
	double ds = slide_level_downsample(s, L);
	if (W * H > (1 << 25))
		return err_set(e, ERR_LIMIT, "%s: no level small enough for a thumbnail", slide_path(s));
	uint8_t *img = err_malloc(e, (size_t)W * (size_t)H * 3);
	if (!img)
		return ERR_NOMEM;
	int rc = slide_read_region(s, L, 0, 0, (uint32_t)W, (uint32_t)H, img, e);
	if (rc) {
		free(img);
		return rc;
	}
	for (int64_t y = 0; y < H; y++) {
		int64_t my = (int64_t)((y + 0.5) * ds / m->ds);
		for (int64_t x = 0; x < W; x++) {
			int64_t mx = (int64_t)((x + 0.5) * ds / m->ds);
			int in = mx < m->w && my < m->h && m->m[(size_t)my * m->w + (size_t)mx];
			if (in)
				continue;
			uint8_t *p = img + ((size_t)y * (size_t)W + (size_t)x) * 3;
			for (int k = 0; k < 3; k++)
				p[k] = (uint8_t)((p[k] + (k == 2 ? 200 : 90)) / 2);
		}
	}
	for (size_t jj = 0; jj < 2 * n; jj++) { /* tumour outlines last, on top */
		size_t j = jj % n;
		if ((jj < n) == (c[j].label >= 0.25f))
			continue;
		long x0 = lround(c[j].x / ds), y0 = lround(c[j].y / ds);
		long x1 = lround((c[j].x + patch0) / ds) - 1, y1 = lround((c[j].y + patch0) / ds) - 1;
		uint8_t col[3] = {0, 140, 0};
		if (c[j].label >= 0.25f) {
			col[0] = 220;
			col[1] = 0;
		}
		for (long y = y0; y <= y1; y++)
			for (long x = x0; x <= x1; x++) {
				if (x < 0 || y < 0 || x >= (long)W || y >= (long)H)
					continue;
				if (x != x0 && x != x1 && y != y0 && y != y1)
					continue;
				memcpy(img + ((size_t)y * (size_t)W + (size_t)x) * 3, col, 3);
			}
	}
	rc = img_write_png(path, img, (uint32_t)H, (uint32_t)W, 3, e);
	free(img);
	return rc;
}

static int meta(struct bag_header *h, const char *k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int meta(struct bag_header *h, const char *k, const char *fmt, ...)
{
	char v[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof v, fmt, ap);
	va_end(ap);
	return bag_header_meta_add(h, k, v, NULL);
}

int wsitile_run(const char *path, const char *out, const struct wsitile_opts *o, struct wsitile_result *r,
                struct err *e)
{
	memset(r, 0, sizeof *r);
	double t0 = progress_now();
	if (o->size < 1 || o->size > 8192)
		return err_set(e, ERR_USAGE, "patch size %u: must be 1..8192", o->size);
	int nthreads = 1;
#ifdef _OPENMP
	nthreads = omp_get_max_threads();
#endif
	struct slide **sl = err_calloc(e, (size_t)nthreads, sizeof *sl);
	if (!sl)
		return ERR_NOMEM;
	struct annot *an = NULL;
	struct tissue_mask tm;
	memset(&tm, 0, sizeof tm);
	struct cand *c = NULL;
	uint8_t *bufs[2] = {NULL, NULL};
	int *sts[2] = {NULL, NULL};
	char **msgv[2] = {NULL, NULL};
	size_t batch = 0;
	struct bag_writer *w = NULL;
	struct bag_header h;
	bag_header_init(&h);
	int rc = slide_open(&sl[0], path, e);
	if (rc)
		goto out;
	slide_set_fast(sl[0], o->fast);
	struct slide_res res;
	if ((rc = slide_resolve(sl[0], o->mpp, o->mag, o->slide_mpp, o->force_mpp, &res, e)))
		goto out;
	r->mpp = res.mpp;
	r->mpp0 = res.mpp0;
	r->mpp_source = res.mpp_source;
	r->downsample = res.downsample;
	r->level = res.level;
	double patch0 = o->size * res.downsample, stride0 = (o->stride ? o->stride : o->size) * res.downsample;
	r->patch_level0 = (uint32_t)llround(patch0);
	if (o->annotations && (rc = annot_load(&an, o->annotations, e)))
		goto out;
	/* tissue */
	double ts = progress_now();
	int use_tissue = o->min_tissue >= 0 || o->thumbnail || o->contours;
	if (use_tissue) {
		if ((rc = tissue_segment(sl[0], &o->tissue, &tm, e)))
			goto out;
		r->seg_level = tm.level;
		r->tissue_mm2 = tissue_area_level0(&tm) * res.mpp0 * res.mpp0 * 1e-6;
	} else {
		r->seg_level = -1;
	}
	r->seg_seconds = progress_now() - ts;
	if (o->contours && (rc = tissue_write_geojson(&tm, o->contours, e)))
		goto out;
	/* the grid */
	int64_t W0, H0;
	slide_level_size(sl[0], 0, &W0, &H0);
	size_t cap = 0, n = 0;
	for (double y = 0; y + patch0 <= H0 + 1e-6; y += stride0)
		for (double x = 0; x + patch0 <= W0 + 1e-6; x += stride0) {
			int32_t xi = (int32_t)llround(x), yi = (int32_t)llround(y);
			if (x > INT32_MAX || y > INT32_MAX)
				continue;
			r->candidates++;
			float tf = use_tissue ? (float)tissue_fraction(&tm, xi, yi, patch0) : -1.0f;
			if (o->min_tissue >= 0 && !(tf > o->min_tissue))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				void *q = realloc(c, cap * sizeof *c);
				if (!q) {
					rc = err_set(e, ERR_NOMEM, "out of memory for %zu patches", cap);
					goto out;
				}
				c = q;
			}
			c[n++] = (struct cand){xi, yi, tf, -1.0f};
		}
	if (o->max_tiles > 0 && n > o->max_tiles) {
		if (n > UINT32_MAX) {
			rc = err_set(e, ERR_LIMIT, "too many patches to sample");
			goto out;
		}
		uint32_t *idx = err_malloc(e, n * sizeof *idx);
		uint8_t *keep = err_calloc(e, n, 1);
		if (!idx || !keep) {
			free(idx);
			free(keep);
			rc = ERR_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			idx[i] = (uint32_t)i;
		struct rng rg;
		rng_seed(&rg, o->seed, 0x7113);
		rng_shuffle(&rg, idx, n);
		for (uint64_t i = 0; i < o->max_tiles; i++)
			keep[idx[i]] = 1;
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (keep[i])
				c[k++] = c[i];
		n = k;
		free(idx);
		free(keep);
	}
	r->kept = n;
	if (an && n) {
		int32_t *xs = err_malloc(e, n * sizeof *xs), *ys = err_malloc(e, n * sizeof *ys);
		float *fr = err_malloc(e, n * sizeof *fr);
		if (!xs || !ys || !fr) {
			free(xs);
			free(ys);
			free(fr);
			rc = ERR_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			xs[i] = c[i].x;
			ys[i] = c[i].y;
		}
		rc = annot_fractions(an, n, xs, ys, patch0, fr, e);
		for (size_t i = 0; !rc && i < n; i++)
			c[i].label = fr[i];
		free(xs);
		free(ys);
		free(fr);
		if (rc)
			goto out;
	}
	if (o->thumbnail && (rc = write_thumbnail(sl[0], o->thumbnail, &tm, c, n, patch0, e)))
		goto out;
	/* the header */
	char id[BAG_ID_MAX + 1];
	if (o->id)
		snprintf(id, sizeof id, "%s", o->id);
	else
		base_id(path, id, sizeof id);
	snprintf(h.id, sizeof h.id, "%s", id);
	h.label = BAG_LABEL_UNKNOWN;
	h.kind = o->coords_only ? BAG_COORDS : BAG_PIXELS;
	if (!o->coords_only) {
		h.height = h.width = o->size;
		h.channels = 3;
	}
	h.level = res.level;
	h.mpp = res.mpp;
	h.downsample = res.downsample;
	h.patch_level0 = r->patch_level0;
	int64_t lw, lh;
	slide_level_size(sl[0], res.level, &lw, &lh);
	if (meta(&h, "tool", "wsi-tile") || meta(&h, "version", "%s", o->version ? o->version : "?") ||
	    meta(&h, "source", "%s", path) || meta(&h, "slide_vendor", "%s", slide_vendor(sl[0])) ||
	    meta(&h, "slide_size", "%lldx%lld", (long long)W0, (long long)H0) ||
	    meta(&h, "slide_mpp", "%.17g", res.mpp0) ||
	    meta(&h, "mpp_source", "%s", slide_mpp_source_name(res.mpp_source)) ||
	    meta(&h, "mpp", "%.17g", res.mpp) || meta(&h, "level", "%d", res.level) ||
	    meta(&h, "level_downsample", "%.17g", res.level_ds) || meta(&h, "residual_scale", "%.17g", res.scale) ||
	    meta(&h, "downsample", "%.17g", res.downsample) || meta(&h, "patch_level0", "%.17g", patch0) ||
	    meta(&h, "stride_level0", "%.17g", stride0) ||
	    (res.mag0 > 0 && (meta(&h, "mag0", "%g", res.mag0) || meta(&h, "mag_source", "%s", res.mag_source))) ||
	    meta(&h, "seg_level", "%d", r->seg_level) || meta(&h, "tissue_threshold", "%d", tm.threshold) ||
	    meta(&h, "annotations", "%s", o->annotations ? o->annotations : "none") ||
	    meta(&h, "label_definition", "%s",
	         an ? "tumour area fraction: union(_0,_1,Tumor) minus union(_2), even-odd" : "none") ||
	    meta(&h, "seed", "%llu", (unsigned long long)o->seed) ||
	    meta(&h, "instance_x", "level-0 top-left x of the patch")) {
		rc = err_set(e, ERR_LIMIT, "provenance text too long");
		goto out;
	}
	if (o->params) {
		const char *p = o->params;
		while (*p) {
			const char *nl = strchr(p, '\n'), *le = nl ? nl : p + strlen(p);
			const char *eq = memchr(p, '=', (size_t)(le - p));
			if (eq) {
				char k[300], v[4096];
				snprintf(k, sizeof k, "param.%.*s", (int)(eq - p), p);
				snprintf(v, sizeof v, "%.*s", (int)(le - eq - 1), eq + 1);
				if ((rc = bag_header_meta_add(&h, k, v, e)))
					goto out;
			}
			p = nl ? nl + 1 : le;
		}
	}
	if ((rc = bag_writer_open(&w, out, &h, o->zlevel, 0, e)))
		goto out;
	/* read and write: two batch buffers; while this thread compresses and
	 * writes batch k, the other threads decode batch k+1 (OpenMP tasks) */
	size_t pb = o->coords_only ? 0 : (size_t)o->size * o->size * 3;
	batch = o->coords_only ? n : (size_t)(BATCH_BYTES / (pb ? pb : 1));
	if (batch < (size_t)nthreads * 2)
		batch = (size_t)nthreads * 2;
	if (batch > n)
		batch = n;
	if (!o->coords_only && n) {
		for (int k = 0; k < 2; k++) {
			bufs[k] = err_malloc(e, batch * pb);
			sts[k] = err_calloc(e, batch, sizeof *sts[k]);
			msgv[k] = err_calloc(e, batch, sizeof *msgv[k]);
			if (!bufs[k] || !sts[k] || !msgv[k]) {
				rc = ERR_NOMEM;
				goto out;
			}
		}
		for (int t = 1; t < nthreads; t++) {
			if ((rc = slide_open(&sl[t], path, e)))
				goto out;
			slide_set_fast(sl[t], o->fast);
		}
	}
	uint64_t warned = 0;
	size_t nb = batch ? (n + batch - 1) / batch : 0;
	int wrc = 0;
	if (o->coords_only) {
		for (size_t i = 0; i < n && !wrc; i++) {
			struct bag_inst in = {c[i].x, c[i].y, c[i].tissue, c[i].label};
			wrc = bag_writer_add(w, &in, NULL, e);
			r->written += !wrc;
		}
		nb = 0;
	}
	const size_t TASK = 4;
#pragma omp parallel
#pragma omp single
	{
		for (size_t k = 0; k <= nb && !wrc; k++) {
			/* decode batch k (tasks) */
			if (k < nb) {
				size_t b0 = k * batch, bn = n - b0 < batch ? n - b0 : batch;
				uint8_t *bb = bufs[k % 2];
				int *bs = sts[k % 2];
				char **bm = msgv[k % 2];
				for (size_t q0 = 0; q0 < bn; q0 += TASK) {
#pragma omp task firstprivate(q0, b0, bn, bb, bs, bm)
					{
						int tid = 0;
#ifdef _OPENMP
						tid = omp_get_thread_num();
#endif
						for (size_t i = q0; i < q0 + TASK && i < bn; i++) {
							struct err pe = {0};
							const struct cand *cc = &c[b0 + i];
							bs[i] = slide_read_patch(sl[tid], &res, cc->x, cc->y, o->size, bb + i * pb, &pe);
							bm[i] = bs[i] ? strdup(pe.msg) : NULL;
						}
					}
				}
			}
			/* meanwhile, write batch k-1 */
			if (k > 0) {
				size_t j = k - 1, b0 = j * batch, bn = n - b0 < batch ? n - b0 : batch;
				uint8_t *bb = bufs[j % 2];
				int *bs = sts[j % 2];
				char **bm = msgv[j % 2];
				for (size_t i = 0; i < bn && !wrc; i++) {
					const struct cand *cc = &c[b0 + i];
					if (bs[i]) {
						if (bs[i] == ERR_NOMEM) {
							wrc = err_set(e, ERR_NOMEM, "%s", bm[i] ? bm[i] : "out of memory");
							break;
						}
						r->skipped++;
						if (warned++ < WARN_MAX)
							warnf(o, "%s: patch (%d, %d) skipped: %s", path, cc->x, cc->y, bm[i] ? bm[i] : "?");
						free(bm[i]);
						bm[i] = NULL;
						continue;
					}
					struct bag_inst in = {cc->x, cc->y, cc->tissue, cc->label};
					wrc = bag_writer_add(w, &in, bb + i * pb, e);
					r->written += !wrc;
				}
				if (o->progress)
					o->progress(o->arg, b0 + bn, n);
			}
#pragma omp taskwait
		}
	}
	if (wrc) {
		rc = wrc;
		goto out;
	}
	if (warned > WARN_MAX)
		warnf(o, "%s: %llu more patches skipped", path, (unsigned long long)(warned - WARN_MAX));
	rc = bag_writer_close(w, e);
	w = NULL;
out:
	if (w)
		bag_writer_abort(w);
	for (int t = 0; t < nthreads; t++)
		if (sl[t]) {
			struct slide_stats ss;
			slide_stats(sl[t], &ss);
			r->bad_tiles += ss.bad_tiles;
			r->fast_tiles += ss.fast_tiles;
			r->openslide_reads += ss.openslide_reads;
			slide_close(sl[t]);
		}
	for (int k = 0; k < 2; k++) {
		if (msgv[k])
			for (size_t i = 0; i < batch; i++)
				free(msgv[k][i]);
		free(msgv[k]);
		free(sts[k]);
		free(bufs[k]);
	}
	free(sl);
	free(c);
	annot_free(an);
	tissue_mask_free(&tm);
	bag_header_free(&h);
	r->seconds = progress_now() - t0;
	return rc;
}


int wsitile_write_summary(const char *path, const char *slide, const struct wsitile_result *r, const char *version,
                          struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	FILE *f = af.fp;
	fprintf(f, "{\"tool\":\"wsi-tile\",\"version\":");
	json_string(f, version ? version : "?");
	fprintf(f, ",\"slide\":");
	json_string(f, slide);
	fprintf(f,
	        ",\"patches\":%llu,\"candidates\":%llu,\"kept\":%llu,\"skipped\":%llu,\"bad_tiles\":%llu,"
	        "\"tissue_mm2\":%.6g,\"mpp\":%.17g,\"slide_mpp\":%.17g,\"mpp_source\":\"%s\",\"level\":%d,"
	        "\"downsample\":%.17g,\"patch_level0\":%u,\"seg_level\":%d,\"seconds\":%.3f,\"tissue_seconds\":%.3f,"
	        "\"fast_tiles\":%llu,\"openslide_reads\":%llu}\n",
	        (unsigned long long)r->written, (unsigned long long)r->candidates, (unsigned long long)r->kept,
	        (unsigned long long)r->skipped, (unsigned long long)r->bad_tiles, r->tissue_mm2, r->mpp, r->mpp0,
	        slide_mpp_source_name(r->mpp_source), r->level, r->downsample, r->patch_level0, r->seg_level, r->seconds,
	        r->seg_seconds, (unsigned long long)r->fast_tiles, (unsigned long long)r->openslide_reads);
	if (ferror(f)) {
		afile_abort(&af);
		return err_set(e, ERR_IO, "cannot write '%s'", path);
	}
	return afile_commit(&af, e);
}
