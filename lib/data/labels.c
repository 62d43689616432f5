/* labels.c - see labels.h */
#include "labels.h"

#include <stdlib.h>
#include <string.h>

#include "../base/rng.h"
#include "../base/textfile.h"
#include "manifest.h"

void labels_free(struct labels *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->rows[i].slide_id);
		free(l->rows[i].case_id);
	}
	free(l->rows);
	memset(l, 0, sizeof *l);
}

/* Splits a CSV line in place into *f (grown as needed): double quotes
 * allowed around fields, spaces around them dropped.  Returns the count. */
static int csv_fields(char *line, char ***f, int *cap, struct err *e)
{
	int n = 0;
	char *p = line;
	for (;;) {
		if (n == *cap) {
			int nc = *cap ? 2 * *cap : 16;
			char **q = realloc(*f, (size_t)nc * sizeof *q);
			if (!q)
				return err_set(e, ERR_NOMEM, "out of memory");
			*f = q;
			*cap = nc;
		}
		while (*p == ' ')
			p++;
		if (*p == '"') {
			char *q = ++p, *o = p;
			while (*q && !(*q == '"' && q[1] != '"')) {
				if (*q == '"')
					q++;
				*o++ = *q++;
			}
			if (*q == '"')
				q++;
			*o = 0;
			(*f)[n++] = p;
			p = strchr(q, ',');
			if (!p)
				return n;
			p++;
			continue;
		}
		(*f)[n++] = p;
		char *c = strchr(p, ',');
		if (c)
			*c = 0;
		size_t l = strlen(p);
		while (l && p[l - 1] == ' ')
			p[--l] = 0;
		if (!c)
			return n;
		p = c + 1;
	}
}

/* which fields hold what; -1 when none */
struct cols {
	int slide, label, split, cases, n;
};

static int parse_header(const struct textfile *tf, char **fld, int nf, struct cols *c, struct err *e)
{
	static const char *names[4] = {"slide_id", "label", "split", "case_id"};
	int *dst[4] = {&c->slide, &c->label, &c->split, &c->cases};
	c->n = nf;
	for (int i = 0; i < nf; i++)
		for (int j = 0; j < 4; j++)
			if (!strcmp(fld[i], names[j])) {
				if (*dst[j] >= 0)
					return err_set(e, ERR_FORMAT, "%s: line %ld: column '%s' twice in the header",
					               tf->path, tf->lineno, names[j]);
				*dst[j] = i;
			}
	if (c->slide < 0 || c->label < 0)
		return err_set(e, ERR_FORMAT, "%s: line %ld: header needs the columns slide_id and label (and "
		               "optionally case_id, split)", tf->path, tf->lineno);
	return 0;
}

/* a slide id must be a file name inside the bag folder */
static const char *bad_id(const char *id)
{
	if (!id[0])
		return "is empty";
	if (!strcmp(id, ".") || !strcmp(id, ".."))
		return "is not a file name";
	if (strchr(id, '/'))
		return "holds a '/': a slide id names a bag inside --bag-dir, not a path";
	for (const char *p = id; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return "holds a control character";
	return NULL;
}

static int parse_row(struct labels_row *r, const struct textfile *tf, char **fld, const struct cols *c,
                     const struct labels_opts *o, struct err *e)
{
	memset(r, 0, sizeof *r);
	r->line = tf->lineno;
	const char *id = fld[c->slide], *lab = fld[c->label], *why = bad_id(id);
	if (why)
		return err_set(e, ERR_FORMAT, "%s: line %ld, column slide_id: '%.80s' %s", tf->path, tf->lineno, id,
		               why);
	r->label = -1;
	if (!strcmp(lab, "0") || !strcmp(lab, "1"))
		r->label = lab[0] - '0';
	else if (o->positive && !strcmp(lab, o->positive))
		r->label = 1;
	else if (o->negative && !strcmp(lab, o->negative))
		r->label = 0;
	if (r->label < 0)
		return err_set(e, ERR_FORMAT, "%s: line %ld, column label: '%s', expected 0 or 1%s", tf->path,
		               tf->lineno, lab,
		               o->positive || o->negative ? " or the names given by --positive/--negative"
		                                          : "\nhint: map text labels with --positive NAME --negative NAME");
	r->split = o->default_split;
	if (c->split >= 0 && fld[c->split][0]) {
		r->split = manifest_split_parse(fld[c->split]);
		if (r->split < 0)
			return err_set(e, ERR_FORMAT, "%s: line %ld, column split: '%s', expected train, val, test or "
			               "none", tf->path, tf->lineno, fld[c->split]);
	}
	if (!(r->slide_id = strdup(id)))
		return err_set(e, ERR_NOMEM, "out of memory");
	if (c->cases >= 0 && fld[c->cases][0] && !(r->case_id = strdup(fld[c->cases])))
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

static const struct labels_row *sort_base;

static int cmp_by(const void *a, const void *b, int by_case)
{
	const struct labels_row *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
	int c = by_case ? strcmp(x->case_id, y->case_id) : strcmp(x->slide_id, y->slide_id);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}
static int cmp_slide(const void *a, const void *b) { return cmp_by(a, b, 0); }
static int cmp_case(const void *a, const void *b) { return cmp_by(a, b, 1); }

/* each slide once; a patient's slides in one split */
static int check_rows(const struct labels *l, const char *path, struct err *e)
{
	size_t *v = malloc((l->n + 1) * sizeof *v), k = 0;
	if (!v)
		return err_set(e, ERR_NOMEM, "out of memory");
	sort_base = l->rows;
	for (size_t i = 0; i < l->n; i++)
		v[i] = i;
	qsort(v, l->n, sizeof *v, cmp_slide);
	int rc = 0;
	for (size_t i = 1; i < l->n && !rc; i++) {
		const struct labels_row *a = &l->rows[v[i - 1]], *b = &l->rows[v[i]];
		if (!strcmp(a->slide_id, b->slide_id))
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: slide '%s' again, as on line %ld%s", path, b->line,
			             b->slide_id, a->line,
			             a->label != b->label ? ", with the other label" : "");
	}
	for (size_t i = 0; i < l->n; i++)
		if (l->rows[i].case_id)
			v[k++] = i;
	qsort(v, k, sizeof *v, cmp_case);
	for (size_t i = 1; i < k && !rc; i++) {
		const struct labels_row *a = &l->rows[v[i - 1]], *b = &l->rows[v[i]];
		if (!strcmp(a->case_id, b->case_id) && a->split != b->split)
			rc = err_set(e, ERR_FORMAT, "%s: case '%s' has slides in %s (line %ld) and in %s (line %ld): a "
			             "patient's slides must stay in one split", path, a->case_id,
			             manifest_split_name(a->split), a->line, manifest_split_name(b->split), b->line);
	}
	free(v);
	return rc;
}

int labels_read(struct labels *l, const char *path, const struct labels_opts *o, struct err *e)
{
	memset(l, 0, sizeof *l);
	struct textfile tf;
	int rc = textfile_open(&tf, path, 0, e);
	if (rc)
		return rc;
	struct cols c = {-1, -1, -1, -1, 0};
	char **fld = NULL;
	int fcap = 0;
	size_t cap = 0;
	while (!rc && (rc = textfile_next(&tf, e)) == 1) {
		rc = 0;
		if (!tf.len)
			continue;
		int nf = csv_fields(tf.line, &fld, &fcap, e);
		if (nf < 0) {
			rc = nf;
		} else if (!c.n) {
			rc = parse_header(&tf, fld, nf, &c, e);
		} else if (nf != c.n) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: %d columns, the header has %d", path, tf.lineno, nf,
			             c.n);
		} else {
			if (l->n == cap) {
				size_t nc = cap ? 2 * cap : 256;
				struct labels_row *q = realloc(l->rows, nc * sizeof *q);
				if (!q) {
					rc = err_set(e, ERR_NOMEM, "out of memory");
					break;
				}
				l->rows = q;
				cap = nc;
			}
			rc = parse_row(&l->rows[l->n++], &tf, fld, &c, o, e);
			l->has_cases |= l->rows[l->n - 1].case_id != NULL;
		}
	}
	if (!rc && !c.n)
		rc = err_set(e, ERR_FORMAT, "%s: empty file, expected a header line slide_id,label,...", path);
	if (!rc)
		rc = check_rows(l, path, e);
	free(fld);
	textfile_close(&tf);
	if (rc)
		labels_free(l);
	return rc;
}

int labels_assign_val(struct labels *l, double frac, uint64_t seed, struct err *e)
{
	/* the units: a case, which its first row stands for, or a slide alone */
	size_t n = l->n, *unit = malloc((n + 1) * sizeof *unit), *v = malloc((n + 1) * sizeof *v), k = 0;
	uint8_t *label = calloc(n + 1, 1), *eligible = malloc(n + 1), *to_val = calloc(n + 1, 1);
	uint32_t *idx = malloc((n + 1) * sizeof *idx);
	int ok = unit && v && label && eligible && to_val && idx;
	if (ok) {
		for (size_t i = 0; i < n; i++) {
			unit[i] = i;
			eligible[i] = 1;
			if (l->rows[i].case_id)
				v[k++] = i;
		}
		sort_base = l->rows;
		qsort(v, k, sizeof *v, cmp_case); /* by case, then line: the first row first */
		for (size_t j = 1; j < k; j++)
			if (!strcmp(l->rows[v[j]].case_id, l->rows[v[j - 1]].case_id))
				unit[v[j]] = unit[v[j - 1]];
		for (size_t i = 0; i < n; i++) {
			label[unit[i]] |= (uint8_t)l->rows[i].label;
			eligible[unit[i]] &= l->rows[i].split == SPLIT_TRAIN;
		}
		struct rng r;
		rng_seed(&r, seed, 0xa1);
		for (int lab = 1; lab >= 0; lab--) {
			uint32_t m = 0;
			for (size_t i = 0; i < n; i++)
				if (unit[i] == i && eligible[i] && label[i] == lab)
					idx[m++] = (uint32_t)i;
			rng_shuffle(&r, idx, m);
			uint32_t nv = (uint32_t)(frac * m + 0.5);
			for (uint32_t i = 0; i < nv; i++)
				to_val[idx[i]] = 1;
		}
		for (size_t i = 0; i < n; i++)
			if (to_val[unit[i]])
				l->rows[i].split = SPLIT_VAL;
	}
	free(unit), free(v), free(label), free(eligible), free(to_val), free(idx);
	return ok ? 0 : err_set(e, ERR_NOMEM, "out of memory");
}
