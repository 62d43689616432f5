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

/* One run: what the phases below share. */
struct run {
	const char *path;
	const struct wsitile_opts *o;
	struct wsitile_result *r;
	int nthreads;
	struct slide **sl;        /* one handle per thread; sl[0] opened first */
	struct slide_res res;
	double patch0, stride0;   /* patch and stride in level-0 px */
	int64_t W0, H0;           /* level-0 size */
	int use_tissue;
	struct tissue_mask tm;
	struct annot *an;
	struct cand *c;           /* the kept patches */
	size_t n;
	struct bag_header h;
	struct bag_writer *w;
	/* the read/write pipeline: two batches of patches in flight */
	size_t batch, pb;         /* patches a batch, bytes a patch */
	uint8_t *bufs[2];
	int *sts[2];              /* each patch's read status */
	char **msgv[2];           /* and its error message */
	uint64_t warned;
};

/* the slide, its resolution and the patch size at level 0 */
static int open_slide(struct run *t, struct err *e)
{
	const struct wsitile_opts *o = t->o;
	struct wsitile_result *r = t->r;
	int rc = slide_open(&t->sl[0], t->path, e);
	if (rc)
		return rc;
	slide_set_fast(t->sl[0], o->fast);
	if ((rc = slide_resolve(t->sl[0], o->mpp, o->mag, o->slide_mpp, o->force_mpp, &t->res, e)))
		return rc;
	r->mpp = t->res.mpp;
	r->mpp0 = t->res.mpp0;
	r->mpp_source = t->res.mpp_source;
	r->downsample = t->res.downsample;
	r->level = t->res.level;
	t->patch0 = o->size * t->res.downsample;
	t->stride0 = (o->stride ? o->stride : o->size) * t->res.downsample;
	r->patch_level0 = (uint32_t)llround(t->patch0);
	slide_level_size(t->sl[0], 0, &t->W0, &t->H0);
	return 0;
}

/* the tissue mask (when a filter or a picture of it is asked for) and its
 * contours */
static int find_tissue(struct run *t, struct err *e)
{
	const struct wsitile_opts *o = t->o;
	double ts = progress_now();
	t->use_tissue = o->min_tissue >= 0 || o->thumbnail || o->contours;
	t->r->seg_level = -1;
	if (t->use_tissue) {
		int rc = tissue_segment(t->sl[0], &o->tissue, &t->tm, e);
		if (rc)
			return rc;
		t->r->seg_level = t->tm.level;
		t->r->tissue_mm2 = tissue_area_level0(&t->tm) * t->res.mpp0 * t->res.mpp0 * 1e-6;
	}
	t->r->seg_seconds = progress_now() - ts;
	return o->contours ? tissue_write_geojson(&t->tm, o->contours, e) : 0;
}

/* the grid over level 0 (patches wholly inside the slide), kept where the
 * tissue fraction exceeds min_tissue */
static int lay_grid(struct run *t, struct err *e)
{
	size_t cap = 0;
	for (double y = 0; y + t->patch0 <= t->H0 + 1e-6; y += t->stride0)
		for (double x = 0; x + t->patch0 <= t->W0 + 1e-6; x += t->stride0) {
			int32_t xi = (int32_t)llround(x), yi = (int32_t)llround(y);
			if (x > INT32_MAX || y > INT32_MAX)
				continue;
			t->r->candidates++;
			float tf = t->use_tissue ? (float)tissue_fraction(&t->tm, xi, yi, t->patch0) : -1.0f;
			if (t->o->min_tissue >= 0 && !(tf > t->o->min_tissue))
				continue;
			if (t->n == cap) {
				cap = cap ? cap * 2 : 1024;
				void *q = realloc(t->c, cap * sizeof *t->c);
				if (!q)
					return err_set(e, ERR_NOMEM, "out of memory for %zu patches", cap);
				t->c = q;
			}
			t->c[t->n++] = (struct cand){xi, yi, tf, -1.0f};
		}
	return 0;
}

/* max_tiles of the patches, drawn with the seed, in grid order */
static int sample(struct run *t, struct err *e)
{
	size_t n = t->n;
	if (t->o->max_tiles == 0 || n <= t->o->max_tiles)
		return 0;
	if (n > UINT32_MAX)
		return err_set(e, ERR_LIMIT, "too many patches to sample");
	uint32_t *idx = err_malloc(e, n * sizeof *idx);
	uint8_t *keep = err_calloc(e, n, 1);
	if (!idx || !keep) {
		free(idx);
		free(keep);
		return ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		idx[i] = (uint32_t)i;
	struct rng rg;
	rng_seed(&rg, t->o->seed, 0x7113);
	rng_shuffle(&rg, idx, n);
	for (uint64_t i = 0; i < t->o->max_tiles; i++)
		keep[idx[i]] = 1;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (keep[i])
			t->c[k++] = t->c[i];
	t->n = k;
	free(idx);
	free(keep);
	return 0;
}

/* each kept patch's tumour-area fraction from the annotations */
static int label_patches(struct run *t, struct err *e)
{
	size_t n = t->n;
	if (!t->an || !n)
		return 0;
	int32_t *xs = err_malloc(e, n * sizeof *xs), *ys = err_malloc(e, n * sizeof *ys);
	float *fr = err_malloc(e, n * sizeof *fr);
	int rc = ERR_NOMEM;
	if (xs && ys && fr) {
		for (size_t i = 0; i < n; i++) {
			xs[i] = t->c[i].x;
			ys[i] = t->c[i].y;
		}
		rc = annot_fractions(t->an, n, xs, ys, t->patch0, fr, e);
		for (size_t i = 0; !rc && i < n; i++)
			t->c[i].label = fr[i];
	}
	free(xs);
	free(ys);
	free(fr);
	return rc;
}

/* "name=value" lines of o->params as param.name entries */
static int add_params(struct bag_header *h, const char *p, struct err *e)
{
	while (p && *p) {
		const char *nl = strchr(p, '\n'), *le = nl ? nl : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(le - p));
		if (eq) {
			char k[300], v[4096];
			snprintf(k, sizeof k, "param.%.*s", (int)(eq - p), p);
			snprintf(v, sizeof v, "%.*s", (int)(le - eq - 1), eq + 1);
			int rc = bag_header_meta_add(h, k, v, e);
			if (rc)
				return rc;
		}
		p = nl ? nl + 1 : le;
	}
	return 0;
}

/* the bag header: id, kind, resolution and the provenance */
static int make_header(struct run *t, struct err *e)
{
	const struct wsitile_opts *o = t->o;
	const struct slide_res *res = &t->res;
	struct bag_header *h = &t->h;
	if (o->id)
		snprintf(h->id, sizeof h->id, "%s", o->id);
	else
		base_id(t->path, h->id, sizeof h->id);
	h->label = BAG_LABEL_UNKNOWN;
	h->kind = o->coords_only ? BAG_COORDS : BAG_PIXELS;
	if (!o->coords_only) {
		h->height = h->width = o->size;
		h->channels = 3;
	}
	h->level = res->level;
	h->mpp = res->mpp;
	h->downsample = res->downsample;
	h->patch_level0 = t->r->patch_level0;
	if (meta(h, "tool", "wsi-tile") || meta(h, "version", "%s", o->version ? o->version : "?") ||
	    meta(h, "source", "%s", t->path) || meta(h, "slide_vendor", "%s", slide_vendor(t->sl[0])) ||
	    meta(h, "slide_size", "%lldx%lld", (long long)t->W0, (long long)t->H0) ||
	    meta(h, "slide_mpp", "%.17g", res->mpp0) ||
	    meta(h, "mpp_source", "%s", slide_mpp_source_name(res->mpp_source)) ||
	    meta(h, "mpp", "%.17g", res->mpp) || meta(h, "level", "%d", res->level) ||
	    meta(h, "level_downsample", "%.17g", res->level_ds) ||
	    meta(h, "residual_scale", "%.17g", res->scale) ||
	    meta(h, "downsample", "%.17g", res->downsample) ||
	    meta(h, "patch_level0", "%.17g", t->patch0) ||
	    meta(h, "stride_level0", "%.17g", t->stride0) ||
	    (res->mag0 > 0 &&
	     (meta(h, "mag0", "%g", res->mag0) || meta(h, "mag_source", "%s", res->mag_source))) ||
	    meta(h, "seg_level", "%d", t->r->seg_level) ||
	    meta(h, "tissue_threshold", "%d", t->tm.threshold) ||
	    meta(h, "annotations", "%s", o->annotations ? o->annotations : "none") ||
	    meta(h, "label_definition", "%s",
	         t->an ? "tumour area fraction: union(_0,_1,Tumor) minus union(_2), even-odd" : "none") ||
	    meta(h, "seed", "%llu", (unsigned long long)o->seed) ||
	    meta(h, "instance_x", "level-0 top-left x of the patch"))
		return err_set(e, ERR_LIMIT, "provenance text too long");
	return add_params(h, o->params, e);
}

/* the pipeline's buffers and one slide handle per further thread */
static int open_pipeline(struct run *t, struct err *e)
{
	const struct wsitile_opts *o = t->o;
	t->pb = o->coords_only ? 0 : (size_t)o->size * o->size * 3;
	t->batch = o->coords_only ? t->n : (size_t)(BATCH_BYTES / (t->pb ? t->pb : 1));
	if (t->batch < (size_t)t->nthreads * 2)
		t->batch = (size_t)t->nthreads * 2;
	if (t->batch > t->n)
		t->batch = t->n;
	if (o->coords_only || !t->n)
		return 0;
	for (int k = 0; k < 2; k++) {
		t->bufs[k] = err_malloc(e, t->batch * t->pb);
		t->sts[k] = err_calloc(e, t->batch, sizeof *t->sts[k]);
		t->msgv[k] = err_calloc(e, t->batch, sizeof *t->msgv[k]);
		if (!t->bufs[k] || !t->sts[k] || !t->msgv[k])
			return ERR_NOMEM;
	}
	for (int i = 1; i < t->nthreads; i++) {
		int rc = slide_open(&t->sl[i], t->path, e);
		if (rc)
			return rc;
		slide_set_fast(t->sl[i], o->fast);
	}
	return 0;
}

/* queues the reading of batch k as OpenMP tasks of a few patches each */
static void read_batch(struct run *t, size_t k)
{
	const size_t TASK = 4;
	size_t b0 = k * t->batch, bn = t->n - b0 < t->batch ? t->n - b0 : t->batch;
	uint8_t *bb = t->bufs[k % 2];
	int *bs = t->sts[k % 2];
	char **bm = t->msgv[k % 2];
	for (size_t q0 = 0; q0 < bn; q0 += TASK) {
#pragma omp task firstprivate(q0, b0, bn, bb, bs, bm)
		{
			int tid = 0;
#ifdef _OPENMP
			tid = omp_get_thread_num();
#endif
			for (size_t i = q0; i < q0 + TASK && i < bn; i++) {
				struct err pe = {0};
				const struct cand *cc = &t->c[b0 + i];
				bs[i] = slide_read_patch(t->sl[tid], &t->res, cc->x, cc->y, t->o->size,
				                         bb + i * t->pb, &pe);
				bm[i] = bs[i] ? strdup(pe.msg) : NULL;
			}
		}
	}
}

/* writes the patches of batch j that were read, counts and reports the
 * ones lost to bad tiles */
static int write_batch(struct run *t, size_t j, struct err *e)
{
	size_t b0 = j * t->batch, bn = t->n - b0 < t->batch ? t->n - b0 : t->batch;
	uint8_t *bb = t->bufs[j % 2];
	int *bs = t->sts[j % 2];
	char **bm = t->msgv[j % 2];
	int rc = 0;
	for (size_t i = 0; i < bn && !rc; i++) {
		const struct cand *cc = &t->c[b0 + i];
		if (bs[i]) {
			if (bs[i] == ERR_NOMEM)
				return err_set(e, ERR_NOMEM, "%s", bm[i] ? bm[i] : "out of memory");
			t->r->skipped++;
			if (t->warned++ < WARN_MAX)
				warnf(t->o, "%s: patch (%d, %d) skipped: %s", t->path, cc->x, cc->y,
				      bm[i] ? bm[i] : "?");
			free(bm[i]);
			bm[i] = NULL;
			continue;
		}
		struct bag_inst in = {cc->x, cc->y, cc->tissue, cc->label};
		rc = bag_writer_add(t->w, &in, bb + i * t->pb, e);
		t->r->written += !rc;
	}
	if (!rc && t->o->progress)
		t->o->progress(t->o->arg, b0 + bn, t->n);
	return rc;
}

/* reads and writes every kept patch: while this thread compresses and
 * writes batch k-1, the other threads decode batch k (OpenMP tasks) */
static int stream_patches(struct run *t, struct err *e)
{
	int wrc = 0;
	if (t->o->coords_only) {
		for (size_t i = 0; i < t->n && !wrc; i++) {
			struct bag_inst in = {t->c[i].x, t->c[i].y, t->c[i].tissue, t->c[i].label};
			wrc = bag_writer_add(t->w, &in, NULL, e);
			t->r->written += !wrc;
		}
		return wrc;
	}
	size_t nb = t->batch ? (t->n + t->batch - 1) / t->batch : 0;
#pragma omp parallel
#pragma omp single
	{
		for (size_t k = 0; k <= nb && !wrc; k++) {
			if (k < nb)
				read_batch(t, k);
			if (k > 0)
				wrc = write_batch(t, k - 1, e);
#pragma omp taskwait
		}
	}
	if (!wrc && t->warned > WARN_MAX)
		warnf(t->o, "%s: %llu more patches skipped", t->path,
		      (unsigned long long)(t->warned - WARN_MAX));
	return wrc;
}

/* frees what the run holds and adds the slide handles' counts to r */
static void close_run(struct run *t)
{
	if (t->w)
		bag_writer_abort(t->w);
	for (int i = 0; i < t->nthreads; i++)
		if (t->sl[i]) {
			struct slide_stats ss;
			slide_stats(t->sl[i], &ss);
			t->r->bad_tiles += ss.bad_tiles;
			t->r->fast_tiles += ss.fast_tiles;
			t->r->openslide_reads += ss.openslide_reads;
			slide_close(t->sl[i]);
		}
	for (int k = 0; k < 2; k++) {
		if (t->msgv[k])
			for (size_t i = 0; i < t->batch; i++)
				free(t->msgv[k][i]);
		free(t->msgv[k]);
		free(t->sts[k]);
		free(t->bufs[k]);
	}
	free(t->sl);
	free(t->c);
	annot_free(t->an);
	tissue_mask_free(&t->tm);
	bag_header_free(&t->h);
}

int wsitile_run(const char *path, const char *out, const struct wsitile_opts *o, struct wsitile_result *r,
                struct err *e)
{
	memset(r, 0, sizeof *r);
	double t0 = progress_now();
	if (o->size < 1 || o->size > 8192)
		return err_set(e, ERR_USAGE, "patch size %u: must be 1..8192", o->size);
	struct run t;
	memset(&t, 0, sizeof t);
	t.path = path;
	t.o = o;
	t.r = r;
	t.nthreads = 1;
#ifdef _OPENMP
	t.nthreads = omp_get_max_threads();
#endif
	bag_header_init(&t.h);
	t.sl = err_calloc(e, (size_t)t.nthreads, sizeof *t.sl);
	if (!t.sl)
		return ERR_NOMEM;
	int rc = open_slide(&t, e);
	if (!rc && o->annotations)
		rc = annot_load(&t.an, o->annotations, e);
	if (!rc)
		rc = find_tissue(&t, e);
	if (!rc)
		rc = lay_grid(&t, e);
	if (!rc)
		rc = sample(&t, e);
	r->kept = t.n;
	if (!rc)
		rc = label_patches(&t, e);
	if (!rc && o->thumbnail)
		rc = write_thumbnail(t.sl[0], o->thumbnail, &t.tm, t.c, t.n, t.patch0, e);
	if (!rc)
		rc = make_header(&t, e);
	if (!rc)
		rc = bag_writer_open(&t.w, out, &t.h, o->zlevel, 0, e);
	if (!rc)
		rc = open_pipeline(&t, e);
	if (!rc)
		rc = stream_patches(&t, e);
	if (!rc && t.n > 0 && r->written == 0)
		rc = err_set(e, ERR_FORMAT, "%s: every one of the %zu patches to write was lost to tiles that "
		             "cannot be read: the slide is damaged (nothing written)", path, t.n);
	if (!rc) {
		rc = bag_writer_close(t.w, e);
		t.w = NULL;
	}
	close_run(&t);
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
