/* model_io.c - the model file, see formats/model.md and model_io.h */
#include "model_io.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "../base/afile.h"

static const char MAGIC[8] = {'W', 'E', 'N', 'O', 'M', 'O', 'D', 'L'};
#define HEADER_BYTES 40
#define SECTION_BYTES 16
#define CHUNK 4096

static int little_endian(void)
{
	const uint16_t one = 1;
	return *(const uint8_t *)&one == 1;
}

/* ---------------- writing ---------------- */

/* A section body runs twice: first to measure (fp NULL: length and CRC),
 * then to write. */
struct sink {
	FILE *fp;
	uint64_t len;
	uint32_t crc;
	int failed;
};

static void emit(struct sink *s, const void *p, size_t n)
{
	if (!n)
		return;
	s->len += n;
	s->crc = (uint32_t)crc32(s->crc, p, (uInt)n);
	if (s->fp && !s->failed && fwrite(p, 1, n, s->fp) != n)
		s->failed = 1;
}

static void emit_u32(struct sink *s, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
	emit(s, b, 4);
}

static void emit_u64(struct sink *s, uint64_t v)
{
	emit_u32(s, (uint32_t)v);
	emit_u32(s, (uint32_t)(v >> 32));
}

static void emit_f32(struct sink *s, float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	emit_u32(s, v);
}

/* n floats of backend memory, downloaded in chunks */
static void emit_floats(struct sink *s, const struct nn_backend *be, const float *p, size_t n)
{
	float buf[CHUNK];
	for (size_t i = 0; i < n; i += CHUNK) {
		size_t k = n - i < CHUNK ? n - i : CHUNK;
		be->download(buf, p + i, k);
		emit(s, buf, k * sizeof(float));
	}
}

struct section_ctx {
	const struct nn_model *m;
	int index;
};

static void body_conf(struct sink *s, const struct section_ctx *c)
{
	if (c->m->config)
		emit(s, c->m->config, strlen(c->m->config));
}

static void emit_tensor_desc(struct sink *s, const struct nn_tensor *t)
{
	uint32_t len = (uint32_t)strlen(t->name);
	emit_u32(s, len);
	emit(s, t->name, len);
	emit_u32(s, (uint32_t)t->ndim);
	for (int d = 0; d < t->ndim; d++)
		emit_u32(s, (uint32_t)t->shape[d]);
}

static void body_modl(struct sink *s, const struct section_ctx *c)
{
	const struct nn_module *m = c->m->mods[c->index];
	emit_u32(s, (uint32_t)c->index);
	emit_u32(s, (uint32_t)m->kind);
	emit_u32(s, (uint32_t)m->in_c);
	emit_u32(s, (uint32_t)m->in_h);
	emit_u32(s, (uint32_t)m->in_w);
	emit_f32(s, m->dropout);
	emit_u32(s, (uint32_t)m->ntensors);
	emit_u32(s, (uint32_t)m->nstate_tensors);
	for (int i = 0; i < m->ntensors; i++)
		emit_tensor_desc(s, &m->tensors[i]);
	for (int i = 0; i < m->nstate_tensors; i++)
		emit_tensor_desc(s, &m->state_tensors[i]);
	emit_floats(s, m->be, m->w, m->nparams);
	emit_floats(s, m->be, m->state, m->nstate);
}

static int optim_buffers(const struct nn_optim *o)
{
	if (o->conf.kind == NN_OPTIM_ADAM)
		return 2;
	return o->conf.momentum != 0.0f ? 1 : 0;
}

static void body_optm(struct sink *s, const struct section_ctx *c)
{
	const struct nn_optim *o = c->m->opts[c->index];
	emit_u32(s, (uint32_t)c->index);
	emit_u32(s, (uint32_t)o->conf.kind);
	emit_f32(s, o->conf.lr);
	emit_f32(s, o->conf.momentum);
	emit_f32(s, o->conf.dampening);
	emit_u32(s, (uint32_t)o->conf.nesterov);
	emit_f32(s, o->conf.weight_decay);
	emit_f32(s, o->conf.beta1);
	emit_f32(s, o->conf.beta2);
	emit_f32(s, o->conf.eps);
	emit_u64(s, (uint64_t)o->step);
	emit_u64(s, (uint64_t)o->n);
	int nb = optim_buffers(o);
	emit_u32(s, (uint32_t)nb);
	if (nb >= 1)
		emit_floats(s, o->be, o->m, o->n);
	if (nb >= 2)
		emit_floats(s, o->be, o->v, o->n);
}

static void body_rngs(struct sink *s, const struct section_ctx *c)
{
	emit_u32(s, (uint32_t)c->m->nrngs);
	for (int i = 0; i < c->m->nrngs; i++) {
		emit_u64(s, c->m->rngs[i].state);
		emit_u64(s, c->m->rngs[i].inc);
	}
}

static void body_epoc(struct sink *s, const struct section_ctx *c)
{
	emit_u64(s, c->m->epoch);
}

static void body_xtra(struct sink *s, const struct section_ctx *c)
{
	emit(s, c->m->extra, c->m->extra_size);
}

typedef void (*body_fn)(struct sink *, const struct section_ctx *);

static void write_section(struct sink *out, const char tag[4], body_fn fn,
                          const struct section_ctx *c)
{
	struct sink meas = {0};
	fn(&meas, c);
	emit(out, tag, 4);
	emit_u32(out, meas.crc);
	emit_u64(out, meas.len);
	struct sink body = {.fp = out->fp};
	fn(&body, c);
	out->len += body.len;
	out->failed |= body.failed;
}

/* number of sections and the whole file written through fn */
static void write_all(struct sink *s, const struct nn_model *m, uint64_t file_bytes)
{
	uint32_t nsec = 3 + (uint32_t)m->nmodules + (m->extra_size ? 1 : 0);
	for (int i = 0; i < m->nmodules; i++)
		nsec += m->opts[i] ? 1 : 0;
	/* header */
	uint8_t hdr[HEADER_BYTES] = {0};
	memcpy(hdr, MAGIC, 8);
	uint32_t v32[2] = {NN_MODEL_VERSION, HEADER_BYTES};
	for (int i = 0; i < 2; i++)
		for (int b = 0; b < 4; b++)
			hdr[8 + 4 * i + b] = (uint8_t)(v32[i] >> (8 * b));
	for (int b = 0; b < 8; b++)
		hdr[16 + b] = (uint8_t)(file_bytes >> (8 * b));
	for (int b = 0; b < 4; b++)
		hdr[24 + b] = (uint8_t)(nsec >> (8 * b));
	uint32_t hcrc = (uint32_t)crc32(0, hdr, 32);
	for (int b = 0; b < 4; b++)
		hdr[32 + b] = (uint8_t)(hcrc >> (8 * b));
	emit(s, hdr, HEADER_BYTES);
	struct section_ctx c = {.m = m};
	write_section(s, "CONF", body_conf, &c);
	for (int i = 0; i < m->nmodules; i++) {
		c.index = i;
		write_section(s, "MODL", body_modl, &c);
	}
	for (int i = 0; i < m->nmodules; i++) {
		if (!m->opts[i])
			continue;
		c.index = i;
		write_section(s, "OPTM", body_optm, &c);
	}
	write_section(s, "RNGS", body_rngs, &c);
	write_section(s, "EPOC", body_epoc, &c);
	if (m->extra_size)
		write_section(s, "XTRA", body_xtra, &c);
}

int nn_model_save(const char *path, const struct nn_model *m, struct err *e)
{
	if (!little_endian())
		return err_set(e, ERR_UNSUPPORTED, "%s: model files are little-endian; this host "
		               "is not", path);
	if (m->nmodules < 1 || m->nmodules > NN_MODEL_MAX_MODULES || m->nrngs < 0 ||
	    m->nrngs > NN_MODEL_MAX_RNGS)
		return err_set(e, ERR_USAGE, "%s: %d modules and %d rngs (limits 1..%d, 0..%d)", path,
		               m->nmodules, m->nrngs, NN_MODEL_MAX_MODULES, NN_MODEL_MAX_RNGS);
	if (m->config && strlen(m->config) > NN_MODEL_MAX_CONFIG)
		return err_set(e, ERR_LIMIT, "%s: configuration of %zu bytes exceeds %u", path,
		               strlen(m->config), NN_MODEL_MAX_CONFIG);
	if (m->extra_size > NN_MODEL_MAX_EXTRA)
		return err_set(e, ERR_LIMIT, "%s: trainer state of %zu bytes exceeds %u", path,
		               m->extra_size, NN_MODEL_MAX_EXTRA);
	for (int i = 0; i < m->nmodules; i++)
		if (!m->mods[i] || (m->opts[i] && m->opts[i]->n != m->mods[i]->nparams))
			return err_set(e, ERR_USAGE, "%s: module %d missing or its optimizer does not "
			               "match its %zu parameters", path, i,
			               m->mods[i] ? m->mods[i]->nparams : 0);
	struct sink meas = {0};
	write_all(&meas, m, 0);
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc < 0)
		return rc;
	struct sink out = {.fp = af.fp};
	write_all(&out, m, meas.len);
	if (out.failed) {
		afile_abort(&af);
		return err_sys(e, ERR_IO, "%s: cannot write", path);
	}
	return afile_commit(&af, e);
}

/* ---------------- reading ---------------- */

struct rd {
	FILE *fp;
	const uint8_t *mem;
	uint64_t size, off;
	const char *name;
	struct err *e;
	uint32_t crc;
};

static int bad(struct rd *r, uint64_t off, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int bad(struct rd *r, uint64_t off, const char *field, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return err_set(r->e, ERR_FORMAT, "%s: byte %" PRIu64 ": %s: %s", r->name, off, field, what);
}

static int get(struct rd *r, void *p, uint64_t n, const char *field)
{
	if (n > r->size - r->off)
		return bad(r, r->off, field, "needs %" PRIu64 " bytes, the file has %" PRIu64
		           " left (truncated?)", n, r->size - r->off);
	if (r->mem) {
		memcpy(p, r->mem + r->off, (size_t)n);
	} else if (fread(p, 1, (size_t)n, r->fp) != n) {
		return err_sys(r->e, ERR_IO, "%s: byte %" PRIu64 ": cannot read %s", r->name,
		               r->off, field);
	}
	r->crc = (uint32_t)crc32(r->crc, p, (uInt)n);
	r->off += n;
	return 0;
}

static int get_u32(struct rd *r, uint32_t *v, const char *field)
{
	uint8_t b[4];
	int rc = get(r, b, 4, field);
	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return rc;
}

static int get_u64(struct rd *r, uint64_t *v, const char *field)
{
	uint32_t lo = 0, hi = 0;
	int rc = get_u32(r, &lo, field);
	if (rc == 0)
		rc = get_u32(r, &hi, field);
	*v = (uint64_t)hi << 32 | lo;
	return rc;
}

static int get_f32(struct rd *r, float *f, const char *field)
{
	uint32_t v = 0;
	int rc = get_u32(r, &v, field);
	memcpy(f, &v, 4);
	return rc;
}

/* n floats into backend memory, in chunks */
/* n floats into the backend's dst; every one must be finite (a model
 * with a NaN or Inf scores nothing meaningful): the error names the byte,
 * and with tensors (nt of them, describing dst) the tensor and element */
static int get_floats(struct rd *r, const struct nn_backend *be, float *dst, size_t n,
                      const char *field, const struct nn_tensor *tensors, int nt, int mi)
{
	float buf[CHUNK];
	for (size_t i = 0; i < n; i += CHUNK) {
		size_t k = n - i < CHUNK ? n - i : CHUNK;
		uint64_t at = r->off;
		int rc = get(r, buf, k * sizeof(float), field);
		if (rc < 0)
			return rc;
		for (size_t j = 0; j < k; j++) {
			if (isfinite(buf[j]))
				continue;
			size_t el = i + j;
			const struct nn_tensor *t = NULL;
			for (int q = 0; q < nt && !t; q++)
				if (el >= tensors[q].off && el < tensors[q].off + tensors[q].n)
					t = &tensors[q];
			if (t)
				return bad(r, at + 4 * j, field, "module %d, tensor '%s', element %zu: %s, expected a "
				           "finite number", mi, t->name, el - t->off, isnan(buf[j]) ? "NaN" : "Inf");
			return bad(r, at + 4 * j, field, "value %zu: %s, expected a finite number", el,
			           isnan(buf[j]) ? "NaN" : "Inf");
		}
		be->upload(dst + i, buf, k);
	}
	return 0;
}

struct sec {
	char tag[5];
	uint32_t crc;
	uint64_t len, start, end;
};

static int section_begin(struct rd *r, struct sec *s, const char *want)
{
	uint64_t at = r->off;
	int rc = get(r, s->tag, 4, "section tag");
	s->tag[4] = 0;
	if (rc == 0)
		rc = get_u32(r, &s->crc, "section crc");
	if (rc == 0)
		rc = get_u64(r, &s->len, "section length");
	if (rc < 0)
		return rc;
	if (want && memcmp(s->tag, want, 4)) {
		char shown[5];
		for (int i = 0; i < 4; i++)
			shown[i] = (s->tag[i] >= 32 && s->tag[i] < 127) ? s->tag[i] : '?';
		shown[4] = 0;
		return bad(r, at, "section tag", "expected %s, found '%s'", want, shown);
	}
	if (s->len > r->size - r->off)
		return bad(r, at + 8, "section length", "%s section of %" PRIu64 " bytes, the file "
		           "has %" PRIu64 " left (truncated?)", s->tag, s->len, r->size - r->off);
	s->start = r->off;
	s->end = r->off + s->len;
	r->crc = 0;
	return 0;
}

static int section_end(struct rd *r, struct sec *s)
{
	if (r->off != s->end)
		return bad(r, r->off, s->tag, "section declares %" PRIu64 " bytes, its content "
		           "takes %" PRIu64, s->len, r->off - s->start);
	if (r->crc != s->crc)
		return bad(r, s->start - 12, "section crc", "%s section checksum mismatch (stored "
		           "%08x, computed %08x): the file is corrupt", s->tag, s->crc, r->crc);
	return 0;
}

/* bytes left in the current section */
static uint64_t left(const struct rd *r, const struct sec *s)
{
	return s->end - r->off;
}

static int read_desc(struct rd *r, struct sec *s, const struct nn_tensor *want, int state,
                     int mi, uint64_t *count)
{
	uint64_t at = r->off;
	uint32_t len, ndim, shape[4];
	char name[NN_NAME_MAX + 1];
	int rc = get_u32(r, &len, "tensor name length");
	if (rc < 0)
		return rc;
	if (len >= NN_NAME_MAX || len > left(r, s))
		return bad(r, at, "tensor name length", "%u (limit %d)", len, NN_NAME_MAX - 1);
	if ((rc = get(r, name, len, "tensor name")) < 0)
		return rc;
	name[len] = 0;
	if ((rc = get_u32(r, &ndim, "tensor rank")) < 0)
		return rc;
	if (ndim < 1 || ndim > 4)
		return bad(r, r->off - 4, "tensor rank", "%u for %s (1..4)", ndim, name);
	uint64_t n = 1;
	for (uint32_t d = 0; d < ndim; d++) {
		if ((rc = get_u32(r, &shape[d], "tensor shape")) < 0)
			return rc;
		if (shape[d] < 1 || shape[d] > (1u << 24))
			return bad(r, r->off - 4, "tensor shape", "dimension %u of %s is %u", d, name,
			           shape[d]);
		n *= shape[d];
		if (n > (1ull << 32))
			return bad(r, r->off - 4, "tensor shape", "%s is too large", name);
	}
	*count += n;
	/* the architecture the kind builds must be the one in the file */
	int same = want && !strcmp(want->name, name) && want->ndim == (int)ndim;
	for (uint32_t d = 0; same && d < ndim; d++)
		same = want->shape[d] == (int)shape[d];
	if (!same) {
		char exp[96] = "nothing";
		if (want)
			snprintf(exp, sizeof exp, "%s of %zu elements", want->name, want->n);
		return bad(r, at, state ? "state tensor" : "tensor",
		           "module %d: file has %s of %" PRIu64 " elements, this architecture has %s: "
		           "the file was written for another architecture", mi, name, n, exp);
	}
	return 0;
}

static int read_modl(struct rd *r, const struct nn_backend *be, struct nn_model *m, int mi)
{
	struct sec s;
	int rc = section_begin(r, &s, "MODL");
	if (rc < 0)
		return rc;
	uint32_t idx, kind, a, b, c, nt, ns;
	float dropout;
	uint64_t at = r->off;
	if ((rc = get_u32(r, &idx, "module index")) < 0 || (rc = get_u32(r, &kind, "module kind")) < 0 ||
	    (rc = get_u32(r, &a, "module input")) < 0 || (rc = get_u32(r, &b, "module input")) < 0 ||
	    (rc = get_u32(r, &c, "module input")) < 0 ||
	    (rc = get_f32(r, &dropout, "module dropout")) < 0 ||
	    (rc = get_u32(r, &nt, "tensor count")) < 0 ||
	    (rc = get_u32(r, &ns, "state tensor count")) < 0)
		return rc;
	if (idx != (uint32_t)mi)
		return bad(r, at, "module index", "%u, expected %d", idx, mi);
	if (!strcmp(nn_module_kind_name((int)kind), "unknown"))
		return bad(r, at + 4, "module kind", "%u is not a known encoder or head (a newer "
		           "file?)", kind);
	if (a > 65536 || b > 4096 || c > 4096)
		return bad(r, at + 8, "module input", "%ux%ux%u beyond the limits", a, b, c);
	if (nt > NN_MODEL_MAX_TENSORS || ns > NN_MODEL_MAX_TENSORS)
		return bad(r, at + 24, "tensor count", "%u and %u (limit %d)", nt, ns,
		           NN_MODEL_MAX_TENSORS);
	struct nn_module *mod = calloc(1, sizeof *mod);
	if (!mod)
		return err_set(r->e, ERR_NOMEM, "out of memory");
	struct err be_err = {0};
	if (nn_module_build(mod, be, (int)kind, (int)a, (int)b, (int)c, dropout, &be_err) < 0) {
		free(mod);
		return bad(r, at + 4, "module", "%s", be_err.msg);
	}
	m->mods[mi] = mod;
	m->nmodules = mi + 1;
	if ((int)nt != mod->ntensors || (int)ns != mod->nstate_tensors)
		return bad(r, at + 24, "tensor count", "module %d (%s): file has %u tensors and %u "
		           "state tensors, this architecture %d and %d", mi,
		           nn_module_kind_name((int)kind), nt, ns, mod->ntensors,
		           mod->nstate_tensors);
	uint64_t np = 0, nst = 0;
	for (uint32_t i = 0; i < nt; i++)
		if ((rc = read_desc(r, &s, &mod->tensors[i], 0, mi, &np)) < 0)
			return rc;
	for (uint32_t i = 0; i < ns; i++)
		if ((rc = read_desc(r, &s, &mod->state_tensors[i], 1, mi, &nst)) < 0)
			return rc;
	if ((np + nst) * 4 != left(r, &s))
		return bad(r, r->off, "weights", "module %d: %" PRIu64 " floats need %" PRIu64
		           " bytes, the section has %" PRIu64, mi, np + nst, (np + nst) * 4,
		           left(r, &s));
	/* sizes are now bounded by the file: allocate */
	if ((rc = nn_module_alloc(mod, 0, r->e)) < 0) {
		free(mod);
		m->mods[mi] = NULL;
		m->nmodules = mi;
		return rc;
	}
	if ((rc = get_floats(r, be, mod->w, mod->nparams, "weights", mod->tensors, mod->ntensors, mi)) < 0 ||
	    (rc = get_floats(r, be, mod->state, mod->nstate, "bn statistics", mod->state_tensors,
	                     mod->nstate_tensors, mi)) < 0)
		return rc;
	return section_end(r, &s);
}

static int read_optm(struct rd *r, const struct nn_backend *be, struct nn_model *m,
                     struct sec *s)
{
	uint32_t idx, kind, nest, nb;
	uint64_t step, n;
	struct nn_optim_conf c;
	memset(&c, 0, sizeof c);
	uint64_t at = r->off;
	int rc;
	if ((rc = get_u32(r, &idx, "optimizer module")) < 0 ||
	    (rc = get_u32(r, &kind, "optimizer kind")) < 0 ||
	    (rc = get_f32(r, &c.lr, "optimizer lr")) < 0 ||
	    (rc = get_f32(r, &c.momentum, "optimizer momentum")) < 0 ||
	    (rc = get_f32(r, &c.dampening, "optimizer dampening")) < 0 ||
	    (rc = get_u32(r, &nest, "optimizer nesterov")) < 0 ||
	    (rc = get_f32(r, &c.weight_decay, "optimizer weight decay")) < 0 ||
	    (rc = get_f32(r, &c.beta1, "optimizer beta1")) < 0 ||
	    (rc = get_f32(r, &c.beta2, "optimizer beta2")) < 0 ||
	    (rc = get_f32(r, &c.eps, "optimizer eps")) < 0 ||
	    (rc = get_u64(r, &step, "optimizer step")) < 0 ||
	    (rc = get_u64(r, &n, "optimizer size")) < 0 ||
	    (rc = get_u32(r, &nb, "optimizer buffers")) < 0)
		return rc;
	if (idx >= (uint32_t)m->nmodules || m->opts[idx])
		return bad(r, at, "optimizer module", "%u: no such module or a second optimizer", idx);
	if (kind != NN_OPTIM_SGD && kind != NN_OPTIM_ADAM)
		return bad(r, at + 4, "optimizer kind", "%u", kind);
	c.kind = (int)kind;
	c.nesterov = nest != 0;
	if (n != m->mods[idx]->nparams)
		return bad(r, at + 48, "optimizer size", "%" PRIu64 ", module %u has %zu parameters",
		           n, idx, m->mods[idx]->nparams);
	if (step > (1ull << 62))
		return bad(r, at + 40, "optimizer step", "%" PRIu64, step);
	struct nn_optim tmp = {.conf = c};
	if (nb != (uint32_t)optim_buffers(&tmp))
		return bad(r, at + 56, "optimizer buffers", "%u, this optimizer keeps %d", nb,
		           optim_buffers(&tmp));
	if ((uint64_t)nb * n * 4 != left(r, s))
		return bad(r, r->off, "optimizer state", "%u buffers of %" PRIu64 " floats, the "
		           "section has %" PRIu64 " bytes left", nb, n, left(r, s));
	struct nn_optim *o = calloc(1, sizeof *o);
	if (!o)
		return err_set(r->e, ERR_NOMEM, "out of memory");
	struct err oe = {0};
	if (nn_optim_create(o, be, &c, (size_t)n, &oe) < 0) {
		free(o);
		return bad(r, at, "optimizer", "%s", oe.msg);
	}
	m->opts[idx] = o;
	o->step = (long)step;
	if (nb >= 1 && (rc = get_floats(r, be, o->m, o->n, "optimizer moments", NULL, 0, -1)) < 0)
		return rc;
	if (nb >= 2 && (rc = get_floats(r, be, o->v, o->n, "optimizer moments", NULL, 0, -1)) < 0)
		return rc;
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* the fixed header: magic, version, sizes, section count, checksum */
static int read_header(struct rd *r, uint32_t *nsec)
{
	int rc;
	if (!little_endian())
		return err_set(r->e, ERR_UNSUPPORTED, "%s: model files are little-endian; this "
		               "host is not", r->name);
	uint8_t hdr[HEADER_BYTES];
	if (r->size < HEADER_BYTES)
		return bad(r, 0, "header", "the file has %" PRIu64 " bytes, a model has at least %d",
		           r->size, HEADER_BYTES);
	if ((rc = get(r, hdr, HEADER_BYTES, "header")) < 0)
		return rc;
	if (memcmp(hdr, MAGIC, 8))
		return bad(r, 0, "magic", "not a WENO model file (expected \"WENOMODL\")");
	uint32_t version = le32(hdr + 8), hbytes = le32(hdr + 12), hcrc = le32(hdr + 32);
	uint64_t fbytes = (uint64_t)le32(hdr + 16) | (uint64_t)le32(hdr + 20) << 32;
	*nsec = le32(hdr + 24);
	if (version > NN_MODEL_VERSION) {
		rc = bad(r, 8, "version", "file version %u is newer than this build reads (%d)",
		         version, NN_MODEL_VERSION);
		size_t l = strlen(r->e->msg);
		snprintf(r->e->msg + l, sizeof r->e->msg - l, "\nhint: use a newer weno toolkit");
		return rc;
	}
	if (version == 0)
		return bad(r, 8, "version", "0 is not a valid version");
	if ((uint32_t)crc32(0, hdr, 32) != hcrc)
		return bad(r, 32, "header crc", "header checksum mismatch: the file is corrupt");
	if (hbytes != HEADER_BYTES)
		return bad(r, 12, "header size", "%u, expected %d", hbytes, HEADER_BYTES);
	if (fbytes != r->size)
		return bad(r, 16, "file size", "header says %" PRIu64 " bytes, the file has %" PRIu64
		           "%s", fbytes, r->size, fbytes > r->size ? " (truncated)" : "");
	return 0;
}

/* CONF: the configuration text */
static int read_conf(struct rd *r, struct nn_model *m)
{
	struct sec s;
	int rc = section_begin(r, &s, "CONF");
	if (rc < 0)
		return rc;
	if (s.len > NN_MODEL_MAX_CONFIG)
		return bad(r, s.start - 8, "section length", "configuration of %" PRIu64
		           " bytes exceeds %u", s.len, NN_MODEL_MAX_CONFIG);
	m->config = calloc(1, (size_t)s.len + 1);
	if (!m->config)
		return err_set(r->e, ERR_NOMEM, "out of memory");
	if ((rc = get(r, m->config, s.len, "configuration")) < 0)
		return rc;
	if (memchr(m->config, 0, (size_t)s.len))
		return bad(r, s.start, "configuration", "contains a NUL byte");
	return section_end(r, &s);
}

/* RNGS: the generators' states */
static int read_rngs(struct rd *r, struct nn_model *m)
{
	struct sec s;
	uint32_t cnt;
	int rc;
	if ((rc = section_begin(r, &s, "RNGS")) < 0 || (rc = get_u32(r, &cnt, "rng count")) < 0)
		return rc;
	if (cnt > NN_MODEL_MAX_RNGS || (uint64_t)cnt * 16 != left(r, &s))
		return bad(r, s.start, "rng count", "%u (limit %d, section of %" PRIu64 " bytes)", cnt,
		           NN_MODEL_MAX_RNGS, s.len);
	for (uint32_t i = 0; i < cnt; i++)
		if ((rc = get_u64(r, &m->rngs[i].state, "rng state")) < 0 ||
		    (rc = get_u64(r, &m->rngs[i].inc, "rng stream")) < 0)
			return rc;
	m->nrngs = (int)cnt;
	return section_end(r, &s);
}

/* EPOC: the epochs done */
static int read_epoc(struct rd *r, struct nn_model *m)
{
	struct sec s;
	int rc = section_begin(r, &s, "EPOC");
	if (rc < 0)
		return rc;
	if (s.len != 8)
		return bad(r, s.start - 8, "section length", "EPOC of %" PRIu64 " bytes, expected 8", s.len);
	if ((rc = get_u64(r, &m->epoch, "epoch")) < 0)
		return rc;
	return section_end(r, &s);
}

/* XTRA: the trainer's own state, opaque here */
static int read_xtra(struct rd *r, struct nn_model *m)
{
	struct sec s;
	int rc = section_begin(r, &s, "XTRA");
	if (rc < 0)
		return rc;
	if (s.len > NN_MODEL_MAX_EXTRA || m->extra)
		return bad(r, s.start - 8, "section length", "trainer state of %" PRIu64
		           " bytes (limit %u) or a second one", s.len, NN_MODEL_MAX_EXTRA);
	m->extra = malloc(s.len ? (size_t)s.len : 1);
	if (!m->extra)
		return err_set(r->e, ERR_NOMEM, "out of memory");
	m->extra_size = (size_t)s.len;
	if ((rc = get(r, m->extra, s.len, "trainer state")) < 0)
		return rc;
	return section_end(r, &s);
}

/* the next section's tag, without consuming it */
static int peek_tag(struct rd *r, char tag[4])
{
	if (r->size - r->off < SECTION_BYTES)
		return bad(r, r->off, "section", "truncated section header");
	if (r->mem) {
		memcpy(tag, r->mem + r->off, 4);
		return 0;
	}
	long pos = ftell(r->fp);
	if (fread(tag, 1, 4, r->fp) != 4 || fseek(r->fp, pos, SEEK_SET) != 0)
		return err_sys(r->e, ERR_IO, "%s: byte %" PRIu64 ": cannot read", r->name, r->off);
	return 0;
}

/* one section after CONF: MODL..., OPTM..., RNGS, EPOC, XTRA; seen counts
 * the sections read so far, *nmod the modules */
static int read_section(struct rd *r, const struct nn_backend *be, struct nn_model *m, uint32_t seen,
                        int *nmod)
{
	uint64_t at = r->off;
	char tag[4];
	int rc = peek_tag(r, tag);
	if (rc < 0)
		return rc;
	if (!memcmp(tag, "MODL", 4)) {
		if (*nmod >= NN_MODEL_MAX_MODULES || seen > 1 + (uint32_t)*nmod)
			return bad(r, at, "section tag", "MODL section out of place or more than %d modules",
			           NN_MODEL_MAX_MODULES);
		if ((rc = read_modl(r, be, m, *nmod)) < 0)
			return rc;
		(*nmod)++;
		return 0;
	}
	if (!memcmp(tag, "OPTM", 4)) {
		struct sec s;
		if (*nmod == 0)
			return bad(r, at, "section tag", "OPTM before any MODL");
		if ((rc = section_begin(r, &s, "OPTM")) < 0 || (rc = read_optm(r, be, m, &s)) < 0)
			return rc;
		return section_end(r, &s);
	}
	if (!memcmp(tag, "RNGS", 4))
		return read_rngs(r, m);
	if (!memcmp(tag, "EPOC", 4))
		return read_epoc(r, m);
	if (!memcmp(tag, "XTRA", 4))
		return read_xtra(r, m);
	return bad(r, at, "section tag", "unknown section");
}

static int load(struct rd *r, const struct nn_backend *be, struct nn_model *m)
{
	memset(m, 0, sizeof *m);
	m->owned = 1;
	uint32_t nsec = 0;
	int rc = read_header(r, &nsec);
	if (rc < 0 || (rc = read_conf(r, m)) < 0)
		return rc;
	uint32_t seen = 1;
	int nmod = 0;
	for (; r->off < r->size; seen++) {
		if (seen >= nsec)
			return bad(r, r->off, "sections", "more sections than the %u the header declares", nsec);
		if ((rc = read_section(r, be, m, seen, &nmod)) < 0)
			return rc;
	}
	if (seen != nsec)
		return bad(r, r->off, "sections", "the header declares %u sections, the file has %u",
		           nsec, seen);
	if (nmod == 0)
		return bad(r, r->off, "sections", "no module in the file");
	return 0;
}

static int load_finish(int rc, struct nn_model *m)
{
	if (rc < 0)
		nn_model_free(m);
	return rc;
}

int nn_model_load(const char *path, const struct nn_backend *be, struct nn_model *m,
                  struct err *e)
{
	memset(m, 0, sizeof *m);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	struct stat st;
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(fp);
		return err_set(e, ERR_IO, "%s: not a regular file", path);
	}
	struct rd r = {.fp = fp, .size = (uint64_t)st.st_size, .name = path, .e = e};
	int rc = load(&r, be, m);
	fclose(fp);
	return load_finish(rc, m);
}

int nn_model_load_mem(const void *data, size_t size, const char *name,
                      const struct nn_backend *be, struct nn_model *m, struct err *e)
{
	struct rd r = {.mem = data, .size = size, .name = name, .e = e};
	int rc = load(&r, be, m);
	return load_finish(rc, m);
}

void nn_model_free(struct nn_model *m)
{
	if (!m || !m->owned)
		return;
	for (int i = 0; i < NN_MODEL_MAX_MODULES; i++) {
		if (m->mods[i]) {
			nn_module_free(m->mods[i]);
			free(m->mods[i]);
		}
		if (m->opts[i]) {
			nn_optim_free(m->opts[i]);
			free(m->opts[i]);
		}
	}
	free(m->config);
	free(m->extra);
	memset(m, 0, sizeof *m);
}

const char *nn_model_config_get(const struct nn_model *m, const char *key, char *buf, size_t n)
{
	if (!m->config || !n)
		return NULL;
	size_t kl = strlen(key);
	const char *p = m->config;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t ll = eol ? (size_t)(eol - p) : strlen(p);
		if (ll > kl && !strncmp(p, key, kl) && p[kl] == '=') {
			size_t vl = ll - kl - 1;
			if (vl >= n)
				vl = n - 1;
			memcpy(buf, p + kl + 1, vl);
			buf[vl] = 0;
			return buf;
		}
		p += ll + (eol ? 1 : 0);
	}
	return NULL;
}
