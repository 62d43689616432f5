/* bench_slide.c - raw patch reading through lib/wsi/slide: every 256-px level-0
 * patch of a slide, with the libjpeg fast path and through OpenSlide, in the
 * same run.  bench_slide [SLIDE]; without a slide it generates a 8192 x 8192
 * one in $TMPDIR. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/base/progress.h"
#include "../../lib/wsi/slide.h"
#include "../../lib/wsi/slidegen.h"

static double run(const char *path, int fast, int *n)
{
	struct err e = {0};
	struct slide *s;
	if (slide_open(&s, path, &e)) {
		fprintf(stderr, "bench_slide: %s\n", e.msg);
		exit(1);
	}
	slide_set_fast(s, fast);
	int64_t w, h;
	slide_level_size(s, 0, &w, &h);
	uint8_t *buf = malloc(256 * 256 * 3);
	*n = 0;
	double t = progress_now();
	for (int64_t y = 0; y + 256 <= h; y += 256)
		for (int64_t x = 0; x + 256 <= w; x += 256) {
			if (slide_read_region(s, 0, x, y, 256, 256, buf, &e)) {
				fprintf(stderr, "bench_slide: %s\n", e.msg);
				exit(1);
			}
			(*n)++;
		}
	t = progress_now() - t;
	free(buf);
	slide_close(s);
	return t;
}

int main(int argc, char **argv)
{
	char tmp[512] = "";
	const char *path = argc > 1 ? argv[1] : NULL;
	if (!path) {
		const char *d = getenv("TMPDIR");
		snprintf(tmp, sizeof tmp, "%s/bench_slide.%d.tif", d ? d : "/tmp", (int)getpid());
		struct slidegen_params p;
		slidegen_params_default(&p);
		p.width = p.height = 8192;
		struct slidegen *g;
		struct err e = {0};
		if (slidegen_create(&g, &p, &e) || slidegen_write_tiff(g, tmp, &e)) {
			fprintf(stderr, "bench_slide: %s\n", e.msg);
			return 1;
		}
		slidegen_free(g);
		path = tmp;
	}
	int n1, n2;
	double tf = run(path, 1, &n1), to = run(path, 0, &n2);
	printf("lib/wsi/slide, 1 thread, every 256-px level-0 patch of %s: fast path %.0f patches/s, OpenSlide %.0f "
	       "patches/s, ratio %.1fx\n",
	       argc > 1 ? path : "a generated 8192x8192 slide", n1 / tf, n2 / to, (n1 / tf) / (n2 / to));
	if (tmp[0])
		unlink(tmp);
	return 0;
}
