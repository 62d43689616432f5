/* featio_int.h - what the feature-file readers share (featio*.c only).
 *
 * featio.c holds these and the dispatch by extension; featio_npy.c,
 * featio_csv.c and featio_h5.c hold one format each.  Not part of the
 * library's interface. */
#ifndef WENO_FEATIO_INT_H
#define WENO_FEATIO_INT_H

#include "featio.h"

#define NPY_MAXDIM 32                 /* dimensions of an array we accept */

/* s[0..n) quoted for a message, at most 40 bytes of it */
const char *fio_show(char out[48], const char *s, size_t n);

/* The first value of x[n][d] that is not finite, as an error (row and
 * column from 1); 0 when all are finite. */
int fio_check_finite(const char *path, const float *x, uint64_t n, uint32_t d, struct err *e);

/* An error when n rows of dimension d break featio.h's limits (or d is
 * 0, or the matrix cannot fit in memory); else 0. */
int fio_check_dims(const char *path, const char *what, uint64_t n, uint64_t d, struct err *e);

/* A double that holds an int32, into *out; else nonzero. */
int fio_to_i32(double v, int32_t *out);

/* shape -> rows x cols: (D,) is one row; leading 1s are dropped. */
int fio_matrix_dims(const char *path, const char *what, const uint64_t *shape, int ndim,
                    uint64_t *rows, uint64_t *cols, struct err *e);

/* The limits of featio.h for a writer of n x d values: a usage error
 * past them; else 0. */
int fio_write_rows(const char *path, uint64_t n, uint32_t d, struct err *e);

#endif
