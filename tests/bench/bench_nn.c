/* bench_nn.c - training throughput of the CPU backend.
 *
 *   student: fmnist encoder + student head, batches of 256 instances,
 *            forward + loss + backward + SGD step on both modules
 *   teacher: fmnist encoder + ABMIL head, one bag of 100 instances per step,
 *            forward + loss + backward + SGD step (dropout 0.5 on)
 * Both with plain SGD, the head's Linears stepping inside its backward pass
 * as weno-fit runs them (nn_module_fuse_sgd; WENO_BENCH_UNFUSED=1: gradient,
 * then optimizer step, as with momentum or Adam).
 * Prints instances per second; threads from WENO_THREADS (default 2), steps
 * from WENO_BENCH_STEPS (default 6, after 1 warm-up step); WENO_BENCH_ONLY=
 * student|abmil runs one case (for profiling).  Output lines
 * "nn <case> <inst/s>" are read by tests/bench/nn.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/nn/net.h"
#include "bench.h"

static int run(int head_kind, int n, int steps, double *ips, struct err *e)
{
	const struct nn_backend *be = &nn_cpu;
	struct nn_module enc, head;
	struct nn_optim oe, oh;
	struct nn_optim_conf c;
	struct rng r;
	rng_seed(&r, 1, 1);
	int rc = nn_encoder_create(&enc, be, NN_ENC_FMNIST, 1, 28, 28, n, e);
	if (rc < 0)
		return rc;
	if ((rc = nn_head_create(&head, be, head_kind, 512,
	                         head_kind == NN_HEAD_ABMIL ? 0.5f : 0.0f, n, e)) < 0)
		return rc;
	nn_module_init(&enc, &r);
	nn_module_init(&head, &r);
	nn_optim_conf_default(&c, NN_OPTIM_SGD);
	if ((rc = nn_optim_create(&oe, be, &c, enc.nparams, e)) < 0 ||
	    (rc = nn_optim_create(&oh, be, &c, head.nparams, e)) < 0)
		return rc;
	/* as weno-fit trains them: a step per backward, the head's Linears
	 * stepping inside it (WENO_BENCH_UNFUSED=1: gradient, then step) */
	if (!getenv("WENO_BENCH_UNFUSED"))
		nn_module_fuse_sgd(&head, &oh);
	float *x = malloc((size_t)n * 784 * sizeof(float));
	float *y = malloc((size_t)n * sizeof(float));
	float *dfeat = malloc((size_t)n * 512 * sizeof(float));
	float *dl = malloc((size_t)n * 2 * sizeof(float));
	for (int i = 0; i < n * 784; i++)
		x[i] = rng_float(&r);
	for (int i = 0; i < n; i++)
		y[i] = rng_float(&r);
	double t0 = 0;
	for (int s = 0; s <= steps; s++) {
		if (s == 1)
			t0 = progress_now();
		const float *feat;
		if ((rc = nn_encoder_forward(&enc, &feat, x, n, e)) < 0 ||
		    (rc = nn_head_forward(&head, feat, n, &r, e)) < 0)
			break;
		if (head_kind == NN_HEAD_ABMIL) {
			float Y = 1.0f;
			be->loss_bce2(dl, head.logits, &Y, 1, 1e-5f);
		} else {
			be->loss_soft2(dl, head.logits, y, n, 0.1f, 1e-5f);
		}
		nn_module_zero_grad(&enc);
		nn_module_zero_grad(&head);
		memset(dfeat, 0, (size_t)n * 512 * sizeof(float));
		nn_head_backward(&head, dfeat, dl, NULL);
		nn_encoder_backward(&enc, NULL, dfeat);
		nn_optim_step(&oe, &enc);
		nn_optim_step(&oh, &head);
	}
	*ips = (double)n * steps / (progress_now() - t0);
	free(x), free(y), free(dfeat), free(dl);
	nn_module_free(&enc), nn_module_free(&head);
	nn_optim_free(&oe), nn_optim_free(&oh);
	return rc;
}

int main(void)
{
	int threads = env_int("WENO_THREADS", 2), steps = env_int("WENO_BENCH_STEPS", 6);
	nn_set_threads(threads);
	struct err e = {0};
	/* WENO_BENCH_ONLY=student|abmil runs one case (for profiling) */
	const char *only = getenv("WENO_BENCH_ONLY");
	int do_s = !only || !strcmp(only, "student"), do_a = !only || !strcmp(only, "abmil");
	double a = 0, b = 0;
	if ((do_s && run(NN_HEAD_STUDENT, 256, steps, &a, &e) < 0) ||
	    (do_a && run(NN_HEAD_ABMIL, 100, steps * 3, &b, &e) < 0)) {
		fprintf(stderr, "bench_nn: %s\n", e.msg);
		return 1;
	}
	printf("threads %d\n", threads);
	printf("nn fmnist+student-batch256 %.1f\n", a);
	printf("nn fmnist+abmil-bag100 %.1f\n", b);
	return 0;
}
