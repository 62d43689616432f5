/* lesion.c - see lesion.h and lib/wsi/FROC.md */
#include "lesion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lesion_params_default(struct lesion_params *p)
{
	p->level = 5;
	p->mpp = 0.243;
	p->tolerance_um = 75;
	p->itc_um = 275;
}

int lesion_params_check(const struct lesion_params *p, struct err *e)
{
	if (p->level < 0 || p->level > LESION_LEVEL_MAX)
		return err_set(e, ERR_USAGE, "evaluation level %d: expected 0..%d", p->level, LESION_LEVEL_MAX);
	if (!(p->mpp > 0) || !isfinite(p->mpp) || p->mpp > 1000)
		return err_set(e, ERR_USAGE, "µm per level-0 pixel %g: expected a positive number up to 1000", p->mpp);
	if (!(p->tolerance_um >= 0) || !isfinite(p->tolerance_um) || p->tolerance_um > 1e6)
		return err_set(e, ERR_USAGE, "tolerance %g µm: expected 0..1e6", p->tolerance_um);
	if (!(p->itc_um >= 0) || !isfinite(p->itc_um) || p->itc_um > 1e6)
		return err_set(e, ERR_USAGE, "ITC threshold %g µm: expected 0..1e6", p->itc_um);
	return 0;
}

void lesion_map_free(struct lesion_map *m)
{
	if (!m)
		return;
	free(m->label);
	free(m->les);
	free(m);
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int lesion_at(const struct lesion_map *m, int64_t x, int64_t y)
{
	if (!m || !m->label)
		return 0;
	int64_t ds = (int64_t)1 << m->p.level;
	int64_t r = floor_div(y, ds) - m->oy, c = floor_div(x, ds) - m->ox;
	if (r < 0 || c < 0 || r >= (int64_t)m->h || c >= (int64_t)m->w)
		return 0;
	return m->label[(size_t)r * m->w + (size_t)c];
}

/* ---- the steps, on a w x h grid ---- */

/* Sets keep[] to 1 where the exact Euclidean distance to the nearest tumour
 * pixel is below r (Meijster, Roerdink & Hesselink 2000: per column the
 * vertical distance g, then per row the lower envelope of the parabolas
 * (x - i)^2 + g(i)^2, in exact integers); the comparison is sqrt(d2) < r in
 * double, as scipy's distance_transform_edt followed by `< r` does. */
static int dilate(const uint8_t *tum, uint32_t w, uint32_t h, double r, uint8_t *keep, struct err *e)
{
	const int64_t INF = (int64_t)w + h + 1;
	int32_t *g = malloc(sizeof *g * (size_t)w * h);
	int64_t *s = malloc(sizeof *s * w), *t = malloc(sizeof *t * w);
	if (!g || !s || !t) {
		free(g);
		free(s);
		free(t);
		return err_set(e, ERR_NOMEM, "out of memory for an evaluation mask of %ux%u pixels", w, h);
	}
	for (uint32_t x = 0; x < w; x++) {
		g[x] = tum[x] ? 0 : (int32_t)INF;
		for (uint32_t y = 1; y < h; y++) {
			size_t i = (size_t)y * w + x;
			g[i] = tum[i] ? 0 : (g[i - w] >= INF ? (int32_t)INF : g[i - w] + 1);
		}
		for (uint32_t y = h - 1; y-- > 0;) {
			size_t i = (size_t)y * w + x;
			if (g[i + w] < g[i])
				g[i] = g[i + w] + 1;
		}
	}
	for (uint32_t y = 0; y < h; y++) {
		const int32_t *gr = g + (size_t)y * w;
#define F(x, i) (((int64_t)(x) - (i)) * ((int64_t)(x) - (i)) + (int64_t)gr[i] * gr[i])
		int64_t q = 0;
		s[0] = 0;
		t[0] = 0;
		for (int64_t u = 1; u < w; u++) {
			while (q >= 0 && F(t[q], s[q]) > F(t[q], u))
				q--;
			if (q < 0) {
				q = 0;
				s[0] = u;
			} else {
				int64_t i = s[q];
				int64_t num = u * u - i * i + (int64_t)gr[u] * gr[u] - (int64_t)gr[i] * gr[i];
				int64_t wv = 1 + floor_div(num, 2 * (u - i));
				if (wv < w) {
					q++;
					s[q] = u;
					t[q] = wv;
				}
			}
		}
		for (int64_t u = w - 1; u >= 0; u--) {
			int64_t d2 = F(u, s[q]);
			keep[(size_t)y * w + (size_t)u] = sqrt((double)d2) < r;
			if (u == t[q])
				q--;
		}
#undef F
	}
	free(g);
	free(s);
	free(t);
	return 0;
}

/* Background pixels that no 4-connected path of background joins to the
 * grid's border become foreground (scipy's binary_fill_holes). */
static int fill_holes(uint8_t *fg, uint32_t w, uint32_t h, struct err *e)
{
	size_t n = (size_t)w * h;
	uint8_t *out = calloc(n, 1);      /* 1: background reached from the border */
	size_t *stack = malloc(sizeof *stack * (n ? n : 1));
	if (!out || !stack) {
		free(out);
		free(stack);
		return err_set(e, ERR_NOMEM, "out of memory for an evaluation mask of %ux%u pixels", w, h);
	}
	size_t sp = 0;
#define PUSH(i)                                   \
	do {                                      \
		size_t i_ = (i);                  \
		if (!fg[i_] && !out[i_]) {        \
			out[i_] = 1;              \
			stack[sp++] = i_;         \
		}                                 \
	} while (0)
	for (uint32_t x = 0; x < w; x++) {
		PUSH(x);
		PUSH((size_t)(h - 1) * w + x);
	}
	for (uint32_t y = 0; y < h; y++) {
		PUSH((size_t)y * w);
		PUSH((size_t)y * w + w - 1);
	}
	while (sp) {
		size_t i = stack[--sp];
		size_t y = i / w, x = i % w;
		if (x > 0)
			PUSH(i - 1);
		if (x + 1 < w)
			PUSH(i + 1);
		if (y > 0)
			PUSH(i - w);
		if (y + 1 < h)
			PUSH(i + w);
	}
#undef PUSH
	for (size_t i = 0; i < n; i++)
		if (!out[i])
			fg[i] = 1;
	free(out);
	free(stack);
	return 0;
}

/* 8-connected labelling in raster order, then each region's moments. */
/* labels the 8-connected regions of fg in raster order of their first
 * pixel (m->label, m->les with label and first pixel, m->n) */
static int flood_regions(struct lesion_map *m, const uint8_t *fg, struct err *e)
{
	uint32_t w = m->w, h = m->h;
	size_t n = (size_t)w * h, cap = 0;
	size_t *stack = malloc(sizeof *stack * (n ? n : 1));
	if (!stack)
		return err_set(e, ERR_NOMEM, "out of memory for an evaluation mask of %ux%u pixels", w, h);
	int nl = 0;
	for (size_t i0 = 0; i0 < n; i0++) {
		if (!fg[i0] || m->label[i0])
			continue;
		if ((size_t)nl == cap) {
			cap = cap ? 2 * cap : 16;
			struct lesion *q = realloc(m->les, cap * sizeof *q);
			if (!q) {
				free(stack);
				return err_set(e, ERR_NOMEM, "out of memory");
			}
			m->les = q;
		}
		struct lesion *L = &m->les[nl];
		memset(L, 0, sizeof *L);
		L->label = ++nl;
		L->first_r = (int64_t)(i0 / w) + m->oy;
		L->first_c = (int64_t)(i0 % w) + m->ox;
		size_t sp = 0;
		m->label[i0] = nl;
		stack[sp++] = i0;
		while (sp) {
			size_t i = stack[--sp];
			int64_t y = (int64_t)(i / w), x = (int64_t)(i % w);
			for (int dy = -1; dy <= 1; dy++)
				for (int dx = -1; dx <= 1; dx++) {
					int64_t yy = y + dy, xx = x + dx;
					if ((!dx && !dy) || yy < 0 || xx < 0 || yy >= h || xx >= w)
						continue;
					size_t j = (size_t)yy * w + (size_t)xx;
					if (fg[j] && !m->label[j]) {
						m->label[j] = nl;
						stack[sp++] = j;
					}
				}
		}
	}
	free(stack);
	m->n = nl;
	return 0;
}

/* per region: area and centroid (acc: count, mean row, mean column), then
 * the central second moments about it (m2: rr, cc, rc), in two passes as
 * scikit-image takes them */
static void region_moments(const struct lesion_map *m, double *acc, double *m2)
{
	uint32_t w = m->w, h = m->h;
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			int32_t k = m->label[(size_t)y * w + x];
			if (!k)
				continue;
			double *a = acc + 3 * (size_t)(k - 1);
			a[0] += 1;
			a[1] += y;
			a[2] += x;
		}
	for (int k = 0; k < m->n; k++) {
		double *a = acc + 3 * (size_t)k;
		a[1] /= a[0];
		a[2] /= a[0];
	}
	for (uint32_t y = 0; y < h; y++)
		for (uint32_t x = 0; x < w; x++) {
			int32_t k = m->label[(size_t)y * w + x];
			if (!k)
				continue;
			const double *a = acc + 3 * (size_t)(k - 1);
			double dr = y - a[1], dc = x - a[2];
			double *b = m2 + 3 * (size_t)(k - 1);
			b[0] += dr * dr;
			b[1] += dc * dc;
			b[2] += dr * dc;
		}
}

static int label_regions(struct lesion_map *m, const uint8_t *fg, struct err *e)
{
	int rc = flood_regions(m, fg, e);
	if (rc || !m->n)
		return rc;
	int nl = m->n;
	double *acc = calloc((size_t)nl * 3, sizeof *acc), *m2 = calloc((size_t)nl * 3, sizeof *m2);
	if (!acc || !m2) {
		free(acc);
		free(m2);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	region_moments(m, acc, m2);
	m->n_itc = 0;
	for (int k = 0; k < nl; k++) {
		const double *a = acc + 3 * (size_t)k, *b = m2 + 3 * (size_t)k;
		struct lesion *L = &m->les[k];
		double vr = b[0] / a[0], vc = b[1] / a[0], cv = b[2] / a[0];
		double l1 = (vr + vc) / 2 + sqrt((vr - vc) * (vr - vc) / 4 + cv * cv);
		L->area = (uint32_t)a[0];
		L->major_axis = 4 * sqrt(l1 > 0 ? l1 : 0);
		L->diameter_um = L->major_axis * m->p.mpp * m->ds;
		L->cy = ((double)m->oy + a[1] + 0.5) * m->ds;
		L->cx = ((double)m->ox + a[2] + 0.5) * m->ds;
		L->itc = L->major_axis < m->itc_px;
		m->n_itc += L->itc;
	}
	free(acc);
	free(m2);
	return 0;
}

static int build(struct lesion_map *m, const uint8_t *tum, struct err *e)
{
	size_t n = (size_t)m->w * m->h;
	uint64_t nt = 0;
	for (size_t i = 0; i < n; i++)
		nt += tum[i] != 0;
	m->tumour_px = nt;
	if (!nt) { /* nothing to dilate: no lesions (FROC.md: empty masks) */
		m->w = m->h = 0;
		return 0;
	}
	uint8_t *fg = malloc(n);
	m->label = calloc(n, sizeof *m->label);
	if (!fg || !m->label) {
		free(fg);
		return err_set(e, ERR_NOMEM, "out of memory for an evaluation mask of %ux%u pixels", m->w, m->h);
	}
	int rc = dilate(tum, m->w, m->h, m->radius, fg, e);
	if (!rc)
		rc = fill_holes(fg, m->w, m->h, e);
	if (!rc)
		rc = label_regions(m, fg, e);
	free(fg);
	return rc;
}

static int map_new(struct lesion_map **mp, const struct lesion_params *p, struct err *e)
{
	*mp = NULL;
	int rc = lesion_params_check(p, e);
	if (rc)
		return rc;
	struct lesion_map *m = err_calloc(e, 1, sizeof *m);
	if (!m)
		return ERR_NOMEM;
	m->p = *p;
	m->ds = ldexp(1.0, p->level);
	/* the challenge's expressions, in its order of operations */
	m->radius = p->tolerance_um / (p->mpp * m->ds * 2);
	m->itc_px = p->itc_um / (p->mpp * m->ds);
	*mp = m;
	return 0;
}

int lesion_map_from_mask(struct lesion_map **mp, const uint8_t *mask, int64_t ox, int64_t oy, uint32_t w,
                         uint32_t h, const struct lesion_params *p, struct err *e)
{
	int rc = map_new(mp, p, e);
	if (rc)
		return rc;
	struct lesion_map *m = *mp;
	if ((uint64_t)w * h > LESION_PIXELS_MAX) {
		lesion_map_free(m);
		*mp = NULL;
		return err_set(e, ERR_LIMIT, "evaluation mask of %ux%u pixels: more than %u", w, h, LESION_PIXELS_MAX);
	}
	m->ox = ox;
	m->oy = oy;
	m->w = w;
	m->h = h;
	if ((rc = build(m, mask, e))) {
		lesion_map_free(m);
		*mp = NULL;
	}
	return rc;
}

int lesion_map_from_annot(struct lesion_map **mp, const struct annot *a, const struct lesion_params *p,
                          struct err *e)
{
	int rc = map_new(mp, p, e);
	if (rc)
		return rc;
	struct lesion_map *m = *mp;
	double x0, y0, x1, y1;
	if (!a || !annot_bounds(a, ANNOT_TUMOUR, &x0, &y0, &x1, &y1) || x1 < 0 || y1 < 0)
		return 0; /* no tumour: no lesions */
	/* every tumour pixel centre lies in [floor(x0/ds) - 1, floor(x1/ds) + 1];
	 * the dilation reaches r further; one more pixel of background keeps
	 * the border clear (what lies outside is neither lesion nor hole) */
	double pad = ceil(m->radius) + 2;
	double c0 = fmax(0, floor(x0 / m->ds) - pad), r0 = fmax(0, floor(y0 / m->ds) - pad);
	double c1 = floor(x1 / m->ds) + pad + 1, r1 = floor(y1 / m->ds) + pad + 1;
	if ((c1 - c0) * (r1 - r0) > LESION_PIXELS_MAX) {
		lesion_map_free(m);
		*mp = NULL;
		return err_set(e, ERR_LIMIT,
		               "tumour annotation spans %.0fx%.0f pixels at level %d: more than %u\n"
		               "hint: evaluate at a coarser level (the challenge's is 5)",
		               c1 - c0, r1 - r0, p->level, LESION_PIXELS_MAX);
	}
	m->ox = (int64_t)c0;
	m->oy = (int64_t)r0;
	m->w = (uint32_t)(c1 - c0);
	m->h = (uint32_t)(r1 - r0);
	uint8_t *tum = malloc((size_t)m->w * m->h);
	if (!tum) {
		rc = err_set(e, ERR_NOMEM, "out of memory for an evaluation mask of %ux%u pixels", m->w, m->h);
		lesion_map_free(m);
		*mp = NULL;
		return rc;
	}
	rc = annot_mask(a, m->ds, m->ox, m->oy, m->w, m->h, tum, e);
	if (!rc)
		rc = build(m, tum, e);
	free(tum);
	if (rc) {
		lesion_map_free(m);
		*mp = NULL;
	}
	return rc;
}
