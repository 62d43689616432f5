/* test_dataset.c - manifests, and bags as float instances */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "../../lib/base/afile.h"
#include "../../lib/data/dataset.h"

static void write_bag(const char *path, int kind, uint32_t h, uint32_t w, uint32_t c, int label, int n)
{
	struct err e = {0};
	struct bag_header hd;
	bag_header_init(&hd);
	hd.kind = kind;
	hd.height = h;
	hd.width = w;
	hd.channels = c;
	hd.dim = kind == BAG_FEATURES ? c : 0;
	hd.label = label;
	strcpy(hd.id, "b");
	struct bag_writer *wr;
	if (bag_writer_open(&wr, path, &hd, 1, 3, &e))
		return;
	uint8_t px[64];
	float f[16];
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 64; k++)
			px[k] = (uint8_t)(k + i);
		for (int k = 0; k < 16; k++)
			f[k] = (float)(k * 10 + i);
		struct bag_inst in = {i, 0, 1, (float)(i == 0)};
		bag_writer_add(wr, &in, kind == BAG_PIXELS ? (const void *)px : (const void *)f, &e);
	}
	bag_writer_close(wr, &e);
}

static const char *P(const char *name)
{
	static char buf[4][600];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, 600, "%s/%s", check_tmpdir(), name);
	return p;
}

static void test_pixels_become_chw_floats(void)
{
	write_bag(P("a.wbag"), BAG_PIXELS, 2, 3, 2, 1, 5);
	write_bag(P("b.wbag"), BAG_PIXELS, 2, 3, 2, 0, 4);
	const char *m = "bag_id\tlabel\tsplit\tpath\tn_instances\na\t1\ttrain\ta.wbag\t5\nb\t0\tval\tb.wbag\t4\n";
	struct err e = {0};
	REQUIRE(afile_write_all(P("m.tsv"), m, strlen(m), &e) == 0, "%s", e.msg);
	struct dataset ds;
	REQUIRE(dataset_open(&ds, P("m.tsv"), 1 << 20, &e) == 0, "%s", e.msg);
	CHECK(ds.kind == BAG_PIXELS && ds.in_dim == 12 && ds.c == 2, "shape");
	float *buf = NULL;
	struct bag_inst *ib = NULL;
	size_t bc = 0, ic = 0;
	const float *x;
	const struct bag_inst *inst;
	uint64_t n;
	for (int pass = 0; pass < 2; pass++) { /* second pass comes from the cache */
		REQUIRE(dataset_load_bag(&ds, 0, &x, &inst, &n, &buf, &bc, &ib, &ic, &e) == 0, "%s", e.msg);
		CHECK(n == 5 && inst[4].x == 4 && inst[0].label == 1, "records");
		/* instance 2, channel 1, pixel (row 1, col 2): HWC index (1*3+2)*2+1 = 11 -> value 11+2 */
		CHECK(fabsf(x[2 * 12 + 1 * 6 + 1 * 3 + 2] - 13.0f / 255.0f) < 1e-7f, "CHW layout, got %g",
		      (double)x[2 * 12 + 9]);
	}
	CHECK(ds.cache_used > 0, "cached");
	uint32_t cnt;
	uint32_t *v = dataset_split(&ds, SPLIT_VAL, &cnt);
	CHECK(cnt == 1 && v[0] == 1 && dataset_split_instances(&ds, SPLIT_TRAIN) == 5, "splits");
	free(v);
	free(buf);
	free(ib);
	dataset_close(&ds);
}

static void test_disagreeing_bags_are_refused(void)
{
	write_bag(P("f.wbag"), BAG_FEATURES, 1, 1, 16, 1, 3);
	const char *m = "bag_id\tlabel\tsplit\tpath\tn_instances\na\t1\ttrain\ta.wbag\t5\nf\t1\ttrain\tf.wbag\t3\n";
	struct err e = {0};
	afile_write_all(P("m2.tsv"), m, strlen(m), &e);
	struct dataset ds;
	CHECK(dataset_open(&ds, P("m2.tsv"), 0, &e) == ERR_FORMAT && strstr(e.msg, "bags disagree"), "%s", e.msg);
	const char *m3 = "bag_id\tlabel\tsplit\tpath\tn_instances\na\t0\ttrain\ta.wbag\t5\n";
	afile_write_all(P("m3.tsv"), m3, strlen(m3), &e);
	err_clear(&e);
	CHECK(dataset_open(&ds, P("m3.tsv"), 0, &e) == ERR_FORMAT && strstr(e.msg, "bag label 1"), "%s", e.msg);
	const char *m4 = "bag_id\tlabel\tsplit\tpath\tn_instances\nz\t0\ttrain\tmissing.wbag\t5\n";
	afile_write_all(P("m4.tsv"), m4, strlen(m4), &e);
	err_clear(&e);
	CHECK(dataset_open(&ds, P("m4.tsv"), 0, &e) == ERR_IO && strstr(e.msg, "missing.wbag"), "%s", e.msg);
	const char *m5 = "bag_id\tlabel\tsplit\tpath\tn_instances\n";
	afile_write_all(P("m5.tsv"), m5, strlen(m5), &e);
	err_clear(&e);
	CHECK(dataset_open(&ds, P("m5.tsv"), 0, &e) == ERR_FORMAT && strstr(e.msg, "no bags"), "%s", e.msg);
}

static int read_manifest_text(const char *text, struct manifest *m, struct err *e)
{
	char p[600];
	snprintf(p, sizeof p, "%s/m.tsv", check_tmpdir());
	FILE *f = fopen(p, "wb");
	fputs(text, f);
	fclose(f);
	return manifest_read(m, p, e);
}

static void test_manifest_rules(void)
{
	struct manifest m;
	struct err e = {0};
	/* a byte-order mark, CR LF, a comment, columns in another order */
	int rc = read_manifest_text("\xef\xbb\xbfpath\tbag_id\tlabel\tsplit\tn_instances\r\n# c\r\n"
	                            "b/a.wbag\ta\t1\ttrain\t3\r\n/x/b.wbag\tb\t0\ttest\t2\r\n", &m, &e);
	CHECK(rc == 0 && m.n == 2 && !strcmp(m.rows[0].bag_id, "a") && m.rows[0].label == 1 &&
	          m.rows[1].split == SPLIT_TEST && !strcmp(m.rows[1].path, "/x/b.wbag") && m.rows[1].line == 4 &&
	          strstr(m.rows[0].path, "/b/a.wbag"),
	      "%d %s", rc, e.msg);
	manifest_free(&m);
	/* a bag listed twice, even with another label: both lines named */
	err_clear(&e);
	rc = read_manifest_text("bag_id\tlabel\tsplit\tpath\tn_instances\na\t1\ttrain\ta\t3\n"
	                        "b\t0\ttrain\tb\t3\na\t0\tval\ta2\t3\n", &m, &e);
	CHECK(rc == ERR_FORMAT && strstr(e.msg, "line 4: bag_id 'a' again, as on line 2"), "%d %s", rc, e.msg);
	/* a column twice in the header */
	err_clear(&e);
	rc = read_manifest_text("bag_id\tlabel\tsplit\tpath\tn_instances\tlabel\n", &m, &e);
	CHECK(rc == ERR_FORMAT && strstr(e.msg, "column 'label' twice"), "%d %s", rc, e.msg);
	/* more than 64 columns are read, not cut */
	char wide[4096] = "bag_id\tlabel\tsplit\tpath";
	for (int i = 0; i < 70; i++)
		snprintf(wide + strlen(wide), sizeof wide - strlen(wide), "\tx%d", i);
	strcat(wide, "\tn_instances\nz\t1\ttrain\tz");
	for (int i = 0; i < 70; i++)
		strcat(wide, "\t0");
	strcat(wide, "\t5\n");
	err_clear(&e);
	rc = read_manifest_text(wide, &m, &e);
	CHECK(rc == 0 && m.n == 1 && m.rows[0].n_instances == 5, "75 columns: %d %s", rc, e.msg);
	manifest_free(&m);
	/* not a regular file */
	err_clear(&e);
	rc = manifest_read(&m, "/dev/zero", &e);
	CHECK(rc == ERR_IO && strstr(e.msg, "a device"), "%d %s", rc, e.msg);
}

int main(void)
{
	RUN(test_manifest_rules);
	RUN(test_pixels_become_chw_floats);
	RUN(test_disagreeing_bags_are_refused);
	return check_summary();
}
