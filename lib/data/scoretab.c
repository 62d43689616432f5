/* scoretab.c - see scoretab.h */
#include "scoretab.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/textfile.h"
#include "manifest.h"

void scoretab_free(struct scoretab *t)
{
	free(t->kind);
	free(t->split);
	free(t->label);
	for (int i = 0; i < SCORETAB_MAX_SCORES; i++)
		free(t->score[i]);
	if (t->key)
		for (size_t i = 0; i < t->n; i++)
			free(t->key[i]);
	free(t->key);
	free(t->x);
	free(t->y);
	memset(t, 0, sizeof *t);
}

static int in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return 1;
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/* Parses a number or NA into *v; -1 when neither. */
static int parse_num(const char *s, double *v)
{
	if (!strcmp(s, "NA") || !strcmp(s, "nan") || !strcmp(s, "NaN")) {
		if (s[0] == 'N' && s[1] == 'A') {
			*v = NAN;
			return 0;
		}
		return -1; /* a literal NaN is a broken score, not a missing one */
	}
	char *end;
	errno = 0;
	*v = strtod(s, &end);
	/* ERANGE on underflow (a subnormal or zero result) is a number; on
	 * overflow the result is infinite */
	if (!*s || *end || !isfinite(*v) || (errno == ERANGE && fabs(*v) >= DBL_MIN))
		return -1;
	return 0;
}

/* the columns of one table, found by name in its header */
struct cols {
	int n, kind, split, label, bag, index;
	int want_xy, x, y;          /* scoretab_read_xy: the x and y columns */
	int score[SCORETAB_MAX_SCORES];
};

/* splits line at tabs into *fld (grown as needed); returns the count */
static int split_tabs(char *line, char ***fld, int *cap, struct err *e)
{
	int nf = 0;
	for (char *p = line;;) {
		if (nf == *cap) {
			int nc = *cap ? *cap * 2 : 64;
			char **q = realloc(*fld, (size_t)nc * sizeof *q);
			if (!q)
				return err_set(e, ERR_NOMEM, "out of memory");
			*fld = q;
			*cap = nc;
		}
		(*fld)[nf++] = p;
		char *tab = strchr(p, '\t');
		if (!tab)
			return nf;
		*tab = 0;
		p = tab + 1;
	}
}

/* every column named in score_cols must be in the header */
static int check_named(const struct scoretab *t, const struct textfile *tf, const char *score_cols,
                       struct err *e)
{
	for (const char *p = score_cols; *p;) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		int found = 0;
		for (int k = 0; k < t->n_scores; k++)
			found |= strlen(t->score_names[k]) == l && !strncmp(t->score_names[k], p, l);
		if (!found)
			return err_set(e, ERR_FORMAT, "%s: line %ld: no column '%.*s' in the header", tf->path,
			               tf->lineno, (int)l, p);
		if (!c)
			break;
		p = c + 1;
	}
	return 0;
}

static int cmp_str_p(const void *a, const void *b)
{
	int c = strcmp(**(char *const *const *)a, **(char *const *const *)b);
	return c ? c : (*(char *const *const *)a > *(char *const *const *)b) -
	               (*(char *const *const *)a < *(char *const *const *)b);
}

/* a name twice in the header is an error: which of the two to read
 * would be a guess (the first was read for both) */
static int check_names_unique(const struct textfile *tf, char **fld, int nf, struct err *e)
{
	char **v[256], ***p = nf <= 256 ? v : malloc((size_t)nf * sizeof *p);
	if (!p)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (int i = 0; i < nf; i++)
		p[i] = &fld[i];
	qsort(p, (size_t)nf, sizeof *p, cmp_str_p);
	int rc = 0;
	for (int i = 1; i < nf && !rc; i++)
		if (!strcmp(*p[i - 1], *p[i]))
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: column '%s' twice in the header (fields %d "
			             "and %d): which one to read is unclear", tf->path, tf->lineno, *p[i],
			             (int)(p[i - 1] - fld) + 1, (int)(p[i] - fld) + 1);
	if (p != v)
		free(p);
	return rc;
}

/* the header: which column is which */
static int parse_header(struct scoretab *t, struct cols *c, const struct textfile *tf, char **fld, int nf,
                        const char *label_col, const char *score_cols, struct err *e)
{
	c->n = nf;
	c->kind = c->split = c->label = c->bag = c->index = c->x = c->y = -1;
	int rc = check_names_unique(tf, fld, nf, e);
	if (rc)
		return rc;
	for (int i = 0; i < nf; i++) {
		if (!strcmp(fld[i], "kind"))
			c->kind = i;
		else if (!strcmp(fld[i], "split"))
			c->split = i;
		else if (!strcmp(fld[i], label_col))
			c->label = i;
		else if (!strcmp(fld[i], "bag_id"))
			c->bag = i;
		else if (!strcmp(fld[i], "index"))
			c->index = i;
		else if (c->want_xy && !strcmp(fld[i], "x"))
			c->x = i;
		else if (c->want_xy && !strcmp(fld[i], "y"))
			c->y = i;
		else if (score_cols ? in_list(score_cols, fld[i]) : ends_with(fld[i], "score")) {
			if (t->n_scores == SCORETAB_MAX_SCORES)
				return err_set(e, ERR_LIMIT, "%s: line %ld: more than %d score columns", tf->path,
				               tf->lineno, SCORETAB_MAX_SCORES);
			c->score[t->n_scores] = i;
			snprintf(t->score_names[t->n_scores++], 64, "%s", fld[i]);
		}
	}
	if (c->label < 0)
		return err_set(e, ERR_FORMAT, "%s: line %ld: no column '%s' in the header", tf->path,
		               tf->lineno, label_col);
	if (c->want_xy && (c->x < 0 || c->y < 0))
		return err_set(e, ERR_FORMAT, "%s: line %ld: no column '%s' in the header (instance rows need "
		               "their level-0 x and y; formats/scores.md)", tf->path, tf->lineno, c->x < 0 ? "x" : "y");
	if (!t->n_scores)
		return err_set(e, ERR_FORMAT, "%s: line %ld: no score column (%s) in the header", tf->path,
		               tf->lineno, score_cols ? score_cols : "names ending in 'score'");
	t->has_split = c->split >= 0;
	return score_cols ? check_named(t, tf, score_cols, e) : 0;
}

/* room for row t->n in every column array */
static int grow_rows(struct scoretab *t, size_t *rcap, int keyed, int xy, struct err *e)
{
	if (t->n < *rcap)
		return 0;
	size_t nc = *rcap ? 2 * *rcap : 4096;
	uint8_t *k = realloc(t->kind, nc), *s = realloc(t->split, nc);
	if (k)
		t->kind = k;
	if (s)
		t->split = s;
	double *l = realloc(t->label, nc * sizeof *l);
	if (l)
		t->label = l;
	long *ln = realloc(t->line, nc * sizeof *ln);
	if (ln)
		t->line = ln;
	int ok = k && s && l && ln;
	if (keyed) {
		char **kk = realloc(t->key, nc * sizeof *kk);
		if (kk)
			t->key = kk;
		ok &= kk != NULL;
	}
	if (xy) {
		double *xx = realloc(t->x, nc * sizeof *xx);
		if (xx)
			t->x = xx;
		double *yy = realloc(t->y, nc * sizeof *yy);
		if (yy)
			t->y = yy;
		ok &= xx && yy;
	}
	for (int j = 0; j < t->n_scores; j++) {
		double *sc = realloc(t->score[j], nc * sizeof *sc);
		if (sc)
			t->score[j] = sc;
		ok &= sc != NULL;
	}
	if (!ok)
		return err_set(e, ERR_NOMEM, "out of memory");
	*rcap = nc;
	return 0;
}

/* the row's level: an index into kind_names, added when new */
static int row_kind(struct scoretab *t, const struct textfile *tf, const char *kn, struct err *e)
{
	for (int j = 0; j < t->n_kinds; j++)
		if (!strcmp(t->kind_names[j], kn))
			return j;
	if (strlen(kn) >= sizeof t->kind_names[0])
		return err_set(e, ERR_FORMAT, "%s: line %ld, column kind: '%.40s%s', expected a kind name "
		               "of at most %zu characters (bag, instance)", tf->path, tf->lineno, kn,
		               strlen(kn) > 40 ? "..." : "", sizeof t->kind_names[0] - 1);
	if (t->n_kinds == SCORETAB_MAX_KINDS)
		return err_set(e, ERR_LIMIT, "%s: line %ld: more than %d kinds", tf->path, tf->lineno,
		               SCORETAB_MAX_KINDS);
	snprintf(t->kind_names[t->n_kinds], 32, "%s", kn);
	return t->n_kinds++;
}

/* An integer or NA (NaN); -1 when neither. */
static int parse_coord(const char *s, double *v)
{
	if (!strcmp(s, "NA")) {
		*v = NAN;
		return 0;
	}
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (end == s || *end || errno || x < -(1LL << 53) || x > (1LL << 53))
		return -1;
	*v = (double)x;
	return 0;
}

/* row t->n from its fields: level, split, label, scores, x and y, and key */
static int parse_row(struct scoretab *t, const struct cols *c, const struct textfile *tf, char **fld,
                     const char *label_col, struct err *e)
{
	size_t r = t->n;
	t->line[r] = tf->lineno;
	int kid = row_kind(t, tf, c->kind >= 0 ? fld[c->kind] : "all", e);
	if (kid < 0)
		return kid;
	t->kind[r] = (uint8_t)kid;
	t->split[r] = SPLIT_NONE;
	if (c->split >= 0) {
		int sp = manifest_split_parse(fld[c->split]);
		if (sp < 0)
			return err_set(e, ERR_FORMAT, "%s: line %ld, column split: '%s', expected train, val, "
			               "test or none", tf->path, tf->lineno, fld[c->split]);
		t->split[r] = (uint8_t)sp;
	}
	if (parse_num(fld[c->label], &t->label[r]) ||
	    (!isnan(t->label[r]) && (t->label[r] < 0 || t->label[r] > 1)))
		return err_set(e, ERR_FORMAT, "%s: line %ld, column %s: '%s', expected a label in [0,1] or NA",
		               tf->path, tf->lineno, label_col, fld[c->label]);
	for (int j = 0; j < t->n_scores; j++)
		if (parse_num(fld[c->score[j]], &t->score[j][r]))
			return err_set(e, ERR_FORMAT, "%s: line %ld, column %s: '%s', expected a finite number "
			               "or NA", tf->path, tf->lineno, t->score_names[j], fld[c->score[j]]);
	if (c->want_xy && (parse_coord(fld[c->x], &t->x[r]) || parse_coord(fld[c->y], &t->y[r])))
		return err_set(e, ERR_FORMAT, "%s: line %ld, columns x, y: '%.40s', '%.40s', expected integers "
		               "(level-0 pixels) or NA", tf->path, tf->lineno, fld[c->x], fld[c->y]);
	if (c->bag >= 0) {
		const char *ix = c->index >= 0 ? fld[c->index] : "";
		size_t lb = strlen(fld[c->bag]), li = strlen(ix);
		char *key = malloc(lb + li + 2);
		if (!key)
			return err_set(e, ERR_NOMEM, "out of memory");
		memcpy(key, fld[c->bag], lb);
		key[lb] = '\t';
		memcpy(key + lb + 1, ix, li + 1);
		t->key[r] = key;
	}
	t->n++;
	return 0;
}

static int read_table(struct scoretab *t, const char *path, const char *label_col, const char *score_cols,
                      int want_xy, struct err *e)
{
	memset(t, 0, sizeof *t);
	struct textfile tf;
	int rc = textfile_open(&tf, path, 0, e);
	if (rc)
		return rc;
	struct cols c = {0};
	c.want_xy = want_xy;
	char **fld = NULL;
	int fcap = 0;
	size_t rcap = 0;
	while (!rc && (rc = textfile_next(&tf, e)) == 1) {
		rc = 0;
		if (!tf.len || tf.line[0] == '#')
			continue;
		int nf = split_tabs(tf.line, &fld, &fcap, e);
		if (nf < 0)
			rc = nf;
		else if (!c.n)
			rc = parse_header(t, &c, &tf, fld, nf, label_col, score_cols, e);
		else if (nf != c.n)
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: %d fields, the header has %d", path,
			             tf.lineno, nf, c.n);
		else if (!(rc = grow_rows(t, &rcap, c.bag >= 0, want_xy, e)))
			rc = parse_row(t, &c, &tf, fld, label_col, e);
	}
	if (!rc && !c.n)
		rc = err_set(e, ERR_FORMAT, "%s: empty file, expected a header line", path);
	free(fld);
	textfile_close(&tf);
	if (rc)
		scoretab_free(t);
	return rc;
}

int scoretab_read(struct scoretab *t, const char *path, const char *label_col, const char *score_cols,
                  struct err *e)
{
	return read_table(t, path, label_col, score_cols, 0, e);
}

int scoretab_read_xy(struct scoretab *t, const char *path, const char *label_col, const char *score_cols,
                     struct err *e)
{
	return read_table(t, path, label_col, score_cols, 1, e);
}

static const struct scoretab *key_tab;

static int cmp_key(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = (key_tab->kind[x] > key_tab->kind[y]) - (key_tab->kind[x] < key_tab->kind[y]);
	if (!c)
		c = strcmp(key_tab->key[x], key_tab->key[y]);
	return c ? c : (x > y) - (x < y);
}

int scoretab_check_keys(const struct scoretab *t, const char *path, struct err *e)
{
	if (!t->key || t->n < 2)
		return 0;
	size_t *v = malloc(t->n * sizeof *v);
	if (!v)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < t->n; i++)
		v[i] = i;
	key_tab = t;
	qsort(v, t->n, sizeof *v, cmp_key);
	int rc = 0;
	for (size_t i = 1; i < t->n && !rc; i++) {
		size_t a = v[i - 1], b = v[i];
		if (t->kind[a] == t->kind[b] && !strcmp(t->key[a], t->key[b])) {
			const char *k = t->key[b], *tab = strchr(k, '\t');
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: the %s row of bag '%.*s'%s%s again, as on line %ld",
			             path, t->line[b], t->kind_names[t->kind[b]], (int)(tab - k), k,
			             tab[1] ? " index " : "", tab + 1, t->line[a]);
		}
	}
	free(v);
	return rc;
}
