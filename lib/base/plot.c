/* plot.c - see plot.h */
#include "plot.h"

#include <math.h>
#include <stdio.h>

#include "afile.h"

static const char *COLOURS[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

static void text_escaped(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

int plot_roc_svg(const char *path, const char *title, const struct plot_curve *c, int n, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	FILE *f = af.fp;
	const double L = 60, T = 40, S = 400; /* left, top margins; plot side */
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
	        "font-family=\"sans-serif\" font-size=\"12\">\n", L + S + 20, T + S + 50);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%.0f\" y=\"24\" font-size=\"14\" text-anchor=\"middle\">", L + S / 2);
	text_escaped(f, title);
	fprintf(f, "</text>\n");
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n", L, T, S, S);
	for (int i = 0; i <= 10; i++) {
		double v = i / 10.0;
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#eee\"/>\n", L + v * S, T, L + v * S, T + S);
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", L, T + S - v * S, L + S, T + S - v * S);
		if (i % 2 == 0) {
			fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.1f</text>\n", L + v * S, T + S + 16, v);
			fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6, T + S - v * S + 4, v);
		}
	}
	fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n",
	        L, T + S, L + S, T);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">false positive rate</text>\n", L + S / 2, T + S + 36);
	fprintf(f, "<text transform=\"translate(16 %.0f) rotate(-90)\" text-anchor=\"middle\">true positive rate</text>\n",
	        T + S / 2);
	for (int k = 0; k < n; k++) {
		const char *col = COLOURS[k % 8];
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
		for (long i = 0; i < c[k].n; i++)
			fprintf(f, "%.2f,%.2f ", L + c[k].x[i] * S, T + S - c[k].y[i] * S);
		fprintf(f, "\"/>\n");
		double ly = T + S - 20 - 18.0 * (n - 1 - k);
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
		        L + S * 0.45, ly - 4, L + S * 0.45 + 18, ly - 4, col);
		fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">", L + S * 0.45 + 24, ly);
		text_escaped(f, c[k].name);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg>\n");
	return afile_commit(&af, e);
}

/* x in [0, 1] of a false-positive rate: linear on [0, 1/8] over the first
 * eighth of the axis, then log2 from 1/8 to 16 (7 octaves) */
static double froc_x(double v)
{
	if (!(v > 0))
		return 0;
	if (v <= 0.125)
		return v / 0.125 / 8;
	double t = 1.0 / 8 + log2(v / 0.125) / 7 * (7.0 / 8);
	return t > 1 ? 1 : t;
}

int plot_froc_svg(const char *path, const char *title, const struct plot_curve *c, int n, const double at[6],
                  struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, path, e);
	if (rc)
		return rc;
	FILE *f = af.fp;
	const double L = 60, T = 40, W = 480, H = 400;
	static const double ticks[] = {0, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16};
	static const char *tick_names[] = {"0", "1/8", "1/4", "1/2", "1", "2", "4", "8", "16"};
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
	        "font-family=\"sans-serif\" font-size=\"12\">\n", L + W + 20, T + H + 50);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%.0f\" y=\"24\" font-size=\"14\" text-anchor=\"middle\">", L + W / 2);
	text_escaped(f, title);
	fprintf(f, "</text>\n");
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n", L, T, W, H);
	for (int i = 0; i < 9; i++) {
		double x = L + froc_x(ticks[i]) * W;
		int target = i >= 2 && i <= 7;
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\"%s/>\n", x, T, x, T + H,
		        target ? "#bbb" : "#eee", target ? " stroke-dasharray=\"2 3\"" : "");
		fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", x, T + H + 16, tick_names[i]);
	}
	for (int i = 0; i <= 10; i++) {
		double v = i / 10.0;
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", L, T + H - v * H, L + W,
		        T + H - v * H);
		if (i % 2 == 0)
			fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.1f</text>\n", L - 6, T + H - v * H + 4, v);
	}
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">mean false positives per slide</text>\n",
	        L + W / 2, T + H + 36);
	fprintf(f, "<text transform=\"translate(16 %.0f) rotate(-90)\" text-anchor=\"middle\">lesion sensitivity</text>\n",
	        T + H / 2);
	for (int k = 0; k < n; k++) {
		const char *col = COLOURS[k % 8];
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
		for (long i = 0; i < c[k].n; i++)
			fprintf(f, "%.2f,%.2f ", L + froc_x(c[k].x[i]) * W, T + H - c[k].y[i] * H);
		fprintf(f, "\"/>\n");
		if (k == 0 && at)
			for (int j = 0; j < 6; j++)
				if (isfinite(at[j]))
					fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"%s\"/>\n",
					        L + froc_x(ticks[j + 2]) * W, T + H - at[j] * H, col);
		double ly = T + 20 + 18.0 * k;
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
		        L + 12, ly - 4, L + 30, ly - 4, col);
		fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">", L + 36, ly);
		text_escaped(f, c[k].name);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg>\n");
	return afile_commit(&af, e);
}
