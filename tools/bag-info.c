/* bag-info - prints, checks and lists bag files (formats/bag.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/data/bag.h"
#include "cli.h"
#include "../lib/base/jsonout.h"

static int opt_check, opt_json, opt_instances;

static const struct cli_opt OPTS[] = {
	{"check", 'c', CLI_FLAG, &opt_check, NULL,
	 "read every chunk and verify every checksum; exit 1 if any file is invalid", NULL},
	{"json", 'j', CLI_FLAG, &opt_json, NULL, "one JSON object per file on stdout", NULL},
	{"instances", 'i', CLI_FLAG, &opt_instances, NULL,
	 "one TSV row per instance (index x y tissue label; bag_id first when several files)", NULL},
	{NULL, 0, 0, NULL, NULL, NULL, NULL},
};

static const struct cli CLI = {
	"bag-info", "[options] FILE...",
	"Prints each bag's header and counts: id, label, instance kind and shape, instances and\n"
	"chunks, labelled and positive instances, resolution, provenance.  FILE may be - for\n"
	"standard input (a tile stream from wsi-tile, for example).",
	"examples:\n"
	"  bag-info bags/tumor_001.wbag\n"
	"  bag-info --check bags/*.wbag          # exit 1 when any file is corrupt\n"
	"  bag-info --json bags/*.wbag | jq .instances\n"
	"  bag-info --instances bag.wbag | awk '$5 >= 0.25' | wc -l\n"
	"exit status: 0 success, 1 a file is unreadable or invalid, 2 bad usage",
	OPTS, 1, -1,
};

static const char *kind_name(int k)
{
	return k == BAG_PIXELS ? "pixels" : k == BAG_FEATURES ? "features" : "coordinates";
}

static void shape(const struct bag_header *h, char *buf, size_t cap)
{
	if (h->kind == BAG_PIXELS)
		snprintf(buf, cap, "%ux%ux%u", h->height, h->width, h->channels);
	else if (h->kind == BAG_FEATURES)
		snprintf(buf, cap, "%u", h->dim);
	else
		snprintf(buf, cap, "-");
}

static void print_num(double v)
{
	if (v < 0)
		fputs("NA", stdout);
	else
		printf("%.6g", v);
}

/* Reads every chunk, verifying its checksum (--check) and printing its
 * instances (--instances, bag_id first when many), or else only the
 * chunks' frames; returns the number of chunks, or -1 (said). */
static long long read_chunks(struct bag_reader *r, const struct bag_header *h, int many)
{
	struct err e = {0};
	long long nchunks = 0;
	int rc;
	if (opt_check || opt_instances) {
		struct bag_chunk c;
		while ((rc = bag_read_chunk(r, &c, &e)) > 0) {
			nchunks++;
			for (uint32_t i = 0; opt_instances && i < c.n; i++) {
				const struct bag_inst *in = &c.inst[i];
				if (many) { /* a tab or newline in an id would break the TSV */
					text_field(stdout, h->id);
					putchar('\t');
				}
				printf("%llu\t%d\t%d\t", (unsigned long long)(c.first + i), in->x, in->y);
				print_num(in->tissue);
				putchar('\t');
				print_num(in->label);
				putchar('\n');
			}
		}
	} else {
		struct bag_raw_chunk c;
		while ((rc = bag_read_raw_chunk(r, &c, &e)) > 0)
			nchunks++;
	}
	if (rc < 0) {
		cli_error("bag-info", "%s", e.msg);
		return -1;
	}
	return nchunks;
}

/* What a bag holds, counted after its chunks were read. */
struct counts {
	uint64_t n, chunks, labelled, positive;
	long long bytes;       /* the file's size, -1 for standard input */
};

/* The provenance lines as a JSON object's members. */
static void print_provenance_json(const struct bag_header *h)
{
	const char *p = h->meta, *end = h->meta ? h->meta + h->meta_len : NULL;
	int first = 1;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *eq = memchr(p, '=', (size_t)(le - p));
		if (eq) {
			char *k = xstrfmt("%.*s", (int)(eq - p), p), *v = xstrfmt("%.*s", (int)(le - eq - 1), eq + 1);
			printf("%s", first ? "" : ",");
			json_string(stdout, k);
			putchar(':');
			json_string(stdout, v);
			free(k);
			free(v);
			first = 0;
		}
		p = le + 1;
	}
}

static void print_json(const char *path, const struct bag_header *h, const struct counts *c, const char *shp)
{
	printf("{\"file\":");
	json_string(stdout, path);
	printf(",\"id\":");
	json_string(stdout, h->id);
	printf(",\"label\":");
	if (h->label == BAG_LABEL_UNKNOWN)
		printf("null");
	else
		printf("%d", h->label);
	printf(",\"kind\":\"%s\",\"shape\":\"%s\",\"instances\":%llu,\"chunks\":%llu", kind_name(h->kind), shp,
	       (unsigned long long)c->n, (unsigned long long)c->chunks);
	printf(",\"labelled\":%llu,\"positive\":%llu", (unsigned long long)c->labelled,
	       (unsigned long long)c->positive);
	if (opt_check)
		printf(",\"valid\":true");
	printf(",\"mpp\":%.17g,\"level\":%d,\"downsample\":%.17g,\"patch_level0\":%u,\"bytes\":%lld,"
	       "\"provenance\":{", h->mpp, h->level, h->downsample, h->patch_level0, c->bytes);
	print_provenance_json(h);
	printf("}}\n");
}

/* The header and counts as indented lines, provenance last. */
static void print_text(const char *path, const struct bag_header *h, const struct counts *c, const char *shp)
{
	printf("%s\n", path);
	printf("  id           ");
	text_field(stdout, h->id[0] ? h->id : "(none)");
	putchar('\n');
	printf("  label        %s\n", h->label == 0 ? "0 (negative)" : h->label == 1 ? "1 (positive)" : "unknown");
	printf("  instances    %llu %s %s in %llu chunk%s\n", (unsigned long long)c->n, kind_name(h->kind), shp,
	       (unsigned long long)c->chunks, c->chunks == 1 ? "" : "s");
	if (c->labelled)
		printf("  labelled     %llu instances, %llu with label > 0\n", (unsigned long long)c->labelled,
		       (unsigned long long)c->positive);
	if (h->mpp > 0)
		printf("  resolution   %.4g µm/px (level %d, downsample %.4g)\n", h->mpp, h->level, h->downsample);
	if (h->patch_level0)
		printf("  patch        %u level-0 px\n", h->patch_level0);
	if (c->bytes >= 0)
		printf("  file         %lld bytes\n", c->bytes);
	const char *p = h->meta, *end = h->meta ? h->meta + h->meta_len : NULL;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		char *line = xstrfmt("%.*s", (int)(le - p), p);
		printf("  %s", p == h->meta ? "provenance   " : "             ");
		text_field(stdout, line);
		putchar('\n');
		free(line);
		p = le + 1;
	}
}

/* One file, as the options ask; returns 0, or 1 when it is unreadable or
 * invalid (said). */
static int info_one(const char *path, int many)
{
	struct err e = {0};
	struct bag_reader *r;
	if (bag_open(&r, path, &e)) {
		cli_error("bag-info", "%s", e.msg);
		return 1;
	}
	const struct bag_header *h = bag_reader_header(r);
	long long nchunks = read_chunks(r, h, many);
	if (nchunks < 0) {
		bag_close(r);
		return 1;
	}
	struct counts c = {0, (uint64_t)nchunks, 0, 0, -1};
	bag_reader_counts(r, &c.n, &c.labelled, &c.positive);
	struct stat st;
	if (strcmp(path, "-") && !stat(path, &st))
		c.bytes = (long long)st.st_size;
	char shp[64];
	shape(h, shp, sizeof shp);
	if (opt_instances) {
		/* the rows are printed already */
	} else if (opt_json) {
		print_json(path, h, &c, shp);
	} else if (opt_check && !many) {
		printf("%s: ok, %llu instances in %llu chunks, every checksum verified\n", path,
		       (unsigned long long)c.n, (unsigned long long)c.chunks);
	} else if (opt_check) {
		printf("%s: ok (%llu instances)\n", path, (unsigned long long)c.n);
	} else {
		print_text(path, h, &c, shp);
	}
	bag_close(r);
	return 0;
}

int main(int argc, char **argv)
{
	int np;
	char **pos;
	int rc = cli_parse(&CLI, argc, argv, &np, &pos);
	if (rc)
		return rc == CLI_EXIT ? 0 : 2;
	if (opt_instances && (opt_json))
		return cli_usage_error(&CLI, "--instances and --json do not go together");
	if (opt_instances)
		printf("%sindex\tx\ty\ttissue\tlabel\n", np > 1 ? "bag_id\t" : "");
	int failed = 0;
	for (int i = 0; i < np; i++)
		failed += info_one(pos[i], np > 1);
	if (failed && np > 1)
		cli_error("bag-info", "%d of %d files failed", failed, np);
	else if (opt_check && np > 1 && !opt_json)
		printf("%d files ok, every checksum verified\n", np);
	return cli_close_stdout() || failed ? 1 : 0;
}
