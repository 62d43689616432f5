/* manifest.c - see manifest.h */
#include "manifest.h"

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

/* Splits line (modified in place) on tabs; returns the field count. */
static int split_tabs(char *line, char **f, int max)
{
	int n = 0;
	char *p = line;
	while (n < max) {
		f[n++] = p;
		char *t = strchr(p, '\t');
		if (!t)
			break;
		*t = 0;
		p = t + 1;
	}
	return n;
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

int manifest_read(struct manifest *m, const char *path, struct err *e)
{
	memset(m, 0, sizeof *m);
	FILE *f = fopen(path, "r");
	if (!f)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	int col[5] = {-1, -1, -1, -1, -1}, ncols = 0, rc = 0;
	static const char *names[5] = {"bag_id", "label", "split", "path", "n_instances"};
	uint32_t rcap = 0;
	m->path = strdup(path);
	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (!len || line[0] == '#')
			continue;
		char *fld[64];
		int nf = split_tabs(line, fld, 64);
		if (!ncols) {
			ncols = nf;
			for (int i = 0; i < nf; i++)
				for (int j = 0; j < 5; j++)
					if (!strcmp(fld[i], names[j]))
						col[j] = i;
			for (int j = 0; j < 5; j++)
				if (col[j] < 0) {
					rc = err_set(e, ERR_FORMAT, "%s: line %ld: header has no column '%s' (expected "
					             "bag_id, label, split, path, n_instances, tab-separated)", path, lineno, names[j]);
					goto out;
				}
			continue;
		}
		if (nf != ncols) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: %d fields, the header has %d", path, lineno, nf, ncols);
			goto out;
		}
		if (m->n == rcap) {
			rcap = rcap ? rcap * 2 : 256;
			struct manifest_row *nr = realloc(m->rows, rcap * sizeof *nr);
			if (!nr) {
				rc = err_set(e, ERR_NOMEM, "out of memory");
				goto out;
			}
			m->rows = nr;
		}
		struct manifest_row *row = &m->rows[m->n];
		memset(row, 0, sizeof *row);
		const char *lab = fld[col[1]], *spl = fld[col[2]], *cnt = fld[col[4]];
		if (strcmp(lab, "0") && strcmp(lab, "1")) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld, column label: '%s', expected 0 or 1", path, lineno, lab);
			goto out;
		}
		row->label = lab[0] - '0';
		row->split = manifest_split_parse(spl);
		if (row->split < 0) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld, column split: '%s', expected train, val, test or none",
			             path, lineno, spl);
			goto out;
		}
		char *end;
		errno = 0;
		unsigned long long c = strtoull(cnt, &end, 10);
		if (!*cnt || *end || errno || cnt[0] == '-') {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld, column n_instances: '%s', expected a count", path,
			             lineno, cnt);
			goto out;
		}
		row->n_instances = c;
		if (!fld[col[0]][0] || !fld[col[3]][0]) {
			rc = err_set(e, ERR_FORMAT, "%s: line %ld: empty bag_id or path", path, lineno);
			goto out;
		}
		row->bag_id = strdup(fld[col[0]]);
		row->path = join_dir(path, fld[col[3]]);
		m->n++;
		if (!row->bag_id || !row->path) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (ferror(f))
		rc = err_sys(e, ERR_IO, "%s: cannot read", path);
	else if (!ncols)
		rc = err_set(e, ERR_FORMAT, "%s: empty manifest (no header line)", path);
	else if (!m->n)
		rc = err_set(e, ERR_FORMAT, "%s: the manifest lists no bags", path);
out:
	free(line);
	fclose(f);
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
