/* froc.c - see froc.h and lib/wsi/FROC.md */
#include "froc.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/afile.h"
#include "../base/rng.h"

const double froc_targets[FROC_NTARGETS] = {0.25, 0.5, 1, 2, 4, 8};

/* ---- detections from patches ---- */

struct order {
	int64_t x, y;
	size_t i;
};

static int cmp_order(const void *a, const void *b)
{
	const struct order *p = a, *q = b;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return (p->i > q->i) - (p->i < q->i);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return (x > y) - (x < y);
}

static size_t uf_find(size_t *par, size_t i)
{
	while (par[i] != i) {
		par[i] = par[par[i]];
		i = par[i];
	}
	return i;
}

int froc_detect(const struct froc_patch *p, size_t n, double patch0, int rule, double threshold,
                struct froc_det **out, size_t *nout, struct err *e)
{
	*out = NULL;
	*nout = 0;
	if (!(patch0 > 0) || !isfinite(patch0) || patch0 > 1e9)
		return err_set(e, ERR_USAGE, "patch side %g: expected a positive number of level-0 pixels", patch0);
	if (rule != FROC_RULE_PATCH && rule != FROC_RULE_MAXIMA)
		return err_set(e, ERR_USAGE, "detection rule %d: unknown", rule);
	if (isnan(threshold))
		return err_set(e, ERR_USAGE, "detection threshold: not a number");
	int64_t half = (int64_t)floor(patch0 / 2);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		m += p[i].score >= threshold; /* NaN never is */
	if (!m)
		return 0;
	struct froc_det *d = err_malloc(e, m * sizeof *d);
	if (!d)
		return ERR_NOMEM;
	if (rule == FROC_RULE_PATCH) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++)
			if (p[i].score >= threshold)
				d[k++] = (struct froc_det){p[i].x + half, p[i].y + half, p[i].score};
		*out = d;
		*nout = k;
		return 0;
	}
	/* maxima: union-find over the kept patches, neighbours found in (y, x)
	 * order: for each patch, the later ones with y within s */
	struct order *o = err_malloc(e, m * sizeof *o);
	size_t *par = err_malloc(e, m * sizeof *par), *best = err_malloc(e, m * sizeof *best);
	if (!o || !par || !best) {
		free(d);
		free(o);
		free(par);
		free(best);
		return ERR_NOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (p[i].score >= threshold)
			o[k++] = (struct order){p[i].x, p[i].y, i};
	qsort(o, m, sizeof *o, cmp_order);
	for (size_t a = 0; a < m; a++)
		par[a] = a;
	double s = patch0;
	for (size_t a = 0; a < m; a++)
		for (size_t b = a + 1; b < m && (double)(o[b].y - o[a].y) <= s; b++) {
			double dx = (double)(o[b].x - o[a].x);
			if (fabs(dx) <= s) {
				size_t ra = uf_find(par, a), rb = uf_find(par, b);
				if (ra != rb)
					par[ra < rb ? rb : ra] = ra < rb ? ra : rb;
			}
		}
	/* the peak of each region: highest score, then lowest input index */
	for (size_t a = 0; a < m; a++)
		best[a] = (size_t)-1;
	for (size_t a = 0; a < m; a++) {
		size_t r = uf_find(par, a);
		size_t cur = best[r], i = o[a].i;
		if (cur == (size_t)-1 || p[i].score > p[cur].score || (p[i].score == p[cur].score && i < cur))
			best[r] = i;
	}
	/* in input order of the peaks */
	size_t np = 0;
	for (size_t a = 0; a < m; a++)
		if (par[a] == a)
			best[np++] = best[a];
	qsort(best, np, sizeof *best, cmp_size);
	for (size_t j = 0; j < np; j++) {
		const struct froc_patch *q = &p[best[j]];
		d[j] = (struct froc_det){q->x + half, q->y + half, q->score};
	}
	free(o);
	free(par);
	free(best);
	*out = d;
	*nout = np;
	return 0;
}

/* ---- the challenge's CSV ---- */

/* a finite number filling [s, s+n) but for spaces; -1 when not */
static int parse_field(const char *s, size_t n, double *v)
{
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (!n || n > 64)
		return -1;
	char buf[65];
	memcpy(buf, s, n);
	buf[n] = 0;
	char *end;
	errno = 0;
	double x = strtod(buf, &end);
	/* strtod would take hex floats, inf and nan; the challenge's float()
	 * takes no hex, and neither side wants inf or nan */
	if (*end || errno == ERANGE || !isfinite(x) || strpbrk(buf, "xXnN"))
		return -1;
	*v = x;
	return 0;
}

int froc_parse_csv(const char *buf, size_t n, const char *name, struct froc_det **dp, size_t *nd, struct err *e)
{
	*dp = NULL;
	*nd = 0;
	if (n > FROC_CSV_MAX)
		return err_set(e, ERR_LIMIT, "%s: %zu bytes: larger than %u", name, n, FROC_CSV_MAX);
	struct froc_det *d = NULL;
	size_t cnt = 0, cap = 0, line = 0;
	int seen = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && buf[j] != '\n')
			j++;
		line++;
		size_t len = j - i;
		const char *l = buf + i;
		i = j + 1;
		while (len && (l[len - 1] == '\r' || isspace((unsigned char)l[len - 1])))
			len--;
		size_t k0 = 0;
		while (k0 < len && isspace((unsigned char)l[k0]))
			k0++;
		if (k0 == len)
			continue; /* blank */
		/* the first three comma-separated fields */
		const char *f[3];
		size_t fl[3], nf = 0, a = 0;
		for (size_t k = 0; k <= len && nf < 3; k++)
			if (k == len || l[k] == ',') {
				f[nf] = l + a;
				fl[nf++] = k - a;
				a = k + 1;
			}
		double c, x, y;
		int bad0 = nf < 1 || parse_field(f[0], fl[0], &c);
		if (!seen++ && bad0)
			continue; /* a header */
		if (nf < 3) {
			free(d);
			return err_set(e, ERR_FORMAT, "%s: line %zu: %zu field%s, expected confidence,X,Y", name, line, nf,
			               nf == 1 ? "" : "s");
		}
		if (bad0) {
			free(d);
			return err_set(e, ERR_FORMAT, "%s: line %zu: confidence '%.*s': expected a finite number", name, line,
			               (int)(fl[0] > 40 ? 40 : fl[0]), f[0]);
		}
		if (parse_field(f[1], fl[1], &x) || parse_field(f[2], fl[2], &y) || fabs(x) > FROC_COORD_MAX ||
		    fabs(y) > FROC_COORD_MAX) {
			free(d);
			return err_set(e, ERR_FORMAT, "%s: line %zu: X '%.*s', Y '%.*s': expected level-0 pixel coordinates",
			               name, line, (int)(fl[1] > 40 ? 40 : fl[1]), f[1], (int)(fl[2] > 40 ? 40 : fl[2]), f[2]);
		}
		if (cnt == cap) {
			if (cnt >= FROC_DETS_MAX) {
				free(d);
				return err_set(e, ERR_LIMIT, "%s: line %zu: more than %u detections", name, line, FROC_DETS_MAX);
			}
			size_t nc = cap ? 2 * cap : 256;
			struct froc_det *q = realloc(d, nc * sizeof *q);
			if (!q) {
				free(d);
				return err_set(e, ERR_NOMEM, "%s: out of memory at line %zu", name, line);
			}
			d = q;
			cap = nc;
		}
		d[cnt++] = (struct froc_det){(int64_t)floor(x), (int64_t)floor(y), c};
	}
	*dp = d;
	*nd = cnt;
	return 0;
}

int froc_read_csv(const char *path, struct froc_det **d, size_t *nd, struct err *e)
{
	*d = NULL;
	*nd = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	struct stat st;
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		fclose(f);
		return err_set(e, ERR_IO, "cannot open '%s': not a regular file", path);
	}
	if ((uint64_t)st.st_size > FROC_CSV_MAX) {
		fclose(f);
		return err_set(e, ERR_LIMIT, "%s: %lld bytes: larger than %u", path, (long long)st.st_size, FROC_CSV_MAX);
	}
	size_t n = (size_t)st.st_size;
	char *buf = malloc(n ? n : 1);
	if (!buf) {
		fclose(f);
		return err_set(e, ERR_NOMEM, "out of memory reading '%s'", path);
	}
	if (n && fread(buf, 1, n, f) != n) {
		free(buf);
		fclose(f);
		return err_sys(e, ERR_IO, "cannot read '%s'", path);
	}
	fclose(f);
	int rc = froc_parse_csv(buf, n, path, d, nd, e);
	free(buf);
	return rc;
}

void froc_format_double(char *buf, size_t cap, double v)
{
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, cap, "%.*g", p, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

int froc_write_csv(const char *path, const struct froc_det *d, size_t n, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	char num[40];
	for (size_t i = 0; i < n; i++) {
		froc_format_double(num, sizeof num, d[i].conf);
		fprintf(af.fp, "%s,%lld,%lld\n", num, (long long)d[i].x, (long long)d[i].y);
	}
	return afile_commit(&af, e);
}

/* ---- matching ---- */

void froc_slide_free(struct froc_slide *s)
{
	if (!s)
		return;
	free(s->fp);
	free(s->tp);
	memset(s, 0, sizeof *s);
}

int froc_slide_set(struct froc_slide *s, const struct froc_det *d, size_t n, const int *hit, int nlab,
                   const uint8_t *itc, struct err *e)
{
	memset(s, 0, sizeof *s);
	if (nlab < 0)
		return err_set(e, ERR_USAGE, "%d lesion labels", nlab);
	s->fp = err_malloc(e, (n ? n : 1) * sizeof *s->fp);
	s->tp = err_calloc(e, nlab ? (size_t)nlab : 1, sizeof *s->tp);
	if (!s->fp || !s->tp) {
		froc_slide_free(s);
		return ERR_NOMEM;
	}
	s->ntp = (size_t)nlab;
	for (int k = 0; k < nlab; k++)
		s->lesions += !itc[k];
	for (size_t i = 0; i < n; i++) {
		int k = hit ? hit[i] : 0;
		if (k < 0 || k > nlab) {
			froc_slide_free(s);
			return err_set(e, ERR_USAGE, "detection %zu: label %d of %d", i, k, nlab);
		}
		if (k == 0) {
			s->fp[s->nfp++] = d[i].conf;
		} else if (itc[k - 1]) {
			s->itc_hits++;
		} else {
			s->hits++;
			/* the challenge keeps the largest hit in a float32 array
			 * (FROC.md); comparing in double first gives the same
			 * stored value as comparing in float */
			if (d[i].conf > (double)s->tp[k - 1])
				s->tp[k - 1] = (float)d[i].conf;
		}
	}
	return 0;
}

/* ---- the curve ---- */

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int cmp_flt(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

void froc_curve_free(struct froc_curve *c)
{
	if (!c)
		return;
	free(c->thr);
	free(c->fps);
	free(c->sens);
	memset(c, 0, sizeof *c);
}

double froc_sens_at(const struct froc_curve *c, double x)
{
	/* xp = fps reversed (ascending), fp = sens reversed; numpy.interp:
	 * below xp[0] fp[0], above xp[-1] fp[-1], else j the last index with
	 * xp[j] <= x: fp[j] when x == xp[j], else linear towards j + 1 */
	size_t n = c->n;
	if (!n)
		return NAN;
#define XP(j) (c->fps[n - 1 - (j)])
#define FP(j) (c->sens[n - 1 - (j)])
	if (x < XP(0))
		return FP(0);
	if (x >= XP(n - 1))
		return FP(n - 1);
	size_t lo = 0, hi = n; /* first index with xp > x */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (x >= XP(mid))
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t j = lo - 1;
	if (x == XP(j))
		return FP(j);
	double slope = (FP(j + 1) - FP(j)) / (XP(j + 1) - XP(j));
	return slope * (x - XP(j)) + FP(j);
#undef XP
#undef FP
}

int froc_compute(const struct froc_slide *s, size_t ns, const size_t *pick, struct froc_curve *c, struct err *e)
{
	memset(c, 0, sizeof *c);
	size_t nfp = 0, ntp = 0;
	long les = 0;
	for (size_t q = 0; q < ns; q++) {
		const struct froc_slide *t = &s[pick ? pick[q] : q];
		nfp += t->nfp;
		ntp += t->ntp;
		les += t->lesions;
	}
	if (!ns)
		return err_set(e, ERR_USAGE, "no slides to evaluate");
	if (les <= 0)
		return err_set(e, ERR_USAGE, "%zu slides and no lesion to detect (every lesion an ITC, or no tumour): "
		               "the sensitivity is undefined", ns);
	double *fp = malloc((nfp ? nfp : 1) * sizeof *fp), *all = malloc((nfp + ntp ? nfp + ntp : 1) * sizeof *all);
	float *tp = malloc((ntp ? ntp : 1) * sizeof *tp);
	if (!fp || !tp || !all) {
		free(fp);
		free(tp);
		free(all);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	size_t a = 0, b = 0;
	for (size_t q = 0; q < ns; q++) {
		const struct froc_slide *t = &s[pick ? pick[q] : q];
		memcpy(fp + a, t->fp, t->nfp * sizeof *fp);
		memcpy(tp + b, t->tp, t->ntp * sizeof *tp);
		a += t->nfp;
		b += t->ntp;
	}
	qsort(fp, nfp, sizeof *fp, cmp_dbl);
	qsort(tp, ntp, sizeof *tp, cmp_flt);
	memcpy(all, fp, nfp * sizeof *all);
	for (size_t i = 0; i < ntp; i++)
		all[nfp + i] = tp[i];
	qsort(all, nfp + ntp, sizeof *all, cmp_dbl);
	size_t nu = 0;
	for (size_t i = 0; i < nfp + ntp; i++)
		if (!nu || all[i] != all[nu - 1])
			all[nu++] = all[i];
	/* points: thresholds all[1..nu-1], then (0, 0) */
	size_t np = (nu ? nu - 1 : 0) + 1;
	c->thr = malloc(np * sizeof *c->thr);
	c->fps = malloc(np * sizeof *c->fps);
	c->sens = malloc(np * sizeof *c->sens);
	if (!c->thr || !c->fps || !c->sens) {
		free(fp);
		free(tp);
		free(all);
		froc_curve_free(c);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	c->n = np;
	c->slides = ns;
	c->lesions = les;
	size_t ia = 0, ib = 0;
	for (size_t k = 1; k < nu; k++) {
		double t = all[k];
		float tf = (float)t;
		while (ia < nfp && fp[ia] < t)
			ia++;
		while (ib < ntp && tp[ib] < tf)
			ib++;
		c->thr[k - 1] = t;
		c->fps[k - 1] = (double)(nfp - ia) / (double)ns;
		c->sens[k - 1] = (double)(ntp - ib) / (double)les;
	}
	c->thr[np - 1] = INFINITY;
	c->fps[np - 1] = 0;
	c->sens[np - 1] = 0;
	c->fp = nfp;
	for (size_t i = 0; i < ntp; i++)
		c->tp += tp[i] > 0;
	double sum = 0;
	for (int k = 0; k < FROC_NTARGETS; k++) {
		c->at[k] = froc_sens_at(c, froc_targets[k]);
		sum += c->at[k];
	}
	c->score = sum / FROC_NTARGETS;
	free(fp);
	free(tp);
	free(all);
	return 0;
}

static double percentile(const double *sorted, size_t n, double p)
{
	double h = (double)(n - 1) * p;
	size_t lo = (size_t)floor(h);
	size_t hi = lo + 1 < n ? lo + 1 : lo;
	return sorted[lo] + (h - (double)lo) * (sorted[hi] - sorted[lo]);
}

int froc_bootstrap(const struct froc_slide *s, size_t ns, int reps, uint64_t seed, double lo[FROC_NTARGETS + 1],
                   double hi[FROC_NTARGETS + 1], struct err *e)
{
	for (int k = 0; k <= FROC_NTARGETS; k++)
		lo[k] = hi[k] = NAN;
	if (reps <= 0)
		return 0;
	if (ns > UINT32_MAX)
		return err_set(e, ERR_LIMIT, "%zu slides: too many to resample", ns);
	size_t *with = malloc((ns ? ns : 1) * sizeof *with), *without = malloc((ns ? ns : 1) * sizeof *without);
	size_t *pick = malloc((ns ? ns : 1) * sizeof *pick);
	double *v = malloc((size_t)reps * (FROC_NTARGETS + 1) * sizeof *v);
	if (!with || !without || !pick || !v) {
		free(with);
		free(without);
		free(pick);
		free(v);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	size_t n1 = 0, n0 = 0;
	for (size_t i = 0; i < ns; i++) {
		if (s[i].lesions > 0)
			with[n1++] = i;
		else
			without[n0++] = i;
	}
	struct rng r;
	rng_seed(&r, seed, 0xf70c);
	int rc = 0;
	for (int b = 0; b < reps && !rc; b++) {
		size_t q = 0;
		for (size_t i = 0; i < n1; i++)
			pick[q++] = with[rng_below(&r, (uint32_t)n1)];
		for (size_t i = 0; i < n0; i++)
			pick[q++] = without[rng_below(&r, (uint32_t)n0)];
		struct froc_curve c;
		rc = froc_compute(s, ns, pick, &c, e);
		if (rc)
			break;
		for (int k = 0; k < FROC_NTARGETS; k++)
			v[(size_t)k * reps + b] = c.at[k];
		v[(size_t)FROC_NTARGETS * reps + b] = c.score;
		froc_curve_free(&c);
	}
	if (!rc)
		for (int k = 0; k <= FROC_NTARGETS; k++) {
			double *vk = v + (size_t)k * reps;
			qsort(vk, (size_t)reps, sizeof *vk, cmp_dbl);
			lo[k] = percentile(vk, (size_t)reps, 0.025);
			hi[k] = percentile(vk, (size_t)reps, 0.975);
		}
	free(with);
	free(without);
	free(pick);
	free(v);
	return rc;
}
