/* mil-synth - builds the paper's synthetic MIL datasets from labelled image
 * sets (Fashion-MNIST/MNIST IDX, CIFAR-10 binary, class folders). */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/base/afile.h"
#include "../lib/data/bag.h"
#include "../lib/mil/imgset.h"
#include "../lib/data/manifest.h"
#include "../lib/mil/milsynth.h"
#include "../lib/base/progress.h"
#include "../lib/base/rng.h"
#include "../lib/base/version.h"
#include "cli.h"

#define DEFAULT_IDX "/usr/share/datasets/fashion-mnist"

static const char *opt_idx, *opt_cifar, *opt_folder, *opt_test_folder, *opt_out, *opt_pos;
static double opt_ratio = 0.1, opt_val_frac = 0.1, opt_test_frac = 0.2;
static int opt_bag_size = 100, opt_max_bags = 0, opt_threads = 0, opt_level = 3;
static long long opt_seed = 0;

static const struct cli_opt OPTS[] = {
	{"out", 'o', CLI_STRING, &opt_out, "DIR", "output folder: DIR/bags/*.wbag and DIR/manifest.tsv", NULL},
	{"idx", 0, CLI_STRING, &opt_idx, "DIR",
	 "MNIST/Fashion-MNIST IDX files (train-*, t10k-*, gzipped or not); the default input is " DEFAULT_IDX, NULL},
	{"cifar", 0, CLI_STRING, &opt_cifar, "DIR", "CIFAR-10 binary version (data_batch_1..5.bin, test_batch.bin)", NULL},
	{"folder", 0, CLI_STRING, &opt_folder, "DIR", "class folders of PNG/JPEG/TIFF images (NCT-CRC-HE-100K layout)", NULL},
	{"test-folder", 0, CLI_STRING, &opt_test_folder, "DIR", "class folders of the test images (else --test-frac of --folder)", NULL},
	{"test-frac", 0, CLI_DOUBLE, &opt_test_frac, "F", "with --folder alone: fraction of images held out for testing", NULL},
	{"pos-class", 'p', CLI_STRING, &opt_pos, "C", "positive class, by name or number (IDX default 6, shirt)", NULL},
	{"ratio", 'r', CLI_DOUBLE, &opt_ratio, "R", "positive instances per positive bag, as a fraction of the bag", NULL},
	{"bag-size", 'n', CLI_INT, &opt_bag_size, "N", "instances per bag", NULL},
	{"seed", 's', CLI_I64, &opt_seed, "S", "random seed (same seed, same bags)", NULL},
	{"val-frac", 0, CLI_DOUBLE, &opt_val_frac, "F", "fraction of the training bags kept for validation, stratified by label", NULL},
	{"max-bags", 0, CLI_INT, &opt_max_bags, "N", "keep at most N positive and N negative bags per split (0: all; for quick runs)", NULL},
	{"threads", 't', CLI_INT, &opt_threads, "T", "threads writing bags (0: all cores)", NULL},
	{"level", 0, CLI_INT, &opt_level, "L", "zstd level of the bags", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"mil-synth", "[options] -o DIR",
	"Builds a synthetic MIL dataset as in the WENO paper: one class positive, the rest negative,\n"
	"bags of N images with exactly int(N*R) positives in every positive bag, half the bags\n"
	"positive, each image used once, separately on the training and the test images; then a\n"
	"stratified validation split of the training bags.  Every bag records its instance labels.\n"
	"Fashion-MNIST (Debian's dataset-fashion-mnist) is the default input.",
	"examples:\n"
	"  mil-synth -o fmnist-r10                          # Fashion-MNIST, shirt positive, r = 0.1\n"
	"  mil-synth --ratio 0.2 --seed 3 -o fmnist-r20\n"
	"  mil-synth --cifar cifar-10-batches-bin --pos-class 9 -r 0.05 -o cifar-r05\n"
	"  mil-synth --folder NCT-CRC-HE-100K --test-folder CRC-VAL-HE-7K --pos-class TUM -o crc\n"
	"check: Fashion-MNIST class 6 gives 284+284 training and 47+47 test bags at r = 0.1\n"
	"exit status: 0 success, 1 an input could not be read or makes no bags, 2 bad usage",
	OPTS, 0, 0,
};

static char *path_join(const char *dir, const char *name)
{
	return xstrfmt("%s/%s", dir, name);
}

/* dir/stem, or dir/stem.gz, whichever is readable first; NULL if neither */
static char *find_idx(const char *dir, const char *stem)
{
	char *p = path_join(dir, stem);
	if (access(p, R_OK) == 0)
		return p;
	free(p);
	p = xstrfmt("%s/%s.gz", dir, stem);
	if (access(p, R_OK) == 0)
		return p;
	free(p);
	return NULL;
}

/* One split's images: a set and the indices into it that belong to the split. */
struct split_src {
	const struct imgset *set;
	uint32_t *idx;
	uint32_t n;
};

static int load_inputs(struct imgset *train, struct imgset *test, struct err *e)
{
	int nin = !!opt_idx + !!opt_cifar + !!opt_folder;
	if (nin > 1)
		return err_set(e, ERR_USAGE, "give one of --idx, --cifar, --folder");
	if (opt_cifar) {
		char *tr[5], *te = path_join(opt_cifar, "test_batch.bin");
		for (int i = 0; i < 5; i++) {
			char name[32];
			snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
			tr[i] = path_join(opt_cifar, name);
		}
		int rc = imgset_load_cifar(train, (const char *const *)tr, 5, e);
		if (!rc)
			rc = imgset_load_cifar(test, (const char *const *)&te, 1, e);
		for (int i = 0; i < 5; i++)
			free(tr[i]);
		free(te);
		return rc;
	}
	if (opt_folder) {
		int rc = imgset_load_folder(train, opt_folder, e);
		if (!rc && opt_test_folder)
			rc = imgset_load_folder(test, opt_test_folder, e);
		return rc;
	}
	const char *dir = opt_idx ? opt_idx : DEFAULT_IDX;
	char *ti = find_idx(dir, "train-images-idx3-ubyte"), *tl = find_idx(dir, "train-labels-idx1-ubyte");
	char *vi = find_idx(dir, "t10k-images-idx3-ubyte"), *vl = find_idx(dir, "t10k-labels-idx1-ubyte");
	int rc = 0;
	if (!ti || !tl || !vi || !vl)
		rc = err_set(e, ERR_IO, "%s: expected train-images-idx3-ubyte, train-labels-idx1-ubyte, "
		             "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz)%s", dir,
		             opt_idx ? "" : "\nhint: apt-get install dataset-fashion-mnist, or give --idx DIR");
	if (!rc)
		rc = imgset_load_idx(train, ti, tl, e);
	if (!rc)
		rc = imgset_load_idx(test, vi, vl, e);
	free(ti);
	free(tl);
	free(vi);
	free(vl);
	return rc;
}

struct job {
	const struct split_src *src;
	const struct milsynth *m;
	uint32_t bag;            /* index in m */
	char id[64];
	int label;
	int split;
};

/* what write_bag's cli_params_each needs */
struct meta_arg {
	struct bag_header *h;
	struct err *e;
};

static int add_param(void *arg, const char *name, const char *value)
{
	struct meta_arg *a = arg;
	return bag_header_meta_add(a->h, name, value, a->e);
}

static int write_bag(const struct job *j, const char *path, uint8_t *buf, struct err *e)
{
	const struct imgset *s = j->src->set;
	struct bag_header h;
	bag_header_init(&h);
	h.kind = BAG_PIXELS;
	h.height = s->h;
	h.width = s->w;
	h.channels = s->c;
	h.label = j->label;
	snprintf(h.id, sizeof h.id, "%s", j->id);
	int rc = bag_header_meta_add(&h, "tool", "mil-synth", e);
	rc = rc ? rc : bag_header_meta_add(&h, "version", WENO_VERSION, e);
	rc = rc ? rc : bag_header_meta_add(&h, "source", s->source ? s->source : "?", e);
	rc = rc ? rc : bag_header_meta_add(&h, "split", manifest_split_name(j->split), e);
	rc = rc ? rc : bag_header_meta_add(&h, "instance_x", "index of the image in its source set", e);
	struct meta_arg a = {&h, e};
	rc = rc ? rc : cli_params_each(&CLI, "out,threads", add_param, &a); /* every option but these two */
	struct bag_writer *w = NULL;
	rc = rc ? rc : bag_writer_open(&w, path, &h, opt_level, 0, e);
	bag_header_free(&h);
	if (rc)
		return rc;
	int pos = opt_pos ? imgset_class_index(s, opt_pos) : -1;
	const uint32_t *imgs = j->m->images + (size_t)j->bag * j->m->bag_size;
	for (uint32_t i = 0; i < j->m->bag_size && !rc; i++) {
		uint32_t src = j->src->idx[imgs[i]];
		rc = imgset_get(s, src, buf, e);
		if (rc)
			break;
		struct bag_inst in = {(int32_t)src, 0, 1.0f, s->label[src] == pos ? 1.0f : 0.0f};
		rc = bag_writer_add(w, &in, buf, e);
	}
	if (rc) {
		bag_writer_abort(w);
		return rc;
	}
	return bag_writer_close(w, e);
}

/* The two splits as index lists into their sets: the training and the test
 * set, or with one folder --test-frac of it held out (seeded), each split in
 * source order; returns 0, or 1 when the two sets disagree (said). */
static int split_images(const struct imgset *train, const struct imgset *test, int pc, struct split_src src[2])
{
	for (int s = 0; s < 2; s++) {
		src[s].set = s == 0 || !test->n ? train : test;
		src[s].n = 0;
		src[s].idx = xmalloc(((size_t)src[s].set->n + 1) * sizeof(uint32_t));
	}
	if (test->n) {
		for (int s = 0; s < 2; s++)
			for (uint32_t i = 0; i < src[s].set->n; i++)
				src[s].idx[src[s].n++] = i;
		if (test->h != train->h || test->w != train->w || test->c != train->c ||
		    imgset_class_index(test, opt_pos) != pc) {
			cli_error(CLI.prog, "%s and %s disagree on image shape or class numbering", train->source,
			          test->source);
			return 1;
		}
		return 0;
	}
	uint32_t *perm = xmalloc(((size_t)train->n + 1) * sizeof *perm);
	for (uint32_t i = 0; i < train->n; i++)
		perm[i] = i;
	struct rng r;
	rng_seed(&r, (uint64_t)opt_seed, 0x7e57);
	rng_shuffle(&r, perm, train->n);
	uint32_t ntest = (uint32_t)(opt_test_frac * train->n + 0.5);
	for (uint32_t i = 0; i < train->n; i++) {
		int s = i < ntest;
		src[s].idx[src[s].n++] = perm[i];
	}
	free(perm);
	for (int s = 0; s < 2; s++) /* keep each split in source order */
		for (uint32_t a = 1; a < src[s].n; a++)
			for (uint32_t b = a; b > 0 && src[s].idx[b - 1] > src[s].idx[b]; b--) {
				uint32_t t = src[s].idx[b];
				src[s].idx[b] = src[s].idx[b - 1];
				src[s].idx[b - 1] = t;
			}
	return 0;
}

/* The bags of each split (class pc positive); returns 0, or 1 when a split
 * makes none (said). */
static int build_bags(const struct split_src src[2], int pc, struct milsynth m[2])
{
	memset(m, 0, 2 * sizeof *m);
	for (int s = 0; s < 2; s++) {
		uint8_t *lab = xmalloc((size_t)src[s].set->n + 1);
		for (uint32_t i = 0; i < src[s].n; i++)
			lab[i] = src[s].set->label[src[s].idx[i]];
		struct err e = {0};
		int rc = milsynth_build(&m[s], lab, src[s].n, pc, opt_ratio, (uint32_t)opt_bag_size,
		                        (uint64_t)opt_seed + (uint64_t)s, &e);
		free(lab);
		if (rc) {
			cli_error(CLI.prog, "%s split: %s", s ? "test" : "train", e.msg);
			return 1;
		}
	}
	return 0;
}

/* A job per bag to write, in manifest order: training (and validation)
 * bags, then test bags, at most --max-bags of each label per split; *nj of
 * them, which the caller frees. */
static struct job *make_jobs(const struct split_src src[2], const struct milsynth m[2], const uint8_t *is_val,
                             uint32_t *nj)
{
	uint32_t total = 0;
	for (int s = 0; s < 2; s++)
		total += m[s].n_pos_bags + m[s].n_neg_bags;
	struct job *jobs = xcalloc(total, sizeof *jobs);
	uint32_t n = 0;
	for (int s = 0; s < 2; s++) {
		uint32_t kept[2] = {0, 0};
		for (uint32_t b = 0; b < m[s].n_pos_bags + m[s].n_neg_bags; b++) {
			int label = b < m[s].n_pos_bags;
			if (opt_max_bags > 0 && kept[label] >= (uint32_t)opt_max_bags)
				continue;
			kept[label]++;
			struct job *j = &jobs[n++];
			j->src = &src[s];
			j->m = &m[s];
			j->bag = b;
			j->label = label;
			j->split = s ? SPLIT_TEST : is_val[b] ? SPLIT_VAL : SPLIT_TRAIN;
			snprintf(j->id, sizeof j->id, "%s-%s%04u", s ? "test" : "train", label ? "p" : "n",
			         label ? b : b - m[s].n_pos_bags);
		}
	}
	*nj = n;
	return jobs;
}

/* Writes the jobs' bags into bagdir, in parallel, imgsize bytes an image;
 * returns 0, or 1 when any failed (said, with the first failure). */
static int write_bags(const struct job *jobs, uint32_t nj, const char *bagdir, size_t imgsize)
{
	struct progress pr;
	progress_start(&pr, "mil-synth", nj, "bags");
	int failed = 0;
	uint32_t done = 0;
	char first_err[ERR_MSG_MAX] = "";
#pragma omp parallel
	{
		uint8_t *buf = xmalloc(imgsize);
#pragma omp for schedule(dynamic, 4)
		for (uint32_t i = 0; i < nj; i++) {
			struct err le = {0};
			char name[128];
			snprintf(name, sizeof name, "%s.wbag", jobs[i].id);
			char *path = path_join(bagdir, name);
			int r = write_bag(&jobs[i], path, buf, &le);
			free(path);
#pragma omp critical
			{
				if (r) {
					if (!failed++)
						snprintf(first_err, sizeof first_err, "%s", le.msg);
				}
				progress_update(&pr, ++done);
			}
		}
		free(buf);
	}
	progress_done(&pr);
	if (failed) {
		cli_error(CLI.prog, "%d bag%s failed; first: %s", failed, failed == 1 ? "" : "s", first_err);
		return 1;
	}
	return 0;
}

/* The manifest of the jobs' bags at path, counting them by split and label
 * into count; returns 0, or 1 when it cannot be written (said). */
static int write_manifest(const char *path, const struct job *jobs, uint32_t nj, const struct imgset *train, int pc,
                          uint32_t count[3][2])
{
	struct afile af;
	struct err e = {0};
	if (afile_open(&af, path, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	fprintf(af.fp, "# mil-synth %s: %s, positive class %s (%s), ratio %g, bag size %d, seed %lld\n",
	        WENO_VERSION, train->source, opt_pos, train->class_names[pc], opt_ratio, opt_bag_size, opt_seed);
	manifest_write_header(af.fp);
	for (uint32_t i = 0; i < nj; i++) {
		char rel[128];
		snprintf(rel, sizeof rel, "bags/%s.wbag", jobs[i].id);
		manifest_write_row(af.fp, jobs[i].id, jobs[i].label, jobs[i].split, rel, jobs[i].m->bag_size);
		count[jobs[i].split][jobs[i].label]++;
	}
	if (afile_commit(&af, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	if (!opt_out)
		return cli_usage_error(&CLI, "give the output folder with -o DIR");
	if (!(opt_ratio > 0 && opt_ratio < 1))
		return cli_usage_error(&CLI, "--ratio %g: expected 0 < R < 1", opt_ratio);
	if (opt_bag_size < 2 || opt_bag_size > 1000000)
		return cli_usage_error(&CLI, "--bag-size %d: expected 2..1000000", opt_bag_size);
	if (!(opt_val_frac >= 0 && opt_val_frac < 1) || !(opt_test_frac > 0 && opt_test_frac < 1))
		return cli_usage_error(&CLI, "--val-frac and --test-frac must be in [0,1)");
	if (opt_test_folder && !opt_folder)
		return cli_usage_error(&CLI, "--test-folder needs --folder");
	if (!opt_pos && (opt_cifar || opt_folder))
		return cli_usage_error(&CLI, "give the positive class with --pos-class (a name or a number)");
	if (!opt_pos)
		opt_pos = "6";
	if (opt_threads > 0)
		omp_set_num_threads(opt_threads);

	struct err e = {0};
	struct imgset train = {0}, test = {0};
	rc = load_inputs(&train, &test, &e);
	if (rc) {
		cli_error(CLI.prog, "%s", e.msg);
		imgset_free(&train);
		imgset_free(&test);
		return rc == ERR_USAGE ? 2 : 1;
	}
	int pc = imgset_class_index(&train, opt_pos);
	if (pc < 0) {
		cli_error(CLI.prog, "--pos-class '%s': no such class in %s (%u classes, first '%s')", opt_pos,
		          train.source, train.n_classes, train.n_classes ? train.class_names[0] : "");
		imgset_free(&train);
		imgset_free(&test);
		return 2;
	}
	struct split_src src[2] = {{0}};
	struct milsynth m[2] = {{0}};
	uint8_t *is_val = NULL;
	struct job *jobs = NULL;
	char *bagdir = path_join(opt_out, "bags"), *mpath = path_join(opt_out, "manifest.tsv");
	uint32_t nj, count[3][2] = {{0}};
	rc = 1;
	if (split_images(&train, &test, pc, src) || build_bags(src, pc, m))
		goto out;
	is_val = xcalloc(m[0].n_pos_bags + m[0].n_neg_bags, 1);
	milsynth_val_split(&m[0], opt_val_frac, (uint64_t)opt_seed, is_val);
	jobs = make_jobs(src, m, is_val, &nj);
	if (afile_mkdirs(bagdir, &e)) {
		cli_error(CLI.prog, "%s", e.msg);
		goto out;
	}
	if (write_bags(jobs, nj, bagdir, (size_t)train.h * train.w * train.c) ||
	    write_manifest(mpath, jobs, nj, &train, pc, count))
		goto out;
	fprintf(stderr, "mil-synth: %s: class %s positive, r = %g (k = %u of %u)\n", opt_out, train.class_names[pc],
	        opt_ratio, m[0].k, m[0].bag_size);
	fprintf(stderr, "mil-synth: constructed %u+%u training and %u+%u test bags (positive+negative)\n",
	        m[0].n_pos_bags, m[0].n_neg_bags, m[1].n_pos_bags, m[1].n_neg_bags);
	fprintf(stderr, "mil-synth: wrote train %u+%u, val %u+%u, test %u+%u; manifest %s\n", count[0][1], count[0][0],
	        count[1][1], count[1][0], count[2][1], count[2][0], mpath);
	rc = 0;
out:
	free(mpath);
	free(bagdir);
	free(jobs);
	free(is_val);
	for (int s = 0; s < 2; s++) {
		milsynth_free(&m[s]);
		free(src[s].idx);
	}
	imgset_free(&train);
	imgset_free(&test);
	return rc;
}
