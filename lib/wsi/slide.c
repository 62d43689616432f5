/* slide.c - see slide.h */
#include "slide.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <openslide.h>
#include <tiffio.h>

#include "tiffmsg.h"

#define TILE_BYTES_MAX (64u << 20)
#define REGION_PIXELS_MAX (1u << 26)

struct flevel {
	int ok;                  /* fast path usable */
	uint32_t dir;            /* TIFF directory */
	uint32_t w, h, tw, th, ntx, nty;
	int64_t ds;              /* integral downsample */
	uint64_t *off, *cnt;     /* per tile */
	uint8_t *tables;         /* JPEGTables, may be NULL */
	uint32_t ntables;
	int ycbcr;               /* photometric YCbCr */
};

struct jerr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
};

struct slide {
	char *path;
	openslide_t *osr;
	char vendor[64];
	int nlevels;
	int64_t lw[SLIDE_LEVELS_MAX], lh[SLIDE_LEVELS_MAX];
	double lds[SLIDE_LEVELS_MAX];
	int fd;
	uint64_t fsize;
	struct flevel fl[SLIDE_LEVELS_MAX];
	int fast_on;
	int tiff_res;            /* 0 none, else SLIDE_MPP_TIFF_CM/INCH */
	double tiff_mpp;
	double tiff_res_raw;
	uint32_t *argb;
	size_t argb_cap;
	uint8_t *tile, *comp, *region;
	size_t tile_cap, comp_cap, region_cap;
	float *acc;
	size_t acc_cap;
	struct slide_stats st;
};

/* ---- helpers ---- */

static int grow(void **p, size_t *cap, size_t need, struct err *e)
{
	if (*cap >= need)
		return 0;
	void *q = realloc(*p, need);
	if (!q)
		return err_set(e, ERR_NOMEM, "out of memory (%zu bytes)", need);
	*p = q;
	*cap = need;
	return 0;
}

static void jerr_exit(j_common_ptr c)
{
	struct jerr *j = (struct jerr *)c->err;
	c->err->format_message(c, j->msg);
	longjmp(j->jb, 1);
}

static void jerr_emit(j_common_ptr c, int level)
{
	/* warnings (corrupt data, premature end) are errors here */
	if (level < 0)
		jerr_exit(c);
}

/* ---- the fast path's tables ---- */

static void flevel_free(struct flevel *f)
{
	free(f->off);
	free(f->cnt);
	free(f->tables);
	memset(f, 0, sizeof *f);
}

struct tdir {
	uint32_t dir, w, h;
};

static int cmp_tdir(const void *a, const void *b)
{
	const struct tdir *x = a, *y = b;
	return x->w < y->w ? 1 : x->w > y->w ? -1 : (x->dir > y->dir) - (x->dir < y->dir);
}

/* the resolution tags of directory d (the largest tiled image) */
static void tiff_resolution(struct slide *s, TIFF *t, uint32_t d)
{
	if (!TIFFSetDirectory(t, (tdir_t)d))
		return;
	float xr = 0;
	uint16_t unit = RESUNIT_INCH; /* the TIFF default */
	if (!TIFFGetField(t, TIFFTAG_XRESOLUTION, &xr) || !(xr > 0))
		return;
	TIFFGetField(t, TIFFTAG_RESOLUTIONUNIT, &unit);
	s->tiff_res_raw = xr;
	if (unit == RESUNIT_CENTIMETER) {
		s->tiff_mpp = 10000.0 / xr;
		s->tiff_res = SLIDE_MPP_TIFF_CM;
	} else if (unit == RESUNIT_INCH) {
		s->tiff_mpp = 25400.0 / xr;
		s->tiff_res = SLIDE_MPP_TIFF_INCH;
	}
}

/* the tile offsets, byte counts and JPEG tables of level L (directory
 * td) when it is a JPEG-tiled RGB level the fast path can decode; else
 * fl[L] stays unused */
static void tiff_fast_level(struct slide *s, TIFF *t, int L, const struct tdir *td)
{
	struct flevel *f = &s->fl[L];
	double ds = s->lds[L];
	if ((int64_t)td->w != s->lw[L] || (int64_t)td->h != s->lh[L] || ds != floor(ds) || ds < 1 ||
	    !TIFFSetDirectory(t, (tdir_t)td->dir))
		return;
	uint16_t comp = 0, bps = 0, spp = 0, planar = PLANARCONFIG_CONTIG, photo = 0;
	uint32_t tw = 0, th = 0;
	TIFFGetField(t, TIFFTAG_COMPRESSION, &comp);
	TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bps);
	TIFFGetField(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
	TIFFGetField(t, TIFFTAG_PLANARCONFIG, &planar);
	TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photo);
	TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
	TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
	if (comp != COMPRESSION_JPEG || bps != 8 || spp != 3 || planar != PLANARCONFIG_CONTIG ||
	    (photo != PHOTOMETRIC_YCBCR && photo != PHOTOMETRIC_RGB) || tw < 16 || th < 16 || tw > 8192 ||
	    th > 8192)
		return;
	uint32_t ntiles = TIFFNumberOfTiles(t);
	uint32_t ntx = (td->w + tw - 1) / tw, nty = (td->h + th - 1) / th;
	if (ntiles != ntx * nty || ntiles == 0)
		return;
	f->off = malloc(sizeof(uint64_t) * ntiles);
	f->cnt = malloc(sizeof(uint64_t) * ntiles);
	int bad = !f->off || !f->cnt;
	for (uint32_t i = 0; !bad && i < ntiles; i++) {
		int err1 = 0, err2 = 0;
		f->off[i] = TIFFGetStrileOffsetWithErr(t, i, &err1);
		f->cnt[i] = TIFFGetStrileByteCountWithErr(t, i, &err2);
		bad = err1 || err2;
	}
	uint32_t nt = 0;
	void *tab = NULL;
	if (!bad && TIFFGetField(t, TIFFTAG_JPEGTABLES, &nt, &tab) && nt > 0 && tab && nt < (1u << 20)) {
		f->tables = malloc(nt);
		if (f->tables) {
			memcpy(f->tables, tab, nt);
			f->ntables = nt;
		} else {
			bad = 1;
		}
	}
	if (bad) {
		flevel_free(f);
		return;
	}
	f->dir = td->dir;
	f->w = td->w;
	f->h = td->h;
	f->tw = tw;
	f->th = th;
	f->ntx = ntx;
	f->nty = nty;
	f->ds = (int64_t)ds;
	f->ycbcr = photo == PHOTOMETRIC_YCBCR;
	f->ok = 1;
}

/* Reads the TIFF structure: resolution tags, and for JPEG-tiled levels the
 * tile offsets, byte counts and tables.  Never fails: what cannot be used
 * is simply not used. */
static void tiff_scan(struct slide *s)
{
	struct tiff_msg tm = {{0}};
	TIFFOpenOptions *o = TIFFOpenOptionsAlloc();
	if (!o)
		return;
	TIFFOpenOptionsSetErrorHandlerExtR(o, tiff_msg_keep, &tm);
	TIFFOpenOptionsSetWarningHandlerExtR(o, tiff_msg_keep, NULL);
	TIFF *t = TIFFOpenExt(s->path, "r", o);
	TIFFOpenOptionsFree(o);
	if (!t)
		return;
	struct tdir dirs[SLIDE_LEVELS_MAX * 2];
	int nd = 0;
	uint32_t d = 0;
	do {
		uint32_t w = 0, h = 0;
		if (TIFFIsTiled(t) && TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w) && TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h) &&
		    nd < SLIDE_LEVELS_MAX * 2)
			dirs[nd++] = (struct tdir){d, w, h};
		d++;
	} while (TIFFReadDirectory(t) && d < 4096);
	if (nd > 0) {
		qsort(dirs, (size_t)nd, sizeof dirs[0], cmp_tdir);
		tiff_resolution(s, t, dirs[0].dir);
		/* the fast path: the vendors whose levels are the TIFF's tiled images */
		if ((!strcmp(s->vendor, "generic-tiff") || !strcmp(s->vendor, "aperio")) && nd == s->nlevels)
			for (int L = 0; L < nd; L++)
				tiff_fast_level(s, t, L, &dirs[L]);
	}
	TIFFClose(t);
}

/* Decodes tile (tx, ty) of level L into s->tile (tw x th x 3). */
static int decode_tile(struct slide *s, int L, uint32_t tx, uint32_t ty, struct err *e)
{
	struct flevel *f = &s->fl[L];
	uint32_t i = ty * f->ntx + tx;
	uint64_t off = f->off[i], n = f->cnt[i];
	if (n == 0 || off == 0) {
		s->st.bad_tiles++;
		return err_set(e, ERR_FORMAT, "%s: level %d tile (%u, %u): the tile is missing (no data)", s->path, L, tx,
		               ty);
	}
	if (n > TILE_BYTES_MAX || off > s->fsize || n > s->fsize - off) {
		s->st.bad_tiles++;
		return err_set(e, ERR_FORMAT, "%s: byte %llu: level %d tile (%u, %u): %llu bytes run past the end of the file",
		               s->path, (unsigned long long)off, L, tx, ty, (unsigned long long)n);
	}
	int rc = grow((void **)&s->comp, &s->comp_cap, (size_t)n, e);
	if (!rc)
		rc = grow((void **)&s->tile, &s->tile_cap, (size_t)f->tw * f->th * 3, e);
	if (rc)
		return rc;
	ssize_t got = pread(s->fd, s->comp, (size_t)n, (off_t)off);
	if (got != (ssize_t)n) {
		s->st.bad_tiles++;
		return err_sys(e, ERR_IO, "%s: byte %llu: level %d tile (%u, %u): cannot read %llu bytes", s->path,
		               (unsigned long long)off, L, tx, ty, (unsigned long long)n);
	}
	struct jpeg_decompress_struct ci;
	struct jerr je;
	memset(&ci, 0, sizeof ci);
	ci.err = jpeg_std_error(&je.pub);
	je.pub.error_exit = jerr_exit;
	je.pub.emit_message = jerr_emit;
	je.msg[0] = 0;
	if (setjmp(je.jb)) {
		jpeg_destroy_decompress(&ci);
		s->st.bad_tiles++;
		return err_set(e, ERR_FORMAT, "%s: byte %llu: level %d tile (%u, %u): corrupt jpeg: %s", s->path,
		               (unsigned long long)off, L, tx, ty, je.msg);
	}
	jpeg_create_decompress(&ci);
	if (f->ntables) {
		jpeg_mem_src(&ci, f->tables, f->ntables);
		if (jpeg_read_header(&ci, FALSE) != JPEG_HEADER_TABLES_ONLY) {
			snprintf(je.msg, sizeof je.msg, "bad JPEGTables");
			longjmp(je.jb, 1);
		}
	}
	jpeg_mem_src(&ci, s->comp, (unsigned long)n);
	if (jpeg_read_header(&ci, TRUE) != JPEG_HEADER_OK) {
		snprintf(je.msg, sizeof je.msg, "no image in the tile");
		longjmp(je.jb, 1);
	}
	ci.jpeg_color_space = f->ycbcr ? JCS_YCbCr : JCS_RGB;
	ci.out_color_space = JCS_RGB;
	jpeg_start_decompress(&ci);
	if (ci.output_width != f->tw || ci.output_height != f->th || ci.output_components != 3) {
		snprintf(je.msg, sizeof je.msg, "decoded %ux%ux%d, expected %ux%ux3", ci.output_width, ci.output_height,
		         ci.output_components, f->tw, f->th);
		longjmp(je.jb, 1);
	}
	while (ci.output_scanline < ci.output_height) {
		JSAMPROW row = s->tile + (size_t)ci.output_scanline * f->tw * 3;
		jpeg_read_scanlines(&ci, &row, 1);
	}
	jpeg_finish_decompress(&ci);
	jpeg_destroy_decompress(&ci);
	s->st.fast_tiles++;
	return 0;
}

/* Fast region: level pixels [lx, lx+w) x [ly, ly+h), tile aligned. */
static int fast_region(struct slide *s, int L, int64_t lx, int64_t ly, uint32_t w, uint32_t h, uint8_t *rgb,
                       struct err *e)
{
	struct flevel *f = &s->fl[L];
	for (int64_t ty = ly / f->th; ty * f->th < ly + h; ty++) {
		for (int64_t tx = lx / f->tw; tx * f->tw < lx + w; tx++) {
			int64_t ox = tx * f->tw - lx, oy = ty * f->th - ly; /* tile origin in the region */
			uint32_t cw = (uint32_t)(w - ox < f->tw ? w - ox : f->tw), ch = (uint32_t)(h - oy < f->th ? h - oy : f->th);
			int inside = tx < f->ntx && ty < f->nty;
			if (inside) {
				int rc = decode_tile(s, L, (uint32_t)tx, (uint32_t)ty, e);
				if (rc)
					return rc;
			}
			for (uint32_t r = 0; r < ch; r++) {
				uint8_t *d = rgb + ((size_t)(oy + r) * w + (size_t)ox) * 3;
				int64_t gy = ty * f->th + r;
				uint32_t valid = 0;
				if (inside && gy < f->h) {
					int64_t v = (int64_t)f->w - tx * f->tw;
					valid = v < (int64_t)cw ? (uint32_t)v : cw;
					memcpy(d, s->tile + (size_t)r * f->tw * 3, (size_t)valid * 3);
				}
				if (valid < cw)
					memset(d + (size_t)valid * 3, 255, (size_t)(cw - valid) * 3);
			}
		}
	}
	return 0;
}

/* ---- OpenSlide ---- */

static int os_open(struct slide *s, struct err *e)
{
	s->osr = openslide_open(s->path);
	if (!s->osr) {
		const char *v = openslide_detect_vendor(s->path);
		unsigned char mg[4] = {0};
		FILE *f = fopen(s->path, "rb");
		if (f) {
			if (fread(mg, 1, 4, f) != 4)
				memset(mg, 0, 4);
			fclose(f);
		}
		int tiff = (mg[0] == 'I' && mg[1] == 'I' && (mg[2] == 42 || mg[2] == 43) && mg[3] == 0) ||
		           (mg[0] == 'M' && mg[1] == 'M' && mg[2] == 0 && (mg[3] == 42 || mg[3] == 43));
		return err_set(e, ERR_FORMAT, "cannot open '%s': %s", s->path,
		               v ? "OpenSlide recognises the vendor but cannot open the file"
		               : tiff ? "a TIFF file that OpenSlide cannot read (truncated or damaged, or not tiled)"
		                      : "not a slide format OpenSlide reads");
	}
	const char *err = openslide_get_error(s->osr);
	if (err) {
		int rc = err_set(e, ERR_FORMAT, "cannot open '%s': %s", s->path, err);
		openslide_close(s->osr);
		s->osr = NULL;
		return rc;
	}
	return 0;
}

static int os_region(struct slide *s, int L, int64_t x, int64_t y, uint32_t w, uint32_t h, uint8_t *rgb,
                     struct err *e)
{
	size_t np = (size_t)w * h;
	int rc = grow((void **)&s->argb, &s->argb_cap, np * 4, e);
	if (rc)
		return rc;
	if (!s->osr && (rc = os_open(s, e)))
		return rc;
	openslide_read_region(s->osr, s->argb, x, y, L, w, h);
	s->st.openslide_reads++;
	const char *err = openslide_get_error(s->osr);
	if (err) {
		rc = err_set(e, ERR_FORMAT, "%s: level %d region (%lld, %lld) %ux%u: %s", s->path, L, (long long)x,
		             (long long)y, w, h, err);
		s->st.bad_tiles++;
		/* the handle's error is sticky: reopen it */
		openslide_close(s->osr);
		s->osr = NULL;
		s->st.reopens++;
		struct err e2 = {0};
		os_open(s, &e2);
		return rc;
	}
	for (size_t i = 0; i < np; i++) {
		uint32_t p = s->argb[i];
		uint32_t a = p >> 24, r = (p >> 16) & 255, g = (p >> 8) & 255, b = p & 255;
		if (a != 255) { /* premultiplied: composite over white */
			r += 255 - a;
			g += 255 - a;
			b += 255 - a;
		}
		rgb[3 * i] = (uint8_t)r;
		rgb[3 * i + 1] = (uint8_t)g;
		rgb[3 * i + 2] = (uint8_t)b;
	}
	return 0;
}

/* Checks the fast path of each level against OpenSlide on one tile. */
static void fast_selfcheck(struct slide *s)
{
	for (int L = 0; L < s->nlevels; L++) {
		struct flevel *f = &s->fl[L];
		if (!f->ok)
			continue;
		size_t n = (size_t)f->tw * f->th * 3;
		uint8_t *a = malloc(n), *b = malloc(n);
		struct err e = {0};
		uint32_t tx = f->ntx / 2, ty = f->nty / 2;
		int64_t x = (int64_t)tx * f->tw * f->ds, y = (int64_t)ty * f->th * f->ds;
		int same = a && b && !fast_region(s, L, (int64_t)tx * f->tw, (int64_t)ty * f->th, f->tw, f->th, a, &e) &&
		           !os_region(s, L, x, y, f->tw, f->th, b, &e) && !memcmp(a, b, n);
		if (!same)
			f->ok = 0;
		free(a);
		free(b);
	}
	s->st.fast_tiles = s->st.openslide_reads = s->st.bad_tiles = s->st.reopens = 0;
}

/* ---- public ---- */

int slide_open(struct slide **sp, const char *path, struct err *e)
{
	*sp = NULL;
	struct stat st;
	if (stat(path, &st) != 0)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_IO, "cannot open '%s': not a regular file", path);
	struct slide *s = err_calloc(e, 1, sizeof *s);
	if (!s)
		return ERR_NOMEM;
	s->fd = -1;
	s->fast_on = 1;
	s->path = strdup(path);
	if (!s->path) {
		free(s);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	int rc = os_open(s, e);
	if (rc) {
		slide_close(s);
		return rc;
	}
	const char *v = openslide_get_property_value(s->osr, OPENSLIDE_PROPERTY_NAME_VENDOR);
	snprintf(s->vendor, sizeof s->vendor, "%s", v ? v : "unknown");
	int32_t nl = openslide_get_level_count(s->osr);
	if (nl < 1 || nl > SLIDE_LEVELS_MAX) {
		rc = err_set(e, ERR_FORMAT, "%s: %d pyramid levels: expected 1..%d", path, nl, SLIDE_LEVELS_MAX);
		slide_close(s);
		return rc;
	}
	s->nlevels = nl;
	for (int L = 0; L < nl; L++) {
		openslide_get_level_dimensions(s->osr, L, &s->lw[L], &s->lh[L]);
		s->lds[L] = openslide_get_level_downsample(s->osr, L);
		if (s->lw[L] <= 0 || s->lh[L] <= 0 || !(s->lds[L] >= 1)) {
			rc = err_set(e, ERR_FORMAT, "%s: level %d: size %lldx%lld, downsample %g", path, L,
			             (long long)s->lw[L], (long long)s->lh[L], s->lds[L]);
			slide_close(s);
			return rc;
		}
	}
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	s->fsize = (uint64_t)st.st_size;
	tiff_scan(s);
	if (s->fd < 0)
		for (int L = 0; L < nl; L++)
			s->fl[L].ok = 0;
	fast_selfcheck(s);
	*sp = s;
	return 0;
}

void slide_close(struct slide *s)
{
	if (!s)
		return;
	if (s->osr)
		openslide_close(s->osr);
	if (s->fd >= 0)
		close(s->fd);
	for (int L = 0; L < SLIDE_LEVELS_MAX; L++)
		flevel_free(&s->fl[L]);
	free(s->argb);
	free(s->tile);
	free(s->comp);
	free(s->region);
	free(s->acc);
	free(s->path);
	free(s);
}

const char *slide_path(const struct slide *s)
{
	return s->path;
}

const char *slide_vendor(const struct slide *s)
{
	return s->vendor;
}

int slide_level_count(const struct slide *s)
{
	return s->nlevels;
}

void slide_level_size(const struct slide *s, int level, int64_t *w, int64_t *h)
{
	int ok = level >= 0 && level < s->nlevels;
	*w = ok ? s->lw[level] : 0;
	*h = ok ? s->lh[level] : 0;
}

double slide_level_downsample(const struct slide *s, int level)
{
	return level >= 0 && level < s->nlevels ? s->lds[level] : 0;
}

const char *slide_property(const struct slide *s, const char *name)
{
	return s->osr ? openslide_get_property_value(s->osr, name) : NULL;
}

const char *slide_mpp_source_name(int src)
{
	switch (src) {
	case SLIDE_MPP_PROPERTY:
		return "openslide.mpp-x";
	case SLIDE_MPP_TIFF_CM:
		return "tiff-resolution-cm";
	case SLIDE_MPP_TIFF_INCH:
		return "tiff-resolution-inch";
	case SLIDE_MPP_USER:
		return "user";
	default:
		return "none";
	}
}

/* strict C-locale number */
static int parse_num(const char *str, double *v)
{
	if (!str)
		return -1;
	char *end;
	/* the tools never call setlocale, so strtod reads a '.' */
	double x = strtod(str, &end);
	while (*end == ' ')
		end++;
	if (end == str || *end || !isfinite(x))
		return -1;
	*v = x;
	return 0;
}

int slide_base_mpp(const struct slide *s, double user_mpp, int force, double *mpp, int *source, struct err *e)
{
	double v;
	if (force && user_mpp > 0) {
		*mpp = user_mpp;
		*source = SLIDE_MPP_USER;
		return 0;
	}
	if (!parse_num(slide_property(s, OPENSLIDE_PROPERTY_NAME_MPP_X), &v) && v > 0 && v < 1000) {
		*mpp = v;
		*source = SLIDE_MPP_PROPERTY;
		return 0;
	}
	if (s->tiff_res && s->tiff_mpp >= 0.01 && s->tiff_mpp <= 100) {
		*mpp = s->tiff_mpp;
		*source = s->tiff_res;
		return 0;
	}
	if (user_mpp > 0) {
		*mpp = user_mpp;
		*source = SLIDE_MPP_USER;
		return 0;
	}
	*mpp = 0;
	*source = SLIDE_MPP_NONE;
	if (s->tiff_res)
		return err_set(e, ERR_FORMAT,
		               "%s: no µm/px: no openslide.mpp-x, and the TIFF resolution (%g pixels per %s) gives an "
		               "implausible %g µm/px\nhint: pass the slide's level-0 µm/px with --slide-mpp",
		               s->path, s->tiff_res_raw, s->tiff_res == SLIDE_MPP_TIFF_CM ? "cm" : "inch", s->tiff_mpp);
	return err_set(e, ERR_FORMAT,
	               "%s: no µm/px: neither openslide.mpp-x nor TIFF resolution tags\nhint: pass the slide's level-0 "
	               "µm/px with --slide-mpp",
	               s->path);
}

int slide_best_level(const struct slide *s, double ds)
{
	int best = 0;
	for (int L = 1; L < s->nlevels; L++)
		if (s->lds[L] <= ds * (1 + 1e-9))
			best = L;
	return best;
}

void slide_res_level(const struct slide *s, int level, struct slide_res *r)
{
	memset(r, 0, sizeof *r);
	r->level = level;
	r->level_ds = r->downsample = s->lds[level];
	r->scale = 1;
}

int slide_resolve(const struct slide *s, double target_mpp, double target_mag, double user_mpp, int force,
                  struct slide_res *r, struct err *e)
{
	memset(r, 0, sizeof *r);
	if ((target_mpp > 0) == (target_mag > 0))
		return err_set(e, ERR_USAGE, "give exactly one of a target µm/px or a magnification");
	int rc = slide_base_mpp(s, user_mpp, force, &r->mpp0, &r->mpp_source, e);
	if (rc)
		return rc;
	double ds;
	if (target_mag > 0) {
		double obj;
		if (!parse_num(slide_property(s, OPENSLIDE_PROPERTY_NAME_OBJECTIVE_POWER), &obj) && obj > 0 && obj < 1000) {
			r->mag_source = "openslide.objective-power";
		} else {
			static const double std[] = {2.5, 5, 10, 20, 40, 60, 80};
			double raw = 10.0 / r->mpp0, bestd = INFINITY;
			obj = 40;
			for (size_t i = 0; i < sizeof std / sizeof std[0]; i++) {
				double d = fabs(log(raw / std[i]));
				if (d < bestd) {
					bestd = d;
					obj = std[i];
				}
			}
			r->mag_source = "mpp";
		}
		r->mag0 = obj;
		ds = obj / target_mag;
	} else {
		ds = target_mpp / r->mpp0;
	}
	if (ds < 0.95)
		return err_set(e, ERR_USAGE,
		               "%s: the target (%.4g µm/px) is finer than level 0 (%.4g µm/px, from %s); upsampling is not "
		               "supported",
		               s->path, r->mpp0 * ds, r->mpp0, slide_mpp_source_name(r->mpp_source));
	if (ds < 1)
		ds = 1;
	int L = slide_best_level(s, ds * 1.005);
	double scale = ds / s->lds[L];
	if (fabs(scale - 1) < 0.005) {
		scale = 1;
		ds = s->lds[L];
	}
	r->level = L;
	r->level_ds = s->lds[L];
	r->scale = scale;
	r->downsample = ds;
	r->mpp = r->mpp0 * ds;
	return 0;
}

void slide_set_fast(struct slide *s, int on)
{
	s->fast_on = on;
}

int slide_fast_level(const struct slide *s, int level)
{
	return level >= 0 && level < s->nlevels && s->fl[level].ok;
}

void slide_stats(const struct slide *s, struct slide_stats *st)
{
	*st = s->st;
}

int slide_read_region(struct slide *s, int level, int64_t x, int64_t y, uint32_t w, uint32_t h, uint8_t *rgb,
                      struct err *e)
{
	if (level < 0 || level >= s->nlevels)
		return err_set(e, ERR_USAGE, "%s: level %d: the slide has levels 0..%d", s->path, level, s->nlevels - 1);
	if (w == 0 || h == 0 || w > SLIDE_REGION_MAX || h > SLIDE_REGION_MAX || (uint64_t)w * h > REGION_PIXELS_MAX)
		return err_set(e, ERR_LIMIT, "%s: region %ux%u: each side must be 1..%u and at most %u pixels in all", s->path,
		               w, h, SLIDE_REGION_MAX, REGION_PIXELS_MAX);
	const struct flevel *f = &s->fl[level];
	if (s->fast_on && f->ok && x >= 0 && y >= 0 && x % f->ds == 0 && y % f->ds == 0) {
		int64_t lx = x / f->ds, ly = y / f->ds;
		if (lx % f->tw == 0 && ly % f->th == 0 && lx < f->w && ly < f->h && (w % f->tw == 0 || lx + w >= f->w) &&
		    (h % f->th == 0 || ly + h >= f->h))
			return fast_region(s, level, lx, ly, w, h, rgb, e);
	}
	return os_region(s, level, x, y, w, h, rgb, e);
}

int slide_read_patch(struct slide *s, const struct slide_res *r, int64_t x, int64_t y, uint32_t n, uint8_t *rgb,
                     struct err *e)
{
	if (r->scale == 1)
		return slide_read_region(s, r->level, x, y, n, n, rgb, e);
	double lx = x / r->level_ds, ly = y / r->level_ds;
	double ix = floor(lx), iy = floor(ly), fx = lx - ix, fy = ly - iy;
	double sc = r->scale;
	uint32_t sw = (uint32_t)ceil(fx + n * sc - 1e-9), sh = (uint32_t)ceil(fy + n * sc - 1e-9);
	if (sw > SLIDE_REGION_MAX || sh > SLIDE_REGION_MAX)
		return err_set(e, ERR_LIMIT, "%s: patch of %u px at scale %g is too large", s->path, n, sc);
	int rc = grow((void **)&s->region, &s->region_cap, (size_t)sw * sh * 3, e);
	if (!rc)
		rc = grow((void **)&s->acc, &s->acc_cap, sizeof(float) * (size_t)sh * n * 3, e);
	if (rc)
		return rc;
	rc = slide_read_region(s, r->level, llround(ix * r->level_ds), llround(iy * r->level_ds), sw, sh, s->region, e);
	if (rc)
		return rc;
	/* horizontal box filter: sh rows x n columns */
	for (uint32_t row = 0; row < sh; row++) {
		const uint8_t *src = s->region + (size_t)row * sw * 3;
		float *dst = s->acc + (size_t)row * n * 3;
		for (uint32_t i = 0; i < n; i++) {
			double a = fx + i * sc, b = a + sc;
			double acc[3] = {0, 0, 0};
			for (uint32_t j = (uint32_t)floor(a); j < sw && j < b; j++) {
				double wgt = fmin(b, j + 1.0) - fmax(a, (double)j);
				if (wgt <= 0)
					continue;
				acc[0] += wgt * src[3 * j];
				acc[1] += wgt * src[3 * j + 1];
				acc[2] += wgt * src[3 * j + 2];
			}
			for (int c = 0; c < 3; c++)
				dst[3 * i + c] = (float)(acc[c] / sc);
		}
	}
	/* vertical */
	for (uint32_t i = 0; i < n; i++) {
		double a = fy + i * sc, b = a + sc;
		for (uint32_t col = 0; col < n; col++) {
			double acc[3] = {0, 0, 0};
			for (uint32_t j = (uint32_t)floor(a); j < sh && j < b; j++) {
				double wgt = fmin(b, j + 1.0) - fmax(a, (double)j);
				if (wgt <= 0)
					continue;
				const float *p = s->acc + ((size_t)j * n + col) * 3;
				acc[0] += wgt * p[0];
				acc[1] += wgt * p[1];
				acc[2] += wgt * p[2];
			}
			for (int c = 0; c < 3; c++) {
				double v = acc[c] / sc;
				rgb[((size_t)i * n + col) * 3 + c] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : v + 0.5);
			}
		}
	}
	return 0;
}
