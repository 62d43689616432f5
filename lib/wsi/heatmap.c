/* heatmap.c - patch scores over a slide thumbnail (PNG) and as GeoJSON. */
#include "heatmap.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/afile.h"
#include "../base/img.h"
#include "../base/jsonout.h"
#include "../data/scoretab.h"
#include "slide.h"

/* ---- the scores table ---- */

void heatmap_scores_free(struct heatmap_scores *s)
{
	if (!s)
		return;
	free(s->p);
	memset(s, 0, sizeof *s);
}

/* bag_id's part of key ("bag_id\tindex") equals bag */
static int key_is(const char *key, const char *bag)
{
	size_t n = strlen(bag);
	return !strncmp(key, bag, n) && key[n] == '\t';
}

/* "no instance rows for bag" with a few of the bags the table has */
static int no_rows(const struct scoretab *t, int inst, const char *path, const char *bag_id, struct err *e)
{
	char list[300] = "";
	size_t nbags = 0, shown = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (t->kind[i] != inst || (i && t->kind[i - 1] == inst && !strcmp(t->key[i], t->key[i - 1])))
			continue;
		const char *k = t->key[i], *tab = strchr(k, '\t');
		int known = 0;
		for (size_t j = 0; j < i && !known; j++)
			known = t->kind[j] == inst && !strncmp(t->key[j], k, (size_t)(tab - k) + 1);
		if (known)
			continue;
		nbags++;
		if (shown++ < 4) {
			size_t l = strlen(list);
			snprintf(list + l, sizeof list - l, "%s%.*s", shown > 1 ? ", " : "", (int)(tab - k), k);
		}
		if (nbags > 4)
			break;
	}
	if (!nbags)
		return err_set(e, ERR_FORMAT, "%s: no instance rows for bag '%s' (the table has no instance rows)",
		               path, bag_id);
	return err_set(e, ERR_FORMAT, "%s: no instance rows for bag '%s' (the table has bags %s%s)", path, bag_id,
	               list, nbags > 4 ? ", ..." : "");
}

int heatmap_read_scores(struct heatmap_scores *s, const char *path, const char *bag_id, const char *score_col,
                        struct err *e)
{
	memset(s, 0, sizeof *s);
	struct scoretab t;
	int rc = scoretab_read_xy(&t, path, "label", score_col, e);
	if (rc)
		return rc;
	if (!t.key) {
		scoretab_free(&t);
		return err_set(e, ERR_FORMAT, "%s: no column 'bag_id' in the header (weno-score writes kind split "
		               "bag_id index x y label student_score teacher_score; formats/scores.md)", path);
	}
	int inst = -1;
	for (int k = 0; k < t.n_kinds; k++)
		if (!strcmp(t.kind_names[k], "instance") || !strcmp(t.kind_names[k], "all"))
			inst = k;
	size_t na = 0;
	s->p = calloc(t.n + 1, sizeof *s->p);
	if (!s->p)
		rc = err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; !rc && i < t.n; i++) {
		if (t.kind[i] != inst || !key_is(t.key[i], bag_id))
			continue;
		const char *ix = strchr(t.key[i], '\t') + 1;
		struct heatmap_patch p = {.index = -1, .label = t.label[i], .raw = t.score[0][i]};
		char *end;
		if (isnan(t.x[i]) || isnan(t.y[i]))
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: x, y NA: an instance row needs its level-0 x and y",
			             path, t.line[i]);
		else if (ix[0] && strcmp(ix, "NA") && (p.index = strtoll(ix, &end, 10), *end || end == ix))
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: index '%s': expected an integer", path, t.line[i], ix);
		if (rc)
			break;
		p.x = (int64_t)t.x[i];
		p.y = (int64_t)t.y[i];
		if (isnan(p.raw))
			na++;
		else
			s->p[s->n++] = p;
	}
	if (!rc && s->n == 0 && na > 0)
		rc = err_set(e, ERR_FORMAT, "%s: bag '%s': every %s is NA (a model without a teacher has no teacher_score)",
		             path, bag_id, score_col);
	if (!rc && s->n == 0)
		rc = no_rows(&t, inst, path, bag_id, e);
	scoretab_free(&t);
	if (rc) {
		heatmap_scores_free(s);
		return rc;
	}
	s->skipped_na = na;
	s->raw_min = INFINITY;
	s->raw_max = -INFINITY;
	for (size_t i = 0; i < s->n; i++) {
		s->raw_min = fmin(s->raw_min, s->p[i].raw);
		s->raw_max = fmax(s->raw_max, s->p[i].raw);
	}
	return 0;
}

void heatmap_normalise(struct heatmap_scores *s, int minmax)
{
	double span = s->raw_max - s->raw_min;
	for (size_t i = 0; i < s->n; i++) {
		double r = s->p[i].raw;
		double v = minmax ? (span > 0 ? (r - s->raw_min) / span : 0.5) : r;
		s->p[i].v = v < 0 ? 0 : v > 1 ? 1 : v;
	}
}

/* ---- colour maps ---- */

/* matplotlib's viridis at 0, 1/8, ..., 1 */
static const uint8_t VIRIDIS[9][3] = {
	{68, 1, 84},    {72, 40, 120},  {62, 73, 137},  {49, 104, 142}, {38, 130, 142},
	{31, 158, 137}, {53, 183, 121}, {110, 206, 88}, {253, 231, 37},
};
static const uint8_t BLUERED[3][3] = {{0, 0, 255}, {255, 255, 255}, {255, 0, 0}};

void heatmap_colour(int cmap, double v, uint8_t rgb[3])
{
	if (!(v >= 0))
		v = 0;
	if (v > 1)
		v = 1;
	const uint8_t(*t)[3] = cmap == HEATMAP_BLUERED ? BLUERED : VIRIDIS;
	int n = cmap == HEATMAP_BLUERED ? 3 : 9;
	double u = v * (n - 1);
	int i = (int)floor(u);
	if (i >= n - 1)
		i = n - 2;
	double a = u - i;
	for (int c = 0; c < 3; c++)
		rgb[c] = (uint8_t)lround(t[i][c] * (1 - a) + t[i + 1][c] * a);
}

/* ---- a 5x7 font for the legend's numbers ---- */

static const char GLYPHS[] = "0123456789.-+e";
static const uint8_t FONT[][7] = {
	{0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
	{0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
	{0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
	{0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
	{0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},
	{0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}, {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},
	{0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}, {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E},
};

static long text_width(const char *t)
{
	return (long)strlen(t) * 6 - 1;
}

static void draw_text(uint8_t *img, uint32_t w, uint32_t h, long x0, long y0, const char *t)
{
	for (; *t; t++, x0 += 6) {
		const char *g = strchr(GLYPHS, *t);
		if (!g || !*t)
			continue;
		const uint8_t *rows = FONT[g - GLYPHS];
		for (int r = 0; r < 7; r++)
			for (int c = 0; c < 5; c++) {
				long x = x0 + c, y = y0 + r;
				if (!((rows[r] >> (4 - c)) & 1) || x < 0 || y < 0 || x >= (long)w || y >= (long)h)
					continue;
				memset(img + ((size_t)y * w + (size_t)x) * 3, 0, 3);
			}
	}
}

static void draw_legend(uint8_t *img, uint32_t w, uint32_t h, uint32_t top, const struct heatmap_scores *s,
                        const struct heatmap_opts *o)
{
	memset(img + (size_t)top * w * 3, 255, (size_t)(h - top) * w * 3);
	long x0 = w >= 40 ? 8 : 0, x1 = w >= 40 ? (long)w - 8 : (long)w; /* bar columns [x0, x1) */
	if (x1 - x0 > 512) {
		long c = (x0 + x1) / 2;
		x0 = c - 256;
		x1 = c + 256;
	}
	for (uint32_t y = top + 4; y < top + 16 && y < h; y++)
		for (long x = x0; x < x1; x++) {
			uint8_t *p = img + ((size_t)y * w + (size_t)x) * 3;
			heatmap_colour(o->cmap, x1 - x0 > 1 ? (double)(x - x0) / (double)(x1 - x0 - 1) : 0.5, p);
		}
	double lo = o->minmax ? s->raw_min : 0, hi = o->minmax ? s->raw_max : 1;
	char t[3][32];
	snprintf(t[0], sizeof t[0], "%.3g", lo);
	snprintf(t[1], sizeof t[1], "%.3g", (lo + hi) / 2);
	snprintf(t[2], sizeof t[2], "%.3g", hi);
	long w0 = text_width(t[0]), w1 = text_width(t[1]), w2 = text_width(t[2]);
	long y = (long)top + 20;
	if (w0 + w2 + 4 > x1 - x0)
		return;
	draw_text(img, w, h, x0, y, t[0]);
	draw_text(img, w, h, x1 - w2, y, t[2]);
	long xm = (x0 + x1) / 2 - w1 / 2;
	if (xm > x0 + w0 + 4 && xm + w1 + 4 < x1 - w2)
		draw_text(img, w, h, xm, y, t[1]);
}

/* ---- the PNG ---- */

static void put_px(uint8_t *img, uint32_t w, uint32_t h, int64_t x, int64_t y, const uint8_t c[3])
{
	if (x < 0 || y < 0 || x >= (int64_t)w || y >= (int64_t)h)
		return;
	memcpy(img + ((size_t)y * w + (size_t)x) * 3, c, 3);
}

/* a red cross, arms of arm pixels and 2 hw + 1 wide, in a white outline
 * one pixel wide */
static void draw_mark(uint8_t *img, uint32_t w, uint32_t h, int64_t cx, int64_t cy, int64_t arm, int64_t hw)
{
	static const uint8_t white[3] = {255, 255, 255}, red[3] = {230, 20, 20};
	for (int64_t t = -arm - 1; t <= arm + 1; t++)
		for (int64_t d = -hw - 1; d <= hw + 1; d++) {
			put_px(img, w, h, cx + t, cy + d, white);
			put_px(img, w, h, cx + d, cy + t, white);
		}
	for (int64_t t = -arm; t <= arm; t++)
		for (int64_t d = -hw; d <= hw; d++) {
			put_px(img, w, h, cx + t, cy + d, red);
			put_px(img, w, h, cx + d, cy + t, red);
		}
}

/* the thumbnail being drawn: tw x th pixels of ds level-0 px each, read
 * from level L (lds level-0 px a pixel, sc level px a thumbnail px) in
 * blocks of B x B thumbnail pixels */
struct thumb {
	struct slide *sl;
	int L;
	double ds, lds, sc;
	int64_t LW, LH;
	uint32_t tw, th, B;
	uint8_t *img, *reg;       /* the picture (tw x ih x 3); a block's region */
	uint32_t *acc;            /* a block's sums: B x B x (r, g, b, count) */
};

/* one block from (ox0, oy0): the level's pixels area-averaged into the
 * thumbnail's; a block that cannot be read is grey, counted in r */
static void thumb_block(struct thumb *t, uint32_t ox0, uint32_t oy0, struct heatmap_result *r)
{
	uint32_t ox1 = ox0 + t->B < t->tw ? ox0 + t->B : t->tw, oy1 = oy0 + t->B < t->th ? oy0 + t->B : t->th;
	uint32_t bw = ox1 - ox0, bh = oy1 - oy0;
	double sc = t->sc;
	int64_t lx0 = (int64_t)floor(ox0 * sc), ly0 = (int64_t)floor(oy0 * sc);
	int64_t lx1 = (int64_t)ceil(ox1 * sc), ly1 = (int64_t)ceil(oy1 * sc);
	lx1 = lx1 > t->LW ? t->LW : lx1;
	ly1 = ly1 > t->LH ? t->LH : ly1;
	memset(t->acc, 0, (size_t)bw * bh * 4 * sizeof *t->acc);
	if (lx1 > lx0 && ly1 > ly0) {
		uint32_t rw = (uint32_t)(lx1 - lx0), rh = (uint32_t)(ly1 - ly0);
		struct err be = {0};
		if (slide_read_region(t->sl, t->L, llround(lx0 * t->lds), llround(ly0 * t->lds), rw, rh, t->reg, &be)) {
			if (!r->bad_blocks++)
				snprintf(r->first_bad, sizeof r->first_bad, "%s", be.msg);
			for (uint32_t y = oy0; y < oy1; y++)
				memset(t->img + ((size_t)y * t->tw + ox0) * 3, 200, (size_t)bw * 3);
			return;
		}
		for (uint32_t y = 0; y < rh; y++) {
			int64_t oy = (int64_t)floor((ly0 + y + 0.5) / sc) - oy0;
			if (oy < 0 || oy >= bh)
				continue;
			const uint8_t *src = t->reg + (size_t)y * rw * 3;
			for (uint32_t x = 0; x < rw; x++) {
				int64_t ox = (int64_t)floor((lx0 + x + 0.5) / sc) - ox0;
				if (ox < 0 || ox >= bw)
					continue;
				uint32_t *a = t->acc + ((size_t)oy * bw + (size_t)ox) * 4;
				a[0] += src[3 * x];
				a[1] += src[3 * x + 1];
				a[2] += src[3 * x + 2];
				a[3]++;
			}
		}
	}
	for (uint32_t y = 0; y < bh; y++)
		for (uint32_t x = 0; x < bw; x++) {
			const uint32_t *a = t->acc + ((size_t)y * bw + x) * 4;
			uint8_t *p = t->img + ((size_t)(oy0 + y) * t->tw + ox0 + x) * 3;
			for (int c = 0; c < 3; c++)
				p[c] = a[3] ? (uint8_t)((a[c] + a[3] / 2) / a[3]) : 255;
		}
}

/* vmap[th][tw]: the highest v of the patches whose square holds each
 * thumbnail pixel's centre (-1 where none does) */
static void score_map(const struct heatmap_scores *s, double patch0, double ds, uint32_t tw, uint32_t th,
                      float *vmap)
{
	for (size_t i = 0; i < (size_t)tw * th; i++)
		vmap[i] = -1;
	for (size_t k = 0; k < s->n; k++) {
		const struct heatmap_patch *p = &s->p[k];
		double px0 = p->x / ds, px1 = (p->x + patch0) / ds, py0 = p->y / ds, py1 = (p->y + patch0) / ds;
		int64_t i0 = (int64_t)ceil(px0 - 0.5), i1 = (int64_t)ceil(px1 - 0.5);
		int64_t j0 = (int64_t)ceil(py0 - 0.5), j1 = (int64_t)ceil(py1 - 0.5);
		if (i1 <= i0) { /* smaller than a pixel: the pixel under its centre */
			i0 = (int64_t)floor((px0 + px1) / 2);
			i1 = i0 + 1;
		}
		if (j1 <= j0) {
			j0 = (int64_t)floor((py0 + py1) / 2);
			j1 = j0 + 1;
		}
		i0 = i0 < 0 ? 0 : i0;
		j0 = j0 < 0 ? 0 : j0;
		i1 = i1 > tw ? tw : i1;
		j1 = j1 > th ? th : j1;
		for (int64_t j = j0; j < j1; j++)
			for (int64_t i = i0; i < i1; i++) {
				float *q = vmap + (size_t)j * tw + (size_t)i;
				if (p->v > *q)
					*q = (float)p->v;
			}
	}
}

/* the colour map over the thumbnail, blended with alpha where a patch is */
static void blend(uint8_t *img, const float *vmap, size_t n, const struct heatmap_opts *o)
{
	double a = o->alpha < 0 ? 0 : o->alpha > 1 ? 1 : o->alpha;
	for (size_t i = 0; i < n; i++) {
		if (vmap[i] < 0)
			continue;
		uint8_t col[3];
		heatmap_colour(o->cmap, vmap[i], col);
		uint8_t *p = img + i * 3;
		for (int c = 0; c < 3; c++)
			p[c] = (uint8_t)lround((1 - a) * p[c] + a * col[c]);
	}
}

/* the thumbnail's size (the slide's long side at most max_side) and the
 * level it is read from */
static int plan_thumb(struct thumb *t, const char *slide_path, uint32_t max_side, struct err *e)
{
	int64_t W0, H0;
	slide_level_size(t->sl, 0, &W0, &H0);
	if (W0 < 1 || H0 < 1)
		return err_set(e, ERR_FORMAT, "%s: level 0 is empty", slide_path);
	int64_t long0 = W0 > H0 ? W0 : H0;
	int64_t T = long0 < (int64_t)max_side ? long0 : (int64_t)max_side;
	t->ds = (double)long0 / (double)T;
	t->tw = (uint32_t)llround((double)W0 / t->ds);
	t->th = (uint32_t)llround((double)H0 / t->ds);
	t->tw = t->tw < 1 ? 1 : t->tw;
	t->th = t->th < 1 ? 1 : t->th;
	t->L = slide_best_level(t->sl, t->ds);
	t->lds = slide_level_downsample(t->sl, t->L);
	t->sc = t->ds / t->lds;
	slide_level_size(t->sl, t->L, &t->LW, &t->LH);
	/* each block reads about (B*sc)^2 level pixels, at most ~2048^2 */
	t->B = t->sc > 0 ? (uint32_t)fmax(1, fmin(256, floor(2048 / t->sc))) : 256;
	return 0;
}

int heatmap_write_png(const char *slide_path, const struct heatmap_scores *s, const struct heatmap_opts *o,
                      const char *png_path, struct heatmap_result *r, struct err *e)
{
	memset(r, 0, sizeof *r);
	if (o->max_side < 1 || o->max_side > HEATMAP_MAX_SIDE)
		return err_set(e, ERR_USAGE, "max side %u: must be 1..%d", o->max_side, HEATMAP_MAX_SIDE);
	if (!(o->patch0 > 0))
		return err_set(e, ERR_USAGE, "patch size %g: must be positive", o->patch0);
	struct thumb t;
	memset(&t, 0, sizeof t);
	int rc = slide_open(&t.sl, slide_path, e);
	if (rc)
		return rc;
	float *vmap = NULL;
	if ((rc = plan_thumb(&t, slide_path, o->max_side, e)))
		goto done;
	uint32_t tw = t.tw, th = t.th, ih = th + (o->legend ? HEATMAP_LEGEND_H : 0);
	size_t rmax = (size_t)ceil(t.B * t.sc) + 2;
	t.img = err_malloc(e, (size_t)tw * ih * 3);
	t.reg = err_malloc(e, rmax * rmax * 3);
	t.acc = err_malloc(e, (size_t)t.B * t.B * 4 * sizeof *t.acc);
	vmap = err_malloc(e, (size_t)tw * th * sizeof *vmap);
	if (!t.img || !vmap || !t.reg || !t.acc) {
		rc = ERR_NOMEM;
		goto done;
	}
	for (uint32_t oy0 = 0; oy0 < th; oy0 += t.B)
		for (uint32_t ox0 = 0; ox0 < tw; ox0 += t.B)
			thumb_block(&t, ox0, oy0, r);
	score_map(s, o->patch0, t.ds, tw, th, vmap);
	blend(t.img, vmap, (size_t)tw * th, o);
	if (o->n_marks) {
		int64_t side = tw > th ? tw : th, arm = HEATMAP_MARK_ARM + side / 200, hw = side / 1024;
		for (size_t k = 0; k < o->n_marks; k++)
			draw_mark(t.img, tw, th, (int64_t)floor((double)o->marks[k].x / t.ds),
			          (int64_t)floor((double)o->marks[k].y / t.ds), arm, hw);
	}
	if (o->legend)
		draw_legend(t.img, tw, ih, th, s, o);
	rc = img_write_png(png_path, t.img, ih, tw, 3, e);
	r->w = tw;
	r->h = ih;
	r->thumb_w = tw;
	r->thumb_h = th;
	r->level = t.L;
	r->downsample = t.ds;
done:
	free(t.img);
	free(vmap);
	free(t.reg);
	free(t.acc);
	slide_close(t.sl);
	return rc;
}

/* ---- GeoJSON ---- */


int heatmap_write_geojson(const char *path, const struct heatmap_scores *s, double patch0, double threshold,
                          const char *bag_id, const char *score_col, const struct heatmap_mark *marks,
                          size_t n_marks, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	FILE *f = af.fp;
	fputs("{\"type\":\"FeatureCollection\",\"name\":", f);
	json_string(f, bag_id);
	fputs(",\"properties\":{\"score_column\":", f);
	json_string(f, score_col);
	fprintf(f, ",\"raw_min\":%.9g,\"raw_max\":%.9g,\"patch_level0\":%.9g},\"features\":[", s->raw_min, s->raw_max,
	        patch0);
	for (size_t i = 0; i < s->n; i++) {
		const struct heatmap_patch *p = &s->p[i];
		double x0 = (double)p->x, y0 = (double)p->y, x1 = x0 + patch0, y1 = y0 + patch0;
		int pos = p->v >= threshold;
		fprintf(f,
		        "%s\n{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[%.9g,%.9g],"
		        "[%.9g,%.9g],[%.9g,%.9g],[%.9g,%.9g],[%.9g,%.9g]]]},",
		        i ? "," : "", x0, y0, x1, y0, x1, y1, x0, y1, x0, y0);
		fprintf(f, "\"properties\":{\"objectType\":\"detection\",\"name\":\"%lld\",", (long long)p->index);
		fprintf(f, "\"classification\":{\"name\":\"%s\",\"color\":[%s]},", pos ? "Positive" : "Negative",
		        pos ? "200,50,50" : "112,112,225");
		fprintf(f, "\"score\":%.9g,\"raw_score\":%.9g,\"index\":%lld,\"label\":", p->v, p->raw, (long long)p->index);
		if (isnan(p->label))
			fputs("null", f);
		else
			fprintf(f, "%.9g", p->label);
		fprintf(f, ",\"measurements\":{\"score\":%.9g,\"raw_score\":%.9g", p->v, p->raw);
		if (!isnan(p->label))
			fprintf(f, ",\"label\":%.9g", p->label);
		fputs("}}}", f);
	}
	for (size_t k = 0; k < n_marks; k++) {
		fprintf(f,
		        "%s\n{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[%lld,%lld]},"
		        "\"properties\":{\"objectType\":\"annotation\",\"name\":\"detection %zu\",\"classification\":"
		        "{\"name\":\"Detection\",\"color\":[230,20,20]},\"confidence\":%.9g,\"measurements\":"
		        "{\"confidence\":%.9g}}}",
		        s->n || k ? "," : "", (long long)marks[k].x, (long long)marks[k].y, k + 1, marks[k].conf,
		        marks[k].conf);
	}
	fputs("\n]}\n", f);
	if (ferror(f)) {
		afile_abort(&af);
		return err_sys(e, ERR_IO, "cannot write '%s'", path);
	}
	return afile_commit(&af, e);
}
