/* slidegen.c - see slidegen.h */
#include "slidegen.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "../base/afile.h"
#include "../base/img.h"
#include "../base/rng.h"
#include "tiffmsg.h"
#include "../base/version.h"

#ifdef _OPENMP
#include <omp.h>
static int omp_thread_wrap(void) { return omp_get_thread_num(); }
static int omp_get_num_threads_wrap(void) { return omp_get_max_threads(); }
#else
static int omp_thread_wrap(void) { return 0; }
#endif

#define NV_TISSUE 96
#define NV_TUMOUR 64
#define NV_EXCL 32
#define MAX_SPANS 64

struct poly {
	int n;
	double *x, *y;
	double bx0, by0, bx1, by1;
	const char *group;        /* "_0", "Tumor" or "_2" */
};

struct slidegen {
	struct slidegen_params p;
	int nt, nu, nx;           /* tissue, tumour, exclusion polygons */
	struct poly *tissue, *tumour, *excl;
	uint64_t hseed;           /* texture hash seed */
};

void slidegen_params_default(struct slidegen_params *p)
{
	memset(p, 0, sizeof *p);
	p->width = 8192;
	p->height = 6144;
	p->mpp = 0.25;
	p->seed = 1;
	p->tumours = 2;
	p->tile = 256;
	p->quality = 80;
	p->res_unit = SLIDEGEN_RES_CM;
	p->ycbcr = 1;
}

/* ---- geometry ---- */

static int star(struct poly *pl, int n, double cx, double cy, double r, double amp, struct rng *rg,
                const char *group, struct err *e)
{
	double a[6], ph[6], s = 0;
	for (int k = 2; k < 6; k++) {
		a[k] = (rng_double(rg) * 2 - 1) * amp / (k - 1);
		ph[k] = rng_double(rg) * 2 * M_PI;
		s += fabs(a[k]);
	}
	pl->n = n;
	pl->x = err_malloc(e, sizeof(double) * (size_t)n);
	pl->y = err_malloc(e, sizeof(double) * (size_t)n);
	if (!pl->x || !pl->y)
		return ERR_NOMEM;
	pl->group = group;
	pl->bx0 = pl->by0 = INFINITY;
	pl->bx1 = pl->by1 = -INFINITY;
	for (int i = 0; i < n; i++) {
		double t = 2 * M_PI * i / n, rr = 1;
		for (int k = 2; k < 6; k++)
			rr += a[k] * cos(k * t + ph[k]);
		/* quantise to 1/64 px so that the XML (4 decimals) is exact */
		double x = round((cx + r * rr * cos(t)) * 64) / 64, y = round((cy + r * rr * sin(t)) * 64) / 64;
		pl->x[i] = x;
		pl->y[i] = y;
		pl->bx0 = fmin(pl->bx0, x);
		pl->bx1 = fmax(pl->bx1, x);
		pl->by0 = fmin(pl->by0, y);
		pl->by1 = fmax(pl->by1, y);
	}
	(void)s;
	return 0;
}

/* the smallest radius a star of amplitude amp can have, relative to r */
static double star_rmin(double amp)
{
	double s = 0;
	for (int k = 2; k < 6; k++)
		s += amp / (k - 1);
	return 1 - s;
}

int slidegen_create(struct slidegen **gp, const struct slidegen_params *p, struct err *e)
{
	*gp = NULL;
	if (p->width < 64 || p->height < 64 || p->width > SLIDEGEN_DIM_MAX || p->height > SLIDEGEN_DIM_MAX)
		return err_set(e, ERR_USAGE, "slide size %ux%u: each side must be 64..%u", p->width, p->height,
		               SLIDEGEN_DIM_MAX);
	if (p->tile < 16 || p->tile % 16 || p->tile > 4096)
		return err_set(e, ERR_USAGE, "tile size %u: must be a multiple of 16 in 16..4096", p->tile);
	if (p->quality < 1 || p->quality > 100)
		return err_set(e, ERR_USAGE, "jpeg quality %d: must be 1..100", p->quality);
	if (!(p->mpp > 0.01 && p->mpp < 100))
		return err_set(e, ERR_USAGE, "µm/px %g: must be in (0.01, 100)", p->mpp);
	if (p->tumours < 0 || p->tumours > 64)
		return err_set(e, ERR_USAGE, "tumours %d: must be 0..64", p->tumours);
	if (p->blobs < 0 || p->blobs > 8)
		return err_set(e, ERR_USAGE, "blobs %d: must be 0..8", p->blobs);
	struct slidegen *g = err_calloc(e, 1, sizeof *g);
	if (!g)
		return ERR_NOMEM;
	g->p = *p;
	struct rng rg;
	rng_seed(&rg, p->seed, 0x51d3);
	g->hseed = ((uint64_t)rng_u32(&rg) << 32) | rng_u32(&rg);
	int nb = p->blobs ? p->blobs : 1 + (int)rng_below(&rg, 3);
	g->tissue = err_calloc(e, (size_t)nb, sizeof *g->tissue);
	g->tumour = err_calloc(e, (size_t)p->tumours + 1, sizeof *g->tumour);
	g->excl = err_calloc(e, (size_t)p->tumours + 1, sizeof *g->excl);
	double *rmin = err_calloc(e, (size_t)nb, sizeof *rmin), *bcx = err_calloc(e, (size_t)nb, sizeof *bcx),
	       *bcy = err_calloc(e, (size_t)nb, sizeof *bcy);
	int rc = 0;
	if (!g->tissue || !g->tumour || !g->excl || !rmin || !bcx || !bcy) {
		rc = ERR_NOMEM;
		goto out;
	}
	/* blobs side by side along the longer axis */
	int horiz = p->width >= p->height;
	double W = p->width, H = p->height, cell = (horiz ? W : H) / nb, other = horiz ? H : W;
	const double amp = 0.25;
	for (int b = 0; b < nb; b++) {
		double r = 0.36 * fmin(cell, other) * (0.8 + 0.2 * rng_double(&rg));
		double jit = (fmin(cell, other) * 0.5 - r * (1 + (1 - star_rmin(amp)))) * 0.5;
		if (jit < 0)
			jit = 0;
		double c1 = cell * (b + 0.5) + (rng_double(&rg) * 2 - 1) * jit;
		double c2 = other * 0.5 + (rng_double(&rg) * 2 - 1) * jit;
		bcx[b] = horiz ? c1 : c2;
		bcy[b] = horiz ? c2 : c1;
		rmin[b] = r * star_rmin(amp);
		if ((rc = star(&g->tissue[b], NV_TISSUE, bcx[b], bcy[b], r, amp, &rg, "tissue", e)))
			goto out;
		g->nt++;
	}
	int b0 = (int)rng_below(&rg, (uint32_t)nb);
	for (int t = 0; t < p->tumours; t++) {
		int b = (b0 + t) % nb;
		double ang = rng_double(&rg) * 2 * M_PI, d = rng_double(&rg) * 0.3 * rmin[b];
		const double ta = 0.12;
		double rt = (0.45 + 0.4 * rng_double(&rg)) * (rmin[b] - d) / (2 - star_rmin(ta));
		double cx = bcx[b] + d * cos(ang), cy = bcy[b] + d * sin(ang);
		if ((rc = star(&g->tumour[t], NV_TUMOUR, cx, cy, rt, ta, &rg, t % 2 ? "Tumor" : "_0", e)))
			goto out;
		g->nu++;
		if (t == 0 || rng_double(&rg) < 0.4) {
			double rx = 0.3 * rt * star_rmin(ta) / (2 - star_rmin(0.1));
			if ((rc = star(&g->excl[g->nx], NV_EXCL, cx, cy, rx, 0.1, &rg, "_2", e)))
				goto out;
			g->nx++;
		}
	}
out:
	free(rmin);
	free(bcx);
	free(bcy);
	if (rc) {
		slidegen_free(g);
		return rc;
	}
	*gp = g;
	return 0;
}

static void free_polys(struct poly *p, int n)
{
	for (int i = 0; p && i < n; i++) {
		free(p[i].x);
		free(p[i].y);
	}
	free(p);
}

void slidegen_free(struct slidegen *g)
{
	if (!g)
		return;
	free_polys(g->tissue, g->nt);
	free_polys(g->tumour, g->nu);
	free_polys(g->excl, g->nx);
	free(g);
}

int slidegen_tumours(const struct slidegen *g)
{
	return g->nu;
}

int slidegen_exclusions(const struct slidegen *g)
{
	return g->nx;
}

/* ---- rasterising: one row at a time ---- */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Marks cls[i] |= bit for every pixel i (centre at (i + 0.5) * s in level-0
 * units) inside polygon pl on the level-0 line y (even-odd). */
static void poly_row(const struct poly *pl, double y, double s, uint32_t w, uint8_t *cls, uint8_t bit)
{
	if (y < pl->by0 || y > pl->by1)
		return;
	double xs[NV_TISSUE + 2];
	int n = 0;
	for (int i = 0, j = pl->n - 1; i < pl->n; j = i++) {
		double y0 = pl->y[j], y1 = pl->y[i];
		if ((y0 <= y) != (y1 <= y) && n < NV_TISSUE + 2)
			xs[n++] = pl->x[j] + (y - y0) * (pl->x[i] - pl->x[j]) / (y1 - y0);
	}
	qsort(xs, (size_t)n, sizeof xs[0], cmp_dbl);
	for (int k = 0; k + 1 < n; k += 2) {
		/* pixels whose centre lies in [xs[k], xs[k+1]) */
		double a = ceil(xs[k] / s - 0.5), b = ceil(xs[k + 1] / s - 0.5);
		if (a < 0)
			a = 0;
		if (b > w)
			b = w;
		for (long i = (long)a; i < (long)b; i++)
			cls[i] |= bit;
	}
}

/* cls: bit 1 tissue, 2 tumour, 4 exclusion */
static void classify_row(const struct slidegen *g, double y, double s, uint32_t w, uint8_t *cls)
{
	memset(cls, 0, w);
	for (int i = 0; i < g->nt; i++)
		poly_row(&g->tissue[i], y, s, w, cls, 1);
	for (int i = 0; i < g->nu; i++)
		poly_row(&g->tumour[i], y, s, w, cls, 2);
	for (int i = 0; i < g->nx; i++)
		poly_row(&g->excl[i], y, s, w, cls, 4);
}

static inline int is_tumour(uint8_t c)
{
	return (c & 2) && !(c & 4);
}

/* ---- texture ---- */

static inline uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline double hash2(uint64_t seed, int64_t ix, int64_t iy)
{
	uint64_t h = mix64(seed ^ mix64((uint64_t)ix * 0x9E3779B97F4A7C15ULL + (uint64_t)iy));
	return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* value noise in [-0.5, 0.5) with wavelength lam (level-0 px) */
static double vnoise(uint64_t seed, double x, double y, double lam)
{
	double fx = x / lam, fy = y / lam;
	double ix = floor(fx), iy = floor(fy);
	double tx = fx - ix, ty = fy - iy;
	tx = tx * tx * (3 - 2 * tx);
	ty = ty * ty * (3 - 2 * ty);
	int64_t i = (int64_t)ix, j = (int64_t)iy;
	double a = hash2(seed, i, j), b = hash2(seed, i + 1, j), c = hash2(seed, i, j + 1),
	       d = hash2(seed, i + 1, j + 1);
	return a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty - 0.5;
}

/* coverage of a pixel of footprint f at (x, y) by the cell nuclei */
static double nuclei(uint64_t seed, double x, double y, double f, double cellsz, double r)
{
	double mean = M_PI * r * r / (cellsz * cellsz);
	if (f >= cellsz)
		return mean;
	double cx = floor(x / cellsz), cy = floor(y / cellsz);
	double m = r + 1;
	double nx = cx * cellsz + m + hash2(seed, (int64_t)cx, (int64_t)cy) * (cellsz - 2 * m);
	double ny = cy * cellsz + m + hash2(seed ^ 0xabcdefULL, (int64_t)cx, (int64_t)cy) * (cellsz - 2 * m);
	double d = sqrt((x - nx) * (x - nx) + (y - ny) * (y - ny));
	double a = (r + 0.5 * f - d) / f;
	a = a < 0 ? 0 : a > 1 ? 1 : a;
	if (f > 2 * r) /* blend towards the mean as pixels grow past a nucleus */
		a = a + (mean - a) * fmin(1, (f - 2 * r) / (cellsz - 2 * r));
	return a;
}

static inline uint8_t clamp8(double v)
{
	return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)(v + 0.5);
}

/* Renders one row of level pixels (footprint s) at level-0 line y. */
static void render_row(const struct slidegen *g, double y, double s, uint32_t w, uint8_t *cls,
                       uint8_t *rgb)
{
	classify_row(g, y, s, w, cls);
	uint64_t hs = g->hseed;
	for (uint32_t i = 0; i < w; i++) {
		double x = (i + 0.5) * s;
		uint8_t c = cls[i];
		double r, gg, b;
		if (!(c & 1)) {
			double v = 243 + (s <= 4 ? 3 * (hash2(hs ^ 7, (int64_t)(x / s), (int64_t)(y / s)) - 0.5) : 0);
			rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = clamp8(v);
			continue;
		}
		int tum = is_tumour(c);
		double n1 = vnoise(hs ^ 11, x, y, 180), n2 = s * 2 <= 28 ? vnoise(hs ^ 12, x, y, 28) : 0;
		double nu;
		if (tum) {
			r = 205 + 30 * n1 + 14 * n2;
			gg = 120 + 30 * n1 + 14 * n2;
			b = 190 + 16 * n1;
			nu = nuclei(hs ^ 21, x, y, s, 12, 4.2);
			r += (80 - r) * nu * 0.9;
			gg += (30 - gg) * nu * 0.9;
			b += (125 - b) * nu * 0.9;
		} else {
			r = 236 + 14 * n1 + 8 * n2;
			gg = 172 + 30 * n1 + 12 * n2;
			b = 208 + 12 * n1;
			nu = nuclei(hs ^ 22, x, y, s, 22, 3.2);
			r += (125 - r) * nu * 0.85;
			gg += (70 - gg) * nu * 0.85;
			b += (160 - b) * nu * 0.85;
		}
		rgb[3 * i] = clamp8(r);
		rgb[3 * i + 1] = clamp8(gg);
		rgb[3 * i + 2] = clamp8(b);
	}
}

/* ---- TIFF ---- */

/* the buffers of one write: a band of T rows of a level, a tile, and a
 * row of pixel classes per thread */
struct tiffw {
	TIFF *tif;
	const char *path;
	struct tiff_msg tm;
	uint8_t *band, *tile, *cls;
};

/* the tags of one pyramid level of lw x lh pixels, s level-0 px per px */
static void level_tags(const struct slidegen *g, TIFF *tif, int level, double s, uint32_t lw, uint32_t lh,
                       const char *desc)
{
	const struct slidegen_params *p = &g->p;
	TIFFSetField(tif, TIFFTAG_SUBFILETYPE, level ? FILETYPE_REDUCEDIMAGE : 0);
	TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, lw);
	TIFFSetField(tif, TIFFTAG_IMAGELENGTH, lh);
	TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 8);
	TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 3);
	TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
	TIFFSetField(tif, TIFFTAG_TILEWIDTH, p->tile);
	TIFFSetField(tif, TIFFTAG_TILELENGTH, p->tile);
	TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_JPEG);
	TIFFSetField(tif, TIFFTAG_JPEGQUALITY, p->quality);
	if (p->ycbcr) {
		TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
		TIFFSetField(tif, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
		TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
	} else {
		TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
	}
	if (level == 0)
		TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, desc);
	TIFFSetField(tif, TIFFTAG_SOFTWARE, "weno-tools slide-synth " WENO_VERSION);
	if (p->res_unit != SLIDEGEN_RES_NONE) {
		double per = p->res_unit == SLIDEGEN_RES_CM ? 10000.0 : 25400.0;
		float res = (float)(per / (p->mpp * s));
		TIFFSetField(tif, TIFFTAG_XRESOLUTION, res);
		TIFFSetField(tif, TIFFTAG_YRESOLUTION, res);
		TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT,
		             p->res_unit == SLIDEGEN_RES_CM ? RESUNIT_CENTIMETER : RESUNIT_INCH);
	}
}

/* renders band ty of a level (rows beyond the image repeat white) and
 * writes its tiles */
static int write_band(const struct slidegen *g, struct tiffw *w, int level, double s, uint32_t lw, uint32_t lh,
                      uint32_t ty, struct err *e)
{
	uint32_t T = g->p.tile, rows = lh - ty * T < T ? lh - ty * T : T;
#pragma omp parallel for schedule(dynamic, 4)
	for (uint32_t r = 0; r < T; r++) {
		uint8_t *dst = w->band + (size_t)r * lw * 3;
		if (r >= rows) {
			memset(dst, 255, (size_t)lw * 3);
			continue;
		}
		int tid = omp_thread_wrap();
		double y = ((double)(ty * T + r) + 0.5) * s;
		render_row(g, y, s, lw, w->cls + (size_t)tid * g->p.width, dst);
	}
	uint32_t ntx = (lw + T - 1) / T;
	for (uint32_t tx = 0; tx < ntx; tx++) {
		uint32_t cols = lw - tx * T < T ? lw - tx * T : T;
		for (uint32_t r = 0; r < T; r++) {
			uint8_t *d = w->tile + (size_t)r * T * 3;
			memcpy(d, w->band + ((size_t)r * lw + (size_t)tx * T) * 3, (size_t)cols * 3);
			if (cols < T)
				memset(d + (size_t)cols * 3, 255, (size_t)(T - cols) * 3);
		}
		if (TIFFWriteEncodedTile(w->tif, TIFFComputeTile(w->tif, tx * T, ty * T, 0, 0), w->tile,
		                         (tmsize_t)T * T * 3) < 0)
			return err_set(e, ERR_IO, "cannot write '%s': level %d tile (%u, %u): %s", w->path, level,
			               tx, ty, w->tm.msg[0] ? w->tm.msg : "libtiff failed");
	}
	return 0;
}

/* every level, halving down to 128 px on each side */
static int write_levels(const struct slidegen *g, struct tiffw *w, struct err *e)
{
	const struct slidegen_params *p = &g->p;
	char desc[256];
	if (p->aperio)
		snprintf(desc, sizeof desc,
		         "Aperio Image Library v12.0.15 \r\n%ux%u [0,0 %ux%u] (%ux%u) JPEG/RGB Q=%d|AppMag = %g|MPP = %.6g",
		         p->width, p->height, p->width, p->height, p->tile, p->tile, p->quality, round(10 / p->mpp), p->mpp);
	else
		snprintf(desc, sizeof desc, "slide-synth %s: seed=%llu tumours=%d mpp=%.6g", WENO_VERSION,
		         (unsigned long long)p->seed, g->nu, p->mpp);
	for (int level = 0;; level++) {
		double s = ldexp(1.0, level);
		uint32_t lw = (uint32_t)ceil(p->width / s), lh = (uint32_t)ceil(p->height / s);
		level_tags(g, w->tif, level, s, lw, lh, desc);
		uint32_t nty = (lh + p->tile - 1) / p->tile;
		for (uint32_t ty = 0; ty < nty; ty++) {
			int rc = write_band(g, w, level, s, lw, lh, ty, e);
			if (rc)
				return rc;
		}
		if (!TIFFWriteDirectory(w->tif))
			return err_set(e, ERR_IO, "cannot write '%s': level %d directory: %s", w->path, level,
			               w->tm.msg[0] ? w->tm.msg : "libtiff failed");
		if (lw <= 128 && lh <= 128)
			return 0;
	}
}

int slidegen_write_tiff(const struct slidegen *g, const char *path, struct err *e)
{
	const struct slidegen_params *p = &g->p;
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	if (!af.tmp) {
		afile_abort(&af);
		return err_set(e, ERR_USAGE, "cannot write a tiff to standard output");
	}
	struct tiffw w;
	memset(&w, 0, sizeof w);
	w.path = path;
	TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
	if (!opts) {
		afile_abort(&af);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_msg_keep, &w.tm);
	TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_msg_keep, NULL);
	int big = (double)p->width * p->height * 3 > 3.0e9;
	w.tif = TIFFFdOpenExt(fileno(af.fp), af.tmp, big ? "w8" : "w", opts);
	TIFFOpenOptionsFree(opts);
	if (!w.tif) {
		afile_abort(&af);
		return err_set(e, ERR_IO, "cannot write '%s': %s", path,
		               w.tm.msg[0] ? w.tm.msg : "libtiff cannot open it");
	}
	int nthreads = 1;
#ifdef _OPENMP
	nthreads = omp_get_num_threads_wrap();
#endif
	w.band = malloc((size_t)p->width * p->tile * 3);
	w.tile = malloc((size_t)p->tile * p->tile * 3);
	w.cls = malloc((size_t)p->width * (size_t)nthreads);
	if (!w.band || !w.tile || !w.cls)
		rc = err_set(e, ERR_NOMEM, "out of memory for a band of %u x %u pixels", p->width, p->tile);
	else
		rc = write_levels(g, &w, e);
	free(w.band);
	free(w.tile);
	free(w.cls);
	if (rc) {
		TIFFCleanup(w.tif);
		afile_abort(&af);
		return rc;
	}
	TIFFFlush(w.tif);
	TIFFCleanup(w.tif);
	return afile_commit(&af, e);
}

/* ---- XML ---- */

static void xml_poly(FILE *f, const struct poly *pl, int idx)
{
	fprintf(f, "\t\t<Annotation Name=\"Annotation %d\" Type=\"Polygon\" PartOfGroup=\"%s\" Color=\"%s\">\n",
	        idx, pl->group, strcmp(pl->group, "_2") ? "#F4FA58" : "#64FE2E");
	fprintf(f, "\t\t\t<Coordinates>\n");
	for (int i = 0; i < pl->n; i++) /* the tools never call setlocale: "%f" prints a '.' */
		fprintf(f, "\t\t\t\t<Coordinate Order=\"%d\" X=\"%.4f\" Y=\"%.4f\" />\n", i, pl->x[i], pl->y[i]);
	fprintf(f, "\t\t\t</Coordinates>\n\t\t</Annotation>\n");
}

int slidegen_write_xml(const struct slidegen *g, const char *path, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	FILE *f = af.fp;
	fprintf(f, "<?xml version=\"1.0\"?>\n<ASAP_Annotations>\n\t<Annotations>\n");
	int idx = 0;
	for (int i = 0; i < g->nu; i++)
		xml_poly(f, &g->tumour[i], idx++);
	for (int i = 0; i < g->nx; i++)
		xml_poly(f, &g->excl[i], idx++);
	fprintf(f, "\t</Annotations>\n\t<AnnotationGroups>\n");
	static const char *const groups[][2] = {{"_0", "#FF0000"}, {"_1", "#FF0000"}, {"_2", "#00FF00"},
	                                        {"Tumor", "#FF0000"}};
	for (int i = 0; i < 4; i++)
		fprintf(f, "\t\t<Group Name=\"%s\" PartOfGroup=\"None\" Color=\"%s\">\n\t\t\t<Attributes />\n\t\t</Group>\n",
		        groups[i][0], groups[i][1]);
	fprintf(f, "\t</AnnotationGroups>\n</ASAP_Annotations>\n");
	if (ferror(f)) {
		afile_abort(&af);
		return err_set(e, ERR_IO, "cannot write '%s'", path);
	}
	return afile_commit(&af, e);
}

/* ---- masks ---- */

int slidegen_mask(const struct slidegen *g, int which, uint32_t ds, uint8_t **maskp, uint32_t *wp,
                  uint32_t *hp, struct err *e)
{
	*maskp = NULL;
	if (ds < 1)
		return err_set(e, ERR_USAGE, "mask downsample must be at least 1");
	uint32_t w = (g->p.width + ds - 1) / ds, h = (g->p.height + ds - 1) / ds;
	uint8_t *m = err_malloc(e, (size_t)w * h);
	uint8_t *cls = err_malloc(e, w);
	if (!m || !cls) {
		free(m);
		free(cls);
		return ERR_NOMEM;
	}
	for (uint32_t j = 0; j < h; j++) {
		classify_row(g, (j + 0.5) * ds, ds, w, cls);
		for (uint32_t i = 0; i < w; i++)
			m[(size_t)j * w + i] = (which == SLIDEGEN_MASK_TISSUE ? (cls[i] & 1) : is_tumour(cls[i])) ? 255 : 0;
	}
	free(cls);
	*maskp = m;
	*wp = w;
	*hp = h;
	return 0;
}

int slidegen_write_mask(const struct slidegen *g, int which, uint32_t ds, const char *path, struct err *e)
{
	uint8_t *m;
	uint32_t w, h;
	int rc = slidegen_mask(g, which, ds, &m, &w, &h, e);
	if (rc)
		return rc;
	rc = img_write_png(path, m, h, w, 1, e);
	free(m);
	return rc;
}

/* ---- Camelyon16 folders ---- */

static int join(char *out, size_t cap, struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int join(char *out, size_t cap, struct err *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap)
		return err_set(e, ERR_LIMIT, "path too long: %.80s...", out);
	return 0;
}

static int one_slide(const struct slidegen_params *p, const char *tif, const char *xml, struct err *e)
{
	struct slidegen *g;
	int rc = slidegen_create(&g, p, e);
	if (rc)
		return rc;
	rc = slidegen_write_tiff(g, tif, e);
	if (!rc && xml)
		rc = slidegen_write_xml(g, xml, e);
	slidegen_free(g);
	return rc;
}

int slidegen_write_camelyon(const char *dir, const struct slidegen_params *base,
                            const struct slidegen_camelyon *c, struct err *e)
{
	if (c->normal < 0 || c->tumor < 0 || c->test_normal < 0 || c->test_tumor < 0 ||
	    c->normal + c->tumor + c->test_normal + c->test_tumor > 9999)
		return err_set(e, ERR_USAGE, "slide counts must be 0..9999 in all");
	int flat = c->layout == SLIDEGEN_LAYOUT_FLAT;
	char dimg_n[4096], dimg_t[4096], dimg_x[4096], dann_t[4096], dann_x[4096], ref[4096];
	int rc;
	if (flat) {
		if ((rc = join(dimg_n, sizeof dimg_n, e, "%s/images", dir)) ||
		    (rc = join(dann_t, sizeof dann_t, e, "%s/annotations", dir)) ||
		    (rc = join(ref, sizeof ref, e, "%s/reference.csv", dir)))
			return rc;
		strcpy(dimg_t, dimg_n);
		strcpy(dimg_x, dimg_n);
		strcpy(dann_x, dann_t);
	} else if ((rc = join(dimg_n, sizeof dimg_n, e, "%s/training/normal", dir)) ||
	           (rc = join(dimg_t, sizeof dimg_t, e, "%s/training/tumor", dir)) ||
	           (rc = join(dann_t, sizeof dann_t, e, "%s/training/lesion_annotations", dir)) ||
	           (rc = join(dimg_x, sizeof dimg_x, e, "%s/testing/images", dir)) ||
	           (rc = join(dann_x, sizeof dann_x, e, "%s/testing/lesion_annotations", dir)) ||
	           (rc = join(ref, sizeof ref, e, "%s/testing/reference.csv", dir)))
		return rc;
	const char *dirs[] = {dimg_n, dimg_t, dann_t, dimg_x, dann_x};
	for (int i = 0; i < 5; i++)
		if ((rc = afile_mkdirs(dirs[i], e)))
			return rc;
	int total = c->normal + c->tumor + c->test_normal + c->test_tumor, done = 0;
	const char *Nn = c->capitalise ? "Normal" : "normal", *Tn = c->capitalise ? "Tumor" : "tumor",
	           *Xn = c->capitalise ? "Test" : "test";
	char tif[4096], xml[4096];
	/* which test slides carry tumour: a seeded shuffle */
	int nt = c->test_normal + c->test_tumor;
	uint32_t *order = err_calloc(e, (size_t)nt + 1, sizeof *order);
	if (!order)
		return ERR_NOMEM;
	for (int i = 0; i < nt; i++)
		order[i] = (uint32_t)i;
	struct rng rg;
	rng_seed(&rg, base->seed, 0xc16);
	rng_shuffle(&rg, order, (size_t)nt);
	struct afile af;
	memset(&af, 0, sizeof af);
	for (int k = 0; k < total && !rc; k++) {
		struct slidegen_params p = *base;
		p.seed = base->seed * 1000003ULL + (uint64_t)k;
		int tumour, idx;
		const char *name, *idir, *adir;
		if (k < c->normal) {
			tumour = 0, idx = k + 1, name = Nn, idir = dimg_n, adir = NULL;
		} else if (k < c->normal + c->tumor) {
			tumour = 1, idx = k - c->normal + 1, name = Tn, idir = dimg_t, adir = dann_t;
		} else {
			idx = k - c->normal - c->tumor;
			tumour = order[idx] < (uint32_t)c->test_tumor;
			idx++;
			name = Xn, idir = dimg_x, adir = tumour ? dann_x : NULL;
		}
		p.tumours = tumour ? (base->tumours > 0 ? base->tumours : 1) : 0;
		if ((rc = join(tif, sizeof tif, e, "%s/%s_%03d.tif", idir, name, idx)))
			break;
		if (adir && (rc = join(xml, sizeof xml, e, "%s/%s_%03d.xml", adir, name, idx)))
			break;
		rc = one_slide(&p, tif, adir ? xml : NULL, e);
		done++;
		if (!rc && c->on_slide)
			c->on_slide(c->arg, tif, done, total);
	}
	if (!rc && nt > 0) {
		rc = afile_open(&af, ref, e);
		if (!rc) {
			if (flat)
				fprintf(af.fp, "image,type,metastasis,origin\n");
			for (int i = 0; i < nt; i++) {
				int tumour = order[i] < (uint32_t)c->test_tumor;
				if (tumour)
					fprintf(af.fp, "Test_%03d,Tumor,%s,Primary\n", i + 1, i % 2 ? "Micro" : "Macro");
				else
					fprintf(af.fp, "Test_%03d,Normal%s\n", i + 1, flat ? ",," : "");
			}
			rc = afile_commit(&af, e);
		}
	}
	free(order);
	return rc;
}
