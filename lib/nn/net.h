/* net.h - the WENO networks as modules: encoders (fmnist, cifar, resnet18,
 * mlp), teacher heads (ABMIL, DSMIL) and the student head, with their
 * parameters, gradients, BatchNorm running statistics and optimizers.
 *
 * A module (struct nn_module) owns ONE contiguous parameter buffer w, ONE
 * gradient buffer g of the same layout, ONE state buffer (BN running means
 * and variances) and preallocated activation arenas sized for a maximum
 * batch (grown by nn_module_reserve; forward calls grow them on demand, so
 * steady-state training never allocates).  The tensor table (names as
 * PyTorch's named_parameters() would give them, offsets, shapes) fixes the
 * order, which is also the order of the model file and of initialisation.
 *
 * Every computation goes through the struct nn_backend given at creation;
 * this file never asks which backend it runs on.
 *
 * Gradients: backward functions ACCUMULATE into m->g (and into a caller's
 * dinp); call nn_module_zero_grad before a step (or before the first bag of
 * an accumulated step).
 *
 * Thread safety: a module belongs to one thread at a time; the ops inside
 * use OpenMP/OpenBLAS threads.  Results do not depend on the thread count.
 * Errors: functions returning int give 0 or a negative ERR_* code with a
 * message in e (lib/base/err.h).
 */
#ifndef WENO_NN_NET_H
#define WENO_NN_NET_H

#include <stddef.h>

#include "../base/err.h"
#include "../base/rng.h"
#include "nn.h"

enum nn_module_kind {
	NN_ENC_FMNIST = 1,   /* 1x28x28 -> 512 */
	NN_ENC_CIFAR = 2,    /* 3x32x32 -> 1728 */
	NN_ENC_RESNET18 = 3, /* 3xHxW (224) -> 512 */
	NN_ENC_MLP = 4,      /* D -> 512 (Linear + BatchNorm1d) */
	NN_HEAD_ABMIL = 16,
	NN_HEAD_DSMIL = 17,
	NN_HEAD_STUDENT = 18,
};

enum nn_init_kind { NN_INIT_TORCH = 0, NN_INIT_NORMAL = 1, NN_INIT_ONE = 2, NN_INIT_ZERO = 3 };

#define NN_NAME_MAX 48

struct nn_tensor {
	char name[NN_NAME_MAX];
	size_t off, n;        /* floats, within w/g (or state) */
	int ndim, shape[4];
	int init;             /* enum nn_init_kind */
	float scale;          /* NN_INIT_TORCH: bound; NN_INIT_NORMAL: std */
};

/* one node of a module's feed-forward graph (internal, exposed for tests) */
struct nn_layer {
	int kind;
	int in, in2;                 /* input layers (-1: module input) */
	int C, H, W;                 /* output per instance */
	int iC, iH, iW;              /* input per instance */
	int K, S, P;                 /* conv/pool kernel, stride, padding */
	int wt, bt;                  /* weight/bias (BN: gamma/beta) tensor, -1 none */
	int rm, rv;                  /* BN running mean/var state tensors */
	int relu;                    /* BN: the ReLU that follows is fused in */
	float p;                     /* dropout probability */
	size_t out_off, aux_off;     /* per-instance offsets in the arenas */
};

/* encoder passes kept recorded per module (shapes: the teacher's bag, the
 * student's batch and its last one, evaluation batches; forward and
 * backward, training and evaluation) */
#define NN_GRAPH_SLOTS 16
/* dropout layers whose generators a module keeps in backend memory */
#define NN_MAX_DROPOUT 8

struct nn_module {
	int kind;                    /* enum nn_module_kind */
	const struct nn_backend *be;
	int in_dim, out_dim;         /* per instance (encoder in: C*H*W) */
	int in_c, in_h, in_w;        /* encoders */
	int hidden, attn;            /* heads: 1024 / 512 (ABMIL), 4096 (student) */
	float dropout;               /* heads: probability of every Dropout */
	int train;                   /* 1: BN batch statistics, dropout on */
	float bn_momentum, bn_eps;   /* 0.1, 1e-5 */

	/* parameters, gradients, BN running statistics */
	int ntensors, nstate_tensors;
	struct nn_tensor *tensors, *state_tensors;
	size_t nparams, nstate;
	float *w, *g, *state;

	/* feed-forward graph (encoder, per-instance MLP of the heads) */
	int nlayers;
	struct nn_layer *layers;
	size_t act_per;              /* arena floats per instance */
	size_t aux_per, aux_fixed;   /* aux floats per instance / fixed (BN mean,rstd) */
	size_t scratch_per;          /* conv scratch floats per instance */

	/* arenas for up to cap instances */
	int cap, n;                  /* capacity, current batch */
	float *act, *dact, *aux, *scratch;
	float *hw, *dhw;             /* head work arenas */
	size_t hw_per, hw_fixed;
	const float *inp;            /* borrowed input of the last forward */
	int fwd_train, fwd_drop;     /* modes of the last forward (for backward) */

	/* head results of the last forward (pointers into hw) */
	float *logits;               /* ABMIL/DSMIL [2]; student [n,2] */
	float *scores;               /* ABMIL A_ [n]; DSMIL c [n,2] */
	float *attn_w;               /* ABMIL a [n]; DSMIL A [n,2] */
	int crit[2];                 /* DSMIL critical instances m_0, m_1 */

	/* nn_module_fuse_sgd: the graph's Linear layers take their SGD step in
	 * the backward pass (fuse_sgd 1, learning rate fuse_lr) */
	int fuse_sgd;
	float fuse_lr;

	/* recorded encoder passes (backends with graph_begin: CUDA graphs),
	 * replayed instead of their ops; cleared when the arenas move */
	struct nn_graph_slot {
		int used, dir, n, train, fuse, seen, spoiled;
		float lr;
		const void *a, *b;    /* forward: inp; backward: dout, dinp */
		const void *in;       /* the forward's input (a backward reads it) */
		void *g;              /* the backend's graph, NULL until recorded */
		unsigned long last;   /* graph_clock at the last use */
	} graphs[NN_GRAPH_SLOTS];
	unsigned long graph_clock;
	int no_graphs;               /* 1: never record (tests, benchmarks) */
	float *rngs;                 /* per dropout layer, its generator (two 8-byte
	                              * words) for dropout_forward_at; NULL where the
	                              * backend lacks it (the host's rng is used) */
	long graph_runs, graph_records; /* replays and recordings, for tests */
};

/* Creates an encoder.  kind NN_ENC_*; for images c,h,w give the input
 * (fmnist 1,28,28; cifar 3,32,32; resnet18 3,H,W with H,W >= 32); for mlp
 * c = D and h = w = 1.  cap: initial arena capacity in instances.
 * Parameters are zero until nn_module_init. */
int nn_encoder_create(struct nn_module *m, const struct nn_backend *be, int kind, int c, int h,
                      int w, int cap, struct err *e);

/* Creates a head over d-dimensional instance features.  kind NN_HEAD_*;
 * dropout: probability of the heads' Dropout layers (ABMIL/DSMIL: 0.5 in
 * lib/mil/README.md; student: 0 by default, 0.5 for the CRC setup). */
int nn_head_create(struct nn_module *m, const struct nn_backend *be, int kind, int d,
                   float dropout, int cap, struct err *e);

/* The two halves of the create functions: nn_module_build makes the tensor
 * table and graph only (no parameter memory: for checking a file's
 * architecture before trusting its sizes); kind NN_ENC_* takes a,b,c =
 * C,H,W, NN_HEAD_* takes a = d and dropout.  nn_module_alloc then allocates
 * parameters, gradients and state (zeroed) and arenas for cap instances
 * (cap 0: on the first forward).  On failure both free the module. */
int nn_module_build(struct nn_module *m, const struct nn_backend *be, int kind, int a, int b,
                    int c, float dropout, struct err *e);
int nn_module_alloc(struct nn_module *m, int cap, struct err *e);

void nn_module_free(struct nn_module *m);

/* Initialises parameters in tensor order from rng (lib/mil/README.md): encoder convs
 * and Linears as PyTorch's defaults (weight and bias U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)), the Kaiming-uniform a=sqrt(5) bound), BN gamma 1 beta 0,
 * running mean 0 var 1; head Linears N(0, 0.01) with zero bias; the DSMIL
 * Conv1d keeps PyTorch's default.  Draw order: tensor by tensor, element by
 * element, weights with rng_double (uniform) or rng_normal. */
void nn_module_init(struct nn_module *m, struct rng *rng);

/* Resets the BN running statistics only (mean 0, variance 1). */
void nn_module_init_state(struct nn_module *m);

/* Grows the arenas to hold n instances (no-op when they do). */
int nn_module_reserve(struct nn_module *m, int n, struct err *e);

void nn_module_zero_grad(struct nn_module *m);
void nn_module_set_train(struct nn_module *m, int train);

/* Looks a tensor up by name; NULL when absent. */
const struct nn_tensor *nn_module_tensor(const struct nn_module *m, const char *name);

/* A short name: "fmnist", "cifar", "resnet18", "mlp", "abmil", "dsmil",
 * "student"; nn_module_kind_parse gives 0 for an unknown name. */
const char *nn_module_kind_name(int kind);
int nn_module_kind_parse(const char *name);

/* ---- encoders ---- */
/* out: [n, out_dim] (owned by m, valid until the next forward); inp [n, in_dim]
 * is borrowed until the backward.  Training mode needs more than one value
 * per BN channel (ERR_USAGE otherwise, as PyTorch). */
int nn_encoder_forward(struct nn_module *m, const float **out, const float *inp, int n,
                       struct err *e);
/* dout [n, out_dim]; accumulates into m->g and, when dinp is not NULL, dinp
 * [n, in_dim] */
void nn_encoder_backward(struct nn_module *m, float *dinp, const float *dout);

/* ---- heads ---- */
/* Bag forward for ABMIL/DSMIL, batch forward for the student.  h [n, d] is
 * borrowed until backward.  Results in m->logits, m->scores, m->attn_w (and
 * m->crit for DSMIL).  Dropout is active when m->train and rng is not NULL;
 * masks are drawn from rng in element order. */
int nn_head_forward(struct nn_module *m, const float *h, int n, struct rng *rng,
                    struct err *e);
/* dlogits: ABMIL/DSMIL [2] (bag), student [n,2]; dscores: DSMIL [n,2]
 * gradient of the instance logits c (NULL otherwise); dh [n,d] accumulated
 * when not NULL. */
void nn_head_backward(struct nn_module *m, float *dh, const float *dlogits,
                      const float *dscores);

/* Instance scores without the bag part: ABMIL A_ (pre-softmax attention
 * logit), DSMIL c[:,1], student softmax(logits)[1].  scores [n] on the host.
 * Uses the module's current train flag (dropout active when training). */
int nn_head_scores(struct nn_module *m, float *scores, const float *h, int n,
                   struct rng *rng, struct err *e);

/* ---- optimizers: one per module, moments in one contiguous buffer ---- */
struct nn_optim {
	struct nn_optim_conf conf;
	const struct nn_backend *be;
	long step;                   /* steps taken */
	size_t n;
	float *m, *v;                /* SGD: m momentum buffer; Adam: m, v */
};

/* Defaults: SGD lr 1e-3, no momentum, no weight decay; Adam betas 0.9,
 * 0.999, eps 1e-8. */
void nn_optim_conf_default(struct nn_optim_conf *c, int kind);
int nn_optim_create(struct nn_optim *o, const struct nn_backend *be,
                    const struct nn_optim_conf *c, size_t n, struct err *e);
void nn_optim_free(struct nn_optim *o);
/* One step on the module's parameters with its gradients (the tensors of a
 * fused module's graph Linear layers excepted: they took theirs). */
void nn_optim_step(struct nn_optim *o, struct nn_module *m);

/* Fuses o's step into the backward pass of m's graph Linear layers (the
 * student head; the teacher heads' per-instance MLP): each weight moves as
 * soon as its gradient is known, and that gradient is never stored, so the
 * largest matrices are walked once instead of three times (zeroing,
 * accumulating, stepping).  Only for plain SGD (no momentum, no weight
 * decay), and only where every backward is followed by one step (no
 * accumulation over several backwards).  nn_module_zero_grad and
 * nn_optim_step then leave those tensors alone, and their part of m->g is
 * meaningless.  Returns 1 when fused; 0 when o or the backend does not allow
 * it (nothing changes: the caller's usual zero-backward-step stays right).
 * The fused product may round the last bit differently (see nn.h,
 * linear_backward_sgd); same seed, same result either way.
 * nn_module_unfuse_sgd ends it. */
int nn_module_fuse_sgd(struct nn_module *m, const struct nn_optim *o);
void nn_module_unfuse_sgd(struct nn_module *m);

#endif
