/* annot.h - tumour annotations (ASAP XML, GeoJSON) and per-patch tumour
 * fractions.
 *
 * The tumour region is the union of the tumour polygons minus the union of
 * the exclusion polygons.  Each polygon is filled even-odd over all of its
 * rings (a GeoJSON polygon's holes are its inner rings; a self-crossing ASAP
 * polygon fills as ASAP draws it).
 *   ASAP XML: ASAP_Annotations/Annotations/Annotation with PartOfGroup `_0`,
 *     `_1` or `Tumor` (any case, also `Tumour`) is tumour, `_2` (or
 *     `Exclusion`) is an exclusion; other groups and point annotations are
 *     counted and ignored.  Coordinates/Coordinate sorted by Order, X and Y
 *     level-0 floats, parsed independently of the locale (a ',' decimal
 *     separator is accepted).  Types Polygon, Spline and Rectangle are
 *     polygons.
 *   GeoJSON: a FeatureCollection, an array of Features, one Feature or one
 *     geometry; Polygon and MultiPolygon geometries.  The class is
 *     properties.classification.name (QuPath), properties.classification,
 *     properties.name or properties.label: tumour names as above; `_2`,
 *     `Exclusion`, `Exclude` are exclusions; a feature with no class is
 *     tumour; other classes are counted and ignored.
 * A patch's tumour fraction is the area of the tumour region inside the
 * level-0 square over the square's area, integrated exactly along scanlines
 * (the x extent of the region on each of up to 1024 sub-rows per patch, by
 * the midpoint rule in y).
 *
 * Thread safety: a loaded struct annot is read-only and may be shared.
 * Errors: negative ERR_* with a message naming the file, the element or
 * byte offset, and what was expected.
 */
#ifndef WENO_ANNOT_H
#define WENO_ANNOT_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"

#define ANNOT_FILE_MAX (1u << 30)       /* bytes of an annotation file */
#define ANNOT_VERTICES_MAX (1u << 26)   /* vertices in all */
#define ANNOT_COORD_MAX 1e9             /* |x|, |y| */

enum { ANNOT_TUMOUR = 0, ANNOT_EXCLUSION = 1 };

struct annot;

/* Loads ASAP XML or GeoJSON (by the first non-blank byte: '<' or '{'/'['). */
int annot_load(struct annot **a, const char *path, struct err *e);
/* Parses a buffer; name is used in messages. */
int annot_parse_asap(struct annot **a, const char *buf, size_t n, const char *name, struct err *e);
int annot_parse_geojson(struct annot **a, const char *buf, size_t n, const char *name, struct err *e);
void annot_free(struct annot *a);

/* Polygons of a class, and annotations ignored (other groups, points). */
int annot_count(const struct annot *a, int cls);
int annot_ignored(const struct annot *a);

/* 1 when the level-0 point is inside the tumour region. */
int annot_inside(const struct annot *a, double x, double y);
/* Tumour fraction of the level-0 square [x, x+size) x [y, y+size). */
double annot_fraction(const struct annot *a, double x, double y, double size);
/* The same for n squares at once (faster: one scan per row of squares). */
int annot_fractions(const struct annot *a, size_t n, const int32_t *x, const int32_t *y, double size, float *out,
                    struct err *e);

/* The level-0 bounding box of the polygons of a class: 1 and the box, or 0
 * when the class has no polygon. */
int annot_bounds(const struct annot *a, int cls, double *x0, double *y0, double *x1, double *y1);

/* Rasterises the tumour region at downsample ds (> 0) on a w x h grid whose
 * pixel (0, 0) is pixel (ox, oy) of the downsampled image: mask[r * w + c]
 * is 1 when the level-0 point ((ox + c + 0.5) ds, (oy + r + 0.5) ds), the
 * pixel's centre, is inside the tumour region by annot_inside's rule
 * exactly, else 0.  One scanline per row: cost O(h (vertices + w)). */
int annot_mask(const struct annot *a, double ds, int64_t ox, int64_t oy, uint32_t w, uint32_t h, uint8_t *mask,
               struct err *e);

/* Locale-independent decimal number ('.' or ',' as the separator, optional
 * exponent).  Returns 0 and *v, or -1 when s is not a whole finite number. */
int annot_parse_number(const char *s, size_t n, double *v);

#endif
