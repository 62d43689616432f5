/* test_nn_conv.c - the CPU convolution against a plain double-precision
 * convolution, on shapes that take each of its paths: Winograd F(2x2,3x3)
 * for 3x3 stride 1 padding 1 (odd and even sizes, several lanes and
 * blocks), im2col for the rest (strided, unpadded, 1x1, maps under 4x4 and
 * batches with under 32 tiles).  Forward,
 * input gradient and weight gradient; the gradients are checked to ADD to
 * what the buffers held (the operation table's contract).
 *
 * Tolerance: |ours - reference| <= 1e-5 * (1 + sum of |terms|) per element,
 * the sum of absolute products bounding float rounding of a dot product
 * (Winograd's transforms add a small constant factor; measured errors are
 * 1e-7 to 2e-6 of that bound's scale on these shapes).
 */
#include <math.h>
#include <stdlib.h>

#include "check.h"

#include "../../lib/nn/nn.h"

static float *fbuf(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void fill(float *x, size_t n, struct rng *r)
{
	for (size_t i = 0; i < n; i++)
		x[i] = 2.0f * rng_float(r) - 1.0f;
}

/* reference forward, dinp and dweight in double, with the sums of |terms| */
struct ref {
	double *out, *outa, *dx, *dxa, *dw, *dwa;
};

static void reference(struct ref *R, const float *x, const float *w, const float *b,
                      const float *dy, const struct nn_conv_shape *s)
{
	int N = s->N, C = s->C, H = s->H, W = s->W, OC = s->OC, OH = s->OH, OW = s->OW;
	for (int n = 0; n < N; n++)
		for (int oc = 0; oc < OC; oc++)
			for (int oy = 0; oy < OH; oy++)
				for (int ox = 0; ox < OW; ox++) {
					size_t o = (((size_t)n * OC + oc) * OH + oy) * OW + ox;
					double acc = b ? b[oc] : 0.0, absacc = fabs(acc), g = dy[o];
					for (int c = 0; c < C; c++)
						for (int i = 0; i < s->KH; i++)
							for (int j = 0; j < s->KW; j++) {
								int y = oy * s->SH - s->PH + i, xx = ox * s->SW - s->PW + j;
								if (y < 0 || y >= H || xx < 0 || xx >= W)
									continue;
								size_t xi = (((size_t)n * C + c) * H + y) * W + xx;
								size_t wi = (((size_t)oc * C + c) * s->KH + i) * s->KW + j;
								acc += (double)w[wi] * x[xi];
								absacc += fabs((double)w[wi] * x[xi]);
								R->dx[xi] += g * w[wi];
								R->dxa[xi] += fabs(g * w[wi]);
								R->dw[wi] += g * x[xi];
								R->dwa[wi] += fabs(g * x[xi]);
							}
					R->out[o] = acc;
					R->outa[o] = absacc;
				}
}

static int compare(const char *what, const float *got, const double *want, const double *abs,
                   const float *before, size_t n)
{
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		double v = (double)got[i] - (before ? before[i] : 0.0);
		if (fabs(v - want[i]) > 1e-5 * (1.0 + abs[i])) {
			if (bad < 3)
				printf("     %s[%zu]: %.9g, reference %.9g\n", what, i, v, want[i]);
			bad++;
		}
	}
	return bad;
}

static int check_shape(int N, int C, int H, int W, int OC, int K, int S, int P)
{
	struct nn_conv_shape s = {.N = N, .C = C, .H = H, .W = W, .OC = OC, .KH = K, .KW = K,
	                          .SH = S, .SW = S, .PH = P, .PW = P};
	nn_conv_shape_finish(&s);
	size_t nx = (size_t)N * C * H * W, nw = (size_t)OC * C * K * K;
	size_t no = (size_t)N * OC * s.OH * s.OW;
	struct rng r;
	rng_seed(&r, (uint64_t)(N * 131 + C * 17 + H), 5);
	float *x = fbuf(nx), *w = fbuf(nw), *b = fbuf(OC), *dy = fbuf(no), *out = fbuf(no);
	float *dx = fbuf(nx), *dw = fbuf(nw), *dx0 = fbuf(nx), *dw0 = fbuf(nw);
	float *scratch = fbuf(nn_conv2d_scratch_floats(&s));
	fill(x, nx, &r), fill(w, nw, &r), fill(b, OC, &r), fill(dy, no, &r);
	fill(dx0, nx, &r), fill(dw0, nw, &r);
	memcpy(dx, dx0, nx * sizeof *dx);
	memcpy(dw, dw0, nw * sizeof *dw);
	struct ref R = {calloc(no, 8), calloc(no, 8), calloc(nx, 8), calloc(nx, 8), calloc(nw, 8),
	                calloc(nw, 8)};
	reference(&R, x, w, b, dy, &s);
	nn_cpu.conv2d_forward(out, scratch, x, w, b, &s);
	nn_cpu.conv2d_backward(dx, dw, NULL, scratch, dy, x, w, &s);
	char what[96];
	snprintf(what, sizeof what, "N%d C%d %dx%d OC%d K%d S%d P%d", N, C, H, W, OC, K, S, P);
	int bad = compare("out", out, R.out, R.outa, NULL, no) +
	          compare("dinp", dx, R.dx, R.dxa, dx0, nx) +
	          compare("dweight", dw, R.dw, R.dwa, dw0, nw);
	if (bad)
		printf("     %s: %d elements off\n", what, bad);
	free(x), free(w), free(b), free(dy), free(out), free(dx), free(dw), free(dx0), free(dw0);
	free(scratch), free(R.out), free(R.outa), free(R.dx), free(R.dxa), free(R.dw), free(R.dwa);
	return bad;
}

static void test_conv_winograd(void)
{
	int bad = check_shape(8, 16, 4, 4, 1, 3, 1, 1) + /* 2x2 tiles per image */
	          check_shape(9, 3, 8, 8, 8, 3, 1, 1) +  /* RGB */
	          check_shape(6, 17, 7, 6, 4, 3, 1, 1) + /* odd height */
	          check_shape(5, 16, 5, 9, 3, 3, 1, 1) + /* odd both */
	          check_shape(9, 32, 14, 14, 64, 3, 1, 1) + /* fmnist conv2, lanes of 2-3 images */
	          check_shape(13, 64, 6, 6, 128, 3, 1, 1) + /* fmnist conv3 */
	          check_shape(40, 16, 6, 6, 16, 3, 1, 1); /* several blocks per lane */
	CHECK(bad == 0, "%d elements off", bad);
}

static void test_conv_im2col(void)
{
	int bad = check_shape(3, 1, 28, 28, 8, 6, 2, 2) + /* fmnist conv1 */
	          check_shape(9, 3, 15, 15, 4, 7, 2, 3) + /* resnet stem, blocked path */
	          check_shape(10, 4, 7, 7, 6, 1, 2, 0) +  /* 1x1 stride 2 shortcut */
	          check_shape(9, 3, 6, 6, 5, 3, 1, 0) +   /* 3x3 without padding */
	          check_shape(2, 5, 6, 6, 4, 3, 2, 1) +   /* 3x3 stride 2 */
	          check_shape(3, 8, 2, 2, 8, 3, 1, 1) +   /* 3x3 padded on a 2x2 map: im2col */
	          check_shape(2, 16, 6, 6, 4, 3, 1, 1) +  /* too few tiles for Winograd */
	          check_shape(1, 3, 8, 8, 8, 3, 1, 1);    /* one RGB image: 16 tiles */
	CHECK(bad == 0, "%d elements off", bad);
}

int main(void)
{
	nn_set_threads(2);
	RUN(test_conv_winograd);
	RUN(test_conv_im2col);
	return check_summary();
}
