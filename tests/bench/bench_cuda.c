/* bench_cuda.c - throughput of the CUDA backend (prints SKIP without a GPU).
 *
 *   train student: fmnist encoder + student head, batches of 256 instances,
 *                  forward + loss + backward + SGD step on both modules
 *   train abmil:   fmnist encoder + ABMIL head, one bag of 100 instances per
 *                  step, forward + loss + backward + SGD step (dropout 0.5)
 *   score <enc>:   evaluation-mode encoder + student head over batches,
 *                  input uploaded and scores downloaded per batch, as
 *                  weno-score does: fmnist (1x28x28, batches of 1024),
 *                  resnet18 (3x224x224, batches of 128), mlp (D = 1024,
 *                  batches of 4096)
 * The training cases and the fmnist scoring run twice: with the encoder's
 * passes replayed as CUDA graphs (the default) and op by op ("no-graphs"),
 * with the ratio.
 * Prints instances per second, as bench_nn.c does for the CPU; steps from
 * WENO_BENCH_STEPS (default 20, after 2 warm-up steps).  Lines
 * "cuda <case> <inst/s>".  The mode (deterministic, or TF32 with
 * WENO_CUDA_FAST=1) is in the first line.  Each timed loop ends with a
 * download, so the queued GPU work is inside the time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../lib/nn/net.h"
#include "../../lib/nn/nn_cuda.h"
#include "bench.h"

static float *host_rand(size_t n, struct rng *r)
{
	float *x = malloc((n ? n : 1) * sizeof *x);
	if (x)
		for (size_t i = 0; i < n; i++)
			x[i] = rng_float(r);
	return x;
}

/* one training step: as bench_nn.c, with device buffers */
static void train_step(const struct nn_backend *be, struct nn_module *enc, struct nn_module *head,
                       struct nn_optim *oe, struct nn_optim *oh, const float *X, const float *Yd,
                       float *DF, float *DL, int n, int abmil, struct rng *r, struct err *e)
{
	const float *feat;
	if (nn_encoder_forward(enc, &feat, X, n, e) < 0 || nn_head_forward(head, feat, n, r, e) < 0)
		return;
	if (abmil)
		be->loss_bce2(DL, head->logits, Yd, 1, 1e-5f);
	else
		be->loss_soft2(DL, head->logits, Yd, n, 0.1f, 1e-5f);
	nn_module_zero_grad(enc);
	nn_module_zero_grad(head);
	be->zero(DF, (size_t)n * 512);
	nn_head_backward(head, DF, DL, NULL);
	nn_encoder_backward(enc, NULL, DF);
	nn_optim_step(oe, enc);
	nn_optim_step(oh, head);
}

static int train(const struct nn_backend *be, int head_kind, int n, int steps, int graphs,
                 double *ips, struct err *e)
{
	struct nn_module enc, head;
	struct nn_optim oe, oh;
	struct nn_optim_conf c;
	struct rng r;
	rng_seed(&r, 1, 1);
	int abmil = head_kind == NN_HEAD_ABMIL, rc;
	if ((rc = nn_encoder_create(&enc, be, NN_ENC_FMNIST, 1, 28, 28, n, e)) < 0 ||
	    (rc = nn_head_create(&head, be, head_kind, 512, abmil ? 0.5f : 0.0f, n, e)) < 0)
		return rc;
	nn_module_init(&enc, &r);
	nn_module_init(&head, &r);
	enc.no_graphs = !graphs;
	nn_optim_conf_default(&c, NN_OPTIM_SGD);
	if ((rc = nn_optim_create(&oe, be, &c, enc.nparams, e)) < 0 ||
	    (rc = nn_optim_create(&oh, be, &c, head.nparams, e)) < 0)
		return rc;
	float *x = host_rand((size_t)n * 784, &r), *y = host_rand((size_t)n, &r);
	float *X = be->alloc((size_t)n * 784), *Yd = be->alloc((size_t)n);
	float *DF = be->alloc((size_t)n * 512), *DL = be->alloc((size_t)n * 2);
	if (!x || !y || !X || !Yd || !DF || !DL)
		return err_set(e, ERR_NOMEM, "out of memory");
	be->upload(X, x, (size_t)n * 784);
	be->upload(Yd, y, (size_t)n);
	double t0 = 0;
	for (int s = -2; s < steps; s++) {
		if (s == 0)
			t0 = progress_now();
		train_step(be, &enc, &head, &oe, &oh, X, Yd, DF, DL, n, abmil, &r, e);
	}
	float probe;
	be->download(&probe, enc.w, 1); /* waits for the queued steps */
	*ips = (double)n * steps / (progress_now() - t0);
	free(x), free(y);
	be->free_(X), be->free_(Yd), be->free_(DF), be->free_(DL);
	nn_module_free(&enc), nn_module_free(&head);
	nn_optim_free(&oe), nn_optim_free(&oh);
	return e->code;
}

static int score(const struct nn_backend *be, int kind, int c, int h, int w, int n, int steps,
                 int graphs, double *ips, struct err *e)
{
	struct nn_module enc, head;
	struct rng r;
	rng_seed(&r, 2, 1);
	int rc;
	if ((rc = nn_encoder_create(&enc, be, kind, c, h, w, n, e)) < 0 ||
	    (rc = nn_head_create(&head, be, NN_HEAD_STUDENT, enc.out_dim, 0.0f, n, e)) < 0)
		return rc;
	nn_module_init(&enc, &r);
	nn_module_init(&head, &r);
	nn_module_set_train(&enc, 0);
	nn_module_set_train(&head, 0);
	enc.no_graphs = !graphs;
	size_t in = (size_t)enc.in_dim;
	float *x = host_rand((size_t)n * in, &r), *sc = malloc((size_t)n * sizeof *sc);
	float *X = be->alloc((size_t)n * in);
	if (!x || !sc || !X)
		return err_set(e, ERR_NOMEM, "out of memory");
	double t0 = 0;
	for (int s = -2; s < steps; s++) {
		if (s == 0)
			t0 = progress_now();
		const float *feat;
		be->upload(X, x, (size_t)n * in);
		if ((rc = nn_encoder_forward(&enc, &feat, X, n, e)) < 0 ||
		    (rc = nn_head_scores(&head, sc, feat, n, NULL, e)) < 0)
			break;
	}
	*ips = (double)n * steps / (progress_now() - t0);
	free(x), free(sc);
	be->free_(X);
	nn_module_free(&enc), nn_module_free(&head);
	return rc;
}

int main(void)
{
	char why[256];
	const struct nn_backend *be = nn_backend_get("cuda");
	if (!be) {
		nn_cuda_available(why, sizeof why);
		printf("SKIP bench_cuda: %s\n", why);
		return 0;
	}
	int steps = env_int("WENO_BENCH_STEPS", 20);
	printf("device %s\n", nn_cuda_describe());
	struct err e = {0};
	double v, w;
	if (train(be, NN_HEAD_STUDENT, 256, steps, 1, &v, &e) < 0 ||
	    train(be, NN_HEAD_STUDENT, 256, steps, 0, &w, &e) < 0)
		goto fail;
	printf("cuda fmnist+student-batch256 %.1f\n", v);
	printf("cuda fmnist+student-batch256 no-graphs %.1f (graphs %.2fx)\n", w, v / w);
	if (train(be, NN_HEAD_ABMIL, 100, steps * 3, 1, &v, &e) < 0 ||
	    train(be, NN_HEAD_ABMIL, 100, steps * 3, 0, &w, &e) < 0)
		goto fail;
	printf("cuda fmnist+abmil-bag100 %.1f\n", v);
	printf("cuda fmnist+abmil-bag100 no-graphs %.1f (graphs %.2fx)\n", w, v / w);
	if (score(be, NN_ENC_FMNIST, 1, 28, 28, 1024, steps, 1, &v, &e) < 0 ||
	    score(be, NN_ENC_FMNIST, 1, 28, 28, 1024, steps, 0, &w, &e) < 0)
		goto fail;
	printf("cuda score fmnist %.1f\n", v);
	printf("cuda score fmnist no-graphs %.1f (graphs %.2fx)\n", w, v / w);
	if (score(be, NN_ENC_RESNET18, 3, 224, 224, 128, steps, 1, &v, &e) < 0)
		goto fail;
	printf("cuda score resnet18 %.1f\n", v);
	if (score(be, NN_ENC_MLP, 1024, 1, 1, 4096, steps, 1, &v, &e) < 0)
		goto fail;
	printf("cuda score mlp %.1f\n", v);
	if (nn_cuda_error(why, sizeof why)) {
		fprintf(stderr, "bench_cuda: %s\n", why);
		return 1;
	}
	return 0;
fail:
	fprintf(stderr, "bench_cuda: %s\n", e.msg);
	return 1;
}
