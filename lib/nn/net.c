/* net.c - encoders, heads and optimizers over the operation table (net.h) */
#include "net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { L_CONV, L_BN, L_RELU, L_MAXPOOL, L_AVGPOOL, L_LINEAR, L_ADD, L_DROPOUT };

#define HEAD_HIDDEN 1024
#define HEAD_ATTN 512
#define STUDENT_HIDDEN 4096

/* ---------------- building ---------------- */

struct builder {
	struct nn_module *m;
	int oom;
};

static int push_tensor(struct builder *b, struct nn_tensor **arr, int *cnt, size_t *total,
                       const char *name, int ndim, const int *shape, int init, float scale)
{
	struct nn_tensor *t = realloc(*arr, (size_t)(*cnt + 1) * sizeof **arr);
	if (!t) {
		b->oom = 1;
		return -1;
	}
	*arr = t;
	t = &t[*cnt];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->ndim = ndim;
	t->n = 1;
	for (int i = 0; i < ndim; i++) {
		t->shape[i] = shape[i];
		t->n *= (size_t)shape[i];
	}
	t->off = *total;
	t->init = init;
	t->scale = scale;
	*total += t->n;
	return (*cnt)++;
}

static int param(struct builder *b, const char *prefix, const char *suffix, int ndim,
                 const int *shape, int init, float scale)
{
	char name[NN_NAME_MAX];
	snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", suffix);
	struct nn_module *m = b->m;
	return push_tensor(b, &m->tensors, &m->ntensors, &m->nparams, name, ndim, shape, init,
	                   scale);
}

static int state(struct builder *b, const char *prefix, const char *suffix, int C, int init)
{
	char name[NN_NAME_MAX];
	snprintf(name, sizeof name, "%s.%s", prefix, suffix);
	struct nn_module *m = b->m;
	return push_tensor(b, &m->state_tensors, &m->nstate_tensors, &m->nstate, name, 1, &C,
	                   init, 0.0f);
}

static int add_layer(struct builder *b, int kind, int in)
{
	struct nn_module *m = b->m;
	struct nn_layer *l = realloc(m->layers, (size_t)(m->nlayers + 1) * sizeof *l);
	if (!l) {
		b->oom = 1;
		return -1;
	}
	m->layers = l;
	l = &l[m->nlayers];
	memset(l, 0, sizeof *l);
	l->kind = kind;
	l->in = in;
	l->in2 = -1;
	l->wt = l->bt = l->rm = l->rv = -1;
	if (in < 0) {
		l->iC = m->in_c;
		l->iH = m->in_h;
		l->iW = m->in_w;
	} else {
		const struct nn_layer *p = &m->layers[in];
		l->iC = p->C;
		l->iH = p->H;
		l->iW = p->W;
	}
	l->C = l->iC;
	l->H = l->iH;
	l->W = l->iW;
	return m->nlayers++;
}

/* finishes a layer's arena offsets once C,H,W are known */
static int finish_layer(struct builder *b, int li)
{
	if (li < 0)
		return -1;
	struct nn_module *m = b->m;
	struct nn_layer *l = &m->layers[li];
	size_t sz = (size_t)l->C * l->H * l->W;
	l->out_off = m->act_per;
	m->act_per += sz;
	if (l->kind == L_BN) {
		l->aux_off = m->aux_fixed;
		m->aux_fixed += 2 * (size_t)l->C;
	} else if (l->kind == L_DROPOUT || l->kind == L_MAXPOOL) {
		/* dropout's mask; max-pooling's argmax indices (4-byte words) */
		l->aux_off = m->aux_per;
		m->aux_per += sz;
	} else if (l->kind == L_CONV) {
		struct nn_conv_shape s = {.N = 1, .C = l->iC, .H = l->iH, .W = l->iW, .OC = l->C,
		                          .OH = l->H, .OW = l->W, .KH = l->K, .KW = l->K};
		size_t f = nn_conv2d_scratch_floats(&s);
		if (f > m->scratch_per)
			m->scratch_per = f;
	}
	return li;
}

static int conv(struct builder *b, const char *name, int in, int OC, int K, int S, int P,
                int bias)
{
	int li = add_layer(b, L_CONV, in);
	if (li < 0)
		return -1;
	struct nn_layer *l = &b->m->layers[li];
	l->K = K;
	l->S = S;
	l->P = P;
	l->C = OC;
	l->H = (l->iH + 2 * P - K) / S + 1;
	l->W = (l->iW + 2 * P - K) / S + 1;
	int fan_in = l->iC * K * K;
	float bound = 1.0f / sqrtf((float)fan_in);
	int ws[4] = {OC, l->iC, K, K};
	int wt = param(b, name, "weight", 4, ws, NN_INIT_TORCH, bound);
	int bt = bias ? param(b, name, "bias", 1, &OC, NN_INIT_TORCH, bound) : -1;
	l = &b->m->layers[li];
	l->wt = wt;
	l->bt = bt;
	return finish_layer(b, li);
}

static int linear(struct builder *b, const char *name, int in, int OC, int head)
{
	int li = add_layer(b, L_LINEAR, in);
	if (li < 0)
		return -1;
	struct nn_layer *l = &b->m->layers[li];
	int fan_in = l->iC * l->iH * l->iW;
	l->C = OC;
	l->H = l->W = 1;
	float bound = 1.0f / sqrtf((float)fan_in);
	int ws[2] = {OC, fan_in};
	int wt = param(b, name, "weight", 2, ws, head ? NN_INIT_NORMAL : NN_INIT_TORCH,
	               head ? 0.01f : bound);
	int bt = param(b, name, "bias", 1, &OC, head ? NN_INIT_ZERO : NN_INIT_TORCH, bound);
	l = &b->m->layers[li];
	l->wt = wt;
	l->bt = bt;
	return finish_layer(b, li);
}

/* BatchNorm; relu = 1 fuses the ReLU that follows it into the same layer */
static int bn(struct builder *b, const char *name, int in, int relu)
{
	int li = add_layer(b, L_BN, in);
	if (li < 0)
		return -1;
	int C = b->m->layers[li].C;
	int wt = param(b, name, "weight", 1, &C, NN_INIT_ONE, 0.0f);
	int bt = param(b, name, "bias", 1, &C, NN_INIT_ZERO, 0.0f);
	int rm = state(b, name, "running_mean", C, NN_INIT_ZERO);
	int rv = state(b, name, "running_var", C, NN_INIT_ONE);
	struct nn_layer *l = &b->m->layers[li];
	l->wt = wt;
	l->bt = bt;
	l->rm = rm;
	l->rv = rv;
	l->relu = relu;
	return finish_layer(b, li);
}

static int simple(struct builder *b, int kind, int in)
{
	return finish_layer(b, add_layer(b, kind, in));
}

static int dropout(struct builder *b, int in, float p)
{
	int li = add_layer(b, L_DROPOUT, in);
	if (li < 0)
		return -1;
	b->m->layers[li].p = p;
	return finish_layer(b, li);
}

static int maxpool(struct builder *b, int in, int K, int S, int P)
{
	int li = add_layer(b, L_MAXPOOL, in);
	if (li < 0)
		return -1;
	struct nn_layer *l = &b->m->layers[li];
	l->K = K;
	l->S = S;
	l->P = P;
	l->H = (l->iH + 2 * P - K) / S + 1;
	l->W = (l->iW + 2 * P - K) / S + 1;
	return finish_layer(b, li);
}

static int avgpool(struct builder *b, int in)
{
	int li = add_layer(b, L_AVGPOOL, in);
	if (li < 0)
		return -1;
	struct nn_layer *l = &b->m->layers[li];
	l->H = l->W = 1;
	return finish_layer(b, li);
}

static int add2(struct builder *b, int x, int y)
{
	int li = add_layer(b, L_ADD, x);
	if (li < 0)
		return -1;
	b->m->layers[li].in2 = y;
	return finish_layer(b, li);
}

/* conv, then BN with the ReLU fused: returns the BN layer */
static int cbr(struct builder *b, const char *cname, const char *bname, int in, int OC, int K,
               int S, int P)
{
	int x = conv(b, cname, in, OC, K, S, P, 1);
	return bn(b, bname, x, 1);
}

static int basic_block(struct builder *b, const char *pre, int in, int planes, int stride)
{
	char n1[40], n2[40];
	int inC = in < 0 ? b->m->in_c : b->m->layers[in].C;
	snprintf(n1, sizeof n1, "%s.conv1", pre);
	snprintf(n2, sizeof n2, "%s.bn1", pre);
	int x = conv(b, n1, in, planes, 3, stride, 1, 0);
	x = bn(b, n2, x, 1);
	snprintf(n1, sizeof n1, "%s.conv2", pre);
	snprintf(n2, sizeof n2, "%s.bn2", pre);
	x = conv(b, n1, x, planes, 3, 1, 1, 0);
	x = bn(b, n2, x, 0);
	int sc = in;
	if (stride != 1 || inC != planes) {
		snprintf(n1, sizeof n1, "%s.downsample.0", pre);
		snprintf(n2, sizeof n2, "%s.downsample.1", pre);
		sc = conv(b, n1, in, planes, 1, stride, 0, 0);
		sc = bn(b, n2, sc, 0);
	}
	x = add2(b, x, sc);
	return simple(b, L_RELU, x);
}

static void module_reset(struct nn_module *m, const struct nn_backend *be, int kind)
{
	memset(m, 0, sizeof *m);
	m->kind = kind;
	m->be = be;
	m->train = 1;
	m->bn_momentum = 0.1f;
	m->bn_eps = 1e-5f;
	m->in_h = m->in_w = 1;
}

static int build_done(struct nn_module *m, struct builder *b, struct err *e)
{
	if (b->oom) {
		nn_module_free(m);
		return err_set(e, ERR_NOMEM, "out of memory building a %s module",
		               nn_module_kind_name(m->kind));
	}
	return 0;
}

int nn_module_alloc(struct nn_module *m, int cap, struct err *e)
{
	m->w = m->be->alloc(m->nparams);
	m->g = m->be->alloc(m->nparams);
	m->state = m->be->alloc(m->nstate);
	if (!m->w || !m->g || !m->state) {
		nn_module_free(m);
		return err_set(e, ERR_NOMEM, "out of memory allocating %zu parameters",
		               m->nparams);
	}
	int ndrop = 0;
	for (int li = 0; li < m->nlayers; li++)
		ndrop += m->layers[li].kind == L_DROPOUT;
	if (ndrop && ndrop <= NN_MAX_DROPOUT && m->be->dropout_forward_at &&
	    !(m->rngs = m->be->alloc(4 * (size_t)ndrop))) {
		nn_module_free(m);
		return err_set(e, ERR_NOMEM, "out of memory");
	}
	if (cap > 0 && nn_module_reserve(m, cap, e) < 0) {
		nn_module_free(m);
		return e ? e->code : ERR_NOMEM;
	}
	return 0;
}

static int build_encoder(struct nn_module *m, const struct nn_backend *be, int kind, int c,
                         int h, int w, struct err *e)
{
	module_reset(m, be, kind);
	struct builder b = {.m = m};
	int x = -1;
	switch (kind) {
	case NN_ENC_FMNIST:
		if (c != 1 || h != 28 || w != 28)
			return err_set(e, ERR_USAGE, "fmnist encoder wants 1x28x28 input, not %dx%dx%d",
			               c, h, w);
		m->in_c = c, m->in_h = h, m->in_w = w;
		x = cbr(&b, "features.0", "features.1", x, 32, 6, 2, 2);
		x = cbr(&b, "features.3", "features.4", x, 64, 3, 1, 1);
		x = maxpool(&b, x, 3, 2, 0);
		x = cbr(&b, "features.7", "features.8", x, 128, 3, 1, 1);
		x = cbr(&b, "features.10", "features.11", x, 128, 3, 1, 1);
		x = maxpool(&b, x, 3, 2, 0);
		break;
	case NN_ENC_CIFAR:
		if (c != 3 || h != 32 || w != 32)
			return err_set(e, ERR_USAGE, "cifar encoder wants 3x32x32 input, not %dx%dx%d",
			               c, h, w);
		m->in_c = c, m->in_h = h, m->in_w = w;
		x = cbr(&b, "features.0", "features.1", x, 96, 3, 1, 1);
		x = maxpool(&b, x, 3, 2, 0);
		x = cbr(&b, "features.4", "features.5", x, 192, 3, 1, 1);
		x = maxpool(&b, x, 3, 2, 0);
		x = cbr(&b, "features.8", "features.9", x, 384, 3, 1, 1);
		x = cbr(&b, "features.11", "features.12", x, 384, 3, 1, 1);
		x = cbr(&b, "features.14", "features.15", x, 192, 3, 1, 1);
		x = maxpool(&b, x, 3, 2, 0);
		break;
	case NN_ENC_RESNET18: {
		if (c != 3 || h < 32 || w < 32 || h > 4096 || w > 4096)
			return err_set(e, ERR_USAGE,
			               "resnet18 encoder wants 3xHxW input with 32 <= H,W <= 4096, "
			               "not %dx%dx%d", c, h, w);
		m->in_c = c, m->in_h = h, m->in_w = w;
		x = conv(&b, "conv1", x, 64, 7, 2, 3, 0);
		x = bn(&b, "bn1", x, 1);
		x = maxpool(&b, x, 3, 2, 1);
		static const int planes[4] = {64, 128, 256, 512};
		for (int s = 0; s < 4; s++)
			for (int k = 0; k < 2; k++) {
				char pre[24];
				snprintf(pre, sizeof pre, "layer%d.%d", s + 1, k);
				x = basic_block(&b, pre, x, planes[s], (s > 0 && k == 0) ? 2 : 1);
			}
		x = avgpool(&b, x);
		break;
	}
	case NN_ENC_MLP:
		if (c < 1 || c > 65536 || h != 1 || w != 1)
			return err_set(e, ERR_USAGE, "mlp encoder wants 1 <= D <= 65536, not %dx%dx%d",
			               c, h, w);
		m->in_c = c;
		x = linear(&b, "fc", x, 512, 0);
		x = bn(&b, "bn", x, 0);
		break;
	default:
		return err_set(e, ERR_USAGE, "unknown encoder kind %d", kind);
	}
	m->in_dim = m->in_c * m->in_h * m->in_w;
	if (x >= 0) {
		const struct nn_layer *l = &m->layers[x];
		m->out_dim = l->C * l->H * l->W;
	}
	return build_done(m, &b, e);
}

static int build_head(struct nn_module *m, const struct nn_backend *be, int kind, int d,
                      float dropout_p, struct err *e)
{
	module_reset(m, be, kind);
	struct builder b = {.m = m};
	if (d < 1 || d > 65536)
		return err_set(e, ERR_USAGE, "head input dimension %d outside [1, 65536]", d);
	if (!(dropout_p >= 0.0f && dropout_p < 1.0f))
		return err_set(e, ERR_USAGE, "dropout probability %g outside [0, 1)",
		               (double)dropout_p);
	m->in_c = d;
	m->in_dim = d;
	m->dropout = dropout_p;
	int x = -1;
	switch (kind) {
	case NN_HEAD_ABMIL:
	case NN_HEAD_DSMIL: {
		m->hidden = HEAD_HIDDEN;
		m->attn = HEAD_ATTN;
		x = dropout(&b, x, dropout_p);
		x = linear(&b, "fc1", x, HEAD_HIDDEN, 1);
		x = simple(&b, L_RELU, x);
		x = dropout(&b, x, dropout_p);
		x = linear(&b, "fc2", x, HEAD_HIDDEN, 1);
		x = simple(&b, L_RELU, x);
		int H = HEAD_HIDDEN;
		if (kind == NN_HEAD_ABMIL) {
			int s1[2] = {HEAD_ATTN, H}, s2[2] = {1, HEAD_ATTN}, s3[2] = {2, H};
			int one = 1, two = 2, at = HEAD_ATTN;
			param(&b, "attention_V", "weight", 2, s1, NN_INIT_NORMAL, 0.01f);
			param(&b, "attention_V", "bias", 1, &at, NN_INIT_ZERO, 0.0f);
			param(&b, "attention_w", "weight", 2, s2, NN_INIT_NORMAL, 0.01f);
			param(&b, "attention_w", "bias", 1, &one, NN_INIT_ZERO, 0.0f);
			param(&b, "classifier", "weight", 2, s3, NN_INIT_NORMAL, 0.01f);
			param(&b, "classifier", "bias", 1, &two, NN_INIT_ZERO, 0.0f);
			/* per instance: t [512], u [512] (tanh grad), A_ [1], a [1];
			 * fixed: z [H], logits [2] */
			m->hw_per = 2 * HEAD_ATTN + 2;
			m->hw_fixed = (size_t)H + 2;
		} else {
			int s1[2] = {2, H}, s2[2] = {H, H}, s3[3] = {2, 2, H};
			int two = 2;
			float cb = 1.0f / sqrtf(2.0f * H);  /* Conv1d(2, 2, H) default */
			param(&b, "instance_classifier", "weight", 2, s1, NN_INIT_NORMAL, 0.01f);
			param(&b, "instance_classifier", "bias", 1, &two, NN_INIT_ZERO, 0.0f);
			param(&b, "q", "weight", 2, s2, NN_INIT_NORMAL, 0.01f);
			param(&b, "q", "bias", 1, &H, NN_INIT_ZERO, 0.0f);
			param(&b, "v", "weight", 2, s2, NN_INIT_NORMAL, 0.01f);
			param(&b, "v", "bias", 1, &H, NN_INIT_ZERO, 0.0f);
			param(&b, "fcc", "weight", 3, s3, NN_INIT_TORCH, cb);
			param(&b, "fcc", "bias", 1, &two, NN_INIT_TORCH, cb);
			/* per instance: c [2], Q [H], V [H], S [2], A [2];
			 * fixed: qm [2H], B [2H], logits [2] */
			m->hw_per = 2 * (size_t)H + 6;
			m->hw_fixed = 4 * (size_t)H + 2;
		}
		m->out_dim = 2;
		break;
	}
	case NN_HEAD_STUDENT:
		m->hidden = STUDENT_HIDDEN;
		if (dropout_p > 0.0f)
			x = dropout(&b, x, dropout_p);
		x = linear(&b, "fc1", x, STUDENT_HIDDEN, 1);
		x = simple(&b, L_RELU, x);
		if (dropout_p > 0.0f)
			x = dropout(&b, x, dropout_p);
		x = linear(&b, "fc2", x, STUDENT_HIDDEN, 1);
		x = simple(&b, L_RELU, x);
		x = linear(&b, "fc3", x, 2, 1);
		m->out_dim = 2;
		break;
	default:
		return err_set(e, ERR_USAGE, "unknown head kind %d", kind);
	}
	return build_done(m, &b, e);
}

int nn_module_build(struct nn_module *m, const struct nn_backend *be, int kind, int a, int b,
                    int c, float dropout_p, struct err *e)
{
	if (kind >= NN_HEAD_ABMIL)
		return build_head(m, be, kind, a, dropout_p, e);
	return build_encoder(m, be, kind, a, b, c, e);
}

int nn_encoder_create(struct nn_module *m, const struct nn_backend *be, int kind, int c, int h,
                      int w, int cap, struct err *e)
{
	int rc = build_encoder(m, be, kind, c, h, w, e);
	return rc < 0 ? rc : nn_module_alloc(m, cap, e);
}

int nn_head_create(struct nn_module *m, const struct nn_backend *be, int kind, int d,
                   float dropout_p, int cap, struct err *e)
{
	int rc = build_head(m, be, kind, d, dropout_p, e);
	return rc < 0 ? rc : nn_module_alloc(m, cap, e);
}

static void graphs_clear(struct nn_module *m);

void nn_module_free(struct nn_module *m)
{
	if (!m || !m->be)
		return;
	const struct nn_backend *be = m->be;
	graphs_clear(m);
	float *bufs[] = {m->w,   m->g,       m->state, m->act, m->dact,
	                 m->aux, m->scratch, m->hw,    m->dhw, m->rngs};
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		if (bufs[i])
			be->free_(bufs[i]);
	free(m->tensors);
	free(m->state_tensors);
	free(m->layers);
	memset(m, 0, sizeof *m);
}

/* conv scratch floats for a batch of n: the most any conv layer needs
 * (nn_conv2d_scratch_floats grows with n but not in proportion) */
static size_t conv_scratch(const struct nn_module *m, int n)
{
	size_t most = 0;
	for (int li = 0; li < m->nlayers; li++) {
		const struct nn_layer *l = &m->layers[li];
		if (l->kind != L_CONV)
			continue;
		struct nn_conv_shape s = {.N = n, .C = l->iC, .H = l->iH, .W = l->iW, .OC = l->C,
		                          .OH = l->H, .OW = l->W, .KH = l->K, .KW = l->K,
		                          .SH = l->S, .SW = l->S, .PH = l->P, .PW = l->P};
		size_t f = nn_conv2d_scratch_floats(&s);
		if (f > most)
			most = f;
	}
	return most;
}

int nn_module_reserve(struct nn_module *m, int n, struct err *e)
{
	if (n <= m->cap)
		return 0;
	if (n > (1 << 24))
		return err_set(e, ERR_LIMIT, "batch of %d instances exceeds the limit of %d", n,
		               1 << 24);
	const struct nn_backend *be = m->be;
	size_t N = (size_t)n;
	float *act = be->alloc(N * m->act_per);
	float *dact = be->alloc(N * m->act_per);
	float *aux = be->alloc(N * m->aux_per + m->aux_fixed);
	float *scr = be->alloc(conv_scratch(m, n));
	float *hw = be->alloc(N * m->hw_per + m->hw_fixed);
	float *dhw = be->alloc(N * m->hw_per + m->hw_fixed);
	if (!act || !dact || !aux || !scr || !hw || !dhw) {
		float *bufs[] = {act, dact, aux, scr, hw, dhw};
		for (int i = 0; i < 6; i++)
			if (bufs[i])
				be->free_(bufs[i]);
		return err_set(e, ERR_NOMEM, "out of memory for activations of %d instances", n);
	}
	/* BN mean/rstd live in the fixed part of aux: keep them */
	if (m->aux && m->aux_fixed)
		be->copy(aux, m->aux, m->aux_fixed);
	float *old[] = {m->act, m->dact, m->aux, m->scratch, m->hw, m->dhw};
	for (int i = 0; i < 6; i++)
		if (old[i])
			be->free_(old[i]);
	m->act = act, m->dact = dact, m->aux = aux, m->scratch = scr, m->hw = hw, m->dhw = dhw;
	m->cap = n;
	graphs_clear(m); /* they point into the old arenas */
	return 0;
}

void nn_module_init(struct nn_module *m, struct rng *rng)
{
	size_t maxn = 0;
	for (int i = 0; i < m->ntensors; i++)
		if (m->tensors[i].n > maxn)
			maxn = m->tensors[i].n;
	for (int i = 0; i < m->nstate_tensors; i++)
		if (m->state_tensors[i].n > maxn)
			maxn = m->state_tensors[i].n;
	float *tmp = malloc((maxn ? maxn : 1) * sizeof *tmp);
	if (!tmp)
		return; /* cannot happen for the sizes built here; parameters stay zero */
	for (int pass = 0; pass < 2; pass++) {
		int cnt = pass ? m->nstate_tensors : m->ntensors;
		struct nn_tensor *ts = pass ? m->state_tensors : m->tensors;
		float *dst = pass ? m->state : m->w;
		for (int i = 0; i < cnt; i++) {
			const struct nn_tensor *t = &ts[i];
			for (size_t j = 0; j < t->n; j++) {
				switch (t->init) {
				case NN_INIT_TORCH:
					tmp[j] = (float)((2.0 * rng_double(rng) - 1.0) * t->scale);
					break;
				case NN_INIT_NORMAL:
					tmp[j] = (float)(rng_normal(rng) * t->scale);
					break;
				case NN_INIT_ONE:
					tmp[j] = 1.0f;
					break;
				default:
					tmp[j] = 0.0f;
				}
			}
			m->be->upload(dst + t->off, tmp, t->n);
		}
	}
	free(tmp);
}

void nn_module_init_state(struct nn_module *m)
{
	for (int i = 0; i < m->nstate_tensors; i++) {
		const struct nn_tensor *t = &m->state_tensors[i];
		m->be->zero(m->state + t->off, t->n);
		if (t->init == NN_INIT_ONE) {
			float ones[256];
			for (int j = 0; j < 256; j++)
				ones[j] = 1.0f;
			for (size_t j = 0; j < t->n; j += 256)
				m->be->upload(m->state + t->off + j, ones, t->n - j < 256 ? t->n - j : 256);
		}
	}
}

/* a tensor whose step a fused module takes in the backward pass */
static int tensor_fused(const struct nn_module *m, int t)
{
	if (!m->fuse_sgd)
		return 0;
	for (int li = 0; li < m->nlayers; li++) {
		const struct nn_layer *l = &m->layers[li];
		if (l->kind == L_LINEAR && (l->wt == t || l->bt == t))
			return 1;
	}
	return 0;
}

/* the next run [*off, *off + *n) of adjacent tensors from tensor *t on that
 * the optimizer steps (all of them, one run, when not fused); 0 at the end */
static int next_run(const struct nn_module *m, int *t, size_t *off, size_t *n)
{
	while (*t < m->ntensors && tensor_fused(m, *t))
		++*t;
	if (*t >= m->ntensors)
		return 0;
	*off = m->tensors[*t].off, *n = 0;
	while (*t < m->ntensors && !tensor_fused(m, *t) && m->tensors[*t].off == *off + *n)
		*n += m->tensors[(*t)++].n;
	return 1;
}

void nn_module_zero_grad(struct nn_module *m)
{
	size_t off, n;
	for (int t = 0; next_run(m, &t, &off, &n);)
		m->be->zero(m->g + off, n);
}

int nn_module_fuse_sgd(struct nn_module *m, const struct nn_optim *o)
{
	const struct nn_optim_conf *c = &o->conf;
	if (!m->be->linear_backward_sgd || o->be != m->be || c->kind != NN_OPTIM_SGD ||
	    c->momentum != 0.0f || c->weight_decay != 0.0f || o->n != m->nparams)
		return 0;
	m->fuse_sgd = 1;
	m->fuse_lr = c->lr;
	return 1;
}

void nn_module_unfuse_sgd(struct nn_module *m)
{
	m->fuse_sgd = 0;
	m->fuse_lr = 0.0f;
}

void nn_module_set_train(struct nn_module *m, int train)
{
	m->train = train ? 1 : 0;
}

const struct nn_tensor *nn_module_tensor(const struct nn_module *m, const char *name)
{
	for (int i = 0; i < m->ntensors; i++)
		if (!strcmp(m->tensors[i].name, name))
			return &m->tensors[i];
	return NULL;
}

static const struct {
	int kind;
	const char *name;
} kind_names[] = {
	{NN_ENC_FMNIST, "fmnist"}, {NN_ENC_CIFAR, "cifar"},  {NN_ENC_RESNET18, "resnet18"},
	{NN_ENC_MLP, "mlp"},       {NN_HEAD_ABMIL, "abmil"}, {NN_HEAD_DSMIL, "dsmil"},
	{NN_HEAD_STUDENT, "student"},
};

const char *nn_module_kind_name(int kind)
{
	for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
		if (kind_names[i].kind == kind)
			return kind_names[i].name;
	return "unknown";
}

int nn_module_kind_parse(const char *name)
{
	for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++)
		if (!strcmp(kind_names[i].name, name))
			return kind_names[i].kind;
	return 0;
}

/* ---------------- the feed-forward graph ---------------- */

static size_t lsize(const struct nn_layer *l)
{
	return (size_t)l->C * l->H * l->W;
}

static float *act_of(struct nn_module *m, int li)
{
	if (li < 0)
		return (float *)m->inp;
	return m->act + (size_t)m->cap * m->layers[li].out_off;
}

static float *dact_of(struct nn_module *m, int li, float *dinp)
{
	if (li < 0)
		return dinp;
	return m->dact + (size_t)m->cap * m->layers[li].out_off;
}

static float *tw(struct nn_module *m, int t)
{
	return t < 0 ? NULL : m->w + m->tensors[t].off;
}

static float *tg(struct nn_module *m, int t)
{
	return t < 0 ? NULL : m->g + m->tensors[t].off;
}

static float *ts(struct nn_module *m, int t)
{
	return t < 0 ? NULL : m->state + m->state_tensors[t].off;
}

/* a max-pooling layer's argmax indices: int32 words in the aux arena */
static int32_t *pool_idx(struct nn_module *m, const struct nn_layer *l)
{
	return (int32_t *)(m->aux + m->aux_fixed + (size_t)m->cap * l->aux_off);
}

static struct nn_conv_shape lshape(const struct nn_layer *l, int n)
{
	struct nn_conv_shape s = {.N = n, .C = l->iC, .H = l->iH, .W = l->iW, .OC = l->C,
	                          .OH = l->H, .OW = l->W, .KH = l->K, .KW = l->K,
	                          .SH = l->S, .SW = l->S, .PH = l->P, .PW = l->P};
	return s;
}

/* drop: the dropout layers draw masks, from rng, or where rng is NULL
 * from the generators upload_draws left in m->rngs (dropout_forward_at) */
static void graph_forward(struct nn_module *m, const float *inp, int n, struct rng *rng,
                          int drop)
{
	const struct nn_backend *be = m->be;
	m->inp = inp;
	m->n = n;
	m->fwd_train = m->train;
	m->fwd_drop = drop;
	for (int li = 0, k = 0; li < m->nlayers; li++) {
		struct nn_layer *l = &m->layers[li];
		float *out = act_of(m, li);
		const float *in = act_of(m, l->in);
		size_t sz = (size_t)n * lsize(l);
		switch (l->kind) {
		case L_CONV: {
			struct nn_conv_shape s = lshape(l, n);
			be->conv2d_forward(out, m->scratch, in, tw(m, l->wt), tw(m, l->bt), &s);
			break;
		}
		case L_BN: {
			float *mean = m->aux + l->aux_off, *rstd = mean + l->C;
			be->batchnorm_forward(out, mean, rstd, ts(m, l->rm), ts(m, l->rv), in,
			                      tw(m, l->wt), tw(m, l->bt), n, l->C, l->H * l->W,
			                      m->train, m->bn_momentum, m->bn_eps, l->relu);
			break;
		}
		case L_RELU:
			be->relu_forward(out, in, sz);
			break;
		case L_MAXPOOL: {
			struct nn_conv_shape s = lshape(l, n);
			be->maxpool_forward(out, pool_idx(m, l), in, &s);
			break;
		}
		case L_AVGPOOL:
			be->avgpool_forward(out, in, n, l->iC, l->iH * l->iW);
			break;
		case L_LINEAR:
			be->linear_forward(out, in, tw(m, l->wt), tw(m, l->bt), n,
			                   l->iC * l->iH * l->iW, l->C);
			break;
		case L_ADD:
			be->add_forward(out, in, act_of(m, l->in2), sz);
			break;
		case L_DROPOUT:
			if (m->fwd_drop && l->p > 0.0f) {
				float *mask = m->aux + m->aux_fixed + (size_t)m->cap * l->aux_off;
				if (rng)
					be->dropout_forward(out, mask, in, sz, l->p, rng);
				else
					be->dropout_forward_at(out, mask, in, sz, l->p,
					                       (const uint64_t *)m->rngs + 2 * k);
			} else {
				be->copy(out, in, sz);
			}
			k++;
			break;
		}
	}
}

/* the last layer's output gradient, zeroed; the other layers' gradients are
 * zeroed by graph_backward just before their first consumer accumulates
 * into them (still warm in cache when it does) */
static float *graph_backward_begin(struct nn_module *m)
{
	int last = m->nlayers - 1;
	m->be->zero(dact_of(m, last, NULL), (size_t)m->n * lsize(&m->layers[last]));
	return dact_of(m, last, NULL);
}

/* zeroes the output gradient of layer j (>= 0) when li is its last consumer
 * in graph order, i.e. the first to write it during the backward pass */
static void zero_before_first_write(struct nn_module *m, int j, int li)
{
	if (j < 0)
		return;
	for (int k = li + 1; k < m->nlayers; k++)
		if (m->layers[k].in == j || m->layers[k].in2 == j)
			return;
	m->be->zero(dact_of(m, j, NULL), (size_t)m->n * lsize(&m->layers[j]));
}

static void graph_backward(struct nn_module *m, float *dinp)
{
	const struct nn_backend *be = m->be;
	int n = m->n;
	for (int li = m->nlayers - 1; li >= 0; li--) {
		struct nn_layer *l = &m->layers[li];
		const float *d = dact_of(m, li, NULL);
		const float *in = act_of(m, l->in);
		float *din = dact_of(m, l->in, dinp);
		size_t sz = (size_t)n * lsize(l);
		zero_before_first_write(m, l->in, li);
		if (l->kind == L_ADD && l->in2 != l->in)
			zero_before_first_write(m, l->in2, li);
		switch (l->kind) {
		case L_CONV: {
			struct nn_conv_shape s = lshape(l, n);
			be->conv2d_backward(din, tg(m, l->wt), tg(m, l->bt), m->scratch, d, in,
			                    tw(m, l->wt), &s);
			break;
		}
		case L_BN: {
			float *mean = m->aux + l->aux_off, *rstd = mean + l->C;
			be->batchnorm_backward(din, tg(m, l->wt), tg(m, l->bt), d, in, mean, rstd,
			                       tw(m, l->wt), tw(m, l->bt), n, l->C, l->H * l->W,
			                       m->fwd_train, l->relu);
			break;
		}
		case L_RELU:
			if (din)
				be->relu_backward(din, d, act_of(m, li), sz);
			break;
		case L_MAXPOOL:
			if (din) {
				struct nn_conv_shape s = lshape(l, n);
				be->maxpool_backward(din, d, pool_idx(m, l), &s);
			}
			break;
		case L_AVGPOOL:
			if (din)
				be->avgpool_backward(din, d, n, l->iC, l->iH * l->iW);
			break;
		case L_LINEAR:
			if (m->fuse_sgd)
				be->linear_backward_sgd(din, tw(m, l->wt), tw(m, l->bt), d, in, n,
				                        l->iC * l->iH * l->iW, l->C, m->fuse_lr);
			else
				be->linear_backward(din, tg(m, l->wt), tg(m, l->bt), d, in,
				                    tw(m, l->wt), n, l->iC * l->iH * l->iW, l->C);
			break;
		case L_ADD:
			be->add_backward(din, dact_of(m, l->in2, dinp), d, sz);
			break;
		case L_DROPOUT:
			if (!din)
				break;
			if (m->fwd_drop && l->p > 0.0f) {
				const float *mask = m->aux + m->aux_fixed + (size_t)m->cap * l->aux_off;
				be->dropout_backward(din, d, mask, sz);
			} else {
				be->add_backward(din, NULL, d, sz);
			}
			break;
		}
	}
}

/* ---------------- recorded passes (graphs) ----------------
 *
 * A pass (an encoder's forward or backward; a head's, its per-instance
 * layers and, for ABMIL, its attention; not DSMIL's, which picks its
 * critical instance on the host) is pure device work, dropout included
 * where the backend reads the generator from its memory (upload_draws,
 * dropout_forward_at): on a backend with graph_begin it is recorded the
 * second time the same pass is asked for, and replayed from then on (one
 * launch instead of dozens).  A recording holds pointers and values,
 * so a pass is keyed by everything it is given that can change: direction,
 * batch size, training and dropout modes, the fused SGD step and its rate,
 * and the caller's buffers (a backward's include the forward's input, which
 * it reads); the module's own buffers are fixed until the
 * arenas move (nn_module_reserve), which clears the table.  The results
 * are those of the ops run one by one: the same kernels with the same
 * arguments. */

static void graphs_clear(struct nn_module *m)
{
	for (int i = 0; i < NN_GRAPH_SLOTS; i++) {
		if (m->graphs[i].g)
			m->be->graph_free(m->graphs[i].g);
		memset(&m->graphs[i], 0, sizeof m->graphs[i]);
	}
}

/* the slot of a pass, found (seen once more) or claimed (the least
 * recently used one goes) */
static struct nn_graph_slot *graph_slot(struct nn_module *m, int dir, int train, const void *a,
                                        const void *b)
{
	struct nn_graph_slot *victim = NULL;
	m->graph_clock++;
	for (int i = 0; i < NN_GRAPH_SLOTS; i++) {
		struct nn_graph_slot *s = &m->graphs[i];
		if (s->used && s->dir == dir && s->n == m->n && s->train == train &&
		    s->fuse == m->fuse_sgd && s->lr == m->fuse_lr && s->a == a && s->b == b &&
		    s->in == m->inp) {
			s->last = m->graph_clock;
			if (s->seen < 2)
				s->seen++;
			return s;
		}
		if (!victim || (victim->used && (!s->used || s->last < victim->last)))
			victim = s;
	}
	if (victim->g)
		m->be->graph_free(victim->g);
	*victim = (struct nn_graph_slot){.used = 1, .dir = dir, .n = m->n, .train = train,
	                                 .fuse = m->fuse_sgd, .lr = m->fuse_lr, .a = a, .b = b,
	                                 .in = m->inp, .seen = 1, .last = m->graph_clock};
	return victim;
}

static void abmil_forward_ops(struct nn_module *m);
static void abmil_backward_ops(struct nn_module *m, const float *dlogits, float *dh);

/* the ops of a pass: forward of a (the input), or backward from a (dout)
 * into b (dinp, or NULL) */
static void pass_ops(struct nn_module *m, int dir, const void *a, void *b)
{
	if (dir == 0) {
		graph_forward(m, a, m->n, NULL, m->fwd_drop);
		if (m->kind == NN_HEAD_ABMIL)
			abmil_forward_ops(m);
		return;
	}
	if (m->kind == NN_HEAD_ABMIL) {
		abmil_backward_ops(m, a, b);
		return;
	}
	float *d = graph_backward_begin(m);
	m->be->copy(d, a, (size_t)m->n * m->out_dim);
	graph_backward(m, b);
}

static void pass(struct nn_module *m, int dir, const void *a, void *b)
{
	const struct nn_backend *be = m->be;
	if (!be->graph_begin || m->no_graphs) {
		pass_ops(m, dir, a, b);
		return;
	}
	/* the modes (the caller has set them for a forward too) */
	struct nn_graph_slot *s = graph_slot(m, dir, m->fwd_train | m->fwd_drop << 1, a, b);
	if (s->g) {
		if (be->graph_launch(s->g) == 0) {
			m->graph_runs++;
			return;
		}
		be->graph_free(s->g); /* stale: record it again */
		s->g = NULL;
	}
	/* a recording spoiled three times (a scratch grew each time) is not
	 * tried again until the table is cleared */
	if (s->seen >= 2 && s->spoiled < 3 && be->graph_begin() == 0) {
		pass_ops(m, dir, a, b);
		s->g = be->graph_end(); /* NULL: nothing ran, run the ops */
		s->spoiled += !s->g;
		if (s->g) {
			m->graph_records++;
			if (be->graph_launch(s->g) == 0) {
				m->graph_runs++;
				return;
			}
			be->graph_free(s->g);
			s->g = NULL;
		}
	}
	pass_ops(m, dir, a, b);
}

/* 1 when a forward in the module's mode with rng would draw dropout masks */
static int draws(const struct nn_module *m, const struct rng *rng)
{
	for (int li = 0; m->train && rng && li < m->nlayers; li++)
		if (m->layers[li].kind == L_DROPOUT && m->layers[li].p > 0.0f)
			return 1;
	return 0;
}

/* the generator as each dropout layer of a forward over n instances will
 * find it, into m->rngs for dropout_forward_at (a recorded forward reads it
 * there at every replay); rng advanced past the forward's draws, as the
 * layers drawing one by one would leave it */
static void upload_draws(struct nn_module *m, int n, struct rng *rng)
{
	uint64_t st[2 * NN_MAX_DROPOUT] = {0};
	int k = 0;
	for (int li = 0; li < m->nlayers; li++) {
		const struct nn_layer *l = &m->layers[li];
		if (l->kind != L_DROPOUT)
			continue;
		if (l->p > 0.0f) {
			st[2 * k] = rng->state;
			st[2 * k + 1] = rng->inc;
			rng_advance(rng, (uint64_t)n * lsize(l));
		}
		k++;
	}
	m->be->upload(m->rngs, (const float *)st, 4 * (size_t)k); /* two 8-byte words a layer */
}

/* a head's forward up to its logits (the per-instance layers, then ABMIL's
 * attention) as one pass, recorded and replayed, where the backend draws
 * dropout masks from a generator in its memory; DSMIL's op by op (its
 * critical instance is chosen on the host) */
static void head_forward(struct nn_module *m, const float *h, int n, struct rng *rng)
{
	int drop = draws(m, rng);
	if (m->kind == NN_HEAD_DSMIL || (drop && !m->rngs)) {
		graph_forward(m, h, n, rng, drop);
		if (m->kind == NN_HEAD_ABMIL)
			abmil_forward_ops(m);
		return;
	}
	if (drop)
		upload_draws(m, n, rng);
	/* what graph_forward records on the host, for a replay too */
	m->inp = h;
	m->n = n;
	m->fwd_train = m->train;
	m->fwd_drop = drop;
	pass(m, 0, h, NULL);
}

/* ---------------- encoders ---------------- */

int nn_encoder_forward(struct nn_module *m, const float **out, const float *inp, int n,
                       struct err *e)
{
	if (m->kind >= NN_HEAD_ABMIL)
		return err_set(e, ERR_USAGE, "nn_encoder_forward on a %s head",
		               nn_module_kind_name(m->kind));
	if (n < 1)
		return err_set(e, ERR_USAGE, "encoder forward on %d instances", n);
	for (int li = 0; m->train && li < m->nlayers; li++) {
		const struct nn_layer *l = &m->layers[li];
		if (l->kind == L_BN && (long)n * l->H * l->W < 2)
			return err_set(e, ERR_USAGE,
			               "batch norm in training mode needs more than one value per "
			               "channel (batch of %d)", n);
	}
	int rc = nn_module_reserve(m, n, e);
	if (rc < 0)
		return rc;
	/* what graph_forward records on the host, for a replay too */
	m->inp = inp;
	m->n = n;
	m->fwd_train = m->train;
	m->fwd_drop = 0;
	pass(m, 0, inp, NULL);
	*out = act_of(m, m->nlayers - 1);
	return 0;
}

void nn_encoder_backward(struct nn_module *m, float *dinp, const float *dout)
{
	pass(m, 1, dout, dinp);
}

/* ---------------- heads ---------------- */

/* head work arena views for n instances */
struct abmil_view {
	float *t, *u, *A, *a, *z, *logits;
};
struct dsmil_view {
	float *c, *Q, *V, *S, *A, *qm, *B, *logits;
};

static struct abmil_view abmil_view(const struct nn_module *m, float *base)
{
	size_t cap = (size_t)m->cap;
	struct abmil_view v;
	v.t = base;
	v.u = v.t + cap * m->attn;
	v.A = v.u + cap * m->attn;
	v.a = v.A + cap;
	v.z = v.a + cap;
	v.logits = v.z + m->hidden;
	return v;
}

static struct dsmil_view dsmil_view(const struct nn_module *m, float *base)
{
	size_t cap = (size_t)m->cap, H = (size_t)m->hidden;
	struct dsmil_view v;
	v.c = base;
	v.Q = v.c + 2 * cap;
	v.V = v.Q + H * cap;
	v.S = v.V + H * cap;
	v.A = v.S + 2 * cap;
	v.qm = v.A + 2 * cap;
	v.B = v.qm + 2 * H;
	v.logits = v.B + 2 * H;
	return v;
}

/* tensor index of the first extra head tensor (after fc1, fc2) */
#define HEAD_T0 4

static int head_check(struct nn_module *m, const float *h, int n, struct err *e)
{
	if (m->kind < NN_HEAD_ABMIL)
		return err_set(e, ERR_USAGE, "head call on a %s encoder", nn_module_kind_name(m->kind));
	if (n < 1 || !h)
		return err_set(e, ERR_USAGE, "head forward on %d instances", n);
	return nn_module_reserve(m, n, e);
}

static void dsmil_critical(struct nn_module *m, const float *c, int n)
{
	/* argmax over instances per class, first maximum wins; on the host,
	 * fetched in chunks (one transfer each on a GPU) */
	enum { CH = 256 };
	float buf[2 * CH];
	float best[2] = {0, 0};
	m->crit[0] = m->crit[1] = 0;
	for (int i0 = 0; i0 < n; i0 += CH) {
		int cnt = n - i0 < CH ? n - i0 : CH;
		m->be->download(buf, c + 2 * (size_t)i0, 2 * (size_t)cnt);
		for (int j = 0; j < cnt; j++)
			for (int k = 0; k < 2; k++)
				if (i0 + j == 0 || buf[2 * j + k] > best[k]) {
					best[k] = buf[2 * j + k];
					m->crit[k] = i0 + j;
				}
	}
}

/* ABMIL's attention after the per-instance layers (m->n instances) */
static void abmil_forward_ops(struct nn_module *m)
{
	const struct nn_backend *be = m->be;
	struct abmil_view v = abmil_view(m, m->hw);
	float *hh = act_of(m, m->nlayers - 1);
	int n = m->n, H = m->hidden, t0 = HEAD_T0;
	/* t [n,512] = tanh(h Vᵀ + bV) */
	be->linear_forward(v.t, hh, tw(m, t0), tw(m, t0 + 1), n, H, m->attn);
	if (be->abmil_attn_forward) {
		/* the rest below in one op, t in place */
		be->abmil_attn_forward(v.t, v.A, v.a, v.z, v.logits, v.t, hh, tw(m, t0 + 2),
		                       tw(m, t0 + 3), tw(m, t0 + 4), tw(m, t0 + 5), n, m->attn, H);
		return;
	}
	be->tanh_forward(v.t, v.t, (size_t)n * m->attn);
	/* A_ [n,1] = t wᵀ + bw */
	be->linear_forward(v.A, v.t, tw(m, t0 + 2), tw(m, t0 + 3), n, m->attn, 1);
	/* a = softmax over the bag */
	be->softmax_forward(v.a, v.A, 1, n, 1);
	/* z [1,H] = aᵀ h */
	be->wsum_forward(v.z, v.a, hh, n, 1, H);
	be->linear_forward(v.logits, v.z, tw(m, t0 + 4), tw(m, t0 + 5), 1, H, 2);
}

int nn_head_forward(struct nn_module *m, const float *h, int n, struct rng *rng, struct err *e)
{
	int rc = head_check(m, h, n, e);
	if (rc < 0)
		return rc;
	const struct nn_backend *be = m->be;
	head_forward(m, h, n, rng);
	float *hh = act_of(m, m->nlayers - 1);
	int H = m->hidden;
	if (m->kind == NN_HEAD_STUDENT) {
		m->logits = hh;
		m->scores = NULL;
		m->attn_w = NULL;
		return 0;
	}
	if (m->kind == NN_HEAD_ABMIL) {
		struct abmil_view v = abmil_view(m, m->hw);
		m->logits = v.logits;
		m->scores = v.A;
		m->attn_w = v.a;
		return 0;
	}
	struct dsmil_view v = dsmil_view(m, m->hw);
	int t0 = HEAD_T0;
	be->linear_forward(v.c, hh, tw(m, t0), tw(m, t0 + 1), n, H, 2);
	dsmil_critical(m, v.c, n);
	be->linear_forward(v.Q, hh, tw(m, t0 + 2), tw(m, t0 + 3), n, H, H);
	be->linear_forward(v.V, hh, tw(m, t0 + 4), tw(m, t0 + 5), n, H, H);
	for (int k = 0; k < 2; k++)
		be->copy(v.qm + (size_t)k * H, v.Q + (size_t)m->crit[k] * H, (size_t)H);
	/* S [n,2] = Q qmᵀ / sqrt(H) */
	be->linear_forward(v.S, v.Q, v.qm, NULL, n, H, 2);
	be->scale(v.S, 1.0f / sqrtf((float)H), (size_t)n * 2);
	/* A = softmax over instances (axis 0 of [n,2]) */
	be->softmax_forward(v.A, v.S, 1, n, 2);
	/* B [2,H] = Aᵀ V */
	be->wsum_forward(v.B, v.A, v.V, n, 2, H);
	/* Conv1d(2, 2, kernel H) over B = a Linear 2H -> 2 */
	be->linear_forward(v.logits, v.B, tw(m, t0 + 6), tw(m, t0 + 7), 1, 2 * H, 2);
	m->logits = v.logits;
	m->scores = v.c;
	m->attn_w = v.A;
	return 0;
}

/* ABMIL's backward from dlogits [2] through the attention and the
 * per-instance layers into dh */
static void abmil_backward_ops(struct nn_module *m, const float *dlogits, float *dh)
{
	const struct nn_backend *be = m->be;
	int n = m->n, H = m->hidden, t0 = HEAD_T0;
	float *hh = act_of(m, m->nlayers - 1);
	float *dhh = graph_backward_begin(m);
	struct abmil_view v = abmil_view(m, m->hw), d = abmil_view(m, m->dhw);
	if (be->abmil_attn_backward) {
		/* du [n,512]: the gradient of h Vᵀ + bV (overwritten: no zeroing) */
		be->abmil_attn_backward(d.u, dhh, tg(m, t0 + 2), tg(m, t0 + 3), tg(m, t0 + 4),
		                        tg(m, t0 + 5), dlogits, v.t, hh, v.a, v.z, tw(m, t0 + 2),
		                        tw(m, t0 + 4), n, m->attn, H);
	} else {
		/* the chain accumulates into the head's gradient arena */
		be->zero(m->dhw, (size_t)m->cap * m->hw_per + m->hw_fixed);
		be->linear_backward(d.z, tg(m, t0 + 4), tg(m, t0 + 5), dlogits, v.z, tw(m, t0 + 4), 1,
		                    H, 2);
		be->wsum_backward(d.a, dhh, d.z, v.a, hh, n, 1, H);
		be->softmax_backward(d.A, d.a, v.a, 1, n, 1);
		be->linear_backward(d.t, tg(m, t0 + 2), tg(m, t0 + 3), d.A, v.t, tw(m, t0 + 2), n,
		                    m->attn, 1);
		/* du = dt * (1 - t²) into the zeroed u block */
		be->tanh_backward(d.u, d.t, v.t, (size_t)n * m->attn);
	}
	be->linear_backward(dhh, tg(m, t0), tg(m, t0 + 1), d.u, hh, tw(m, t0), n, H, m->attn);
	graph_backward(m, dh);
}

void nn_head_backward(struct nn_module *m, float *dh, const float *dlogits,
                      const float *dscores)
{
	const struct nn_backend *be = m->be;
	int n = m->n, H = m->hidden;
	float *hh = act_of(m, m->nlayers - 1);
	if (m->kind != NN_HEAD_DSMIL) {
		/* never draws: dropout's backward reads its mask */
		pass(m, 1, dlogits, dh);
		return;
	}
	float *dhh = graph_backward_begin(m);
	int t0 = HEAD_T0;
	be->zero(m->dhw, (size_t)m->cap * m->hw_per + m->hw_fixed);
	struct dsmil_view v = dsmil_view(m, m->hw), d = dsmil_view(m, m->dhw);
	float s = 1.0f / sqrtf((float)H);
	be->linear_backward(d.B, tg(m, t0 + 6), tg(m, t0 + 7), dlogits, v.B, tw(m, t0 + 6), 1,
	                    2 * H, 2);
	be->wsum_backward(d.A, d.V, d.B, v.A, v.V, n, 2, H);
	be->softmax_backward(d.S, d.A, v.A, 1, n, 2);
	be->scale(d.S, s, (size_t)n * 2);
	/* S = Q qmᵀ: dQ += dS qm, dqm += dSᵀ Q, then dQ[m_k] += dqm[k] */
	be->linear_backward(d.Q, d.qm, NULL, d.S, v.Q, v.qm, n, H, 2);
	for (int k = 0; k < 2; k++) {
		float *row = d.Q + (size_t)m->crit[k] * H;
		be->add_forward(row, row, d.qm + (size_t)k * H, (size_t)H);
	}
	be->linear_backward(dhh, tg(m, t0 + 4), tg(m, t0 + 5), d.V, hh, tw(m, t0 + 4), n, H,
	                    H);
	be->linear_backward(dhh, tg(m, t0 + 2), tg(m, t0 + 3), d.Q, hh, tw(m, t0 + 2), n, H,
	                    H);
	if (dscores)
		be->linear_backward(dhh, tg(m, t0), tg(m, t0 + 1), dscores, hh, tw(m, t0), n, H,
		                    2);
	graph_backward(m, dh);
}

int nn_head_scores(struct nn_module *m, float *scores, const float *h, int n, struct rng *rng,
                   struct err *e)
{
	int rc = head_check(m, h, n, e);
	if (rc < 0)
		return rc;
	const struct nn_backend *be = m->be;
	if (m->kind == NN_HEAD_STUDENT)
		head_forward(m, h, n, rng);
	else /* the layers only: the scores need part of the attention */
		graph_forward(m, h, n, rng, draws(m, rng));
	float *hh = act_of(m, m->nlayers - 1);
	int H = m->hidden, t0 = HEAD_T0;
	if (m->kind == NN_HEAD_ABMIL) {
		struct abmil_view v = abmil_view(m, m->hw);
		be->linear_forward(v.t, hh, tw(m, t0), tw(m, t0 + 1), n, H, m->attn);
		be->tanh_forward(v.t, v.t, (size_t)n * m->attn);
		be->linear_forward(v.A, v.t, tw(m, t0 + 2), tw(m, t0 + 3), n, m->attn, 1);
		be->download(scores, v.A, (size_t)n);
		return 0;
	}
	float *buf = m->kind == NN_HEAD_DSMIL ? dsmil_view(m, m->hw).c : hh;
	if (m->kind == NN_HEAD_DSMIL)
		be->linear_forward(buf, hh, tw(m, t0), tw(m, t0 + 1), n, H, 2);
	enum { CH = 256 }; /* logits fetched in chunks: one transfer each on a GPU */
	float zb[2 * CH];
	for (int i0 = 0; i0 < n; i0 += CH) {
		int cnt = n - i0 < CH ? n - i0 : CH;
		be->download(zb, buf + 2 * (size_t)i0, 2 * (size_t)cnt);
		for (int j = 0; j < cnt; j++) {
			const float *z = zb + 2 * j;
			if (m->kind == NN_HEAD_DSMIL) {
				scores[i0 + j] = z[1];
			} else {
				double mx = z[0] > z[1] ? z[0] : z[1];
				double e0 = exp(z[0] - mx), e1 = exp(z[1] - mx);
				scores[i0 + j] = (float)(e1 / (e0 + e1));
			}
		}
	}
	return 0;
}

/* ---------------- optimizers ---------------- */

void nn_optim_conf_default(struct nn_optim_conf *c, int kind)
{
	memset(c, 0, sizeof *c);
	c->kind = kind;
	c->lr = 1e-3f;
	c->beta1 = 0.9f;
	c->beta2 = 0.999f;
	c->eps = 1e-8f;
}

int nn_optim_create(struct nn_optim *o, const struct nn_backend *be,
                    const struct nn_optim_conf *c, size_t n, struct err *e)
{
	memset(o, 0, sizeof *o);
	if (c->kind != NN_OPTIM_SGD && c->kind != NN_OPTIM_ADAM)
		return err_set(e, ERR_USAGE, "unknown optimizer kind %d", c->kind);
	if (!(c->lr >= 0.0f) || !(c->momentum >= 0.0f) || !(c->weight_decay >= 0.0f))
		return err_set(e, ERR_USAGE, "optimizer: lr, momentum and weight decay must be >= 0");
	if (c->kind == NN_OPTIM_SGD && c->nesterov && (c->momentum <= 0.0f || c->dampening != 0.0f))
		return err_set(e, ERR_USAGE, "nesterov momentum requires a momentum and zero dampening");
	o->conf = *c;
	o->be = be;
	o->n = n;
	o->m = be->alloc(n);
	o->v = c->kind == NN_OPTIM_ADAM ? be->alloc(n) : NULL;
	if (!o->m || (c->kind == NN_OPTIM_ADAM && !o->v)) {
		nn_optim_free(o);
		return err_set(e, ERR_NOMEM, "out of memory for optimizer state of %zu floats", n);
	}
	return 0;
}

void nn_optim_free(struct nn_optim *o)
{
	if (!o || !o->be)
		return;
	if (o->m)
		o->be->free_(o->m);
	if (o->v)
		o->be->free_(o->v);
	memset(o, 0, sizeof *o);
}

void nn_optim_step(struct nn_optim *o, struct nn_module *m)
{
	o->step++;
	size_t off, n;
	for (int t = 0; next_run(m, &t, &off, &n);) {
		if (o->conf.kind == NN_OPTIM_ADAM)
			o->be->adam_step(m->w + off, m->g + off, o->m + off, o->v + off, n, &o->conf,
			                 o->step);
		else
			o->be->sgd_step(m->w + off, m->g + off, o->m + off, n, &o->conf, o->step);
	}
}
