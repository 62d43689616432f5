/* annot.c - see annot.h */
#include "annot.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "../base/textfile.h"

#define DEPTH_MAX 64

struct apoly {
	int cls;
	uint32_t nr;          /* rings */
	uint32_t *rs;         /* nr + 1 ring starts into x, y */
	double *x, *y;
	double bx0, by0, bx1, by1;
};

struct annot {
	struct apoly *p;
	size_t np, cap;
	size_t nvert;
	int ignored;
};

/* ---- building ---- */

static int annot_new(struct annot **a, struct err *e)
{
	*a = err_calloc(e, 1, sizeof **a);
	return *a ? 0 : ERR_NOMEM;
}

void annot_free(struct annot *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->np; i++) {
		free(a->p[i].rs);
		free(a->p[i].x);
		free(a->p[i].y);
	}
	free(a->p);
	free(a);
}

/* Adds a polygon from rings given as (x, y) arrays; takes nothing over. */
static int add_poly(struct annot *a, int cls, uint32_t nr, const uint32_t *rs, const double *x, const double *y,
                    const char *name, struct err *e)
{
	uint32_t nv = rs[nr];
	if (nv == 0)
		return 0;
	if (a->nvert + nv > ANNOT_VERTICES_MAX)
		return err_set(e, ERR_LIMIT, "%s: more than %u vertices", name, ANNOT_VERTICES_MAX);
	if (a->np == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 16;
		void *q = realloc(a->p, nc * sizeof *a->p);
		if (!q)
			return err_set(e, ERR_NOMEM, "out of memory");
		a->p = q;
		a->cap = nc;
	}
	struct apoly *p = &a->p[a->np];
	memset(p, 0, sizeof *p);
	p->cls = cls;
	p->nr = nr;
	p->rs = malloc(sizeof(uint32_t) * (nr + 1));
	p->x = malloc(sizeof(double) * nv);
	p->y = malloc(sizeof(double) * nv);
	if (!p->rs || !p->x || !p->y) {
		free(p->rs);
		free(p->x);
		free(p->y);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	memcpy(p->rs, rs, sizeof(uint32_t) * (nr + 1));
	memcpy(p->x, x, sizeof(double) * nv);
	memcpy(p->y, y, sizeof(double) * nv);
	p->bx0 = p->by0 = INFINITY;
	p->bx1 = p->by1 = -INFINITY;
	for (uint32_t i = 0; i < nv; i++) {
		p->bx0 = fmin(p->bx0, x[i]);
		p->bx1 = fmax(p->bx1, x[i]);
		p->by0 = fmin(p->by0, y[i]);
		p->by1 = fmax(p->by1, y[i]);
	}
	a->np++;
	a->nvert += nv;
	return 0;
}

int annot_count(const struct annot *a, int cls)
{
	int n = 0;
	for (size_t i = 0; i < a->np; i++)
		n += a->p[i].cls == cls;
	return n;
}

int annot_ignored(const struct annot *a)
{
	return a->ignored;
}

/* ---- numbers ---- */

int annot_parse_number(const char *s, size_t n, double *v)
{
	size_t i = 0;
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	int neg = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	uint64_t mant = 0;
	int digits = 0, exp10 = 0, any = 0, sep = 0;
	for (; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9') {
			any = 1;
			if (mant == 0 && c == '0') {
				if (sep)
					exp10--;
				continue;
			}
			if (digits < 19) {
				mant = mant * 10 + (uint64_t)(c - '0');
				digits++;
				if (sep)
					exp10--;
			} else if (!sep) {
				exp10++;
			}
		} else if ((c == '.' || c == ',') && !sep) {
			sep = 1;
		} else {
			break;
		}
	}
	if (!any)
		return -1;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		int eneg = 0, ed = 0;
		long ex = 0;
		if (i < n && (s[i] == '-' || s[i] == '+'))
			eneg = s[i++] == '-';
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, ed++)
			if (ex < 100000)
				ex = ex * 10 + (s[i] - '0');
		if (!ed)
			return -1;
		exp10 += (int)(eneg ? -ex : ex);
	}
	while (i < n && isspace((unsigned char)s[i]))
		i++;
	if (i != n)
		return -1;
	double x = (double)mant;
	if (mant != 0) {
		if (exp10 > 330)
			return -1;
		if (exp10 < -400)
			x = 0;
		else if (exp10 < 0)
			x = exp10 >= -22 ? x / pow(10, -exp10) : x * pow(10, exp10);
		else if (exp10 > 0)
			x *= pow(10, exp10);
	}
	if (!isfinite(x))
		return -1;
	*v = neg ? -x : x;
	return 0;
}

/* ---- class names ---- */

static int ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
	return *a == *b;
}

/* ANNOT_TUMOUR, ANNOT_EXCLUSION or -1 */
static int class_of(const char *name)
{
	if (!strcmp(name, "_0") || !strcmp(name, "_1") || ieq(name, "tumor") || ieq(name, "tumour"))
		return ANNOT_TUMOUR;
	if (!strcmp(name, "_2") || ieq(name, "exclusion") || ieq(name, "exclude"))
		return ANNOT_EXCLUSION;
	return -1;
}

/* ---- ASAP XML ---- */

struct coord {
	double order;
	double x, y;
	size_t idx;
};

static int cmp_coord(const void *a, const void *b)
{
	const struct coord *p = a, *q = b;
	if (p->order != q->order)
		return p->order < q->order ? -1 : 1;
	return (p->idx > q->idx) - (p->idx < q->idx);
}

static int xml_num(xmlNode *n, const char *attr, double *v, int required)
{
	xmlChar *s = xmlGetProp(n, (const xmlChar *)attr);
	if (!s)
		return required ? -1 : 1;
	int rc = annot_parse_number((const char *)s, strlen((const char *)s), v);
	xmlFree(s);
	return rc;
}

static int is_el(xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

/* the XML document, or an error with libxml2's line and message */
static int parse_xml(xmlDocPtr *doc, const char *buf, size_t n, const char *name, struct err *e)
{
	xmlParserCtxtPtr ctx = xmlNewParserCtxt();
	if (!ctx)
		return err_set(e, ERR_NOMEM, "out of memory");
	*doc = xmlCtxtReadMemory(ctx, buf, (int)n, name, NULL,
	                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	int rc = 0;
	if (!*doc) {
		const xmlError *xe = xmlCtxtGetLastError(ctx);
		if (xe && xe->message) {
			char msg[300];
			snprintf(msg, sizeof msg, "%s", xe->message);
			size_t l = strlen(msg);
			while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
				msg[--l] = 0;
			rc = err_set(e, ERR_FORMAT, "%s: line %d: not well-formed XML: %s", name, xe->line, msg);
		} else {
			rc = err_set(e, ERR_FORMAT, "%s: not well-formed XML", name);
		}
	}
	xmlFreeParserCtxt(ctx);
	return rc;
}

/* an <Annotation>'s class (-1: not one we read), whether its type is a
 * polygon, and its name for messages */
static int asap_class(xmlNode *an, int *poly, char *label, size_t cap)
{
	xmlChar *grp = xmlGetProp(an, (const xmlChar *)"PartOfGroup");
	xmlChar *typ = xmlGetProp(an, (const xmlChar *)"Type");
	xmlChar *nm = xmlGetProp(an, (const xmlChar *)"Name");
	int cls = grp ? class_of((const char *)grp) : -1;
	*poly = !typ || !strcmp((const char *)typ, "Polygon") || !strcmp((const char *)typ, "Spline") ||
	        !strcmp((const char *)typ, "Rectangle");
	snprintf(label, cap, "%s", nm ? (const char *)nm : "(unnamed)");
	xmlFree(grp);
	xmlFree(typ);
	xmlFree(nm);
	return cls;
}

/* the <Coordinate>s of an <Annotation> into *cs (capacity *ccap); *nc gets
 * their count */
static int asap_coords(xmlNode *an, const char *name, const char *label, struct coord **cs, size_t *ccap,
                       size_t *nc, struct err *e)
{
	*nc = 0;
	for (xmlNode *co = an->children; co; co = co->next) {
		if (!is_el(co, "Coordinates"))
			continue;
		for (xmlNode *c = co->children; c; c = c->next) {
			if (!is_el(c, "Coordinate"))
				continue;
			if (*nc == *ccap) {
				size_t ncap = *ccap ? *ccap * 2 : 256;
				if (ncap > ANNOT_VERTICES_MAX)
					return err_set(e, ERR_LIMIT, "%s: annotation '%s': more than %u vertices", name,
					               label, ANNOT_VERTICES_MAX);
				void *q = realloc(*cs, ncap * sizeof **cs);
				if (!q)
					return err_set(e, ERR_NOMEM, "out of memory");
				*cs = q;
				*ccap = ncap;
			}
			struct coord *k = &(*cs)[*nc];
			k->idx = *nc;
			int r1 = xml_num(c, "X", &k->x, 1), r2 = xml_num(c, "Y", &k->y, 1);
			int r3 = xml_num(c, "Order", &k->order, 0);
			if (r3 == 1)
				k->order = (double)*nc;
			if (r1 || r2 || r3 < 0 || fabs(k->x) > ANNOT_COORD_MAX || fabs(k->y) > ANNOT_COORD_MAX)
				return err_set(e, ERR_FORMAT, "%s: line %ld: annotation '%s': coordinate %zu: X, Y and "
				               "Order must be numbers (|X|, |Y| <= 1e9)",
				               name, (long)xmlGetLineNo(c), label, *nc);
			(*nc)++;
		}
	}
	return 0;
}

/* the nc coordinates in their Order as one polygon of class cls */
static int asap_polygon(struct annot *a, int cls, struct coord *cs, size_t nc, const char *name, struct err *e)
{
	qsort(cs, nc, sizeof *cs, cmp_coord);
	double *xs = malloc(nc * sizeof *xs), *ys = malloc(nc * sizeof *ys);
	int rc;
	if (!xs || !ys) {
		rc = err_set(e, ERR_NOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < nc; i++) {
			xs[i] = cs[i].x;
			ys[i] = cs[i].y;
		}
		uint32_t rs[2] = {0, (uint32_t)nc};
		rc = add_poly(a, cls, 1, rs, xs, ys, name, e);
	}
	free(xs);
	free(ys);
	return rc;
}

int annot_parse_asap(struct annot **ap, const char *buf, size_t n, const char *name, struct err *e)
{
	*ap = NULL;
	if (n > ANNOT_FILE_MAX || n > (size_t)INT32_MAX)
		return err_set(e, ERR_LIMIT, "%s: %zu bytes: larger than %u", name, n, ANNOT_FILE_MAX);
	xmlDocPtr doc;
	int rc = parse_xml(&doc, buf, n, name, e);
	if (rc)
		return rc;
	struct annot *a = NULL;
	struct coord *cs = NULL;
	size_t ccap = 0;
	xmlNode *root = xmlDocGetRootElement(doc);
	if (!root || !is_el(root, "ASAP_Annotations"))
		rc = err_set(e, ERR_FORMAT, "%s: root element <%s>: expected <ASAP_Annotations>", name,
		             root ? (const char *)root->name : "(none)");
	else
		rc = annot_new(&a, e);
	for (xmlNode *as = root && !rc ? root->children : NULL; as && !rc; as = as->next) {
		if (!is_el(as, "Annotations"))
			continue;
		for (xmlNode *an = as->children; an && !rc; an = an->next) {
			if (!is_el(an, "Annotation"))
				continue;
			char label[128];
			int poly, cls = asap_class(an, &poly, label, sizeof label);
			size_t nc = 0;
			if (cls >= 0 && poly)
				rc = asap_coords(an, name, label, &cs, &ccap, &nc, e);
			if (!rc && (cls < 0 || !poly || nc < 3))
				a->ignored++;
			else if (!rc)
				rc = asap_polygon(a, cls, cs, nc, name, e);
		}
	}
	free(cs);
	xmlFreeDoc(doc);
	if (rc) {
		annot_free(a);
		return rc;
	}
	*ap = a;
	return 0;
}

/* ---- JSON ---- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jv {
	int t;
	double num;
	char *str;            /* J_STR (NUL-terminated, escapes decoded) */
	size_t n;             /* J_ARR/J_OBJ: children */
	struct jv *kids;
	char **keys;          /* J_OBJ */
	size_t off;           /* byte offset in the input */
};

struct jp {
	const char *s;
	size_t n, i;
	const char *name;
	struct err *e;
	int rc;
	size_t nodes;
};

static void jv_free(struct jv *v)
{
	if (v->t == J_STR)
		free(v->str);
	if (v->t == J_ARR || v->t == J_OBJ) {
		for (size_t i = 0; i < v->n; i++) {
			jv_free(&v->kids[i]);
			if (v->keys)
				free(v->keys[i]);
		}
		free(v->kids);
		free(v->keys);
	}
	memset(v, 0, sizeof *v);
}

static int jfail(struct jp *p, const char *what)
{
	if (!p->rc)
		p->rc = err_set(p->e, ERR_FORMAT, "%s: byte %zu: %s", p->name, p->i, what);
	return p->rc;
}

static void jws(struct jp *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
		p->i++;
}

static int jstring(struct jp *p, char **out)
{
	/* at '"' */
	p->i++;
	size_t cap = 16, len = 0;
	char *b = malloc(cap);
	if (!b)
		return p->rc = err_set(p->e, ERR_NOMEM, "out of memory");
	for (;;) {
		if (p->i >= p->n) {
			free(b);
			return jfail(p, "unterminated string");
		}
		unsigned char c = (unsigned char)p->s[p->i++];
		if (c == '"')
			break;
		if (c < 0x20) {
			free(b);
			p->i--;
			return jfail(p, "control character in a string");
		}
		char tmp[4];
		size_t k = 1;
		tmp[0] = (char)c;
		if (c == '\\') {
			if (p->i >= p->n) {
				free(b);
				return jfail(p, "unterminated string");
			}
			char d = p->s[p->i++];
			switch (d) {
			case '"': tmp[0] = '"'; break;
			case '\\': tmp[0] = '\\'; break;
			case '/': tmp[0] = '/'; break;
			case 'b': tmp[0] = '\b'; break;
			case 'f': tmp[0] = '\f'; break;
			case 'n': tmp[0] = '\n'; break;
			case 'r': tmp[0] = '\r'; break;
			case 't': tmp[0] = '\t'; break;
			case 'u': {
				unsigned u = 0;
				for (int j = 0; j < 4; j++) {
					char h = p->i < p->n ? p->s[p->i++] : 0;
					int dv = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
					       : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
					if (dv < 0) {
						free(b);
						return jfail(p, "bad \\u escape");
					}
					u = u * 16 + (unsigned)dv;
				}
				/* encode as UTF-8 (surrogates kept as is: names only) */
				if (u < 0x80) {
					tmp[0] = (char)u;
				} else if (u < 0x800) {
					tmp[0] = (char)(0xC0 | (u >> 6));
					tmp[1] = (char)(0x80 | (u & 63));
					k = 2;
				} else {
					tmp[0] = (char)(0xE0 | (u >> 12));
					tmp[1] = (char)(0x80 | ((u >> 6) & 63));
					tmp[2] = (char)(0x80 | (u & 63));
					k = 3;
				}
				break;
			}
			default:
				free(b);
				return jfail(p, "bad escape in a string");
			}
		}
		if (len + k + 1 > cap) {
			cap = cap * 2 + k;
			char *q = realloc(b, cap);
			if (!q) {
				free(b);
				return p->rc = err_set(p->e, ERR_NOMEM, "out of memory");
			}
			b = q;
		}
		memcpy(b + len, tmp, k);
		len += k;
	}
	b[len] = 0;
	*out = b;
	return 0;
}

static int jvalue(struct jp *p, struct jv *v, int depth)
{
	memset(v, 0, sizeof *v);
	jws(p);
	v->off = p->i;
	if (depth > DEPTH_MAX)
		return jfail(p, "nested deeper than 64 levels");
	if (++p->nodes > ANNOT_VERTICES_MAX * 4u)
		return jfail(p, "too many values");
	if (p->i >= p->n)
		return jfail(p, "unexpected end of input");
	char c = p->s[p->i];
	if (c == '{' || c == '[') {
		int obj = c == '{';
		v->t = obj ? J_OBJ : J_ARR;
		p->i++;
		size_t cap = 0;
		jws(p);
		if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
			p->i++;
			return 0;
		}
		for (;;) {
			if (v->n == cap) {
				cap = cap ? cap * 2 : 4;
				struct jv *k = realloc(v->kids, cap * sizeof *k);
				if (!k)
					return p->rc = err_set(p->e, ERR_NOMEM, "out of memory");
				v->kids = k;
				if (obj) {
					char **ks = realloc(v->keys, cap * sizeof *ks);
					if (!ks)
						return p->rc = err_set(p->e, ERR_NOMEM, "out of memory");
					v->keys = ks;
				}
			}
			char *key = NULL;
			if (obj) {
				jws(p);
				if (p->i >= p->n || p->s[p->i] != '"')
					return jfail(p, "expected a string key");
				if (jstring(p, &key))
					return p->rc;
				jws(p);
				if (p->i >= p->n || p->s[p->i] != ':') {
					free(key);
					return jfail(p, "expected ':'");
				}
				p->i++;
				v->keys[v->n] = key;
			}
			v->n++;
			if (jvalue(p, &v->kids[v->n - 1], depth + 1))
				return p->rc;
			jws(p);
			if (p->i < p->n && p->s[p->i] == ',') {
				p->i++;
				continue;
			}
			if (p->i < p->n && p->s[p->i] == (obj ? '}' : ']')) {
				p->i++;
				return 0;
			}
			return jfail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		}
	}
	if (c == '"') {
		v->t = J_STR;
		return jstring(p, &v->str);
	}
	if (c == 't' && p->n - p->i >= 4 && !memcmp(p->s + p->i, "true", 4)) {
		v->t = J_BOOL;
		v->num = 1;
		p->i += 4;
		return 0;
	}
	if (c == 'f' && p->n - p->i >= 5 && !memcmp(p->s + p->i, "false", 5)) {
		v->t = J_BOOL;
		p->i += 5;
		return 0;
	}
	if (c == 'n' && p->n - p->i >= 4 && !memcmp(p->s + p->i, "null", 4)) {
		v->t = J_NULL;
		p->i += 4;
		return 0;
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		size_t j = p->i;
		while (j < p->n && (isdigit((unsigned char)p->s[j]) || p->s[j] == '-' || p->s[j] == '+' || p->s[j] == '.' ||
		                    p->s[j] == 'e' || p->s[j] == 'E'))
			j++;
		v->t = J_NUM;
		if (annot_parse_number(p->s + p->i, j - p->i, &v->num))
			return jfail(p, "bad number");
		p->i = j;
		return 0;
	}
	return jfail(p, "unexpected character");
}

static const struct jv *jget(const struct jv *o, const char *key)
{
	if (!o || o->t != J_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->keys[i], key))
			return &o->kids[i];
	return NULL;
}

struct ringbuf {
	double *x, *y;
	uint32_t *rs;
	size_t nv, vcap, nr, rcap;
};

static int gj_polygon(struct annot *a, int cls, const struct jv *rings, struct ringbuf *b, const char *name,
                      struct err *e)
{
	if (rings->t != J_ARR)
		return err_set(e, ERR_FORMAT, "%s: byte %zu: a Polygon's coordinates must be an array of rings", name,
		               rings->off);
	b->nv = b->nr = 0;
	for (size_t r = 0; r < rings->n; r++) {
		const struct jv *ring = &rings->kids[r];
		if (ring->t != J_ARR)
			return err_set(e, ERR_FORMAT, "%s: byte %zu: a ring must be an array of positions", name, ring->off);
		if (b->nr + 2 > b->rcap) {
			size_t nc = b->rcap ? b->rcap * 2 : 8;
			void *q = realloc(b->rs, nc * sizeof *b->rs);
			if (!q)
				return err_set(e, ERR_NOMEM, "out of memory");
			b->rs = q;
			b->rcap = nc;
		}
		b->rs[b->nr] = (uint32_t)b->nv;
		for (size_t k = 0; k < ring->n; k++) {
			const struct jv *pt = &ring->kids[k];
			if (pt->t != J_ARR || pt->n < 2 || pt->kids[0].t != J_NUM || pt->kids[1].t != J_NUM ||
			    fabs(pt->kids[0].num) > ANNOT_COORD_MAX || fabs(pt->kids[1].num) > ANNOT_COORD_MAX)
				return err_set(e, ERR_FORMAT, "%s: byte %zu: a position must be [x, y] numbers with |x|, |y| <= 1e9",
				               name, pt->off);
			if (b->nv + 1 > b->vcap) {
				size_t nc = b->vcap ? b->vcap * 2 : 256;
				if (nc > ANNOT_VERTICES_MAX)
					return err_set(e, ERR_LIMIT, "%s: more than %u vertices", name, ANNOT_VERTICES_MAX);
				double *qx = realloc(b->x, nc * sizeof *qx);
				if (qx)
					b->x = qx;
				double *qy = realloc(b->y, nc * sizeof *qy);
				if (qy)
					b->y = qy;
				if (!qx || !qy)
					return err_set(e, ERR_NOMEM, "out of memory");
				b->vcap = nc;
			}
			b->x[b->nv] = pt->kids[0].num;
			b->y[b->nv] = pt->kids[1].num;
			b->nv++;
		}
		b->nr++;
	}
	if (b->nr == 0)
		return 0;
	b->rs[b->nr] = (uint32_t)b->nv;
	return add_poly(a, cls, (uint32_t)b->nr, b->rs, b->x, b->y, name, e);
}

static int gj_geometry(struct annot *a, int cls, const struct jv *g, struct ringbuf *b, const char *name,
                       struct err *e, int depth)
{
	const struct jv *t = jget(g, "type");
	if (!t || t->t != J_STR)
		return err_set(e, ERR_FORMAT, "%s: byte %zu: a geometry needs a \"type\"", name, g ? g->off : 0);
	if (!strcmp(t->str, "GeometryCollection")) {
		const struct jv *gs = jget(g, "geometries");
		if (!gs || gs->t != J_ARR || depth > 8)
			return err_set(e, ERR_FORMAT, "%s: byte %zu: a GeometryCollection needs \"geometries\"", name, g->off);
		for (size_t i = 0; i < gs->n; i++) {
			int rc = gj_geometry(a, cls, &gs->kids[i], b, name, e, depth + 1);
			if (rc)
				return rc;
		}
		return 0;
	}
	const struct jv *c = jget(g, "coordinates");
	if (!strcmp(t->str, "Polygon")) {
		if (!c)
			return err_set(e, ERR_FORMAT, "%s: byte %zu: a Polygon needs \"coordinates\"", name, g->off);
		return gj_polygon(a, cls, c, b, name, e);
	}
	if (!strcmp(t->str, "MultiPolygon")) {
		if (!c || c->t != J_ARR)
			return err_set(e, ERR_FORMAT, "%s: byte %zu: a MultiPolygon needs an array of polygons", name, g->off);
		for (size_t i = 0; i < c->n; i++) {
			int rc = gj_polygon(a, cls, &c->kids[i], b, name, e);
			if (rc)
				return rc;
		}
		return 0;
	}
	a->ignored++; /* points, lines */
	return 0;
}

static int gj_feature(struct annot *a, const struct jv *f, struct ringbuf *b, const char *name, struct err *e)
{
	if (!f || f->t != J_OBJ)
		return err_set(e, ERR_FORMAT, "%s: byte %zu: a feature must be an object", name, f ? f->off : 0);
	const struct jv *props = jget(f, "properties");
	const char *cname = NULL;
	const struct jv *c = jget(props, "classification");
	if (c && c->t == J_OBJ && jget(c, "name") && jget(c, "name")->t == J_STR)
		cname = jget(c, "name")->str;
	else if (c && c->t == J_STR)
		cname = c->str;
	else if (jget(props, "name") && jget(props, "name")->t == J_STR)
		cname = jget(props, "name")->str;
	else if (jget(props, "label") && jget(props, "label")->t == J_STR)
		cname = jget(props, "label")->str;
	int cls = cname ? class_of(cname) : ANNOT_TUMOUR;
	if (cls < 0) {
		a->ignored++;
		return 0;
	}
	const struct jv *g = jget(f, "geometry");
	if (!g || g->t == J_NULL) {
		a->ignored++;
		return 0;
	}
	return gj_geometry(a, cls, g, b, name, e, 0);
}

int annot_parse_geojson(struct annot **ap, const char *buf, size_t n, const char *name, struct err *e)
{
	*ap = NULL;
	if (n > ANNOT_FILE_MAX)
		return err_set(e, ERR_LIMIT, "%s: %zu bytes: larger than %u", name, n, ANNOT_FILE_MAX);
	struct jp p = {buf, n, 0, name, e, 0, 0};
	struct jv root;
	if (jvalue(&p, &root, 0)) {
		jv_free(&root);
		return p.rc;
	}
	jws(&p);
	if (p.i != n) {
		jv_free(&root);
		return jfail(&p, "trailing data after the JSON value");
	}
	struct annot *a;
	int rc = annot_new(&a, e);
	struct ringbuf b;
	memset(&b, 0, sizeof b);
	if (!rc) {
		const struct jv *t = jget(&root, "type");
		if (root.t == J_ARR) {
			for (size_t i = 0; i < root.n && !rc; i++)
				rc = gj_feature(a, &root.kids[i], &b, name, e);
		} else if (!t || t->t != J_STR) {
			rc = err_set(e, ERR_FORMAT, "%s: byte 0: expected a GeoJSON object with a \"type\"", name);
		} else if (!strcmp(t->str, "FeatureCollection")) {
			const struct jv *fs = jget(&root, "features");
			if (!fs || fs->t != J_ARR)
				rc = err_set(e, ERR_FORMAT, "%s: byte %zu: a FeatureCollection needs a \"features\" array", name,
				             root.off);
			for (size_t i = 0; !rc && i < fs->n; i++)
				rc = gj_feature(a, &fs->kids[i], &b, name, e);
		} else if (!strcmp(t->str, "Feature")) {
			rc = gj_feature(a, &root, &b, name, e);
		} else {
			rc = gj_geometry(a, ANNOT_TUMOUR, &root, &b, name, e, 0);
		}
	}
	free(b.x);
	free(b.y);
	free(b.rs);
	jv_free(&root);
	if (rc) {
		annot_free(a);
		return rc;
	}
	*ap = a;
	return 0;
}

int annot_load(struct annot **ap, const char *path, struct err *e)
{
	*ap = NULL;
	FILE *f = textfile_fopen(path, e);
	if (!f)
		return ERR_IO;
	struct stat st;
	if (fstat(fileno(f), &st)) {
		fclose(f);
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	}
	if ((uint64_t)st.st_size > ANNOT_FILE_MAX) {
		fclose(f);
		return err_set(e, ERR_LIMIT, "%s: %lld bytes: larger than %u", path, (long long)st.st_size, ANNOT_FILE_MAX);
	}
	size_t n = (size_t)st.st_size;
	char *buf = malloc(n + 1);
	if (!buf) {
		fclose(f);
		return err_set(e, ERR_NOMEM, "out of memory reading '%s'", path);
	}
	if (fread(buf, 1, n, f) != n) {
		free(buf);
		fclose(f);
		return err_sys(e, ERR_IO, "cannot read '%s'", path);
	}
	fclose(f);
	buf[n] = 0;
	size_t i = 0;
	if (n >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
		i = 3;
	while (i < n && isspace((unsigned char)buf[i]))
		i++;
	int rc;
	if (i < n && buf[i] == '<')
		rc = annot_parse_asap(ap, buf, n, path, e);
	else if (i < n && (buf[i] == '{' || buf[i] == '['))
		rc = annot_parse_geojson(ap, buf + i, n - i, path, e);
	else
		rc = err_set(e, ERR_FORMAT, "%s: byte %zu: neither ASAP XML ('<') nor GeoJSON ('{')", path, i);
	free(buf);
	return rc;
}

/* ---- geometry ---- */

static int poly_inside(const struct apoly *p, double x, double y)
{
	if (x < p->bx0 || x > p->bx1 || y < p->by0 || y > p->by1)
		return 0;
	int in = 0;
	for (uint32_t r = 0; r < p->nr; r++) {
		uint32_t s = p->rs[r], t = p->rs[r + 1];
		if (t <= s)
			continue;
		for (uint32_t i = s, j = t - 1; i < t; j = i++) {
			double yi = p->y[i], yj = p->y[j];
			if ((yi <= y) != (yj <= y)) {
				double xc = p->x[j] + (y - yj) * (p->x[i] - p->x[j]) / (yi - yj);
				if (x < xc)
					in = !in;
			}
		}
	}
	return in;
}

int annot_inside(const struct annot *a, double x, double y)
{
	int t = 0;
	for (size_t i = 0; i < a->np && !t; i++)
		t = a->p[i].cls == ANNOT_TUMOUR && poly_inside(&a->p[i], x, y);
	if (!t)
		return 0;
	for (size_t i = 0; i < a->np; i++)
		if (a->p[i].cls == ANNOT_EXCLUSION && poly_inside(&a->p[i], x, y))
			return 0;
	return 1;
}

struct ivs {
	double *v;      /* pairs */
	size_t n, cap;  /* n values (2 per interval) */
};

static int iv_push(struct ivs *s, double a, double b)
{
	if (s->n + 2 > s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		double *q = realloc(s->v, nc * sizeof *q);
		if (!q)
			return -1;
		s->v = q;
		s->cap = nc;
	}
	s->v[s->n++] = a;
	s->v[s->n++] = b;
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int cmp_pair(const void *a, const void *b)
{
	const double *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] > y[1]) - (x[1] < y[1]);
}

/* sorts and merges the intervals of s in place */
static void iv_union(struct ivs *s)
{
	size_t m = s->n / 2;
	if (m < 2)
		return;
	qsort(s->v, m, 2 * sizeof(double), cmp_pair);
	size_t k = 0;
	for (size_t i = 1; i < m; i++) {
		if (s->v[2 * i] <= s->v[2 * k + 1]) {
			if (s->v[2 * i + 1] > s->v[2 * k + 1])
				s->v[2 * k + 1] = s->v[2 * i + 1];
		} else {
			k++;
			s->v[2 * k] = s->v[2 * i];
			s->v[2 * k + 1] = s->v[2 * i + 1];
		}
	}
	s->n = 2 * (k + 1);
}

struct scan {
	struct ivs t, x, r;   /* tumour, exclusion, result */
	double *xs;
	size_t xcap;
};

/* Intervals of the tumour region on line y, into sc->r (sorted, disjoint). */
static int scan_row(const struct annot *a, double y, struct scan *sc)
{
	sc->t.n = sc->x.n = sc->r.n = 0;
	for (size_t k = 0; k < a->np; k++) {
		const struct apoly *p = &a->p[k];
		if (y < p->by0 || y > p->by1)
			continue;
		size_t nx = 0;
		for (uint32_t r = 0; r < p->nr; r++) {
			uint32_t s = p->rs[r], t = p->rs[r + 1];
			if (t <= s)
				continue;
			for (uint32_t i = s, j = t - 1; i < t; j = i++) {
				double yi = p->y[i], yj = p->y[j];
				if ((yi <= y) != (yj <= y)) {
					if (nx == sc->xcap) {
						size_t nc = sc->xcap ? sc->xcap * 2 : 64;
						double *q = realloc(sc->xs, nc * sizeof *q);
						if (!q)
							return -1;
						sc->xs = q;
						sc->xcap = nc;
					}
					sc->xs[nx++] = p->x[j] + (y - yj) * (p->x[i] - p->x[j]) / (yi - yj);
				}
			}
		}
		if (nx < 2)
			continue;
		qsort(sc->xs, nx, sizeof *sc->xs, cmp_d);
		struct ivs *dst = p->cls == ANNOT_TUMOUR ? &sc->t : &sc->x;
		for (size_t i = 0; i + 1 < nx; i += 2)
			if (sc->xs[i + 1] > sc->xs[i] && iv_push(dst, sc->xs[i], sc->xs[i + 1]))
				return -1;
	}
	iv_union(&sc->t);
	iv_union(&sc->x);
	/* t minus x */
	size_t j = 0;
	for (size_t i = 0; i < sc->t.n; i += 2) {
		double a0 = sc->t.v[i], a1 = sc->t.v[i + 1];
		while (j < sc->x.n && sc->x.v[j + 1] <= a0)
			j += 2;
		size_t k = j;
		double cur = a0;
		while (k < sc->x.n && sc->x.v[k] < a1) {
			if (sc->x.v[k] > cur && iv_push(&sc->r, cur, sc->x.v[k]))
				return -1;
			if (sc->x.v[k + 1] > cur)
				cur = sc->x.v[k + 1];
			k += 2;
		}
		if (cur < a1 && iv_push(&sc->r, cur, a1))
			return -1;
	}
	return 0;
}

/* length of the result intervals inside [x0, x1) */
static double row_len(const struct ivs *r, double x0, double x1)
{
	/* binary search for the first interval ending after x0 */
	size_t lo = 0, hi = r->n / 2;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->v[2 * mid + 1] <= x0)
			lo = mid + 1;
		else
			hi = mid;
	}
	double s = 0;
	for (size_t i = lo; i < r->n / 2 && r->v[2 * i] < x1; i++) {
		double a = fmax(r->v[2 * i], x0), b = fmin(r->v[2 * i + 1], x1);
		if (b > a)
			s += b - a;
	}
	return s;
}

static int subrows(double size)
{
	double k = ceil(size);
	return k < 16 ? 16 : k > 1024 ? 1024 : (int)k;
}

static void scan_free(struct scan *sc)
{
	free(sc->t.v);
	free(sc->x.v);
	free(sc->r.v);
	free(sc->xs);
}

static int any_overlap(const struct annot *a, double y0, double y1)
{
	for (size_t k = 0; k < a->np; k++)
		if (a->p[k].cls == ANNOT_TUMOUR && a->p[k].by1 >= y0 && a->p[k].by0 <= y1)
			return 1;
	return 0;
}

double annot_fraction(const struct annot *a, double x, double y, double size)
{
	double out;
	if (size <= 0 || !any_overlap(a, y, y + size))
		return 0;
	struct scan sc;
	memset(&sc, 0, sizeof sc);
	int K = subrows(size);
	double h = size / K, s = 0;
	for (int k = 0; k < K; k++) {
		if (scan_row(a, y + (k + 0.5) * h, &sc)) {
			scan_free(&sc);
			return -1;
		}
		s += row_len(&sc.r, x, x + size);
	}
	scan_free(&sc);
	out = s * h / (size * size);
	return out > 1 ? 1 : out;
}

int annot_bounds(const struct annot *a, int cls, double *x0, double *y0, double *x1, double *y1)
{
	int any = 0;
	for (size_t k = 0; k < a->np; k++) {
		const struct apoly *p = &a->p[k];
		if (p->cls != cls)
			continue;
		if (!any || p->bx0 < *x0)
			*x0 = p->bx0;
		if (!any || p->by0 < *y0)
			*y0 = p->by0;
		if (!any || p->bx1 > *x1)
			*x1 = p->bx1;
		if (!any || p->by1 > *y1)
			*y1 = p->by1;
		any = 1;
	}
	return any;
}

/* The first column c >= 0 whose centre (ox + c + 0.5) ds is >= v (w when
 * none): a guess from the division, corrected with the exact comparison. */
static int64_t first_centre_at(double v, double ds, int64_t ox, uint32_t w)
{
	double g = floor(v / ds - 0.5) - (double)ox;
	int64_t c = g < 0 ? 0 : g > (double)w ? (int64_t)w : (int64_t)g;
	while (c > 0 && ((double)(ox + c - 1) + 0.5) * ds >= v)
		c--;
	while (c < (int64_t)w && ((double)(ox + c) + 0.5) * ds < v)
		c++;
	return c;
}

int annot_mask(const struct annot *a, double ds, int64_t ox, int64_t oy, uint32_t w, uint32_t h, uint8_t *mask,
               struct err *e)
{
	if (!(ds > 0) || !isfinite(ds))
		return err_set(e, ERR_USAGE, "annotation mask: downsample %g: must be positive", ds);
	memset(mask, 0, (size_t)w * h);
	struct scan sc;
	memset(&sc, 0, sizeof sc);
	for (uint32_t r = 0; r < h; r++) {
		/* the same y as annot_inside gets for this row's centres */
		double y = ((double)(oy + (int64_t)r) + 0.5) * ds;
		if (scan_row(a, y, &sc)) {
			scan_free(&sc);
			return err_set(e, ERR_NOMEM, "out of memory");
		}
		uint8_t *row = mask + (size_t)r * w;
		/* a centre x is inside when it lies in [v0, v1) of a result
		 * interval: an odd number of crossings lie right of it */
		for (size_t i = 0; i < sc.r.n; i += 2) {
			int64_t c0 = first_centre_at(sc.r.v[i], ds, ox, w), c1 = first_centre_at(sc.r.v[i + 1], ds, ox, w);
			for (int64_t c = c0; c < c1; c++)
				row[c] = 1;
		}
	}
	scan_free(&sc);
	return 0;
}

struct pidx {
	int32_t x, y;
	size_t i;
};

static int cmp_pidx(const void *a, const void *b)
{
	const struct pidx *p = a, *q = b;
	if (p->y != q->y)
		return p->y < q->y ? -1 : 1;
	if (p->x != q->x)
		return p->x < q->x ? -1 : 1;
	return (p->i > q->i) - (p->i < q->i);
}

int annot_fractions(const struct annot *a, size_t n, const int32_t *x, const int32_t *y, double size, float *out,
                    struct err *e)
{
	if (n == 0)
		return 0;
	if (!(size > 0))
		return err_set(e, ERR_USAGE, "patch size must be positive");
	struct pidx *ix = err_malloc(e, n * sizeof *ix);
	double *acc = err_calloc(e, n, sizeof *acc);
	if (!ix || !acc) {
		free(ix);
		free(acc);
		return ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		ix[i] = (struct pidx){x[i], y[i], i};
	qsort(ix, n, sizeof *ix, cmp_pidx);
	struct scan sc;
	memset(&sc, 0, sizeof sc);
	int K = subrows(size), rc = 0;
	double h = size / K;
	for (size_t s = 0; s < n && !rc;) {
		size_t t = s;
		while (t < n && ix[t].y == ix[s].y)
			t++;
		if (any_overlap(a, ix[s].y, ix[s].y + size)) {
			for (int k = 0; k < K && !rc; k++) {
				if (scan_row(a, ix[s].y + (k + 0.5) * h, &sc)) {
					rc = err_set(e, ERR_NOMEM, "out of memory");
					break;
				}
				if (sc.r.n == 0)
					continue;
				for (size_t q = s; q < t; q++)
					acc[ix[q].i] += row_len(&sc.r, ix[q].x, ix[q].x + size);
			}
		}
		s = t;
	}
	for (size_t i = 0; i < n; i++) {
		double f = acc[i] * h / (size * size);
		out[i] = (float)(f > 1 ? 1 : f);
	}
	scan_free(&sc);
	free(ix);
	free(acc);
	return rc;
}
