/* bench_bag.c - bag write and read speed against the zstd command line on
 * the same payload, single thread, measured in the same run.
 * Target (issue 2): reading >= 80 % of `zstd -d`, writing >= 80 % of `zstd -3`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/data/bag.h"
#include "../../lib/mil/imgset.h"
#include "../../lib/base/progress.h"

static double run_cmd(const char *cmd)
{
	double best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		double t0 = progress_now();
		if (system(cmd) != 0) {
			fprintf(stderr, "bench_bag: '%s' failed\n", cmd);
			exit(1);
		}
		double t = progress_now() - t0;
		if (t < best)
			best = t;
	}
	return best;
}

int main(void)
{
	struct err e = {0};
	struct imgset s = {0};
	const char *fm = "/usr/share/datasets/fashion-mnist";
	char ip[512], lp[512];
	snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", fm);
	snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", fm);
	if (imgset_load_idx(&s, ip, lp, &e)) {
		printf("SKIP bench_bag: %s\n", e.msg);
		return 0;
	}
	const int reps = 4; /* 240,000 images, 188 MB of pixels */
	uint64_t n = (uint64_t)s.n * reps, ib = 784;
	char dir[] = "/tmp/bench_bag.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char bag[600], raw[600], cmd[2048];
	snprintf(bag, sizeof bag, "%s/fm.wbag", dir);
	snprintf(raw, sizeof raw, "%s/payload.bin", dir);

	struct bag_header h;
	bag_header_init(&h);
	h.kind = BAG_PIXELS;
	h.height = h.width = 28;
	h.channels = 1;
	strcpy(h.id, "bench");
	double best_w = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		double t0 = progress_now();
		struct bag_writer *w;
		if (bag_writer_open(&w, bag, &h, 3, 0, &e))
			return fprintf(stderr, "%s\n", e.msg), 1;
		for (uint64_t i = 0; i < n; i++) {
			uint32_t k = (uint32_t)(i % s.n);
			struct bag_inst in = {(int32_t)k, 0, 1, s.label[k] == 6 ? 1.0f : 0.0f};
			if (bag_writer_add(w, &in, s.pix + (size_t)k * ib, &e))
				return fprintf(stderr, "%s\n", e.msg), 1;
		}
		if (bag_writer_close(w, &e))
			return fprintf(stderr, "%s\n", e.msg), 1;
		double t = progress_now() - t0;
		if (t < best_w)
			best_w = t;
	}
	double best_r = 1e30;
	uint64_t sum = 0;
	for (int rep = 0; rep < 3; rep++) {
		double t0 = progress_now();
		struct bag_reader *r;
		if (bag_open(&r, bag, &e))
			return fprintf(stderr, "%s\n", e.msg), 1;
		struct bag_chunk c;
		int k;
		while ((k = bag_read_chunk(r, &c, &e)) > 0)
			sum += c.data[0] + (uint64_t)c.inst[0].x;
		if (k < 0)
			return fprintf(stderr, "%s\n", e.msg), 1;
		bag_close(r);
		double t = progress_now() - t0;
		if (t < best_r)
			best_r = t;
	}
	/* the same payload (records and pixels) as one file for the zstd CLI */
	FILE *f = fopen(raw, "wb");
	for (uint64_t i = 0; i < n; i++) {
		uint32_t k = (uint32_t)(i % s.n);
		int32_t rec[4] = {(int32_t)k, 0, 0, 0};
		fwrite(rec, 4, 4, f);
		fwrite(s.pix + (size_t)k * ib, 1, ib, f);
	}
	fclose(f);
	snprintf(cmd, sizeof cmd, "zstd -q -f -3 --single-thread %s -o %s.zst", raw, raw);
	double zw = run_cmd(cmd);
	snprintf(cmd, sizeof cmd, "zstd -q -d -c %s.zst > /dev/null", raw);
	double zr = run_cmd(cmd);
	double mb = (double)n * (ib + 16) / 1e6;
	printf("bag write (zstd level 3): %7.1f MB/s   zstd -3 CLI: %7.1f MB/s   ratio %.2f (target >= 0.80)\n",
	       mb / best_w, mb / zw, zw / best_w);
	printf("bag read (every chunk):   %7.1f MB/s   zstd -d CLI: %7.1f MB/s   ratio %.2f (target >= 0.80)\n",
	       mb / best_r, mb / zr, zr / best_r);
	printf("payload %.0f MB, %llu instances (checksum %llu)\n", mb, (unsigned long long)n, (unsigned long long)sum);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	imgset_free(&s);
	return 0;
}
