/* manifest.c - see manifest.h */
#include "manifest.h"

#include "../base/textfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *SPLITS[] = {"train", "val", "test", "none"};

const char *manifest_split_name(int split)
{
	return split >= 0 && split <= SPLIT_NONE ? SPLITS[split] : "?";
}

int manifest_split_parse(const char *s)
{
	for (int i = 0; i <= SPLIT_NONE; i++)
		if (!strcmp(s, SPLITS[i]))
			return i;
	return -1;
}

void manifest_free(struct manifest *m)
{
	for (uint32_t i = 0; i < m->n; i++) {
		free(m->rows[i].bag_id);
		free(m->rows[i].path);
	}
	free(m->rows);
	free(m->path);
	memset(m, 0, sizeof *m);
}

static char *join_dir(const char *manifest, const char *p)
{
	if (p[0] == '/')
		return strdup(p);
	const char *slash = strrchr(manifest, '/');
	if (!slash)
		return strdup(p);
	size_t dl = (size_t)(slash - manifest) + 1, pl = strlen(p);
	char *out = malloc(dl + pl + 1);
	if (out) {
		memcpy(out, manifest, dl);
		memcpy(out + dl, p, pl + 1);
	}
	return out;
}

static const char *COLS[5] = {"bag_id", "label", "split", "path", "n_instances"};

/* Splits line (modified in place) on tabs into *fld, grown as needed;
 * returns the field count or a negative ERR_*. */
static int split_tabs(char *line, char ***fld, int *cap, struct err *e)
{
	int n = 0;
	for (char *p = line;;) {
		if (n == *cap) {
			int nc = *cap ? *cap * 2 : 16;
			char **q = realloc(*fld, (size_t)nc * sizeof *q);
			if (!q)
				return err_set(e, ERR_NOMEM, "out of memory");
			*fld = q;
			*cap = nc;
		}
		(*fld)[n++] = p;
		char *t = strchr(p, '\t');
		if (!t)
			return n;
		*t = 0;
		p = t + 1;
	}
}

/* the header line: col[j] is the field of COLS[j] */
static int parse_header(const struct textfile *tf, char **fld, int nf, int col[5], struct err *e)
{
	for (int i = 0; i < nf; i++)
		for (int j = 0; j < 5; j++)
			if (!strcmp(fld[i], COLS[j])) {
				if (col[j] >= 0)
					return err_set(e, ERR_FORMAT, "%s: line %ld: column '%s' twice in the header",
					               tf->path, tf->lineno, COLS[j]);
				col[j] = i;
			}
	for (int j = 0; j < 5; j++)
		if (col[j] < 0)
			return err_set(e, ERR_FORMAT, "%s: line %ld: header has no column '%s' (expected "
			               "bag_id, label, split, path, n_instances, tab-separated)", tf->path,
			               tf->lineno, COLS[j]);
	return 0;
}

/* one row's fields into row */
static int parse_row(struct manifest_row *row, const struct textfile *tf, char **fld, const int col[5],
                     struct err *e)
{
	const char *path = tf->path, *lab = fld[col[1]], *spl = fld[col[2]], *cnt = fld[col[4]];
	long lineno = tf->lineno;
	memset(row, 0, sizeof *row);
	row->line = lineno;
	if (strcmp(lab, "0") && strcmp(lab, "1"))
		return err_set(e, ERR_FORMAT, "%s: line %ld, column label: '%s', expected 0 or 1", path, lineno, lab);
	row->label = lab[0] - '0';
	row->split = manifest_split_parse(spl);
	if (row->split < 0)
		return err_set(e, ERR_FORMAT, "%s: line %ld, column split: '%s', expected train, val, test or none",
		               path, lineno, spl);
	char *end;
	errno = 0;
	unsigned long long c = strtoull(cnt, &end, 10);
	if (!*cnt || *end || errno || cnt[0] == '-')
		return err_set(e, ERR_FORMAT, "%s: line %ld, column n_instances: '%s', expected a count", path,
		               lineno, cnt);
	row->n_instances = c;
	if (!fld[col[0]][0] || !fld[col[3]][0])
		return err_set(e, ERR_FORMAT, "%s: line %ld: empty bag_id or path", path, lineno);
	row->bag_id = strdup(fld[col[0]]);
	row->path = join_dir(path, fld[col[3]]);
	if (!row->bag_id || !row->path)
		return err_set(e, ERR_NOMEM, "out of memory");
	return 0;
}

static int cmp_row_id(const void *a, const void *b)
{
	const struct manifest_row *x = *(const struct manifest_row *const *)a;
	const struct manifest_row *y = *(const struct manifest_row *const *)b;
	int c = strcmp(x->bag_id, y->bag_id);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* a bag_id listed twice is an error naming both lines (of the repeated
 * ids, the first in byte order) */
static int check_unique(const struct manifest *m, struct err *e)
{
	const struct manifest_row **v = err_malloc(e, (size_t)m->n * sizeof *v + 1);
	if (!v)
		return ERR_NOMEM;
	for (uint32_t i = 0; i < m->n; i++)
		v[i] = &m->rows[i];
	qsort(v, m->n, sizeof *v, cmp_row_id);
	int rc = 0;
	for (uint32_t i = 1; i < m->n && !rc; i++)
		if (!strcmp(v[i - 1]->bag_id, v[i]->bag_id))
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: bag_id '%s' again, as on line %ld: each bag "
			             "must be listed once", m->path, v[i]->line, v[i]->bag_id, v[i - 1]->line);
	free(v);
	return rc;
}

int manifest_read(struct manifest *m, const char *path, struct err *e)
{
	memset(m, 0, sizeof *m);
	struct textfile tf;
	int rc = textfile_open(&tf, path, 0, e);
	if (rc)
		return rc;
	int col[5] = {-1, -1, -1, -1, -1}, ncols = 0, fcap = 0;
	char **fld = NULL;
	uint32_t rcap = 0;
	if (!(m->path = strdup(path)))
		rc = err_set(e, ERR_NOMEM, "out of memory");
	while (!rc && (rc = textfile_next(&tf, e)) == 1) {
		rc = 0;
		if (!tf.len || tf.line[0] == '#')
			continue;
		int nf = split_tabs(tf.line, &fld, &fcap, e);
		if (nf < 0) {
			rc = nf;
		} else if (!ncols) {
			ncols = nf;
			rc = parse_header(&tf, fld, nf, col, e);
		} else if (nf != ncols) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: %d fields, the header has %d", path, tf.lineno, nf,
			             ncols);
		} else if (m->n == UINT32_MAX) {
			rc = err_set(e, ERR_LIMIT, "%s: line %ld: more than %u bags", path, tf.lineno, UINT32_MAX - 1);
		} else {
			if (m->n == rcap) {
				uint32_t nc = rcap ? (rcap > UINT32_MAX / 2 ? UINT32_MAX : rcap * 2) : 256;
				struct manifest_row *nr = realloc(m->rows, (size_t)nc * sizeof *nr);
				if (!nr) {
					rc = err_set(e, ERR_NOMEM, "out of memory");
					break;
				}
				m->rows = nr;
				rcap = nc;
			}
			rc = parse_row(&m->rows[m->n++], &tf, fld, col, e);
		}
	}
	if (!rc && !ncols)
		rc = err_set(e, ERR_FORMAT, "%s: empty manifest (no header line)", path);
	else if (!rc && !m->n)
		rc = err_set(e, ERR_FORMAT, "%s: the manifest lists no bags", path);
	if (!rc)
		rc = check_unique(m, e);
	free(fld);
	textfile_close(&tf);
	if (rc)
		manifest_free(m);
	return rc;
}

void manifest_write_header(FILE *f)
{
	fputs("bag_id\tlabel\tsplit\tpath\tn_instances\n", f);
}

void manifest_write_row(FILE *f, const char *bag_id, int label, int split, const char *path,
                        uint64_t n_instances)
{
	fprintf(f, "%s\t%d\t%s\t%s\t%llu\n", bag_id, label, manifest_split_name(split), path,
	        (unsigned long long)n_instances);
}
