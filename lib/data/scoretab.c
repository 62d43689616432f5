/* scoretab.c - see scoretab.h */
#include "scoretab.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	if (!*s || *end || errno == ERANGE || !isfinite(*v))
		return -1;
	return 0;
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

static int read_table(struct scoretab *t, const char *path, const char *label_col, const char *score_cols,
                      int want_xy, struct err *e)
{
	memset(t, 0, sizeof *t);
	FILE *f = fopen(path, "r");
	if (!f)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	char *line = NULL;
	size_t cap = 0, rcap = 0;
	ssize_t len;
	long lineno = 0;
	int ncols = 0, c_kind = -1, c_split = -1, c_label = -1, c_score[SCORETAB_MAX_SCORES], rc = 0;
	int c_bag = -1, c_index = -1, c_x = -1, c_y = -1;
	char *fld[256];
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!len || line[0] == '#')
			continue;
		int nf = 0;
		for (char *p = line; nf < 256;) {
			fld[nf++] = p;
			char *tab = strchr(p, '\t');
			if (!tab)
				break;
			*tab = 0;
			p = tab + 1;
		}
		if (!ncols) {
			ncols = nf;
			for (int i = 0; i < nf; i++) {
				if (!strcmp(fld[i], "kind"))
					c_kind = i;
				else if (!strcmp(fld[i], "split"))
					c_split = i;
				else if (!strcmp(fld[i], label_col))
					c_label = i;
				else if (!strcmp(fld[i], "bag_id"))
					c_bag = i;
				else if (!strcmp(fld[i], "index"))
					c_index = i;
				else if (want_xy && !strcmp(fld[i], "x"))
					c_x = i;
				else if (want_xy && !strcmp(fld[i], "y"))
					c_y = i;
				else if (score_cols ? in_list(score_cols, fld[i]) : ends_with(fld[i], "score")) {
					if (t->n_scores == SCORETAB_MAX_SCORES) {
						rc = err_set(e, ERR_LIMIT, "%s: line %ld: more than %d score columns", path,
						             lineno, SCORETAB_MAX_SCORES);
						goto out;
					}
					c_score[t->n_scores] = i;
					snprintf(t->score_names[t->n_scores++], 64, "%s", fld[i]);
				}
			}
			if (c_label < 0) {
				rc = err_set(e, ERR_FORMAT, "%s: line %ld: no column '%s' in the header", path, lineno, label_col);
				goto out;
			}
			if (want_xy && (c_x < 0 || c_y < 0)) {
				rc = err_set(e, ERR_FORMAT, "%s: line %ld: no column '%s' in the header (instance rows need their "
				             "level-0 x and y; formats/scores.md)", path, lineno, c_x < 0 ? "x" : "y");
				goto out;
			}
			if (!t->n_scores) {
				rc = err_set(e, ERR_FORMAT, "%s: line %ld: no score column (%s) in the header", path, lineno,
				             score_cols ? score_cols : "names ending in 'score'");
				goto out;
			}
			if (score_cols) /* every named column must exist */
				for (const char *p = score_cols; *p;) {
					const char *c = strchr(p, ',');
					size_t l = c ? (size_t)(c - p) : strlen(p);
					int found = 0;
					for (int k = 0; k < t->n_scores; k++)
						found |= strlen(t->score_names[k]) == l && !strncmp(t->score_names[k], p, l);
					if (!found) {
						rc = err_set(e, ERR_FORMAT, "%s: line %ld: no column '%.*s' in the header", path,
						             lineno, (int)l, p);
						goto out;
					}
					if (!c)
						break;
					p = c + 1;
				}
			t->has_split = c_split >= 0;
			continue;
		}
		if (nf != ncols) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: %d fields, the header has %d", path, lineno, nf, ncols);
			goto out;
		}
		if (t->n == rcap) {
			rcap = rcap ? 2 * rcap : 4096;
			uint8_t *k = realloc(t->kind, rcap), *s = realloc(t->split, rcap);
			if (k)
				t->kind = k;
			if (s)
				t->split = s;
			double *l = realloc(t->label, rcap * sizeof *l);
			if (l)
				t->label = l;
			int ok = k && s && l;
			if (c_bag >= 0) {
				char **kk = realloc(t->key, rcap * sizeof *kk);
				if (kk)
					t->key = kk;
				ok &= kk != NULL;
			}
			if (want_xy) {
				double *xx = realloc(t->x, rcap * sizeof *xx);
				if (xx)
					t->x = xx;
				double *yy = realloc(t->y, rcap * sizeof *yy);
				if (yy)
					t->y = yy;
				ok &= xx && yy;
			}
			for (int j = 0; j < t->n_scores; j++) {
				double *sc = realloc(t->score[j], rcap * sizeof *sc);
				if (sc)
					t->score[j] = sc;
				ok &= sc != NULL;
			}
			if (!ok) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
		}
		size_t r = t->n;
		const char *kn = c_kind >= 0 ? fld[c_kind] : "all";
		int kid = -1;
		for (int j = 0; j < t->n_kinds; j++)
			if (!strcmp(t->kind_names[j], kn))
				kid = j;
		if (kid < 0 && strlen(kn) >= sizeof t->kind_names[0]) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld, column kind: '%.40s%s', expected a kind name "
			             "of at most %zu characters (bag, instance)", path, lineno, kn,
			             strlen(kn) > 40 ? "..." : "", sizeof t->kind_names[0] - 1);
			goto out;
		}
		if (kid < 0) {
			if (t->n_kinds == SCORETAB_MAX_KINDS) {
				rc = err_set(e, ERR_LIMIT, "%s: line %ld: more than %d kinds", path, lineno, SCORETAB_MAX_KINDS);
				goto out;
			}
			kid = t->n_kinds++;
			snprintf(t->kind_names[kid], 32, "%s", kn);
		}
		t->kind[r] = (uint8_t)kid;
		if (c_split >= 0) {
			int sp = manifest_split_parse(fld[c_split]);
			if (sp < 0) {
				rc = err_set(e, ERR_FORMAT, "%s: line %ld, column split: '%s', expected train, val, test or none",
				             path, lineno, fld[c_split]);
				goto out;
			}
			t->split[r] = (uint8_t)sp;
		} else
			t->split[r] = SPLIT_NONE;
		if (parse_num(fld[c_label], &t->label[r]) || (!isnan(t->label[r]) && (t->label[r] < 0 || t->label[r] > 1))) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld, column %s: '%s', expected a label in [0,1] or NA", path,
			             lineno, label_col, fld[c_label]);
			goto out;
		}
		for (int j = 0; j < t->n_scores; j++)
			if (parse_num(fld[c_score[j]], &t->score[j][r])) {
				rc = err_set(e, ERR_FORMAT, "%s: line %ld, column %s: '%s', expected a finite number or NA", path,
				             lineno, t->score_names[j], fld[c_score[j]]);
				goto out;
			}
		if (want_xy && (parse_coord(fld[c_x], &t->x[r]) || parse_coord(fld[c_y], &t->y[r]))) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld, columns x, y: '%.40s', '%.40s', expected integers "
			             "(level-0 pixels) or NA", path, lineno, fld[c_x], fld[c_y]);
			goto out;
		}
		if (c_bag >= 0) {
			const char *ix = c_index >= 0 ? fld[c_index] : "";
			size_t lb = strlen(fld[c_bag]), li = strlen(ix);
			char *key = malloc(lb + li + 2);
			if (!key) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
			memcpy(key, fld[c_bag], lb);
			key[lb] = '\t';
			memcpy(key + lb + 1, ix, li + 1);
			t->key[r] = key;
		}
		t->n++;
	}
	if (ferror(f))
		rc = err_sys(e, ERR_IO, "%s: cannot read", path);
	else if (!ncols)
		rc = err_set(e, ERR_FORMAT, "%s: empty file, expected a header line", path);
out:
	free(line);
	fclose(f);
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
