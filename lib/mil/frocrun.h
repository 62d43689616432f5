/* frocrun.h - one whole lesion-level FROC evaluation, what froc-report
 * does: the slides and their detections (from a weno-score table by a
 * detection rule, or from a folder of the challenge's CSV files), each
 * slide's lesions from its annotation (lib/wsi/lesion.h), the matching and
 * the curve (lib/mil/froc.h), and the reports: JSON, the curve as TSV and
 * SVG, the lesions as TSV, the detections as the challenge's CSV files.
 * lib/wsi/FROC.md gives the rules and their sources.
 *
 * Slides.  From a scores table: every bag of the chosen split (all rows
 * when split < 0) that has a bag or instance row; its instance rows (those
 * with x and y) are its patches, their side from the bag file
 * <bags>/<id>.wbag (patch_level0) or opts.patch0.  From a folder: every
 * <id>.csv in it.  A slide named in opts.exclude is left out.  Annotations:
 * <annotations>/<id>.xml, .geojson or .json, the id matched without regard
 * to case (Camelyon16 ships Test_001.xml for the bag test_001); a slide with
 * an annotation is evaluated against its lesions, one without has none (a
 * normal slide: every detection is a false positive), as the challenge does.
 * Slides are sorted by id.
 *
 * Scores: with opts.minmax, every score of the evaluated slides is mapped to
 * (s - min) / (max - min) over all of them together (teacher scores are
 * attention logits without a fixed range; one scale for every slide keeps
 * their order across slides, which the FROC's pooled thresholds need).
 *
 * Thread safety: a struct frocrun belongs to one thread.  Errors: negative
 * ERR_* with a message in e naming the file; notes[] collects warnings
 * (a slide labelled tumour without an annotation, ...) for the caller.
 */
#ifndef WENO_FROCRUN_H
#define WENO_FROCRUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../base/err.h"
#include "../wsi/lesion.h"
#include "froc.h"

struct frocrun_opts {
	const char *scores;        /* a scores table (formats/scores.md), or NULL */
	const char *score_col;     /* its column: "student_score", "teacher_score" */
	int minmax;                /* min-max normalise the scores (above) */
	int split;                 /* SPLIT_* of the rows to use, -1 every row */
	const char *detections;    /* a folder of <slide>.csv, or NULL */
	const char *annotations;   /* a folder of annotations (required) */
	const char *bags;          /* a folder of <slide>.wbag for the patch sides, or NULL */
	double patch0;             /* patch side in level-0 pixels; 0: from the bags */
	int rule;                  /* FROC_RULE_* */
	double threshold;          /* detection threshold */
	const char *exclude;       /* comma-separated slide ids to leave out, or NULL */
	struct lesion_params lp;
};

struct frocrun_slide {
	char *id;                  /* (owned) */
	char *annotation;          /* its annotation file, NULL when none (owned) */
	int label;                 /* bag label 0/1 from the table, -1 unknown */
	struct froc_det *det;      /* detections (owned) */
	size_t ndet;
	int *hit;                  /* per detection: the lesion label under it, 0 none (owned) */
	struct lesion *les;        /* lesions (owned) */
	int nles, n_itc;
	uint64_t tumour_px;        /* tumour pixels of its evaluation mask before dilation */
	struct froc_slide s;
};

struct frocrun {
	struct frocrun_opts o;
	struct frocrun_slide *sl;
	size_t n;
	size_t ndet, nles, n_itc, n_tumour; /* totals; n_tumour: slides with an annotation */
	double smin, smax;         /* range of the scores before normalisation (NaN: none) */
	struct froc_curve curve;
	int boot;                  /* bootstrap resamples, 0 none */
	uint64_t seed;
	double lo[FROC_NTARGETS + 1], hi[FROC_NTARGETS + 1];
	char **notes;              /* warnings (owned) */
	size_t nnotes;
};

/* Reads and matches everything; *r is freed with frocrun_free. */
int frocrun_load(struct frocrun **r, const struct frocrun_opts *o, struct err *e);
/* The curve, its score and, with boot > 0, the bootstrap intervals. */
int frocrun_compute(struct frocrun *r, int boot, uint64_t seed, struct err *e);
void frocrun_free(struct frocrun *r);

/* The whole evaluation as JSON (parameters, slides with their lesions,
 * the curve, the sensitivities, the score), numbers with the fewest digits
 * that read back exactly. */
void frocrun_write_json(const struct frocrun *r, FILE *f);
/* The curve as TSV: threshold fps_per_slide sensitivity. */
int frocrun_write_curve(const struct frocrun *r, const char *path, struct err *e);
/* One row per lesion: slide label first_row first_col area major_axis_px
 * diameter_um itc centroid_x centroid_y hit (its confidence, NA missed). */
int frocrun_write_lesions(const struct frocrun *r, const char *path, struct err *e);
/* <dir>/<slide>.csv for every slide, in the challenge's format. */
int frocrun_write_detections(const struct frocrun *r, const char *dir, struct err *e);

#endif
