/* bag-pack - finalises tile streams into bags, imports and exports feature
 * files (CLAM/TRIDENT HDF5, DSMIL CSV, .npy), and builds manifests. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/base/afile.h"
#include "../lib/data/bag.h"
#include "../lib/data/featio.h"
#include "../lib/data/labels.h"
#include "../lib/data/manifest.h"
#include "../lib/base/rng.h"
#include "../lib/base/version.h"
#include "cli.h"

static const char *opt_out, *opt_id, *opt_label, *opt_npy, *opt_coords, *opt_csv, *opt_h5, *opt_export,
	*opt_coords_out, *opt_manifest, *opt_bag_dir, *opt_positive, *opt_negative, *opt_split = "train",
	*opt_source;
static int opt_level = 3;
static double opt_val_frac = 0, opt_mpp = 0;
static long long opt_seed = 0;

static const struct cli_opt OPTS[] = {
	{"output", 'o', CLI_STRING, &opt_out, "FILE", "the bag (or exported file, or manifest) to write", NULL},
	{"id", 0, CLI_STRING, &opt_id, "ID", "bag id (default: the input's file name without its extension)", NULL},
	{"label", 'l', CLI_STRING, &opt_label, "L", "bag label: 0, 1 or unknown", NULL},
	{"npy", 0, CLI_STRING, &opt_npy, "FILE", "import N x D features from .npy", NULL},
	{"coords", 0, CLI_STRING, &opt_coords, "FILE", "with --npy or --csv: N x 2 level-0 coordinates (.npy)", NULL},
	{"csv", 0, CLI_STRING, &opt_csv, "FILE", "import DSMIL-style CSV features (one row per instance)", NULL},
	{"h5", 0, CLI_STRING, &opt_h5, "FILE", "import CLAM/TRIDENT HDF5 ('features' and 'coords')", NULL},
	{"mpp", 0, CLI_DOUBLE, &opt_mpp, "X", "with an import: µm/px of the patches, when known", NULL},
	{"source", 0, CLI_STRING, &opt_source, "NAME", "with an import: the slide the features came from", NULL},
	{"export", 'x', CLI_STRING, &opt_export, "FMT", "export a feature bag's features", "npy|h5|csv"},
	{"coords-out", 0, CLI_STRING, &opt_coords_out, "FILE", "with --export npy: also write N x 2 int64 coordinates", NULL},
	{"manifest", 'm', CLI_STRING, &opt_manifest, "CSV",
	 "build a manifest from a labels CSV (slide_id,label[,case_id][,split]) and --bag-dir", NULL},
	{"bag-dir", 'd', CLI_STRING, &opt_bag_dir, "DIR", "with --manifest: where <slide_id>.wbag are", NULL},
	{"positive", 0, CLI_STRING, &opt_positive, "NAME", "with --manifest: the label text meaning 1 (e.g. tumor_tissue)", NULL},
	{"negative", 0, CLI_STRING, &opt_negative, "NAME", "with --manifest: the label text meaning 0", NULL},
	{"split", 0, CLI_STRING, &opt_split, "S", "with --manifest: split of rows without a split column", "train|val|test|none"},
	{"val-frac", 0, CLI_DOUBLE, &opt_val_frac, "F", "with --manifest: move this fraction of train rows to val, stratified", NULL},
	{"seed", 's', CLI_I64, &opt_seed, "S", "with --val-frac: random seed", NULL},
	{"level", 0, CLI_INT, &opt_level, "L", "zstd level", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"bag-pack", "[options] [INPUT]",
	"Makes bags.  With no mode option it finalises a tile stream (INPUT, or standard input) into\n"
	"a bag with an id and a label, copying the compressed chunks as they are.  --npy, --csv and\n"
	"--h5 import feature files; --export writes a feature bag back out; --manifest builds the\n"
	"manifest.tsv that weno-fit reads from a labels CSV.",
	"examples:\n"
	"  wsi-tile tumor_001.tif --mpp 2 --size 224 | bag-pack --id tumor_001 --label 1 -o bags/tumor_001.wbag\n"
	"  bag-pack --h5 features/tumor_001.h5 --label 1 -o bags/tumor_001.wbag\n"
	"  bag-pack --npy feats.npy --coords coords.npy --id s1 --label 0 -o bags/s1.wbag\n"
	"  bag-pack --export h5 bags/tumor_001.wbag -o tumor_001.h5\n"
	"  bag-pack --manifest labels.csv --bag-dir bags --val-frac 0.1 --seed 1 -o manifest.tsv\n"
	"exit status: 0 success, 1 bad input or i/o error (no output is left behind), 2 bad usage",
	OPTS, 0, 1,
};

static const char *P = "bag-pack";

static int parse_label(const char *s, int *label)
{
	if (!s || !strcmp(s, "unknown"))
		*label = BAG_LABEL_UNKNOWN;
	else if (!strcmp(s, "0") || !strcmp(s, "1"))
		*label = s[0] - '0';
	else
		return -1;
	return 0;
}

static void stem(const char *path, char *out, size_t cap)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	snprintf(out, cap, "%s", b);
	char *dot = strrchr(out, '.');
	if (dot && dot != out)
		*dot = 0;
}

/* what add_provenance's cli_params_each needs */
struct meta_arg {
	struct bag_header *h;
	struct err *e;
};

static int add_param(void *arg, const char *name, const char *value)
{
	struct meta_arg *a = arg;
	char *k = xstrfmt("bag-pack.%s", name);
	int rc = bag_header_meta_add(a->h, k, value, a->e);
	free(k);
	return rc;
}

/* who packed the bag, and every option but -o, as provenance */
static int add_provenance(struct bag_header *h, struct err *e)
{
	int rc = bag_header_meta_add(h, "packed_by", "bag-pack " WENO_VERSION, e);
	struct meta_arg a = {h, e};
	return rc ? rc : cli_params_each(&CLI, "output", add_param, &a);
}

static int finalise(const char *in, int label, struct err *e)
{
	struct bag_reader *r;
	int rc = bag_open(&r, in, e);
	if (rc)
		return rc;
	struct bag_header h;
	rc = bag_header_copy(&h, bag_reader_header(r), e);
	if (rc) {
		bag_close(r);
		return rc;
	}
	if (opt_label)
		h.label = label;
	if (opt_id)
		snprintf(h.id, sizeof h.id, "%s", opt_id);
	else if (!h.id[0] && strcmp(in, "-"))
		stem(in, h.id, sizeof h.id);
	struct bag_writer *w = NULL;
	rc = add_provenance(&h, e);
	if (!rc)
		rc = bag_writer_open(&w, opt_out, &h, opt_level, 0, e);
	bag_header_free(&h);
	struct bag_raw_chunk c;
	while (!rc && (rc = bag_read_raw_chunk(r, &c, e)) > 0)
		rc = bag_writer_add_raw(w, &c, e);
	bag_close(r);
	if (rc) {
		bag_writer_abort(w);
		return rc;
	}
	return bag_writer_close(w, e);
}

static int import(int label, struct err *e)
{
	struct feats f;
	feats_init(&f);
	const char *in = opt_npy ? opt_npy : opt_csv ? opt_csv : opt_h5;
	int rc = opt_npy ? featio_read_npy(&f, in, e) : opt_csv ? featio_read_csv(&f, in, e) : featio_read_h5(&f, in, e);
	if (!rc && opt_coords)
		rc = featio_read_coords_npy(&f, opt_coords, e);
	if (rc) {
		feats_free(&f);
		return rc;
	}
	struct bag_header h;
	bag_header_init(&h);
	h.kind = BAG_FEATURES;
	h.dim = f.d;
	h.label = label;
	h.mpp = opt_mpp;
	if (f.patch_level >= 0)
		h.level = f.patch_level;
	if (f.patch_size_level0 > 0)
		h.patch_level0 = (uint32_t)f.patch_size_level0;
	else if (f.patch_size > 0 && f.downsample > 0)
		h.patch_level0 = (uint32_t)(f.patch_size * f.downsample + 0.5);
	if (f.downsample > 0)
		h.downsample = f.downsample;
	if (opt_id)
		snprintf(h.id, sizeof h.id, "%s", opt_id);
	else
		stem(in, h.id, sizeof h.id);
	rc = bag_header_meta_add(&h, "source", opt_source ? opt_source : in, e);
	if (!rc)
		rc = bag_header_meta_add(&h, "features_from", in, e);
	if (!rc)
		rc = add_provenance(&h, e);
	struct bag_writer *w = NULL;
	if (!rc)
		rc = bag_writer_open(&w, opt_out, &h, opt_level, 0, e);
	bag_header_free(&h);
	for (uint64_t i = 0; !rc && i < f.n; i++) {
		struct bag_inst in_ = {f.coords ? f.coords[2 * i] : (int32_t)i, f.coords ? f.coords[2 * i + 1] : 0, -1, -1};
		rc = bag_writer_add(w, &in_, f.x + i * f.d, e);
	}
	uint64_t n = f.n;
	feats_free(&f);
	if (rc) {
		bag_writer_abort(w);
		return rc;
	}
	rc = bag_writer_close(w, e);
	if (!rc && !cli_quiet)
		fprintf(stderr, "%s: %s: %llu instances\n", P, opt_out, (unsigned long long)n);
	return rc;
}

static int export(const char *in, struct err *e)
{
	struct bag_header h;
	uint64_t n;
	struct bag_inst *inst;
	uint8_t *data;
	int rc = bag_load(in, &h, &n, &inst, &data, e);
	if (rc)
		return rc;
	if (h.kind != BAG_FEATURES) {
		rc = err_set(e, ERR_USAGE, "%s: holds %s, --export needs a bag of feature vectors", in,
		             h.kind == BAG_PIXELS ? "pixels" : "coordinates only");
	} else {
		struct feats f;
		feats_init(&f);
		f.n = n;
		f.d = h.dim;
		f.x = (float *)data;
		f.coords = xmalloc((n ? n : 1) * 2 * sizeof *f.coords);
		for (uint64_t i = 0; i < n; i++) {
			f.coords[2 * i] = inst[i].x;
			f.coords[2 * i + 1] = inst[i].y;
		}
		if (h.level >= 0)
			f.patch_level = h.level;
		if (h.patch_level0)
			f.patch_size_level0 = (int32_t)h.patch_level0;
		if (h.patch_level0 && h.downsample > 0) {
			f.downsample = h.downsample;
			f.patch_size = (int32_t)(h.patch_level0 / h.downsample + 0.5);
		}
		if (!rc && !strcmp(opt_export, "npy")) {
			rc = featio_write_npy(opt_out, f.x, n, f.d, e);
			if (!rc && opt_coords_out)
				rc = featio_write_coords_npy(opt_coords_out, f.coords, n, e);
		} else if (!rc && !strcmp(opt_export, "csv")) {
			rc = featio_write_csv(opt_out, &f, e);
		} else if (!rc) {
			rc = featio_write_h5(opt_out, &f, e);
		}
		free(f.coords);
	}
	free(inst);
	free(data);
	bag_header_free(&h);
	return rc;
}

/* ---- manifest from a labels CSV ---- */

/* The path of target relative to the folder of file `from` (both must
 * exist, or the folder of `from`); target unchanged when that fails. */
static char *relative_to(const char *from, const char *target)
{
	char *dir = xstrdup(from), *slash = strrchr(dir, '/');
	const char *d = dir;
	if (slash)
		*slash = 0;
	else
		d = ".";
	if (!d[0])
		d = "/";
	char *a = realpath(d, NULL), *b = realpath(target, NULL);
	free(dir);
	if (!a || !b) {
		free(a);
		free(b);
		return xstrdup(target);
	}
	/* common leading components */
	size_t i = 0, common = 0;
	while (a[i] && a[i] == b[i]) {
		if (a[i] == '/')
			common = i;
		i++;
	}
	if (!a[i] && (b[i] == '/' || !b[i]))
		common = i;
	size_t ups = 0;
	for (const char *p = a + common; *p; p++)
		ups += *p == '/';
	size_t n = ups * 3 + strlen(b) + 2;
	char *out = xmalloc(n), *o = out;
	for (size_t k = 0; k < ups; k++) {
		memcpy(o, "../", 3);
		o += 3;
	}
	snprintf(o, n - (size_t)(o - out), "%s", b[common] == '/' ? b + common + 1 : b + common);
	free(a);
	free(b);
	return out;
}

/* a row of the manifest being built */
struct mrow {
	const char *id;   /* borrowed from the labels */
	int label, split;
	char *path;
	uint64_t n;
	long line;        /* of the labels CSV */
};

/* Reads every row's bag through to count its instances; returns how many
 * are missing or invalid (each said on stderr). */
static int count_instances(struct mrow *rows, size_t nrows)
{
	int missing = 0;
	for (size_t i = 0; i < nrows; i++) {
		struct mrow *m = &rows[i];
		struct bag_reader *r;
		struct err be = {0};
		if (bag_open(&r, m->path, &be)) {
			cli_error(P, "%s (line %ld of %s)", be.msg, m->line, opt_manifest);
			missing++;
			continue;
		}
		struct bag_raw_chunk ch;
		int k;
		while ((k = bag_read_raw_chunk(r, &ch, &be)) > 0)
			;
		if (k == 0)
			m->n = bag_reader_count(r);
		else {
			cli_error(P, "%s", be.msg);
			missing++;
		}
		bag_close(r);
	}
	return missing;
}

/* Moves --val-frac of the training rows of each label to val (seeded). */
static int write_manifest(const struct mrow *rows, size_t nrows, struct err *e)
{
	struct afile af;
	int rc = afile_open(&af, opt_out, e);
	if (rc)
		return rc;
	fprintf(af.fp, "# bag-pack %s --manifest %s --bag-dir %s --val-frac %g --seed %lld\n", WENO_VERSION,
	        opt_manifest, opt_bag_dir, opt_val_frac, opt_seed);
	manifest_write_header(af.fp);
	for (size_t i = 0; i < nrows; i++) {
		/* readers resolve paths against the manifest's folder */
		char *rel = strcmp(opt_out, "-") ? relative_to(opt_out, rows[i].path) : xstrdup(rows[i].path);
		manifest_write_row(af.fp, rows[i].id, rows[i].label, rows[i].split, rel, rows[i].n);
		free(rel);
	}
	return afile_commit(&af, e);
}

/* --manifest: the labels CSV, every bag it names counted, the validation
 * rows drawn, the manifest written. */
static int build_manifest(struct err *e)
{
	struct labels l;
	struct labels_opts lo = {opt_positive, opt_negative, manifest_split_parse(opt_split)};
	int rc = labels_read(&l, opt_manifest, &lo, e);
	if (rc)
		return rc;
	struct mrow *rows = xcalloc(l.n + 1, sizeof *rows);
	for (size_t i = 0; i < l.n; i++) {
		const struct labels_row *r = &l.rows[i];
		rows[i] = (struct mrow){r->slide_id, r->label, r->split,
		                        xstrfmt("%s/%s.wbag", opt_bag_dir, r->slide_id), 0, r->line};
	}
	int missing = count_instances(rows, l.n);
	if (missing)
		rc = err_set(e, ERR_IO, "%d of %zu bags listed in %s are missing or invalid", missing, l.n, opt_manifest);
	if (!rc && opt_val_frac > 0 && !(rc = labels_assign_val(&l, opt_val_frac, (uint64_t)opt_seed, e)))
		for (size_t i = 0; i < l.n; i++)
			rows[i].split = l.rows[i].split;
	if (!rc)
		rc = write_manifest(rows, l.n, e);
	for (size_t i = 0; i < l.n; i++)
		free(rows[i].path);
	free(rows);
	labels_free(&l);
	return rc;
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	int modes = !!opt_npy + !!opt_csv + !!opt_h5 + !!opt_export + !!opt_manifest;
	if (modes > 1)
		return cli_usage_error(&CLI, "give one of --npy, --csv, --h5, --export, --manifest");
	int label;
	if (parse_label(opt_label, &label))
		return cli_usage_error(&CLI, "--label '%s': expected 0, 1 or unknown", opt_label);
	if (opt_coords && !opt_npy && !opt_csv)
		return cli_usage_error(&CLI, "--coords goes with --npy or --csv");
	if (opt_coords_out && !(opt_export && !strcmp(opt_export, "npy")))
		return cli_usage_error(&CLI, "--coords-out goes with --export npy");
	if ((opt_npy || opt_csv || opt_h5 || opt_manifest) && np)
		return cli_usage_error(&CLI, "unexpected argument '%s'", pos[0]);
	if (opt_export && np != 1)
		return cli_usage_error(&CLI, "--export needs one bag file");
	if (opt_manifest && !opt_bag_dir)
		return cli_usage_error(&CLI, "--manifest needs --bag-dir DIR");
	if (!opt_out) {
		if (isatty(1) || opt_export || opt_manifest)
			return cli_usage_error(&CLI, "give the output file with -o FILE%s",
			                       isatty(1) ? " (a bag is not written to a terminal)" : "");
		opt_out = "-";
	}
	if (opt_id && strlen(opt_id) > BAG_ID_MAX)
		return cli_usage_error(&CLI, "--id: %zu bytes, a bag id holds at most %d (formats/bag.md)",
		                       strlen(opt_id), BAG_ID_MAX);
	if (!(opt_val_frac >= 0 && opt_val_frac < 1))
		return cli_usage_error(&CLI, "--val-frac %g: expected 0 <= F < 1", opt_val_frac);
	/* no output may overwrite an input */
	const char *ins[] = {opt_npy, opt_csv, opt_h5, opt_coords, opt_manifest, np ? pos[0] : NULL};
	for (size_t i = 0; i < sizeof ins / sizeof *ins; i++)
		cli_protect(ins[i]);
	struct err e = {0};
	if (opt_manifest)
		rc = build_manifest(&e);
	else if (opt_export)
		rc = export(pos[0], &e);
	else if (modes)
		rc = import(label, &e);
	else
		rc = finalise(np ? pos[0] : "-", label, &e);
	if (rc) {
		cli_error(P, "%s", e.msg);
		return rc == ERR_USAGE ? 2 : 1;
	}
	return 0;
}
