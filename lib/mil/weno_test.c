/* weno_test.c - the trainer's test hooks, see weno_test.h and weno.h */
#include "weno_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "weno.h"

int weno_test_from_env(struct weno_test *t, struct err *e)
{
	memset(t, 0, sizeof *t);
	const char *v = getenv("WENO_TEST_INIT");
	if (v && *v) {
		if (strcmp(v, "hash"))
			return err_set(e, ERR_USAGE, "WENO_TEST_INIT=%s: expected 'hash'", v);
		t->hash_init = 1;
	}
	v = getenv("WENO_TEST_DROPOUT");
	if (v && *v) {
		if (strcmp(v, "0"))
			return err_set(e, ERR_USAGE, "WENO_TEST_DROPOUT=%s: expected '0'", v);
		t->no_dropout = 1;
	}
	v = getenv("WENO_TEST_ORDER");
	t->order = v && *v ? v : NULL;
	v = getenv("WENO_TEST_TRACE");
	t->trace = v && *v ? v : NULL;
	return t->hash_init || t->no_dropout || t->order || t->trace;
}

/* lowbias32 of make_nn_golden.py: element i of the tensor numbered t */
static double hash_u(uint32_t i, uint32_t t)
{
	uint32_t x = i * 0x9E3779B1u + (t * 0x85EBCA77u + 0x27D4EB2Fu);
	x ^= x >> 16;
	x *= 0x7FEB352Du;
	x ^= x >> 15;
	x *= 0x846CA68Bu;
	x ^= x >> 16;
	return (double)(x >> 8) * (1.0 / 16777216.0);
}

int weno_test_fill(struct nn_module *m, uint32_t t0, struct err *e)
{
	size_t maxn = 1;
	for (int t = 0; t < m->ntensors; t++)
		maxn = m->tensors[t].n > maxn ? m->tensors[t].n : maxn;
	float *tmp = malloc(maxn * sizeof *tmp);
	if (!tmp)
		return err_set(e, ERR_NOMEM, "out of memory");
	for (int t = 0; t < m->ntensors; t++) {
		const struct nn_tensor *T = &m->tensors[t];
		size_t len = strlen(T->name);
		int is_weight = len >= 6 && !strcmp(T->name + len - 6, "weight");
		for (size_t i = 0; i < T->n; i++) {
			double v = 2.0 * hash_u((uint32_t)i, t0 + (uint32_t)t) - 1.0;
			if (T->ndim >= 2)
				tmp[i] = (float)(1.5 * v / sqrt((double)(T->n / (size_t)T->shape[0])));
			else if (is_weight)
				tmp[i] = (float)(1.0 + 0.1 * v);
			else
				tmp[i] = (float)(0.1 * v);
		}
		m->be->upload(m->w + T->off, tmp, T->n);
	}
	free(tmp);
	nn_module_init_state(m);
	return 0;
}

void weno_order_free(struct weno_order *o)
{
	for (int i = 0; i < o->nepochs; i++) {
		free(o->teacher[i]);
		free(o->student[i]);
	}
	free(o->teacher);
	free(o->student);
	free(o->nteacher);
	free(o->nstudent);
	memset(o, 0, sizeof *o);
}

/* makes room for epoch ep (0-based) */
static int order_grow(struct weno_order *o, int ep)
{
	if (ep < o->nepochs)
		return 0;
	int n = ep + 1;
	uint32_t **a = realloc(o->teacher, (size_t)n * sizeof *a);
	if (a)
		o->teacher = a;
	uint32_t **b = realloc(o->student, (size_t)n * sizeof *b);
	if (b)
		o->student = b;
	uint64_t *c = realloc(o->nteacher, (size_t)n * sizeof *c);
	if (c)
		o->nteacher = c;
	uint64_t *d = realloc(o->nstudent, (size_t)n * sizeof *d);
	if (d)
		o->nstudent = d;
	if (!a || !b || !c || !d)
		return -1;
	for (int i = o->nepochs; i < n; i++) {
		o->teacher[i] = o->student[i] = NULL;
		o->nteacher[i] = o->nstudent[i] = 0;
	}
	o->nepochs = n;
	return 0;
}

int weno_order_load(struct weno_order *o, const char *path, struct err *e)
{
	memset(o, 0, sizeof *o);
	FILE *f = fopen(path, "r");
	if (!f)
		return err_sys(e, ERR_IO, "WENO_TEST_ORDER: cannot open '%s'", path);
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;
	for (long ln = 1; !rc && getline(&line, &cap, f) > 0; ln++) {
		char kind[16];
		int ep, used;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%15s %d%n", kind, &ep, &used) != 2 || ep < 1 || ep > 1000000 ||
		    (strcmp(kind, "teacher") && strcmp(kind, "student"))) {
			rc = err_set(e, ERR_FORMAT, "%s:%ld: expected 'teacher E ...' or 'student E ...'", path, ln);
			break;
		}
		if (order_grow(o, ep - 1)) {
			rc = err_set(e, ERR_NOMEM, "out of memory");
			break;
		}
		int s = !strcmp(kind, "student");
		uint32_t **v = s ? &o->student[ep - 1] : &o->teacher[ep - 1];
		uint64_t *n = s ? &o->nstudent[ep - 1] : &o->nteacher[ep - 1], vcap = 0;
		free(*v);
		*v = NULL;
		*n = 0;
		for (char *p = line + used, *end;; p = end) {
			unsigned long x = strtoul(p, &end, 10);
			if (end == p)
				break;
			if (*n == vcap) {
				vcap = vcap ? 2 * vcap : 256;
				uint32_t *nv = realloc(*v, vcap * sizeof *nv);
				if (!nv) {
					rc = err_set(e, ERR_NOMEM, "out of memory");
					break;
				}
				*v = nv;
			}
			(*v)[(*n)++] = (uint32_t)x;
		}
	}
	free(line);
	fclose(f);
	if (rc)
		weno_order_free(o);
	return rc;
}

int weno_order_get(const struct weno_order *o, const char *path, int which, int epoch, uint32_t *out,
                   uint64_t n, struct err *e)
{
	const char *name = which ? "student" : "teacher";
	const uint32_t *v = epoch < o->nepochs ? (which ? o->student : o->teacher)[epoch] : NULL;
	uint64_t cnt = v ? (which ? o->nstudent : o->nteacher)[epoch] : 0;
	if (!v)
		return err_set(e, ERR_USAGE, "%s: no %s order for epoch %d", path, name, epoch + 1);
	if (cnt != n)
		return err_set(e, ERR_USAGE, "%s: the %s order of epoch %d has %llu positions, the pass %llu", path,
		               name, epoch + 1, (unsigned long long)cnt, (unsigned long long)n);
	uint8_t *seen = calloc(n + 1, 1);
	if (!seen)
		return err_set(e, ERR_NOMEM, "out of memory");
	int rc = 0;
	for (uint64_t i = 0; i < n && !rc; i++) {
		if (v[i] >= n || seen[v[i]])
			rc = err_set(e, ERR_USAGE, "%s: the %s order of epoch %d: position %u %s", path, name, epoch + 1,
			             v[i], v[i] >= n ? "out of range" : "repeated");
		else
			seen[v[i]] = 1;
		out[i] = v[i];
	}
	free(seen);
	return rc;
}

static void trace_tensors(FILE *f, const char *tag, int epoch, const char *pass, const char *mod,
                          const struct nn_module *m, const struct nn_tensor *ts, int cnt, const float *buf)
{
	size_t maxn = 1;
	for (int t = 0; t < cnt; t++)
		maxn = ts[t].n > maxn ? ts[t].n : maxn;
	float *tmp = malloc(maxn * sizeof *tmp);
	if (!tmp)
		return;
	for (int t = 0; t < cnt; t++) {
		m->be->download(tmp, buf + ts[t].off, ts[t].n);
		double s = 0, a = 0;
		for (size_t i = 0; i < ts[t].n; i++) {
			s += tmp[i];
			a += fabs(tmp[i]);
		}
		fprintf(f, "%s %d %s %s %d %s %zu %.9g %.9g\n", tag, epoch + 1, pass, mod, t, ts[t].name, ts[t].n, s, a);
	}
	free(tmp);
}

void weno_test_trace_module(FILE *f, int epoch, const char *pass, const char *mod, const struct nn_module *m)
{
	trace_tensors(f, "sums", epoch, pass, mod, m, m->tensors, m->ntensors, m->w);
	trace_tensors(f, "state", epoch, pass, mod, m, m->state_tensors, m->nstate_tensors, m->state);
}
