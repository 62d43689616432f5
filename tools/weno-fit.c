/* weno-fit - trains WENO (or a baseline) on a manifest of bags. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/data/dataset.h"
#include "../lib/nn/nn.h"
#include "../lib/nn/nn_cuda.h"
#include "../lib/mil/weno.h"
#include "cli.h"

static const char *opt_hpm_search, *opt_manifest, *opt_out, *opt_teacher = "abmil", *opt_method = "weno", *opt_encoder,
		  *opt_device = "auto", *opt_hpm = "off", *opt_optim = "sgd", *opt_select = "student_bag", *opt_log,
		  *opt_resume, *opt_keep_best;
static int opt_epochs = 50, opt_threads = 0, opt_hpm_epoch = 10, opt_hpm_k = 10, opt_batch = 0, opt_accum = 1,
	   opt_no_pl_dropout, opt_separate, opt_eval_test, opt_eval_teacher_early, opt_cache_mb = 2048;
static long long opt_seed = 0;
static double opt_lr = 1e-3, opt_momentum = 0, opt_wd = 0, opt_w = 0.1, opt_tau = 0.5, opt_student_dropout = 0,
	      opt_pos_thr = 0.5;

static const struct cli_opt OPTS[] = {
	{"manifest", 'm', CLI_STRING, &opt_manifest, "FILE", "bags to train on (bag_id label split path n_instances)", NULL},
	{"output", 'o', CLI_STRING, &opt_out, "MODEL", "the best model (the last one goes to MODEL.last)", NULL},
	{"teacher", 0, CLI_STRING, &opt_teacher, "T", "teacher head", "abmil|dsmil"},
	{"method", 0, CLI_STRING, &opt_method, "M", "WENO, a teacher alone, or a baseline", "weno|teacher|supervised|meanpool|maxpool"},
	{"encoder", 0, CLI_STRING, &opt_encoder, "E", "shared encoder (default: fmnist for 28x28x1, cifar for 32x32x3, resnet18 for larger pixels, mlp for features)", "fmnist|cifar|resnet18|mlp"},
	{"epochs", 'e', CLI_INT, &opt_epochs, "N", "epochs", NULL},
	{"seed", 's', CLI_I64, &opt_seed, "S", "random seed (same seed, same model)", NULL},
	{"threads", 't', CLI_INT, &opt_threads, "T", "CPU threads (0: all cores); results do not depend on it", NULL},
	{"device", 0, CLI_STRING, &opt_device, "D", "where to compute", "auto|cpu|cuda"},
	{"w", 0, CLI_DOUBLE, &opt_w, "W", "student loss weight on negatives (0.2 in the authors' CIFAR/ABMIL setup)", NULL},
	{"hpm", 0, CLI_STRING, &opt_hpm, "RULE", "hard positive mining", "off|threshold|topk"},
	{"hpm-tau", 0, CLI_DOUBLE, &opt_tau, "T", "threshold rule: drop positives whose student probability is above T", NULL},
	{"hpm-epoch", 0, CLI_INT, &opt_hpm_epoch, "E", "mining is active when epoch > E (0-based)", NULL},
	{"hpm-k", 0, CLI_INT, &opt_hpm_k, "K", "top-K rule: keep the K least positive instances", NULL},
	{"hpm-search", 0, CLI_STRING, &opt_hpm_search, "T1,T2,..", "grid search of the threshold on the validation bags: one run per tau (MODEL.tau<T>...); the best one's model, MODEL.last, log and kept models take MODEL's names", NULL},
	{"no-pl-dropout", 0, CLI_FLAG, &opt_no_pl_dropout, NULL, "deterministic pseudo labels (teacher dropout off while labelling)", NULL},
	{"separate-encoders", 0, CLI_FLAG, &opt_separate, NULL, "ablation: teacher and student do not share the encoder", NULL},
	{"student-dropout", 0, CLI_DOUBLE, &opt_student_dropout, "P", "Dropout before the student's hidden Linears (CRC setup: 0.5)", NULL},
	{"batch", 'b', CLI_INT, &opt_batch, "N", "student mini-batch (default 256; 512 for feature bags)", NULL},
	{"optim", 0, CLI_STRING, &opt_optim, "O", "optimizer of each module", "sgd|adam"},
	{"lr", 0, CLI_DOUBLE, &opt_lr, "LR", "learning rate", NULL},
	{"momentum", 0, CLI_DOUBLE, &opt_momentum, "M", "SGD momentum", NULL},
	{"weight-decay", 0, CLI_DOUBLE, &opt_wd, "WD", "L2 weight decay", NULL},
	{"accum", 0, CLI_INT, &opt_accum, "N", "bags per teacher step (gradient accumulation)", NULL},
	{"select", 0, CLI_STRING, &opt_select, "METRIC", "validation metric that picks the best epoch (ties: the later epoch)", "student_bag|teacher_bag|student_inst|teacher_inst|last"},
	{"keep-best", 0, CLI_STRING, &opt_keep_best, "M1,M2,..", "also keep the best model by each of these validation metrics, at MODEL.<metric> (student_bag, teacher_bag, student_inst, teacher_inst)", NULL},
	{"eval-test", 0, CLI_FLAG, &opt_eval_test, NULL, "also score the test bags every epoch (in the log; never used to select)", NULL},
	{"eval-teacher-early", 0, CLI_FLAG, &opt_eval_teacher_early, NULL, "judge the teacher right after its pass, before the student pass changes the shared encoder, as the authors' scripts do (the log's teacher AUCs then describe a mid-epoch model that no saved file holds; --select teacher_* picks by them)", NULL},
	{"pos-threshold", 0, CLI_DOUBLE, &opt_pos_thr, "F", "an instance label >= F counts as positive", NULL},
	{"log", 'l', CLI_STRING, &opt_log, "FILE", "per-epoch TSV log (default MODEL.log.tsv)", NULL},
	{"resume", 'r', CLI_STRING, &opt_resume, "CKPT", "continue from a checkpoint (MODEL.last), bit for bit", NULL},
	{"cache-mb", 0, CLI_INT, &opt_cache_mb, "MB", "bags kept decoded in memory; the rest is read from disk each epoch", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"weno-fit", "[options] -m MANIFEST -o MODEL",
	"Trains WENO: a teacher (ABMIL or DSMIL) and a student instance classifier on a shared\n"
	"encoder, alternating every epoch: the teacher learns from bag labels, the student from the\n"
	"teacher's attention as soft pseudo labels, and (with --hpm) the student drops easy positives\n"
	"from the teacher's bags.  Trains on split 'train', picks the best epoch on 'val', writes the\n"
	"best model, the last one (a checkpoint, every epoch) and a per-epoch log.  The baselines of the\n"
	"paper use the same tool: --method teacher, supervised, meanpool, maxpool; --separate-encoders\n"
	"and --hpm off are the ablations.  SIGINT/SIGTERM stop cleanly; --resume continues.",
	"examples:\n"
	"  weno-fit -m fm10/manifest.tsv --epochs 40 -o fm10/abmil-weno.model\n"
	"  weno-fit -m fm10/manifest.tsv --teacher dsmil --hpm threshold --hpm-tau 0.5 --hpm-epoch 10 -o m\n"
	"  weno-fit -m fm10/manifest.tsv --method teacher -o fm10/abmil.model      # plain ABMIL\n"
	"  weno-fit -m c16/manifest.tsv --encoder mlp --optim adam --lr 1e-4 --accum 4 -o c16.model\n"
	"  weno-fit -m fm10/manifest.tsv --epochs 80 --resume fm10/abmil-weno.model.last -o fm10/abmil-weno.model\n"
	"environment: WENO_CUDA_LIB=PATH, the CUDA backend library (default: ../lib/libweno_cuda.so\n"
	"beside the program); WENO_CUDA_FAST=1, TF32 on the GPU (faster, not bit-exact with the CPU);\n"
	"WENO_CUDA_GRAPHS=0, run the networks op by op instead of as recorded CUDA graphs\n"
	"exit status: 0 success, 1 bad data, NaN in training or interrupted, 2 bad usage",
	OPTS, 0, 0,
};

static volatile int stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static double run_best = -1; /* the best validation metric of the current run */
static int run_warned;        /* the mining warning was given in the current run */

static void on_epoch(const struct weno_epoch_stats *s, void *arg)
{
	const struct weno_conf *c = arg;
	if (s->best) {
		double m = s->val[c->select < WENO_SEL_LAST ? c->select : WENO_SEL_STUDENT_BAG]; /* val[] in enum order */
		run_best = m == m ? m : run_best;
	}
	/* once a run: threshold mining that leaves the positive bags almost empty */
	if (c->hpm == WENO_HPM_THRESHOLD && s->kept_bag == s->kept_bag &&
	    (s->kept_bag < 1.5 || s->kept < 0.05) && !run_warned) {
		run_warned = 1;
		fprintf(stderr, "weno-fit: warning: epoch %d: hard positive mining kept %.1f %% of the "
		        "positive bags' instances, %.2f a bag: the student puts nearly all of them above "
		        "--hpm-tau %.2f, so the teacher learns from positive bags of one or a few "
		        "instances; a higher --hpm-tau, a later --hpm-epoch or --hpm-search may suit "
		        "this data (hpm_kept in the log)\n", s->epoch, 100 * s->kept, s->kept_bag,
		        c->hpm_tau);
	}
	if (cli_quiet)
		return;
	fprintf(stderr, "weno-fit: epoch %d/%d  loss T %.4f S %.4f  val AUC bag S %.4f T %.4f  inst S %.4f T %.4f  %.1fs%s\n",
	        s->epoch, c->epochs, s->teacher_loss, s->student_loss, s->val[0], s->val[1], s->val[2], s->val[3],
	        s->seconds, s->best ? "  (best)" : "");
}

/* the backend --device asks for, with a note on stderr; NULL (and the
 * error printed) when --device cuda finds no GPU */
static const struct nn_backend *pick_backend(void)
{
	const struct nn_backend *be = nn_backend_get(opt_device);
	char why[256] = "";
	int gpu = strcmp(opt_device, "cpu") && nn_cuda_available(why, sizeof why);
	if (!be) {
		cli_error(CLI.prog, "--device cuda: no usable GPU: %s\nhint: --device cpu", why);
		return NULL;
	}
	if (!strcmp(opt_device, "auto") && !gpu && !cli_quiet)
		fprintf(stderr, "weno-fit: no usable GPU (%s); training on the CPU\n", why);
	if (gpu && !cli_quiet)
		fprintf(stderr, "weno-fit: training on %s\n", nn_cuda_describe());
	return be;
}

/* The trainer's configuration from the options (and the bags' kind). */
static void conf_from_options(struct weno_conf *c, const struct dataset *ds)
{
	weno_conf_default(c);
	c->method = weno_method_parse(opt_method);
	c->teacher = nn_module_kind_parse(opt_teacher);
	if (opt_encoder)
		c->encoder = nn_module_kind_parse(opt_encoder);
	else if (ds->kind == BAG_FEATURES)
		c->encoder = NN_ENC_MLP;
	else if (ds->h == 28 && ds->w == 28 && ds->c == 1)
		c->encoder = NN_ENC_FMNIST;
	else if (ds->h == 32 && ds->w == 32 && ds->c == 3)
		c->encoder = NN_ENC_CIFAR;
	else
		c->encoder = NN_ENC_RESNET18;
	c->shared = !opt_separate;
	c->epochs = opt_epochs;
	c->seed = (uint64_t)opt_seed;
	c->w = (float)opt_w;
	c->hpm = !strcmp(opt_hpm, "threshold") ? WENO_HPM_THRESHOLD : !strcmp(opt_hpm, "topk") ? WENO_HPM_TOPK : WENO_HPM_OFF;
	c->hpm_tau = (float)opt_tau;
	c->hpm_epoch = opt_hpm_epoch;
	c->hpm_k = opt_hpm_k;
	c->pl_dropout = !opt_no_pl_dropout;
	c->student_dropout = (float)opt_student_dropout;
	c->batch = opt_batch ? opt_batch : ds->kind == BAG_FEATURES ? 512 : 256;
	c->accum = opt_accum;
	nn_optim_conf_default(&c->opt, !strcmp(opt_optim, "adam") ? NN_OPTIM_ADAM : NN_OPTIM_SGD);
	c->opt.lr = (float)opt_lr;
	c->opt.momentum = (float)opt_momentum;
	c->opt.weight_decay = (float)opt_wd;
	c->select = weno_select_parse(opt_select); /* a known name: cli_parse checked the choices */
	if (c->method != WENO_WENO && c->method != WENO_TEACHER &&
	    (c->select == WENO_SEL_TEACHER_BAG || c->select == WENO_SEL_TEACHER_INST))
		c->select = WENO_SEL_STUDENT_BAG;
	if (c->method == WENO_TEACHER && c->select == WENO_SEL_STUDENT_BAG)
		c->select = WENO_SEL_TEACHER_BAG;
	c->eval_test = opt_eval_test;
	c->eval_teacher_early = opt_eval_teacher_early;
	c->pos_threshold = opt_pos_thr;
}

/* --keep-best into c->keep; 2 (a usage error, printed) when a metric is
 * unknown or the method lacks it */
static int keep_best_option(struct weno_conf *c)
{
	const char *bad;
	int bl;
	if (weno_keep_parse(opt_keep_best, &c->keep, &bad, &bl) < 0)
		return cli_usage_error(&CLI, "--keep-best: '%.*s' is not one of student_bag, teacher_bag, "
		                       "student_inst, teacher_inst", bl, bad);
	int has_t = c->method == WENO_WENO || c->method == WENO_TEACHER, has_s = c->method != WENO_TEACHER;
	for (int i = 0; i < WENO_SEL_LAST; i++) {
		int teacher_metric = i == WENO_SEL_TEACHER_BAG || i == WENO_SEL_TEACHER_INST;
		if ((c->keep & (1u << i)) && (teacher_metric ? !has_t : !has_s))
			return cli_usage_error(&CLI, "--keep-best %s: --method %s has no %s", weno_select_name(i),
			                       weno_method_name(c->method), teacher_metric ? "teacher" : "student");
	}
	c->keep &= ~(1u << c->select); /* MODEL itself is that one */
	return 0;
}

/* The chosen run of --hpm-search takes MODEL's names: the model, its last
 * checkpoint, log and --keep-best models, so that they are where a run
 * without the search leaves them (the other thresholds keep theirs). */
static int take_names(const char *best_path, const char *logp, unsigned keep, struct err *e)
{
	if (rename(best_path, opt_out) != 0)
		return err_sys(e, ERR_IO, "cannot rename '%s' to '%s'", best_path, opt_out);
	for (int i = -2; i < WENO_SEL_LAST; i++) {
		char from[4300], to[4300];
		if (i == -2) {
			snprintf(from, sizeof from, "%s.last", best_path);
			snprintf(to, sizeof to, "%s.last", opt_out);
		} else if (i == -1) {
			snprintf(from, sizeof from, "%s.log.tsv", best_path);
			snprintf(to, sizeof to, "%s", logp);
		} else if (keep & (1u << i)) {
			snprintf(from, sizeof from, "%s.%s", best_path, weno_select_name(i));
			snprintf(to, sizeof to, "%s.%s", opt_out, weno_select_name(i));
		} else {
			continue;
		}
		if (rename(from, to) != 0)
			return err_sys(e, ERR_IO, "cannot rename '%s' to '%s'", from, to);
	}
	return 0;
}

/* --hpm-search: one run per threshold, each to MODEL.tau<T>; the best is
 * renamed to MODEL.  2 on a bad threshold (printed), else weno_fit's code. */
static int hpm_search(struct dataset *ds, struct weno_conf *c, struct weno_fit_opts *o, const char *logp,
                      struct err *e)
{
	char list[1024], best_path[4200] = "";
	double best = -2, best_tau = 0;
	int rc = 0;
	snprintf(list, sizeof list, "%s", opt_hpm_search);
	for (char *tok = strtok(list, ","); tok && !rc; tok = strtok(NULL, ",")) {
		char *end;
		double tau = strtod(tok, &end);
		if (*end || !(tau >= 0 && tau <= 1))
			return cli_usage_error(&CLI, "--hpm-search: '%s' is not a threshold in [0,1]", tok);
		static char mpath[4200], lpath[4300];
		snprintf(mpath, sizeof mpath, "%s.tau%s", opt_out, tok);
		snprintf(lpath, sizeof lpath, "%s.log.tsv", mpath);
		c->hpm = WENO_HPM_THRESHOLD;
		c->hpm_tau = (float)tau;
		o->out = mpath;
		o->log_path = lpath;
		run_best = -1;
		run_warned = 0;
		if (!cli_quiet)
			fprintf(stderr, "weno-fit: --hpm-search: tau %s\n", tok);
		rc = weno_fit(ds, c, o, e);
		if (!rc && run_best > best) {
			best = run_best;
			best_tau = tau;
			snprintf(best_path, sizeof best_path, "%s", mpath);
		}
		if (!rc && !cli_quiet)
			fprintf(stderr, "weno-fit: --hpm-search: tau %s: best validation %s %.4f\n", tok, opt_select, run_best);
	}
	if (!rc && best_path[0]) {
		rc = take_names(best_path, logp, c->keep, e);
		if (!rc)
			fprintf(stderr, "weno-fit: --hpm-search: chose tau %g (validation %s %.4f); model %s\n", best_tau,
			        opt_select, best, opt_out);
	}
	return rc;
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	if (!opt_manifest || !opt_out)
		return cli_usage_error(&CLI, "give the bags with -m MANIFEST and the model with -o MODEL");
	if (opt_epochs < 1 || opt_epochs > 1000000)
		return cli_usage_error(&CLI, "--epochs %d: expected 1..1000000", opt_epochs);
	if (opt_accum < 1 || opt_batch < 0 || opt_hpm_k < 1 || opt_cache_mb < 0)
		return cli_usage_error(&CLI, "--accum, --batch, --hpm-k and --cache-mb must be positive");
	if (!(opt_lr > 0) || !(opt_w >= 0 && opt_w <= 1) || !(opt_tau >= 0 && opt_tau <= 1))
		return cli_usage_error(&CLI, "--lr must be > 0, --w and --hpm-tau in [0,1]");
	const struct nn_backend *be = pick_backend();
	if (!be)
		return 1;
	if (opt_threads > 0)
		nn_set_threads(opt_threads);

	struct err e = {0};
	struct dataset ds;
	if (dataset_open(&ds, opt_manifest, (size_t)opt_cache_mb << 20, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	struct weno_conf c;
	conf_from_options(&c, &ds);
	if (opt_keep_best && (rc = keep_best_option(&c))) {
		dataset_close(&ds);
		return rc;
	}
	if ((c.encoder == NN_ENC_MLP) != (ds.kind == BAG_FEATURES)) {
		cli_error(CLI.prog, "--encoder %s does not fit %s bags", nn_module_kind_name(c.encoder),
		          ds.kind == BAG_FEATURES ? "feature" : "pixel");
		dataset_close(&ds);
		return 2;
	}
	if (opt_hpm_search && (c.method != WENO_WENO || opt_resume)) {
		dataset_close(&ds);
		return cli_usage_error(&CLI, "--hpm-search goes with --method weno and without --resume");
	}
	char params[8192], logp[4096];
	cli_params(&CLI, "output,log,resume,threads,device,cache-mb", params, sizeof params);
	if (opt_log)
		snprintf(logp, sizeof logp, "%s", opt_log);
	else
		snprintf(logp, sizeof logp, "%s.log.tsv", opt_out);
	struct weno_test hooks; /* tests only (weno.h): from WENO_TEST_* */
	if ((rc = weno_test_from_env(&hooks, &e)) < 0) {
		cli_error(CLI.prog, "%s", e.msg);
		dataset_close(&ds);
		return 2;
	}
	struct weno_fit_opts o = {opt_out, logp, opt_resume, params, be, &stop_flag, cli_quiet, on_epoch, &c,
	                          rc ? &hooks : NULL};
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!cli_quiet) {
		uint32_t ntr = 0, nva = 0;
		free(dataset_split(&ds, SPLIT_TRAIN, &ntr));
		free(dataset_split(&ds, SPLIT_VAL, &nva));
		fprintf(stderr,
		        "weno-fit: %s, %s teacher, %s encoder, %llu training instances in %u bags, "
		        "%u validation bags; seed %llu\n",
		        weno_method_name(c.method), nn_module_kind_name(c.teacher), nn_module_kind_name(c.encoder),
		        (unsigned long long)dataset_split_instances(&ds, SPLIT_TRAIN), ntr, nva,
		        (unsigned long long)c.seed);
	}
	rc = opt_hpm_search ? hpm_search(&ds, &c, &o, logp, &e) : weno_fit(&ds, &c, &o, &e);
	dataset_close(&ds);
	if (rc == 2 && opt_hpm_search)
		return 2; /* a bad threshold, already said */
	if (rc) {
		cli_error(CLI.prog, "%s", e.msg);
		return rc == ERR_USAGE ? 2 : 1;
	}
	return 0;
}
