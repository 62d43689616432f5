/* weno.h - the WENO trainer and scorer (lib/mil/README.md), on any backend of
 * lib/nn.
 *
 * weno_fit runs the per-epoch alternation of a teacher pass (one bag per
 * step; ABMIL or DSMIL head; hard positive mining from epoch hpm_epoch on)
 * and a student pass (every training instance once, shuffled across bags,
 * mini-batches; soft pseudo labels from the teacher's instance scores scaled
 * by the global min and max of the last teacher pass), then evaluates on the
 * validation bags (the teacher right after its pass when eval_teacher_early,
 * as the authors' scripts judge it), keeps the best model by a chosen metric
 * and the last one, and checkpoints every epoch so that a resumed run
 * continues bit for bit.  tests/unit/test_weno_golden.c checks it step for
 * step against a PyTorch transcription of the authors' loop.
 * Baselines with the same code: the teacher alone, the fully supervised
 * student, mean- and max-pooling MIL, WENO without a shared encoder, WENO
 * without HPM (hpm = 0).
 *
 * Randomness: every draw comes from PCG32 streams derived from (seed, epoch,
 * purpose), so an epoch's order and dropout masks do not depend on how the
 * run got there (resume) or on the thread count.
 *
 * Thread safety: one trainer per thread.  Errors: negative ERR_* with a
 * message naming the epoch, the step and the bag where it applies.
 */
#ifndef WENO_WENO_H
#define WENO_WENO_H

#include <stdint.h>
#include <stdio.h>

#include "../data/dataset.h"
#include "../base/err.h"
#include "../nn/model_io.h"
#include "../nn/net.h"

enum weno_method {
	WENO_WENO = 0,        /* teacher + student, bi-directional */
	WENO_TEACHER = 1,     /* the teacher alone (ABMIL or DSMIL) */
	WENO_SUPERVISED = 2,  /* student on true instance labels, bag score by max */
	WENO_MEANPOOL = 3,    /* instance classifier, bag probability = mean */
	WENO_MAXPOOL = 4,     /* instance classifier, bag probability = max */
};

enum weno_hpm { WENO_HPM_OFF = 0, WENO_HPM_THRESHOLD = 1, WENO_HPM_TOPK = 2 };

enum weno_select {
	WENO_SEL_STUDENT_BAG = 0, WENO_SEL_TEACHER_BAG = 1, WENO_SEL_STUDENT_INST = 2,
	WENO_SEL_TEACHER_INST = 3, WENO_SEL_LAST = 4,
};

struct weno_conf {
	int method;                /* enum weno_method */
	int teacher;               /* NN_HEAD_ABMIL or NN_HEAD_DSMIL */
	int encoder;               /* NN_ENC_* */
	int shared;                /* 1: one encoder for teacher and student */
	int epochs;
	uint64_t seed;
	float w;                   /* student loss weight on negatives: 0.1 */
	int hpm;                   /* enum weno_hpm */
	float hpm_tau;             /* drop positives above tau (threshold rule) */
	int hpm_epoch;             /* active when epoch > hpm_epoch (0-based) */
	int hpm_k;                 /* keep the k least positive (top-K rule) */
	int pl_dropout;            /* 1: teacher dropout on while making pseudo labels */
	float head_dropout;        /* teacher heads' Dropout: 0.5 */
	float student_dropout;     /* 0, or 0.5 in the CRC setup */
	int batch;                 /* student mini-batch: 256 (512 for feature bags) */
	int accum;                 /* bags per teacher optimizer step */
	struct nn_optim_conf opt;  /* one optimizer of this kind per module */
	int select;                /* enum weno_select */
	unsigned keep;             /* 1 << enum weno_select: also keep the best model by each at MODEL.<name> */
	int eval_test;             /* also evaluate the test bags every epoch */
	double pos_threshold;      /* an instance label >= this is positive (AUCs) */
	int eval_teacher_early;    /* 1: the teacher's AUCs right after the teacher pass, before
	                            * the student pass (the authors' scripts); 0: at the epoch's end */
};

void weno_conf_default(struct weno_conf *c);
/* "key=value\n" lines of every field; parse is the inverse (unknown keys
 * are errors naming the key). */
size_t weno_conf_format(const struct weno_conf *c, char *buf, size_t cap);
int weno_conf_parse(struct weno_conf *c, const char *text, struct err *e);
const char *weno_method_name(int m);
int weno_method_parse(const char *s);
/* "student_bag" ... "last" for enum weno_select; -1 / NULL when unknown */
int weno_select_parse(const char *s);
const char *weno_select_name(int sel);
/* A comma-separated list of selection metrics (not "last") to a weno_conf.keep
 * mask; -1 naming the bad item in *bad (a pointer into s, length *badlen). */
int weno_keep_parse(const char *s, unsigned *mask, const char **bad, int *badlen);

/* What one epoch measured (NaN where it does not apply). */
struct weno_epoch_stats {
	int epoch;                 /* 1-based count of finished epochs */
	double teacher_loss, student_loss;
	double pl_min, pl_max;     /* teacher score range of the teacher pass */
	double kept;               /* fraction of positive-bag instances HPM kept */
	double kept_bag;           /* instances HPM kept per positive bag it mined (NaN: none) */
	double val[4];             /* student bag, teacher bag, student inst, teacher inst AUC */
	double test[4];
	double seconds;
	int best;                  /* 1 when this epoch became the best model */
};

struct weno_fit_opts {
	const char *out;           /* the best model; the last goes to out.last */
	const char *log_path;      /* per-epoch TSV (NULL: none) */
	const char *resume;        /* a checkpoint (out.last) to continue, or NULL */
	const char *params;        /* the tool's parameters, recorded in the model */
	const struct nn_backend *be;
	volatile int *stop;        /* set by a signal handler: stop cleanly */
	int quiet;
	/* called after every epoch (may be NULL) */
	void (*on_epoch)(const struct weno_epoch_stats *s, void *arg);
	void *arg;
	const struct weno_test *test; /* test hooks, NULL in normal use (below) */
};

/* ---- test hooks ----
 * What tests/unit/test_weno_golden.c needs to replay, step for step, the
 * trajectories that tests/golden/make_weno_golden.py (a PyTorch
 * transcription of the authors' loop) recorded: the same initialisation,
 * the same order, the same dropout, and a trace to compare.  Not options of
 * weno-fit (they are in no --help); weno-fit reads them from the
 * environment with weno_test_from_env, the only place they are read:
 *   WENO_TEST_INIT=hash   parameters from the integer hash of
 *                         tests/golden/make_nn_golden.py, tensor t of the
 *                         model file's module k from hash(i, 100 k + t);
 *                         BN running mean 0, variance 1
 *   WENO_TEST_DROPOUT=0   every Dropout probability 0 (the teacher heads',
 *                         the student's)
 *   WENO_TEST_ORDER=FILE  the order of each pass, instead of the seeded
 *                         shuffles: lines "teacher E p1 p2 ..." (epoch E,
 *                         1-based; positions of the training bags in
 *                         manifest order) and "student E q1 q2 ..."
 *                         (positions of the training instances, the
 *                         training bags' instances concatenated in manifest
 *                         order); an epoch without its line is an error
 *   WENO_TEST_TRACE=FILE  the trajectory, one line a fact (epochs and steps
 *                         1-based):
 *                           tloss E K LOSS KEPT   teacher step K: loss, rows seen
 *                           bank E MIN MAX        the teacher pass's score range
 *                           sums E PASS MOD I NAME N SUM SUMABS
 *                           state E PASS MOD I NAME N SUM SUMABS
 *                               after PASS (teacher, student): parameter
 *                               (BN statistics) tensor I of module MOD
 *                               (enc, teacher, student, enc_t)
 *                           sloss E K LOSS        student step K
 *                           auc E WHO BAG INST    validation AUCs of WHO
 *                                                 (teacher, student)
 * Dropout masks stay weno-fit's own (PCG32 streams in element order);
 * a test that keeps dropout on draws the same masks on its side. */
struct weno_test {
	int hash_init;             /* WENO_TEST_INIT=hash */
	int no_dropout;            /* WENO_TEST_DROPOUT=0 */
	const char *order;         /* WENO_TEST_ORDER, or NULL */
	const char *trace;         /* WENO_TEST_TRACE, or NULL */
};

/* Fills t from the environment; 1 when any hook is set, 0 when none, a
 * negative ERR_USAGE naming the variable when a value is not understood. */
int weno_test_from_env(struct weno_test *t, struct err *e);

int weno_fit(struct dataset *ds, const struct weno_conf *c, const struct weno_fit_opts *o,
             struct err *e);

/* ---- scoring ---- */
struct weno_model {
	struct nn_model file;
	struct weno_conf conf;
	struct nn_module *enc_s, *enc_t, *teacher, *student;   /* borrowed from file; NULL when absent */
	int in_c, in_h, in_w;
	uint64_t epoch;            /* epochs trained */
	void *priv;                /* scoring buffers */
};

int weno_model_load(struct weno_model *m, const char *path, const struct nn_backend *be,
                    struct err *e);
void weno_model_free(struct weno_model *m);

/* Scores one bag in evaluation mode: student instance probabilities and
 * bag score (max), teacher instance scores and bag probability (NaN for
 * methods without a teacher).  x [n][in_dim] on the host.  inst_s, inst_t
 * [n] filled; *bag_s, *bag_t set. */
int weno_score_bag(struct weno_model *m, const float *x, uint64_t n, float *inst_s, float *inst_t,
                   double *bag_s, double *bag_t, struct err *e);

#endif
