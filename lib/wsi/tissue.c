/* tissue.c - see tissue.h */
#include "tissue.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/afile.h"

void tissue_params_default(struct tissue_params *p)
{
	p->seg_level = -1;
	p->sthresh = 8;
	p->mthresh = 7;
	p->close = 4;
	p->use_otsu = 0;
	p->a_t = 100;
	p->a_h = 16;
	p->max_n_holes = 8;
	p->ref_patch = 512;
}

const char *tissue_preset_names(void)
{
	return "default|tcga|bwh_biopsy|bwh_resection";
}

int tissue_preset(struct tissue_params *p, const char *name, struct err *e)
{
	/* seg_level, sthresh, mthresh, close, use_otsu, a_t, a_h, max_n_holes */
	static const struct {
		const char *name;
		int sthresh, mthresh, close, otsu;
		double a_t, a_h;
		int holes;
	} T[] = {
		{"default", 8, 7, 4, 0, 100, 16, 8},
		{"tcga", 8, 7, 4, 0, 16, 4, 8},
		{"bwh_biopsy", 15, 11, 2, 0, 1, 1, 2},
		{"bwh_resection", 15, 11, 4, 0, 100, 16, 8},
	};
	for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
		if (!strcmp(name, T[i].name)) {
			tissue_params_default(p);
			p->sthresh = T[i].sthresh;
			p->mthresh = T[i].mthresh;
			p->close = T[i].close;
			p->use_otsu = T[i].otsu;
			p->a_t = T[i].a_t;
			p->a_h = T[i].a_h;
			p->max_n_holes = T[i].holes;
			return 0;
		}
	return err_set(e, ERR_USAGE, "unknown preset '%s': expected one of %s", name, tissue_preset_names());
}

void tissue_mask_free(struct tissue_mask *m)
{
	if (!m)
		return;
	free(m->m);
	free(m->rgb);
	free(m->integral);
	memset(m, 0, sizeof *m);
}

/* OpenCV's 8-bit HSV saturation: 255 * (max - min) / max, rounded */
static void saturation(const uint8_t *rgb, size_t n, uint8_t *s)
{
	for (size_t i = 0; i < n; i++) {
		int r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
		int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
		int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
		s[i] = mx ? (uint8_t)((255 * (mx - mn) + mx / 2) / mx) : 0;
	}
}

/* median of a k x k window, borders replicated (cv2.medianBlur) */
static void median_blur(const uint8_t *in, uint32_t w, uint32_t h, int k, uint8_t *out)
{
	int r = k / 2, half = k * k / 2;
	for (uint32_t y = 0; y < h; y++) {
		int hist[256];
		memset(hist, 0, sizeof hist);
		/* window at x = 0 */
		for (int dy = -r; dy <= r; dy++) {
			long yy = (long)y + dy;
			yy = yy < 0 ? 0 : yy >= (long)h ? (long)h - 1 : yy;
			for (int dx = -r; dx <= r; dx++) {
				long xx = dx < 0 ? 0 : dx >= (long)w ? (long)w - 1 : dx;
				hist[in[(size_t)yy * w + (size_t)xx]]++;
			}
		}
		for (uint32_t x = 0;; x++) {
			int c = 0, v = 0;
			for (; v < 256; v++) {
				c += hist[v];
				if (c > half)
					break;
			}
			out[(size_t)y * w + x] = (uint8_t)v;
			if (x + 1 >= w)
				break;
			long xo = (long)x - r, xi = (long)x + 1 + r;
			xo = xo < 0 ? 0 : xo;
			xi = xi >= (long)w ? (long)w - 1 : xi;
			for (int dy = -r; dy <= r; dy++) {
				long yy = (long)y + dy;
				yy = yy < 0 ? 0 : yy >= (long)h ? (long)h - 1 : yy;
				hist[in[(size_t)yy * w + (size_t)xo]]--;
				hist[in[(size_t)yy * w + (size_t)xi]]++;
			}
		}
	}
}

static int otsu(const uint8_t *v, size_t n)
{
	double hist[256] = {0};
	for (size_t i = 0; i < n; i++)
		hist[v[i]]++;
	double sum = 0;
	for (int i = 0; i < 256; i++)
		sum += i * hist[i];
	double wb = 0, sb = 0, best = -1;
	int t = 0;
	for (int i = 0; i < 256; i++) {
		wb += hist[i];
		if (wb == 0)
			continue;
		double wf = (double)n - wb;
		if (wf == 0)
			break;
		sb += i * hist[i];
		double mb = sb / wb, mf = (sum - sb) / wf;
		double between = wb * wf * (mb - mf) * (mb - mf);
		if (between > best) {
			best = between;
			t = i;
		}
	}
	return t;
}

/* binary dilation (grow=1) or erosion (grow=0) with a k x k square whose
 * anchor is at k/2 (OpenCV); outside the image counts as background for
 * dilation and as foreground for erosion */
static void morph(uint8_t *m, uint32_t w, uint32_t h, int k, int grow, uint8_t *tmp)
{
	/* the erosion uses the reflected window, so that a closing with an
	 * even side does not shift the mask (OpenCV's shifts it one pixel) */
	int a = k / 2, lo = grow ? -a : -(k - 1 - a), hi = grow ? k - 1 - a : a;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			int v = grow ? 0 : 1;
			for (int d = lo; d <= hi; d++) {
				long xx = (long)x + d;
				int p = xx < 0 || xx >= (long)w ? !grow : m[(size_t)y * w + (size_t)xx];
				if (grow ? p : !p) {
					v = grow;
					break;
				}
			}
			tmp[(size_t)y * w + x] = (uint8_t)v;
		}
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			int v = grow ? 0 : 1;
			for (int d = lo; d <= hi; d++) {
				long yy = (long)y + d;
				int p = yy < 0 || yy >= (long)h ? !grow : tmp[(size_t)yy * w + x];
				if (grow ? p : !p) {
					v = grow;
					break;
				}
			}
			m[(size_t)y * w + x] = (uint8_t)v;
		}
}

/* Labels the components of pixels equal to val (8- or 4-connected);
 * lab[i] = 1.. or 0; returns the count, or -1 out of memory. */
static int32_t label(const uint8_t *m, uint32_t w, uint32_t h, uint8_t val, int conn8, int32_t *lab,
                     uint32_t *stack)
{
	size_t n = (size_t)w * h;
	for (size_t i = 0; i < n; i++)
		lab[i] = 0;
	int32_t nl = 0;
	for (size_t i = 0; i < n; i++) {
		if (m[i] != val || lab[i])
			continue;
		nl++;
		size_t sp = 0;
		stack[sp++] = (uint32_t)i;
		lab[i] = nl;
		while (sp) {
			uint32_t p = stack[--sp];
			long px = (long)(p % w), py = (long)(p / w);
			for (int dy = -1; dy <= 1; dy++)
				for (int dx = -1; dx <= 1; dx++) {
					if ((!dx && !dy) || (!conn8 && dx && dy))
						continue;
					long qx = px + dx, qy = py + dy;
					if (qx < 0 || qy < 0 || qx >= (long)w || qy >= (long)h)
						continue;
					size_t q = (size_t)qy * w + (size_t)qx;
					if (m[q] == val && !lab[q]) {
						lab[q] = nl;
						stack[sp++] = (uint32_t)q;
					}
				}
		}
	}
	return nl;
}

struct hole {
	int32_t id, owner;
	uint64_t area;
};

static int cmp_hole(const void *a, const void *b)
{
	const struct hole *x = a, *y = b;
	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	return x->area > y->area ? -1 : x->area < y->area ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* The binary mask before filtering: saturation, median blur, threshold
 * (sthresh or Otsu's), closing; sat and med are scratch of n bytes.
 * Returns the threshold used. */
static int threshold_mask(const uint8_t *rgb, uint32_t w, uint32_t h, const struct tissue_params *p,
                          uint8_t *sat, uint8_t *med, uint8_t *m)
{
	size_t n = (size_t)w * h;
	saturation(rgb, n, sat);
	median_blur(sat, w, h, p->mthresh, med);
	int thr = p->use_otsu ? otsu(med, n) : p->sthresh;
	for (size_t i = 0; i < n; i++)
		m[i] = med[i] > thr;
	if (p->close > 0) {
		morph(m, w, h, p->close, 1, sat);
		morph(m, w, h, p->close, 0, sat);
	}
	return thr;
}

/* Each hole's owner (howner[nh + 1], zeroed): -1 for a background region
 * touching the border (not a hole) and for label 0, else the tissue
 * component of the pixel left of its first pixel in raster order (always
 * tissue, and the enclosing one). */
static void hole_owners(const int32_t *lab, const int32_t *hlab, uint32_t w, uint32_t h, int32_t *howner)
{
	for (uint32_t x = 0; x < w; x++) {
		howner[hlab[x]] = -1;
		howner[hlab[(size_t)(h - 1) * w + x]] = -1;
	}
	for (uint32_t y = 0; y < h; y++) {
		howner[hlab[(size_t)y * w]] = -1;
		howner[hlab[(size_t)y * w + w - 1]] = -1;
	}
	howner[0] = -1;
	for (size_t i = 0; i < (size_t)w * h; i++) {
		int32_t hid = hlab[i];
		if (hid && !howner[hid] && i % w)
			howner[hid] = lab[i - 1] ? lab[i - 1] : -1;
	}
}

/* CLAM's filter on the labelled mask: tissue components (8-connected)
 * larger than a_t reference patches, and per kept component its
 * max_n_holes largest holes (4-connected background not touching the
 * border) larger than a_h; smaller holes are filled.  Rewrites m; the
 * counts go to out. */
static int filter_regions(uint8_t *m, uint32_t w, uint32_t h, double ds, const struct tissue_params *p,
                          const int32_t *lab, int32_t nc, const int32_t *hlab, int32_t nh,
                          struct tissue_mask *out, struct err *e)
{
	size_t n = (size_t)w * h;
	uint64_t *carea = calloc((size_t)nc + 1, sizeof *carea), *harea = calloc((size_t)nh + 1, sizeof *harea);
	int32_t *howner = calloc((size_t)nh + 1, sizeof *howner);
	uint8_t *keepc = calloc((size_t)nc + 1, 1), *keeph = calloc((size_t)nh + 1, 1);
	struct hole *hl = calloc((size_t)nh + 1, sizeof *hl);
	int rc = 0;
	if (!carea || !harea || !howner || !keepc || !keeph || !hl) {
		rc = err_set(e, ERR_NOMEM, "out of memory segmenting %ux%u pixels", w, h);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (lab[i])
			carea[lab[i]]++;
		else
			harea[hlab[i]]++;
	}
	hole_owners(lab, hlab, w, h, howner);
	double ref = (double)p->ref_patch * p->ref_patch / (ds * ds);
	double min_t = p->a_t * ref, min_h = p->a_h * ref;
	for (int32_t c = 1; c <= nc; c++)
		out->components += keepc[c] = (double)carea[c] > min_t;
	int nhl = 0;
	for (int32_t k = 1; k <= nh; k++)
		if (howner[k] > 0 && keepc[howner[k]])
			hl[nhl++] = (struct hole){k, howner[k], harea[k]};
	qsort(hl, (size_t)nhl, sizeof *hl, cmp_hole);
	for (int i = 0, rank = 0; i < nhl; i++) {
		rank = i > 0 && hl[i].owner == hl[i - 1].owner ? rank + 1 : 0;
		if (rank < p->max_n_holes && (double)hl[i].area > min_h) {
			keeph[hl[i].id] = 1;
			out->holes++;
		}
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t v;
		if (lab[i])
			v = keepc[lab[i]];
		else if (howner[hlab[i]] > 0 && keepc[howner[hlab[i]]] && !keeph[hlab[i]])
			v = 1; /* a small hole, filled */
		else
			v = 0;
		m[i] = v;
		out->tissue_px += v;
	}
out:
	free(carea);
	free(harea);
	free(howner);
	free(keepc);
	free(keeph);
	free(hl);
	return rc;
}

/* integ[(h+1) x (w+1)]: the summed-area table of m */
static void integral_table(const uint8_t *m, uint32_t w, uint32_t h, uint32_t *integ)
{
	for (uint32_t x = 0; x <= w; x++)
		integ[x] = 0;
	for (uint32_t y = 0; y < h; y++) {
		uint32_t row = 0;
		integ[(size_t)(y + 1) * (w + 1)] = 0;
		for (uint32_t x = 0; x < w; x++) {
			row += m[(size_t)y * w + x];
			integ[(size_t)(y + 1) * (w + 1) + x + 1] = integ[(size_t)y * (w + 1) + x + 1] + row;
		}
	}
}

int tissue_segment_rgb(uint8_t *rgb, uint32_t w, uint32_t h, double ds, const struct tissue_params *p,
                       struct tissue_mask *out, struct err *e)
{
	memset(out, 0, sizeof *out);
	out->rgb = rgb;
	out->w = w;
	out->h = h;
	out->ds = ds;
	out->level = -1;
	if (p->mthresh < 1 || p->mthresh % 2 == 0 || p->mthresh > 255)
		return err_set(e, ERR_USAGE, "mthresh %d: the median blur side must be odd, 1..255", p->mthresh);
	if (p->close < 0 || p->close > 255 || p->sthresh < 0 || p->sthresh > 255 || p->max_n_holes < 0 ||
	    p->a_t < 0 || p->a_h < 0 || p->ref_patch < 1)
		return err_set(e, ERR_USAGE, "segmentation parameters out of range (close 0..255, sthresh 0..255, "
		                             "a_t, a_h, max_n_holes >= 0)");
	size_t n = (size_t)w * h;
	uint8_t *sat = calloc(n, 1), *med = malloc(n), *m = malloc(n);
	int32_t *lab = malloc(n * sizeof *lab), *hlab = malloc(n * sizeof *hlab);
	uint32_t *stack = malloc(n * sizeof *stack);
	uint32_t *integ = malloc((size_t)(w + 1) * (h + 1) * sizeof *integ);
	int rc = 0;
	if (!sat || !med || !m || !lab || !hlab || !stack || !integ) {
		rc = err_set(e, ERR_NOMEM, "out of memory segmenting %ux%u pixels", w, h);
	} else {
		out->threshold = threshold_mask(rgb, w, h, p, sat, med, m);
		int32_t nc = label(m, w, h, 1, 1, lab, stack);
		int32_t nh = label(m, w, h, 0, 0, hlab, stack);
		rc = filter_regions(m, w, h, ds, p, lab, nc, hlab, nh, out, e);
	}
	if (!rc) {
		integral_table(m, w, h, integ);
		out->m = m;
		out->integral = integ;
		m = NULL;
		integ = NULL;
	}
	free(sat);
	free(med);
	free(m);
	free(lab);
	free(hlab);
	free(stack);
	free(integ);
	return rc;
}

int tissue_segment(struct slide *s, const struct tissue_params *p, struct tissue_mask *out, struct err *e)
{
	memset(out, 0, sizeof *out);
	int L = p->seg_level;
	if (L >= slide_level_count(s))
		return err_set(e, ERR_USAGE, "%s: seg_level %d: the slide has levels 0..%d", slide_path(s), L,
		               slide_level_count(s) - 1);
	if (L < 0) { /* the level closest to 64x (CLAM's get_best_level_for_downsample(64)) */
		L = 0;
		double best = INFINITY;
		for (int k = 0; k < slide_level_count(s); k++) {
			double d = fabs(log(slide_level_downsample(s, k) / 64.0));
			if (d < best - 1e-12) {
				best = d;
				L = k;
			}
		}
	}
	int64_t w, h;
	slide_level_size(s, L, &w, &h);
	if (w <= 0 || h <= 0 || w > SLIDE_REGION_MAX || h > SLIDE_REGION_MAX || w * h > (1 << 26))
		return err_set(e, ERR_LIMIT,
		               "%s: level %d is %lldx%lld pixels, too large to segment\nhint: choose a smaller level with "
		               "--seg-level",
		               slide_path(s), L, (long long)w, (long long)h);
	uint8_t *rgb = err_malloc(e, (size_t)w * (size_t)h * 3);
	if (!rgb)
		return ERR_NOMEM;
	/* read in strips so one bad tile does not lose the whole level */
	const uint32_t strip = 512;
	for (int64_t y = 0; y < h; y += strip) {
		uint32_t sh = (uint32_t)(h - y < strip ? h - y : strip);
		struct err e2 = {0};
		double ds = slide_level_downsample(s, L);
		if (slide_read_region(s, L, 0, llround(y * ds), (uint32_t)w, sh, rgb + (size_t)y * (size_t)w * 3, &e2)) {
			if (e2.code == ERR_NOMEM) {
				free(rgb);
				return err_set(e, ERR_NOMEM, "%s", e2.msg);
			}
			/* unreadable: white, that is no tissue */
			memset(rgb + (size_t)y * (size_t)w * 3, 255, (size_t)sh * (size_t)w * 3);
		}
	}
	int rc = tissue_segment_rgb(rgb, (uint32_t)w, (uint32_t)h, slide_level_downsample(s, L), p, out, e);
	out->level = L;
	return rc;
}

static double area_upto(const struct tissue_mask *m, double X, double Y)
{
	if (X <= 0 || Y <= 0)
		return 0;
	if (X > m->w)
		X = m->w;
	if (Y > m->h)
		Y = m->h;
	uint32_t ix = (uint32_t)X, iy = (uint32_t)Y;
	double fx = X - ix, fy = Y - iy;
	size_t W = m->w + 1;
	double a = m->integral[(size_t)iy * W + ix];
	if (fx > 0 && ix < m->w)
		a += fx * (double)(m->integral[(size_t)iy * W + ix + 1] - m->integral[(size_t)iy * W + ix]);
	if (fy > 0 && iy < m->h)
		a += fy * (double)(m->integral[(size_t)(iy + 1) * W + ix] - m->integral[(size_t)iy * W + ix]);
	if (fx > 0 && fy > 0 && ix < m->w && iy < m->h)
		a += fx * fy * m->m[(size_t)iy * m->w + ix];
	return a;
}

double tissue_fraction(const struct tissue_mask *m, double x, double y, double size)
{
	if (!m->m || size <= 0)
		return 0;
	double x0 = x / m->ds, y0 = y / m->ds, x1 = (x + size) / m->ds, y1 = (y + size) / m->ds;
	double a = area_upto(m, x1, y1) - area_upto(m, x0, y1) - area_upto(m, x1, y0) + area_upto(m, x0, y0);
	double f = a / ((x1 - x0) * (y1 - y0));
	return f < 0 ? 0 : f > 1 ? 1 : f;
}

double tissue_area_level0(const struct tissue_mask *m)
{
	return (double)m->tissue_px * m->ds * m->ds;
}

/* ---- contours: crack following ---- */

/* directed boundary edges with tissue on the left (y down): from vertex
 * (x, y) in direction d: 0 +x, 1 +y, 2 -x, 3 -y */
static const int DX[4] = {1, 0, -1, 0}, DY[4] = {0, 1, 0, -1};

static inline int px(const struct tissue_mask *m, long x, long y)
{
	return x >= 0 && y >= 0 && x < (long)m->w && y < (long)m->h && m->m[(size_t)y * m->w + (size_t)x];
}

/* Is there a boundary edge leaving vertex (x, y) in direction d?  The pixel
 * on its left must be tissue and the one on its right background. */
static int edge_at(const struct tissue_mask *m, long x, long y, int d)
{
	long lx, ly, rx, ry;
	switch (d) {
	case 0: lx = x, ly = y - 1, rx = x, ry = y; break;           /* +x: left is above */
	case 1: lx = x, ly = y, rx = x - 1, ry = y; break;           /* +y: left is right-hand pixel */
	case 2: lx = x - 1, ly = y, rx = x - 1, ry = y - 1; break;   /* -x: left is below */
	default: lx = x - 1, ly = y - 1, rx = x, ry = y - 1; break;  /* -y: left is the left pixel */
	}
	return px(m, lx, ly) && !px(m, rx, ry);
}

/* Follows one boundary loop from vertex (x, y) in direction d0 into
 * the arrays vx, vy (capacity cap), marking its edges in used; returns the vertex
 * count, or -1 when out of memory. */
static long trace_loop(const struct tissue_mask *m, uint8_t *used, size_t W, long x, long y, int d0,
                       long **vx, long **vy, size_t *cap)
{
	size_t nv = 0;
	long cx = x, cy = y;
	int d = d0;
	for (;;) {
		used[(size_t)cy * W + (size_t)cx] |= (uint8_t)(1 << d);
		if (nv + 1 >= *cap) {
			size_t nc = *cap ? *cap * 2 : 1024;
			long *a = realloc(*vx, nc * sizeof **vx);
			if (a)
				*vx = a;
			long *b = realloc(*vy, nc * sizeof **vy);
			if (b)
				*vy = b;
			if (!a || !b)
				return -1;
			*cap = nc;
		}
		(*vx)[nv] = cx;
		(*vy)[nv] = cy;
		nv++;
		cx += DX[d];
		cy += DY[d];
		/* next: right turn first (8-connected tissue), then straight, then left */
		int nd = -1;
		const int order[3] = {(d + 1) & 3, d, (d + 3) & 3};
		for (int k = 0; k < 3; k++)
			if (edge_at(m, cx, cy, order[k])) {
				nd = order[k];
				break;
			}
		if (nd < 0 || (cx == x && cy == y && nd == d0))
			return (long)nv;
		d = nd;
	}
}

/* drops the vertices where the direction does not change; returns the
 * count left */
static size_t simplify(long *vx, long *vy, size_t nv)
{
	size_t k = 0;
	for (size_t i = 0; i < nv; i++) {
		size_t pi = (i + nv - 1) % nv, ni = (i + 1) % nv;
		long ax = vx[i] - vx[pi], ay = vy[i] - vy[pi], bx = vx[ni] - vx[i], by = vy[ni] - vy[i];
		if (ax * by - ay * bx != 0) {
			vx[k] = vx[i];
			vy[k] = vy[i];
			k++;
		}
	}
	return k;
}

/* appends the ring vx/vy[0..k) to c, with its signed area (outer rings
 * positive) and bounding box */
static int add_ring(struct tissue_contours *c, size_t *vcap, size_t *rcap, const long *vx,
                    const long *vy, size_t k)
{
	if (c->nv + k > *vcap) {
		size_t nc = (c->nv + k) * 2;
		long *a = realloc(c->x, nc * sizeof *c->x);
		if (a)
			c->x = a;
		long *b = realloc(c->y, nc * sizeof *c->y);
		if (b)
			c->y = b;
		if (!a || !b)
			return ERR_NOMEM;
		*vcap = nc;
	}
	if (c->nrings == *rcap) {
		size_t nc = *rcap ? *rcap * 2 : 64;
		void *q = realloc(c->rings, nc * sizeof *c->rings);
		if (!q)
			return ERR_NOMEM;
		c->rings = q;
		*rcap = nc;
	}
	struct tissue_ring *rg = &c->rings[c->nrings++];
	double ar = 0;
	rg->start = c->nv;
	rg->n = k;
	rg->minx = rg->miny = LONG_MAX;
	rg->maxx = rg->maxy = -1;
	for (size_t i = 0; i < k; i++) {
		size_t j = (i + 1) % k;
		ar += (double)vx[i] * vy[j] - (double)vx[j] * vy[i];
		c->x[c->nv + i] = vx[i];
		c->y[c->nv + i] = vy[i];
		rg->minx = vx[i] < rg->minx ? vx[i] : rg->minx;
		rg->miny = vy[i] < rg->miny ? vy[i] : rg->miny;
		rg->maxx = vx[i] > rg->maxx ? vx[i] : rg->maxx;
		rg->maxy = vy[i] > rg->maxy ? vy[i] : rg->maxy;
	}
	/* with y down and tissue on the left of every edge, the shoelace sum
	 * of an outer ring is negative and a hole's positive: flip it */
	rg->area = -ar / 2;
	c->nv += k;
	return 0;
}

static int box_in(const struct tissue_ring *in, const struct tissue_ring *out)
{
	return in->minx >= out->minx && in->maxx <= out->maxx && in->miny >= out->miny &&
	       in->maxy <= out->maxy;
}

/* each hole's owner: the smallest outer ring whose box holds its box (the
 * first of equal ones) */
static void assign_owners(struct tissue_contours *c)
{
	for (size_t j = 0; j < c->nrings; j++) {
		struct tissue_ring *h = &c->rings[j];
		h->owner = h->area > 0 ? (long)j : -1;
		for (size_t o = 0; h->area < 0 && o < c->nrings; o++)
			if (c->rings[o].area > 0 && box_in(h, &c->rings[o]) &&
			    (h->owner < 0 || c->rings[o].area < c->rings[h->owner].area))
				h->owner = (long)o;
	}
}

void tissue_contours_free(struct tissue_contours *c)
{
	if (!c)
		return;
	free(c->rings);
	free(c->x);
	free(c->y);
	memset(c, 0, sizeof *c);
}

int tissue_trace(const struct tissue_mask *m, struct tissue_contours *c, struct err *e)
{
	memset(c, 0, sizeof *c);
	size_t W = (size_t)m->w + 1, H = (size_t)m->h + 1;
	uint8_t *used = calloc(W * H, 1); /* bit d: edge from this vertex in direction d traced */
	long *vx = NULL, *vy = NULL;
	size_t cap = 0, vcap = 0, rcap = 0;
	int rc = used ? 0 : ERR_NOMEM;
	/* loops in raster order of their first edge: a hole comes after its
	 * outer ring */
	for (size_t y = 0; y < H && !rc; y++)
		for (size_t x = 0; x < W && !rc; x++)
			for (int d0 = 0; d0 < 4 && !rc; d0++) {
				if ((used[y * W + x] >> d0) & 1 || !edge_at(m, (long)x, (long)y, d0))
					continue;
				long nv = trace_loop(m, used, W, (long)x, (long)y, d0, &vx, &vy, &cap);
				if (nv < 0) {
					rc = ERR_NOMEM;
					break;
				}
				size_t k = simplify(vx, vy, (size_t)nv);
				if (k >= 3)
					rc = add_ring(c, &vcap, &rcap, vx, vy, k);
			}
	free(used);
	free(vx);
	free(vy);
	if (rc) {
		tissue_contours_free(c);
		return err_set(e, ERR_NOMEM, "out of memory tracing contours");
	}
	assign_owners(c);
	return 0;
}

/* ring r of c as a GeoJSON ring in level-0 coordinates, closed on its
 * first point */
static void write_ring(FILE *f, const struct tissue_contours *c, size_t r, double ds)
{
	const struct tissue_ring *rg = &c->rings[r];
	fputc('[', f);
	for (size_t v = 0; v <= rg->n; v++) {
		size_t q = rg->start + v % rg->n;
		fprintf(f, "%s[%.10g,%.10g]", v ? "," : "", c->x[q] * ds, c->y[q] * ds);
	}
	fputc(']', f);
}

int tissue_write_geojson(const struct tissue_mask *m, const char *path, struct err *e)
{
	struct tissue_contours c;
	int rc = tissue_trace(m, &c, e);
	if (rc)
		return rc;
	struct afile af;
	if ((rc = afile_open(&af, path, e))) {
		tissue_contours_free(&c);
		return rc;
	}
	FILE *f = af.fp;
	fprintf(f, "{\"type\":\"FeatureCollection\",\"features\":[");
	/* one Feature per outer ring, its holes after it */
	int first = 1;
	for (size_t i = 0; i < c.nrings; i++) {
		if (c.rings[i].area <= 0)
			continue;
		fprintf(f, "%s\n{\"type\":\"Feature\",\"properties\":{\"objectType\":\"annotation\",\"classification\":"
		           "{\"name\":\"Tissue\",\"color\":[0,160,0]}},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[",
		        first ? "" : ",");
		first = 0;
		write_ring(f, &c, i, m->ds);
		for (size_t j = 0; j < c.nrings; j++)
			if (c.rings[j].area < 0 && c.rings[j].owner == (long)i) {
				fputc(',', f);
				write_ring(f, &c, j, m->ds);
			}
		fprintf(f, "]}}");
	}
	fprintf(f, "\n]}\n");
	tissue_contours_free(&c);
	if (ferror(f)) {
		afile_abort(&af);
		return err_set(e, ERR_IO, "cannot write '%s'", path);
	}
	return afile_commit(&af, e);
}
