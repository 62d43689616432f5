/* froc.h - Camelyon16's lesion-level FROC: detection points from patch
 * scores, the challenge's detection CSV files, the matching of detections
 * to lesions, the FROC curve, its score and a slide-level bootstrap.
 * lib/wsi/FROC.md gives each rule with its source in the challenge's
 * published evaluation script; lib/wsi/lesion.h makes the lesions.
 *
 * Detections are points in level-0 pixels with a confidence.  From patch
 * scores (froc_detect), a patch stands for the point at its centre,
 * (x + floor(s/2), y + floor(s/2)) for a patch of side s at (x, y):
 *   FROC_RULE_PATCH:  every patch whose score is >= the threshold is a
 *                     detection with its score as the confidence;
 *   FROC_RULE_MAXIMA: the patches >= the threshold are merged into regions,
 *                     two patches joining when their squares overlap or
 *                     touch (|dx| <= s and |dy| <= s: 8-connectivity on a
 *                     grid of stride s), and each region is one detection
 *                     at its highest-scoring patch (the first in input
 *                     order on ties) with that score as the confidence.
 * Detections come out in input order (of the peak patch for maxima).
 *
 * Matching (froc_slide_set), per slide, as the challenge does: a detection
 * whose point falls on lesion k (lesion_at) is a hit on k; hits on an ITC
 * are ignored; the other hits count once per lesion with the largest
 * confidence, stored as a 32-bit float; a detection on no lesion (or on a
 * slide without lesions) is a false positive, its confidence kept as is.
 * Every label keeps an entry in tp[] (0 for missed lesions and ITCs).
 *
 * The curve (froc_compute), over all slides together: the thresholds are
 * the distinct values among every false positive's confidence and every
 * tp[] entry, ascending, the smallest left out; at each threshold t, the
 * false positives with confidence >= t divided by the number of slides,
 * and the tp[] entries >= t (compared in float) divided by the number of
 * lesions that are not ITCs; then a last point (0, 0).  The sensitivity
 * at 1/4, 1/2, 1, 2, 4 and 8 false positives per slide is the curve read
 * as numpy.interp reads it (linear between the points, the highest
 * sensitivity where several points share an x, the last value beyond the
 * curve's end), and the FROC score is their mean.
 *
 * Thread safety: reentrant; the structs are plain data.
 * Errors: negative ERR_* with a message in e naming the file and line.
 */
#ifndef WENO_FROC_H
#define WENO_FROC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../base/err.h"

#define FROC_NTARGETS 6
#define FROC_CSV_MAX (1u << 30)        /* bytes of a detection CSV */
#define FROC_DETS_MAX (1u << 26)       /* detections in one CSV */
#define FROC_COORD_MAX 1e12            /* |x|, |y| of a detection */

extern const double froc_targets[FROC_NTARGETS]; /* 0.25 0.5 1 2 4 8 */

enum { FROC_RULE_PATCH = 0, FROC_RULE_MAXIMA = 1 };

struct froc_det {
	int64_t x, y;          /* level-0 pixels */
	double conf;           /* confidence */
};

struct froc_patch {
	int64_t x, y;          /* level-0 top-left */
	double score;          /* NaN: no score, never a detection */
};

/* Detections of one slide's patches of side patch0 (level-0 pixels) by
 * rule (FROC_RULE_*) at threshold.  *out (freed by the caller) holds *nout
 * detections; it may be NULL when there are none. */
int froc_detect(const struct froc_patch *p, size_t n, double patch0, int rule, double threshold,
                struct froc_det **out, size_t *nout, struct err *e);

/* The challenge's detection CSV: one detection per line, "confidence,X,Y"
 * with X and Y level-0 pixels; extra fields are ignored.  Beyond the
 * challenge's reader (which needs integers and nothing else), blank lines,
 * a first line that is a header (its first field not a number), spaces
 * around fields, CRLF line ends and decimal X, Y (their floor: the pixel
 * that holds the point) are accepted.  Confidences must be finite.  name is
 * used in messages ("name: line 3: ..."). */
int froc_parse_csv(const char *buf, size_t n, const char *name, struct froc_det **d, size_t *nd, struct err *e);
int froc_read_csv(const char *path, struct froc_det **d, size_t *nd, struct err *e);
/* Writes detections in that format (integers; each confidence with the
 * fewest digits that read back to the same double), atomically. */
int froc_write_csv(const char *path, const struct froc_det *d, size_t n, struct err *e);
/* The shortest %.Ng (N = 1..17) of v that strtod reads back exactly. */
void froc_format_double(char *buf, size_t cap, double v);

/* One slide's outcome. */
struct froc_slide {
	double *fp;            /* confidences of the false positives (owned) */
	size_t nfp;
	float *tp;             /* per label 1..ntp: its largest hit, 0 when missed or an ITC (owned) */
	size_t ntp;
	int lesions;           /* labels that are not ITCs */
	size_t hits, itc_hits; /* detections on a lesion, on an ITC */
};

/* Matches n detections of one slide: hit[i] is the label under detection
 * i (0: none); itc[k] is nonzero when label k + 1 is an ITC; nlab labels.
 * s is overwritten (free it with froc_slide_free). */
int froc_slide_set(struct froc_slide *s, const struct froc_det *d, size_t n, const int *hit, int nlab,
                   const uint8_t *itc, struct err *e);
void froc_slide_free(struct froc_slide *s);

struct froc_curve {
	size_t n;              /* points, the last one (0, 0) */
	double *thr;           /* threshold of each point (+inf for the last) (owned) */
	double *fps;           /* mean false positives per slide (owned) */
	double *sens;          /* sensitivity (owned) */
	double at[FROC_NTARGETS]; /* sensitivity at froc_targets */
	double score;          /* mean of at[] */
	size_t slides;
	long lesions;          /* not ITCs */
	size_t fp, tp;         /* false positives, lesions hit (confidence > 0) */
};

/* The curve of ns slides; pick (NULL: 0..ns-1) lists the slides to use, with
 * repetition (the bootstrap's resamples).  Without lesions to detect it
 * fails (ERR_USAGE): the sensitivity is undefined.  Free with
 * froc_curve_free. */
int froc_compute(const struct froc_slide *s, size_t ns, const size_t *pick, struct froc_curve *c, struct err *e);
void froc_curve_free(struct froc_curve *c);

/* numpy.interp(x, fps reversed, sens reversed) over a curve. */
double froc_sens_at(const struct froc_curve *c, double x);

/* Slide-level bootstrap: reps resamples of the slides with replacement,
 * stratified (slides with lesions that count, and the others, are drawn
 * separately, so every resample has lesions), with lib/base/rng.h seeded
 * by seed; lo[k], hi[k] are the 2.5 and 97.5 percentiles (linear between
 * order statistics) of the sensitivity at froc_targets[k] (k < 6) and of
 * the score (k = 6). */
int froc_bootstrap(const struct froc_slide *s, size_t ns, int reps, uint64_t seed, double lo[FROC_NTARGETS + 1],
                   double hi[FROC_NTARGETS + 1], struct err *e);

#endif
