/* featio.h - feature matrices and patch coordinates in the formats users
 * already have: CLAM/TRIDENT HDF5, DSMIL CSV and NumPy .npy (WENO's authors).
 *
 * A bag's features are an N x D float32 matrix, row-major, one row per
 * instance (patch); its coordinates are N (x, y) level-0 top-left corners.
 *
 *   format   read                          write
 *   .npy     N x D '<f4' or '<f8' (v1-v3)  N x D '<f4', npy v1.0
 *   coords   N x 2 '<i4' '<i8' '<f4' '<f8' N x 2 '<i8' (what numpy users expect)
 *   .csv     DSMIL: one row per instance,  "0,1,...,D-1" header, then rows
 *            optional header
 *   .h5      "features" (N x D, 1 x N x D) "features" f32 N x D, "coords" i64
 *            "coords" (N x 2) + attributes N x 2 with attributes (CLAM layout)
 *
 * Limits: 1 <= D <= FEATIO_D_MAX and N <= FEATIO_N_MAX; sizes declared in a
 * file are checked against the limits and the file's length before anything
 * is allocated.  Every value read must be finite in float32 (NaN, Inf and
 * float64 values beyond float32's range are errors); coordinates must be
 * integers that fit int32.  N may be 0 (an empty bag) in .npy, .h5 and in a
 * CSV that has only a header.
 *
 * Errors: every function returns 0 or a negative ERR_* code (lib/base/err.h) and
 * fills e with a lowercase message naming the file, then the byte offset,
 * line and column, row or dataset, and what was expected, e.g.
 *   "feats.csv: line 17, column 5: expected a number, got 'abc'"
 *   "slide.h5: no dataset 'features'"
 * Nothing is printed and nothing exits.
 *
 * Ownership: a reader fills a caller-provided struct feats; its buffers are
 * owned by the struct and freed by feats_free.  On error the struct is left
 * empty (as after feats_init; nothing to free), except for
 * featio_read_coords_npy, which leaves it as it was.  Writers borrow their
 * inputs and write atomically (temporary name, flush, fsync, rename): a
 * failed or interrupted write leaves the old file or none, never a torn one.
 *
 * Thread safety: the .npy and .csv functions are reentrant (CSV parsing
 * switches the calling thread's locale to "C" with uselocale and restores
 * it; the process locale is never touched).  The .h5 functions use Debian's
 * serial libhdf5, which is not thread-safe: call them from one thread at a
 * time, and not while another thread uses HDF5.  They silence HDF5's
 * automatic error printing while they run and restore it afterwards.
 */
#ifndef WENO_FEATIO_H
#define WENO_FEATIO_H

#include <stdint.h>

#include "../base/err.h"

#define FEATIO_D_MAX 65536u                 /* feature dimension */
#define FEATIO_N_MAX (UINT64_C(1) << 31)    /* instances per bag */

struct feats {
	uint64_t n;           /* instances */
	uint32_t d;           /* feature dimension */
	float *x;             /* [n][d] row-major, owned; non-NULL after a read */
	int32_t *coords;      /* [n][2] (x, y) level-0 top-left, owned; NULL when
	                         the file had none */
	/* From the HDF5 "coords" dataset's attributes when present: */
	int32_t patch_size;        /* patch side at patch_level; 0 unknown */
	int32_t patch_level;       /* pyramid level patched; -1 unknown */
	double downsample;         /* level-0 pixels per patch_level pixel;
	                              0 unknown (CLAM writes (x, y): x is kept) */
	int32_t patch_size_level0; /* patch side in level-0 pixels (TRIDENT's
	                              "patch_size_level0"); 0 unknown */
};

/* Sets f to empty: no buffers, every attribute unknown. */
void feats_init(struct feats *f);
/* Frees f's buffers and sets it to empty.  f may be empty; NULL is allowed. */
void feats_free(struct feats *f);

/* ---- reading ---- */

/* .npy v1, v2 or v3: shape (N, D) or (D,) (one instance), leading 1s
 * allowed ((1, N, D)); dtype '<f4' or '<f8' (converted to float32); C order
 * (Fortran order is accepted only where it is the same bytes: N or D is 1).
 * Any other dtype is ERR_UNSUPPORTED, naming it.  f->coords is NULL. */
int featio_read_npy(struct feats *f, const char *path, struct err *e);

/* Coordinates .npy for features already in f: shape (N, 2) with N == f->n,
 * dtype '<i4', '<i8', '<f4' or '<f8' (floats must hold integers); values
 * must fit int32.  Replaces f->coords on success; f is unchanged on error. */
int featio_read_coords_npy(struct feats *f, const char *path, struct err *e);

/* DSMIL CSV: one row per instance, D comma-separated numbers.  The first
 * non-blank line is a header when none of its fields is a number (names,
 * double quotes allowed), or when it is exactly pandas' column names
 * "0,1,...,D-1"; a first line mixing names and numbers is read as data, so
 * that a damaged first row is an error rather than silently dropped.  A
 * header ",0,1,...,D-1" (pandas' unnamed index) makes the first column of
 * every row an index, which is skipped.  Every row must have as many columns as the
 * first.  Numbers are parsed in the "C" locale whatever the process locale;
 * blank lines, CRLF line ends, spaces around fields and a UTF-8 BOM are
 * accepted.  A file with no rows at all is an error; one with only a header
 * gives N = 0.  f->coords is NULL. */
int featio_read_csv(struct feats *f, const char *path, struct err *e);

/* CLAM/TRIDENT HDF5: dataset "features" (N x D, 1 x N x D or D; any float
 * type, converted to float32) and, when present, "coords" (N x 2 or
 * 1 x N x 2; any integer or float type holding integers) with its
 * attributes patch_size, patch_level, downsample, patch_size_level0. */
int featio_read_h5(struct feats *f, const char *path, struct err *e);

/* Picks a reader by the path's suffix: .npy, .csv, .h5 / .hdf5
 * (ERR_USAGE for anything else). */
int featio_read(struct feats *f, const char *path, struct err *e);

/* ---- writing ---- */

/* x: [n][d] float32 -> .npy v1.0 '<f4', the bytes np.save writes.
 * Values must be finite (ERR_NUMERIC otherwise: what we write, we read). */
int featio_write_npy(const char *path, const float *x, uint64_t n, uint32_t d,
                     struct err *e);

/* xy: [n][2] int32 -> .npy v1.0 '<i8', shape (n, 2). */
int featio_write_coords_npy(const char *path, const int32_t *xy, uint64_t n,
                            struct err *e);

/* f->x -> DSMIL CSV (features only) with pandas' header
 * "0,1,...,D-1"; each value printed with 9 significant digits, which reads
 * back to the same float32 bits.  Values must be finite. */
int featio_write_csv(const char *path, const struct feats *f, struct err *e);

/* f -> HDF5 in CLAM's layout: "features" float32 N x D and, when f->coords
 * is not NULL, "coords" int64 N x 2 with the attributes that are known
 * (patch_size > 0, patch_level >= 0, downsample > 0 as a float64 pair (x, y)
 * as CLAM writes it, patch_size_level0 > 0).  Written to a temporary file
 * beside path, then renamed; the temporary is removed on error. */
int featio_write_h5(const char *path, const struct feats *f, struct err *e);

#endif
