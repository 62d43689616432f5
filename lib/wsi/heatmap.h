/* heatmap.h - one slide's patch scores drawn over its thumbnail, and the
 * scored patches as GeoJSON (what weno-heatmap does).
 *
 * Scores come from a scores table (formats/scores.md): the instance rows of
 * one bag, with their level-0 x, y, index, label and one score column.  A
 * score is shown as a value v in [0,1]: student scores are probabilities and
 * are clamped to [0,1]; teacher scores are attention logits (ABMIL's A_,
 * DSMIL's instance logit), which have no fixed range, so they are min-max
 * normalised per slide, v = (s - min) / (max - min) (all 0.5 when every
 * score is equal).
 *
 * The thumbnail is read from the coarsest pyramid level that is at least as
 * fine as the thumbnail (OpenSlide's best level for its downsample), in
 * blocks of at most 256 x 256 thumbnail pixels, each area-averaged down;
 * memory is the thumbnail itself (at most max_side^2 pixels) plus one block,
 * whatever the slide's size.  Each patch's square is filled with the colour
 * map's colour of v, blended over the thumbnail with weight alpha (a pixel
 * covered by several patches takes the highest v).  Colour maps: viridis
 * (matplotlib's perceptual map, dark purple 0 -> yellow 1) and bluered
 * (a linear ramp, blue 0 -> white 0.5 -> red 1).  A legend strip of
 * HEATMAP_LEGEND_H pixels below the thumbnail shows the colour bar and the
 * raw score at its ends and middle.
 *
 * GeoJSON: a FeatureCollection of Polygon features (the patch squares, in
 * level-0 pixels), each with the properties score (v), raw_score, label
 * (null when unknown) and index, plus QuPath's conventions: objectType
 * "detection", classification {name Positive|Negative by v >= threshold,
 * color [r,g,b]}, and measurements {score, raw_score, label} so that
 * QuPath's measurement maps colour the patches by score.
 *
 * Detection marks (optional, e.g. froc-report's detections): each point
 * is drawn on the thumbnail as a red cross with a white outline, arms of
 * HEATMAP_MARK_ARM + side/200 pixels and 1 + 2 (side/1024) wide (side: the
 * thumbnail's longest side), and written to
 * the GeoJSON as a Point feature (objectType "annotation", classification
 * "Detection", properties confidence and measurements {confidence}).
 *
 * Thread safety: reentrant.  Errors: negative ERR_* with a message in e
 * naming the file and, for the table, the line and the column.
 */
#ifndef WENO_HEATMAP_H
#define WENO_HEATMAP_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define HEATMAP_LEGEND_H 36    /* pixels of the legend strip below the thumbnail */
#define HEATMAP_MAX_SIDE 16384 /* largest --max-side */
#define HEATMAP_MARK_ARM 5     /* pixels from a mark's centre to its arms' ends */

enum heatmap_cmap { HEATMAP_VIRIDIS = 0, HEATMAP_BLUERED = 1 };

struct heatmap_patch {
	int64_t x, y;     /* level-0 top-left */
	int64_t index;    /* instance index in its bag, -1 unknown */
	double label;     /* instance label, NaN unknown */
	double raw;       /* the score as read */
	double v;         /* the score shown, in [0,1] (heatmap_normalise) */
};

struct heatmap_scores {
	struct heatmap_patch *p;   /* n patches, in file order (owned) */
	size_t n;
	double raw_min, raw_max;   /* range of the raw scores */
	size_t skipped_na;         /* rows of the bag whose score was NA */
};

/* Reads the instance rows of bag_id from a scores table; score_col is the
 * column to show ("student_score", "teacher_score").  A table without the
 * columns bag_id, x, y or score_col is an error; so is a bag with no
 * instance rows (the message lists a few bag ids the table has) and a bag
 * whose every score is NA.  Rows whose score is NA are skipped and
 * counted.  Free with heatmap_scores_free. */
int heatmap_read_scores(struct heatmap_scores *s, const char *path, const char *bag_id, const char *score_col,
                        struct err *e);
void heatmap_scores_free(struct heatmap_scores *s);

/* Sets every v: minmax != 0 normalises (teacher scores), else clamps to
 * [0,1] (probabilities). */
void heatmap_normalise(struct heatmap_scores *s, int minmax);

/* The colour of v in [0,1]. */
void heatmap_colour(int cmap, double v, uint8_t rgb[3]);

struct heatmap_mark {
	int64_t x, y;     /* level-0 point */
	double conf;      /* its confidence */
};

struct heatmap_opts {
	uint32_t max_side;   /* long side of the thumbnail, at most (default 2048) */
	double alpha;        /* weight of the colour over the thumbnail, 0..1 */
	int cmap;            /* enum heatmap_cmap */
	int legend;          /* draw the legend strip */
	double patch0;       /* patch side in level-0 pixels */
	int minmax;          /* the scores were min-max normalised (legend labels) */
	const struct heatmap_mark *marks; /* detection points to mark (NULL: none) */
	size_t n_marks;
};

struct heatmap_result {
	uint32_t w, h;       /* the PNG's size (h includes the legend) */
	uint32_t thumb_w, thumb_h;
	int level;           /* the pyramid level read */
	double downsample;   /* level-0 px per thumbnail px */
	uint64_t bad_blocks; /* blocks that could not be read (drawn grey) */
	char first_bad[ERR_MSG_MAX];   /* the first such read error */
};

/* Draws the heatmap of s over the slide at slide_path and writes it to
 * png_path atomically. */
int heatmap_write_png(const char *slide_path, const struct heatmap_scores *s, const struct heatmap_opts *o,
                      const char *png_path, struct heatmap_result *r, struct err *e);

/* Writes the patches, then the n_marks marks (may be 0), as GeoJSON (see
 * above) atomically.  threshold splits Positive from Negative; bag_id and
 * score_col name the collection. */
int heatmap_write_geojson(const char *path, const struct heatmap_scores *s, double patch0, double threshold,
                          const char *bag_id, const char *score_col, const struct heatmap_mark *marks,
                          size_t n_marks, struct err *e);

#endif
