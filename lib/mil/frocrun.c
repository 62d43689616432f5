/* frocrun.c - see frocrun.h */
#include "frocrun.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/afile.h"
#include "../base/jsonout.h"
#include "../base/version.h"
#include "../data/bag.h"
#include "../data/manifest.h"
#include "../data/scoretab.h"
#include "../wsi/annot.h"

/* ---- small helpers ---- */

static char *dupstr(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

static int ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
	return *a == *b;
}

static int ends_with_ci(const char *s, const char *suf, size_t *stem)
{
	size_t a = strlen(s), b = strlen(suf);
	if (a <= b || !ieq(s + a - b, suf))
		return 0;
	*stem = a - b;
	return 1;
}

static void note(struct frocrun *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void note(struct frocrun *r, const char *fmt, ...)
{
	char buf[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	char **q = realloc(r->notes, (r->nnotes + 1) * sizeof *q);
	if (!q)
		return;
	r->notes = q;
	if ((q[r->nnotes] = strdup(buf)))
		r->nnotes++;
}

static int in_list(const char *list, const char *id)
{
	if (!list)
		return 0;
	size_t n = strlen(id);
	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && !strncmp(p, id, n))
			return 1;
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

static int cmp_slide(const void *a, const void *b)
{
	const struct frocrun_slide *p = a, *q = b;
	return strcmp(p->id, q->id);
}

void frocrun_free(struct frocrun *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		struct frocrun_slide *s = &r->sl[i];
		free(s->id);
		free(s->annotation);
		free(s->det);
		free(s->hit);
		free(s->les);
		froc_slide_free(&s->s);
	}
	free(r->sl);
	froc_curve_free(&r->curve);
	for (size_t i = 0; i < r->nnotes; i++)
		free(r->notes[i]);
	free(r->notes);
	free(r);
}

static struct frocrun_slide *add_slide(struct frocrun *r, const char *id, size_t len, struct err *e)
{
	void *q = realloc(r->sl, (r->n + 1) * sizeof *r->sl);
	if (!q) {
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	r->sl = q;
	struct frocrun_slide *s = &r->sl[r->n];
	memset(s, 0, sizeof *s);
	s->label = -1;
	if (!(s->id = dupstr(id, len))) {
		err_set(e, ERR_NOMEM, "out of memory");
		return NULL;
	}
	r->n++;
	return s;
}

/* ---- slides from a folder of CSV files ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of dir, sorted (*names freed by the caller, each too). */
static int list_dir(const char *dir, char ***names, size_t *n, struct err *e)
{
	*names = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return err_sys(e, ERR_IO, "cannot open the folder '%s'", dir);
	struct dirent *de;
	size_t cap = 0;
	int rc = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			char **q = realloc(*names, cap * sizeof *q);
			if (!q) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				break;
			}
			*names = q;
		}
		if (!((*names)[*n] = strdup(de->d_name))) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
		(*n)++;
	}
	closedir(d);
	if (*names)
		qsort(*names, *n, sizeof **names, cmp_str);
	return rc;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int slides_from_csv(struct frocrun *r, struct err *e)
{
	char **names;
	size_t nn;
	int rc = list_dir(r->o.detections, &names, &nn, e);
	for (size_t i = 0; !rc && i < nn; i++) {
		size_t stem;
		if (!ends_with_ci(names[i], ".csv", &stem))
			continue;
		char id[512];
		snprintf(id, sizeof id, "%.*s", (int)stem, names[i]);
		if (in_list(r->o.exclude, id))
			continue;
		struct frocrun_slide *s = add_slide(r, names[i], stem, e);
		if (!s) {
			rc = ERR_NOMEM;
			break;
		}
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", r->o.detections, names[i]);
		rc = froc_read_csv(path, &s->det, &s->ndet, e);
	}
	free_names(names, nn);
	if (!rc && !r->n)
		rc = err_set(e, ERR_FORMAT, "%s: no .csv files (one per slide, named as the slide: confidence,X,Y lines)",
		             r->o.detections);
	return rc;
}

/* ---- slides from a scores table ---- */

static int patch_side(const struct frocrun *r, const char *id, double *side, struct err *e)
{
	if (r->o.patch0 > 0) {
		*side = r->o.patch0;
		return 0;
	}
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.wbag", r->o.bags, id);
	struct bag_reader *br;
	int rc = bag_open(&br, path, e);
	if (rc)
		return rc;
	uint32_t s = bag_reader_header(br)->patch_level0;
	bag_close(br);
	if (!s)
		return err_set(e, ERR_FORMAT, "%s: the header records no patch size (patch_level0 0)\n"
		               "hint: give the patch side in level-0 pixels (froc-report --patch N)", path);
	*side = s;
	return 0;
}

struct grp {
	const char *id;        /* the key: bag_id, a tab, the index */
	size_t len, row;       /* length of the bag id; row number */
};

static int cmp_grp(const void *a, const void *b)
{
	const struct grp *u = a, *v = b;
	size_t l = u->len < v->len ? u->len : v->len;
	int c = memcmp(u->id, v->id, l);
	if (!c)
		c = (u->len > v->len) - (u->len < v->len);
	if (!c)
		c = (u->row > v->row) - (u->row < v->row);
	return c;
}

struct patches {
	struct froc_patch *p;
	size_t n;
};

/* the table's rows of the split as (bag id, row), sorted by bag id then
 * row; *m of them (g owned) */
static int group_rows(const struct frocrun *r, const struct scoretab *t, struct grp **g, size_t *m,
                      struct err *e)
{
	*g = malloc((t->n ? t->n : 1) * sizeof **g);
	if (!*g)
		return err_set(e, ERR_NOMEM, "out of memory");
	*m = 0;
	for (size_t i = 0; i < t->n; i++)
		if (r->o.split < 0 || !t->has_split || t->split[i] == r->o.split) {
			const char *tab = strchr(t->key[i], '\t');
			(*g)[(*m)++] = (struct grp){t->key[i], tab ? (size_t)(tab - t->key[i]) : strlen(t->key[i]), i};
		}
	qsort(*g, *m, sizeof **g, cmp_grp);
	return 0;
}

/* the rows g[a..b) of one slide: its label from its bag row, its scored
 * patches into P (counts of scored and NA rows added to *nscored, *nna) */
static int gather_slide(struct frocrun *r, const struct scoretab *t, const struct grp *g, size_t a, size_t b,
                        int inst, int bagk, struct frocrun_slide *s, struct patches *P, size_t *nscored,
                        size_t *nna, struct err *e)
{
	P->n = 0;
	if (!(P->p = malloc((b - a) * sizeof *P->p)))
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t k = a; k < b; k++) {
		size_t i = g[k].row;
		if ((int)t->kind[i] == bagk && !isnan(t->label[i]))
			s->label = t->label[i] >= 0.5;
		if ((int)t->kind[i] != inst || isnan(t->x[i]) || isnan(t->y[i]))
			continue;
		double v = t->score[0][i]; /* scoretab_read_xy read only the one column */
		if (isnan(v)) {
			(*nna)++;
			continue;
		}
		P->p[P->n++] = (struct froc_patch){(int64_t)t->x[i], (int64_t)t->y[i], v};
		r->smin = fmin(r->smin, v);
		r->smax = fmax(r->smax, v);
		(*nscored)++;
	}
	return 0;
}

/* every slide's patches become detections (min-max normalised first
 * when asked, over all slides together) */
static int detect_all(struct frocrun *r, struct patches *pt, size_t npt, struct err *e)
{
	double span = r->smax - r->smin;
	int rc = 0;
	for (size_t i = 0; i < npt && !rc; i++) {
		struct frocrun_slide *s = &r->sl[i];
		struct patches *P = &pt[i];
		if (r->o.minmax)
			for (size_t k = 0; k < P->n; k++)
				P->p[k].score = span > 0 ? (P->p[k].score - r->smin) / span : 0.5;
		double side = 0;
		if (P->n)
			rc = patch_side(r, s->id, &side, e);
		if (!rc && P->n)
			rc = froc_detect(P->p, P->n, side, r->o.rule, r->o.threshold, &s->det, &s->ndet, e);
	}
	return rc;
}

static int slides_from_scores(struct frocrun *r, struct err *e)
{
	struct scoretab t;
	int rc = scoretab_read_xy(&t, r->o.scores, "label", r->o.score_col, e);
	if (rc)
		return rc;
	struct grp *g = NULL;
	size_t m = 0;
	if (!t.key)
		rc = err_set(e, ERR_FORMAT, "%s: no column 'bag_id' (formats/scores.md)", r->o.scores);
	else
		rc = group_rows(r, &t, &g, &m, e);
	int inst = -1, bagk = -1;
	for (int k = 0; k < t.n_kinds; k++) {
		if (!strcmp(t.kind_names[k], "instance") || !strcmp(t.kind_names[k], "all"))
			inst = k;
		if (!strcmp(t.kind_names[k], "bag"))
			bagk = k;
	}
	size_t nscored = 0, nna = 0, pcap = 0, npt = 0;
	struct patches *pt = NULL;
	r->smin = INFINITY;
	r->smax = -INFINITY;
	for (size_t a = 0, b; a < m && !rc; a = b) {
		for (b = a; b < m && g[b].len == g[a].len && !memcmp(g[b].id, g[a].id, g[a].len); b++)
			;
		char id[BAG_ID_MAX + 1];
		snprintf(id, sizeof id, "%.*s", (int)g[a].len, g[a].id);
		if (in_list(r->o.exclude, id))
			continue;
		if (r->n + 1 > pcap) {
			pcap = pcap ? 2 * pcap : 64;
			void *q = realloc(pt, pcap * sizeof *pt);
			if (!q) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				break;
			}
			pt = q;
		}
		struct frocrun_slide *s = add_slide(r, g[a].id, g[a].len, e);
		if (!s) {
			rc = ERR_NOMEM;
			break;
		}
		npt = r->n;
		rc = gather_slide(r, &t, g, a, b, inst, bagk, s, &pt[r->n - 1], &nscored, &nna, e);
	}
	free(g);
	scoretab_free(&t);
	if (!rc && !r->n)
		rc = err_set(e, ERR_FORMAT, "%s: no rows%s%s", r->o.scores, r->o.split >= 0 ? " with split " : "",
		             r->o.split >= 0 ? manifest_split_name(r->o.split) : "");
	if (!rc && !nscored)
		rc = err_set(e, ERR_FORMAT, "%s: no instance row with a %s (%zu NA)%s", r->o.scores, r->o.score_col, nna,
		             nna ? "\nhint: a model without a teacher has no teacher_score" : "");
	if (!rc && nna)
		note(r, "%s: %zu instance rows with %s NA left out", r->o.scores, nna, r->o.score_col);
	if (!rc)
		rc = detect_all(r, pt, npt, e);
	for (size_t i = 0; i < npt; i++)
		free(pt[i].p);
	free(pt);
	return rc;
}

/* ---- annotations and matching ---- */

static int attach_annotations(struct frocrun *r, struct err *e)
{
	char **names;
	size_t nn;
	int rc = list_dir(r->o.annotations, &names, &nn, e);
	if (rc)
		return rc;
	static const char *EXT[] = {".xml", ".geojson", ".json"};
	for (size_t i = 0; i < nn && !rc; i++)
		for (int x = 0; x < 3; x++) {
			size_t stem;
			if (!ends_with_ci(names[i], EXT[x], &stem))
				continue;
			for (size_t k = 0; k < r->n; k++) {
				struct frocrun_slide *s = &r->sl[k];
				if (strlen(s->id) != stem)
					continue;
				char base[512];
				snprintf(base, sizeof base, "%.*s", (int)stem, names[i]);
				if (!ieq(base, s->id))
					continue;
				char path[4096];
				snprintf(path, sizeof path, "%s/%s", r->o.annotations, names[i]);
				if (s->annotation) {
					rc = err_set(e, ERR_USAGE, "slide '%s': two annotations, '%s' and '%s'", s->id,
					             s->annotation, path);
					break;
				}
				if (!(s->annotation = strdup(path)))
					rc = err_set(e, ERR_NOMEM, "out of memory");
			}
		}
	free_names(names, nn);
	return rc;
}

static int match_slide(struct frocrun *r, struct frocrun_slide *s, struct err *e)
{
	struct lesion_map *m = NULL;
	int rc = 0;
	if (s->annotation) {
		struct annot *a;
		if ((rc = annot_load(&a, s->annotation, e)))
			return rc;
		rc = lesion_map_from_annot(&m, a, &r->o.lp, e);
		annot_free(a);
		if (rc)
			return rc;
	}
	int nl = m ? m->n : 0;
	uint8_t *itc = malloc(nl ? (size_t)nl : 1);
	s->hit = malloc((s->ndet ? s->ndet : 1) * sizeof *s->hit);
	s->les = malloc((nl ? (size_t)nl : 1) * sizeof *s->les);
	if (!itc || !s->hit || !s->les) {
		free(itc);
		lesion_map_free(m);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	for (int k = 0; k < nl; k++) {
		itc[k] = (uint8_t)m->les[k].itc;
		s->les[k] = m->les[k];
	}
	s->nles = nl;
	s->n_itc = m ? m->n_itc : 0;
	s->tumour_px = m ? m->tumour_px : 0;
	for (size_t i = 0; i < s->ndet; i++)
		s->hit[i] = lesion_at(m, s->det[i].x, s->det[i].y);
	rc = froc_slide_set(&s->s, s->det, s->ndet, s->hit, nl, itc, e);
	free(itc);
	lesion_map_free(m);
	return rc;
}

int frocrun_load(struct frocrun **rp, const struct frocrun_opts *o, struct err *e)
{
	*rp = NULL;
	if (!!o->scores == !!o->detections)
		return err_set(e, ERR_USAGE, "give either a scores table or a folder of detection CSV files");
	if (!o->annotations)
		return err_set(e, ERR_USAGE, "give the folder of annotations");
	if (o->scores && !(o->patch0 > 0) && !o->bags)
		return err_set(e, ERR_USAGE, "give the patch side (level-0 pixels) or the folder of bags that records it");
	int rc = lesion_params_check(&o->lp, e);
	if (rc)
		return rc;
	struct frocrun *r = err_calloc(e, 1, sizeof *r);
	if (!r)
		return ERR_NOMEM;
	r->o = *o;
	r->smin = r->smax = NAN;
	for (int k = 0; k <= FROC_NTARGETS; k++)
		r->lo[k] = r->hi[k] = NAN;
	rc = o->scores ? slides_from_scores(r, e) : slides_from_csv(r, e);
	if (!rc) {
		qsort(r->sl, r->n, sizeof *r->sl, cmp_slide);
		for (size_t i = 1; i < r->n && !rc; i++)
			if (ieq(r->sl[i - 1].id, r->sl[i].id))
				rc = err_set(e, ERR_USAGE, "slides '%s' and '%s' differ only in case", r->sl[i - 1].id, r->sl[i].id);
	}
	if (!rc)
		rc = attach_annotations(r, e);
	for (size_t i = 0; i < r->n && !rc; i++) {
		struct frocrun_slide *s = &r->sl[i];
		rc = match_slide(r, s, e);
		r->ndet += s->ndet;
		r->nles += (size_t)s->s.lesions;
		r->n_itc += (size_t)s->n_itc;
		r->n_tumour += s->annotation != NULL;
		if (!rc && s->label == 1 && !s->annotation)
			note(r, "slide '%s' is labelled tumour but has no annotation in %s: evaluated as a slide without "
			     "lesions", s->id, o->annotations);
		if (!rc && s->label == 0 && s->s.lesions > 0)
			note(r, "slide '%s' is labelled normal but its annotation has %d lesions", s->id, s->s.lesions);
	}
	if (rc) {
		frocrun_free(r);
		return rc;
	}
	*rp = r;
	return 0;
}

int frocrun_compute(struct frocrun *r, int boot, uint64_t seed, struct err *e)
{
	froc_curve_free(&r->curve);
	if (r->n && !r->nles)
		return err_set(e, ERR_USAGE, "%zu slides, %zu with annotations: no lesion to detect (%zu ITCs, which count "
		               "neither way): the sensitivity is undefined\nhint: lesions under %g um (dilated) are ITCs at "
		               "%g um per level-0 pixel; is --mpp the slides' resolution?", r->n, r->n_tumour, r->n_itc,
		               r->o.lp.itc_um, r->o.lp.mpp);
	struct froc_slide *s = malloc((r->n ? r->n : 1) * sizeof *s);
	if (!s)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < r->n; i++)
		s[i] = r->sl[i].s;
	int rc = froc_compute(s, r->n, NULL, &r->curve, e);
	r->boot = boot;
	r->seed = seed;
	if (!rc && boot > 0)
		rc = froc_bootstrap(s, r->n, boot, seed, r->lo, r->hi, e);
	free(s);
	return rc;
}

/* ---- reports ---- */

static void num(FILE *f, double v)
{
	if (!isfinite(v)) {
		fputs("null", f);
		return;
	}
	char b[40];
	froc_format_double(b, sizeof b, v);
	fputs(b, f);
}

static const char *rule_name(int rule)
{
	return rule == FROC_RULE_PATCH ? "patch" : "maxima";
}

/* the run's parameters as a JSON object */
static void json_params(const struct frocrun *r, FILE *f)
{
	const struct frocrun_opts *o = &r->o;
	fprintf(f, "{\"level\":%d,\"mpp\":", o->lp.level);
	num(f, o->lp.mpp);
	fprintf(f, ",\"tolerance_um\":");
	num(f, o->lp.tolerance_um);
	fprintf(f, ",\"itc_um\":");
	num(f, o->lp.itc_um);
	fprintf(f, ",\"source\":");
	json_string(f, o->scores ? o->scores : o->detections);
	if (o->scores) {
		fprintf(f, ",\"score\":");
		json_string(f, o->score_col);
		fprintf(f, ",\"split\":");
		json_string(f, o->split < 0 ? "all" : manifest_split_name(o->split));
		fprintf(f, ",\"minmax\":%s,\"score_range\":[", o->minmax ? "true" : "false");
		num(f, r->smin);
		fputc(',', f);
		num(f, r->smax);
		fprintf(f, "],\"rule\":\"%s\",\"threshold\":", rule_name(o->rule));
		num(f, o->threshold);
	}
	fprintf(f, ",\"annotations\":");
	json_string(f, o->annotations);
	fputc('}', f);
}

/* one slide, its lesions and whether each was hit */
static void json_slide(const struct frocrun_slide *s, FILE *f)
{
	fprintf(f, "{\"id\":");
	json_string(f, s->id);
	fprintf(f, ",\"annotation\":");
	if (s->annotation)
		json_string(f, s->annotation);
	else
		fputs("null", f);
	fprintf(f, ",\"label\":");
	if (s->label >= 0)
		fprintf(f, "%d", s->label);
	else
		fputs("null", f);
	fprintf(f, ",\"tumour_px\":%llu,\"detections\":%zu,\"false_positives\":%zu,\"hits\":%zu,\"itc_hits\":%zu,"
	        "\"lesions\":[", (unsigned long long)s->tumour_px, s->ndet, s->s.nfp, s->s.hits, s->s.itc_hits);
	for (int k = 0; k < s->nles; k++) {
		const struct lesion *L = &s->les[k];
		fprintf(f, "%s{\"label\":%d,\"first\":[%lld,%lld],\"area\":%u,\"major_axis_px\":", k ? "," : "",
		        L->label, (long long)L->first_r, (long long)L->first_c, L->area);
		num(f, L->major_axis);
		fprintf(f, ",\"diameter_um\":");
		num(f, L->diameter_um);
		fprintf(f, ",\"itc\":%s,\"centroid\":[", L->itc ? "true" : "false");
		num(f, L->cx);
		fputc(',', f);
		num(f, L->cy);
		fprintf(f, "],\"hit\":");
		if (!L->itc && s->s.tp[k] > 0)
			num(f, (double)s->s.tp[k]);
		else
			fputs("null", f);
		fputc('}', f);
	}
	fputs("]}", f);
}

/* "name":[v0,v1,...] */
static void json_array(FILE *f, const char *name, const double *v, size_t n)
{
	fprintf(f, "\"%s\":[", name);
	for (size_t k = 0; k < n; k++) {
		if (k)
			fputc(',', f);
		num(f, v[k]);
	}
	fputc(']', f);
}

void frocrun_write_json(const struct frocrun *r, FILE *f)
{
	fprintf(f, "{\"tool\":\"froc-report\",\"version\":\"%s\",\"params\":", WENO_VERSION);
	json_params(r, f);
	fprintf(f, ",\"slides\":[");
	for (size_t i = 0; i < r->n; i++) {
		fprintf(f, "%s\n", i ? "," : "");
		json_slide(&r->sl[i], f);
	}
	const struct froc_curve *c = &r->curve;
	fprintf(f, "\n],\"n_slides\":%zu,\"n_tumour_slides\":%zu,\"n_lesions\":%zu,\"n_itc\":%zu,\"n_detections\":%zu,"
	        "\"n_false_positives\":%zu,\"n_lesions_hit\":%zu,\n\"curve\":{",
	        r->n, r->n_tumour, r->nles, r->n_itc, r->ndet, c->fp, c->tp);
	json_array(f, "threshold", c->thr, c->n);
	fprintf(f, ",\n");
	json_array(f, "fps", c->fps, c->n);
	fprintf(f, ",\n");
	json_array(f, "sensitivity", c->sens, c->n);
	fprintf(f, "},\n\"sensitivity_at\":[");
	for (int k = 0; k < FROC_NTARGETS; k++) {
		fprintf(f, "%s{\"fps\":", k ? "," : "");
		num(f, froc_targets[k]);
		fprintf(f, ",\"sensitivity\":");
		num(f, c->at[k]);
		fprintf(f, ",\"ci\":[");
		num(f, r->lo[k]);
		fputc(',', f);
		num(f, r->hi[k]);
		fprintf(f, "]}");
	}
	fprintf(f, "],\n\"score\":");
	num(f, c->score);
	fprintf(f, ",\"score_ci\":[");
	num(f, r->lo[FROC_NTARGETS]);
	fputc(',', f);
	num(f, r->hi[FROC_NTARGETS]);
	fprintf(f, "],\"bootstrap\":%d,\"seed\":%llu}\n", r->boot, (unsigned long long)r->seed);
}

int frocrun_write_curve(const struct frocrun *r, const char *path, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	fprintf(af.fp, "threshold\tfps_per_slide\tsensitivity\n");
	const struct froc_curve *c = &r->curve;
	for (size_t k = 0; k < c->n; k++) {
		char a[40], b[40], d[40];
		froc_format_double(a, sizeof a, c->thr[k]);
		froc_format_double(b, sizeof b, c->fps[k]);
		froc_format_double(d, sizeof d, c->sens[k]);
		fprintf(af.fp, "%s\t%s\t%s\n", isfinite(c->thr[k]) ? a : "inf", b, d);
	}
	return afile_commit(&af, e);
}

/* the fewest digits that read back to the same float (hits are stored as
 * floats, as the challenge stores them) */
static void format_float(char *buf, size_t cap, float v)
{
	for (int p = 1; p <= 9; p++) {
		snprintf(buf, cap, "%.*g", p, (double)v);
		if (strtof(buf, NULL) == v)
			return;
	}
}

int frocrun_write_lesions(const struct frocrun *r, const char *path, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	fprintf(af.fp, "slide\tlabel\tfirst_row\tfirst_col\tarea_px\tmajor_axis_px\tdiameter_um\titc\tcentroid_x\t"
	        "centroid_y\thit\n");
	for (size_t i = 0; i < r->n; i++) {
		const struct frocrun_slide *s = &r->sl[i];
		for (int k = 0; k < s->nles; k++) {
			const struct lesion *L = &s->les[k];
			char hit[40] = "NA";
			if (!L->itc && s->s.tp[k] > 0)
				format_float(hit, sizeof hit, s->s.tp[k]);
			fprintf(af.fp, "%s\t%d\t%lld\t%lld\t%u\t%.6f\t%.2f\t%d\t%.1f\t%.1f\t%s\n", s->id, L->label,
			        (long long)L->first_r, (long long)L->first_c, L->area, L->major_axis, L->diameter_um, L->itc,
			        L->cx, L->cy, hit);
		}
	}
	return afile_commit(&af, e);
}

int frocrun_write_detections(const struct frocrun *r, const char *dir, struct err *e)
{
	int rc = afile_mkdirs(dir, e);
	for (size_t i = 0; i < r->n && !rc; i++) {
		if (strchr(r->sl[i].id, '/') || !strcmp(r->sl[i].id, "..") || !strcmp(r->sl[i].id, ".")) {
			rc = err_set(e, ERR_FORMAT, "slide '%s': not a file name, cannot be written to %s", r->sl[i].id, dir);
			break;
		}
		char path[4096];
		snprintf(path, sizeof path, "%s/%s.csv", dir, r->sl[i].id);
		rc = froc_write_csv(path, r->sl[i].det, r->sl[i].ndet, e);
	}
	return rc;
}
