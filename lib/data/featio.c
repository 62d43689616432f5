/* featio.c - see featio.h: the helpers the formats share, and the
 * dispatch by file extension.  The formats: featio_npy.c, featio_csv.c,
 * featio_h5.c. */
#include "featio_int.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---------------------------------------------------------------- common */

void feats_init(struct feats *f)
{
	memset(f, 0, sizeof *f);
	f->patch_level = -1;
}

void feats_free(struct feats *f)
{
	if (!f)
		return;
	free(f->x);
	free(f->coords);
	feats_init(f);
}

const char *fio_show(char out[48], const char *s, size_t n)
{
	size_t k = n < 32 ? n : 32, j = 0;
	for (size_t i = 0; i < k; i++) {
		unsigned char c = (unsigned char)s[i];
		out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (n > k) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = 0;
	return out;
}

/* The first value of x[n][d] that is not finite, as an error. */
int fio_check_finite(const char *path, const float *x, uint64_t n, uint32_t d, struct err *e)
{
	uint64_t nd = n * d;
	for (uint64_t i = 0; i < nd; i++)
		if (!isfinite(x[i]))
			return err_set(e, ERR_NUMERIC,
			               "%s: row %llu, column %llu: %s, expected a finite number", path,
			               (unsigned long long)(i / d + 1), (unsigned long long)(i % d + 1),
			               isnan(x[i]) ? "nan" : "inf");
	return 0;
}

int fio_check_dims(const char *path, const char *what, uint64_t n, uint64_t d, struct err *e)
{
	if (d == 0)
		return err_set(e, ERR_FORMAT, "%s: %s has dimension 0, expected at least 1", path,
		               what);
	if (d > FEATIO_D_MAX)
		return err_set(e, ERR_LIMIT, "%s: %s has dimension %llu, more than the limit of %u",
		               path, what, (unsigned long long)d, FEATIO_D_MAX);
	if (n > FEATIO_N_MAX)
		return err_set(e, ERR_LIMIT, "%s: %s has %llu instances, more than the limit of %llu",
		               path, what, (unsigned long long)n, (unsigned long long)FEATIO_N_MAX);
	if (n * d > SIZE_MAX / 8)
		return err_set(e, ERR_LIMIT, "%s: %s of %llu x %llu values is too large for memory",
		               path, what, (unsigned long long)n, (unsigned long long)d);
	return 0;
}

/* A double that holds an int32, into *out; else nonzero. */
int fio_to_i32(double v, int32_t *out)
{
	if (!(v >= INT32_MIN && v <= INT32_MAX) || v != floor(v))
		return -1;
	*out = (int32_t)v;
	return 0;
}

static char *shape_str(char *buf, size_t cap, const uint64_t *shape, int ndim)
{
	size_t j = 0;
	j += (size_t)snprintf(buf + j, cap - j, "(");
	for (int i = 0; i < ndim && j < cap; i++)
		j += (size_t)snprintf(buf + j, cap - j, "%s%llu", i ? ", " : "",
		                      (unsigned long long)shape[i]);
	if (j < cap)
		snprintf(buf + j, cap - j, ndim == 1 ? ",)" : ")");
	return buf;
}

/* shape -> rows x cols: (D,) is one row; leading 1s are dropped. */
int fio_matrix_dims(const char *path, const char *what, const uint64_t *shape, int ndim,
                    uint64_t *rows, uint64_t *cols, struct err *e)
{
	char sb[128];
	if (ndim == 0)
		return err_set(e, ERR_FORMAT, "%s: %s is a scalar, expected shape (N, D)", path, what);
	for (int i = 0; i + 2 < ndim; i++)
		if (shape[i] != 1)
			return err_set(e, ERR_FORMAT, "%s: %s has shape %s, expected (N, D)", path, what,
			               shape_str(sb, sizeof sb, shape, ndim));
	*rows = ndim == 1 ? 1 : shape[ndim - 2];
	*cols = shape[ndim - 1];
	return 0;
}

/* The limits of featio.h for a writer: a usage error past them. */
int fio_write_rows(const char *path, uint64_t n, uint32_t d, struct err *e)
{
	if (d == 0 || d > FEATIO_D_MAX || n > FEATIO_N_MAX)
		return err_set(e, ERR_USAGE, "%s: cannot write %llu x %u values (limits: 1 <= d <= %u, "
		               "n <= %llu)", path, (unsigned long long)n, d, FEATIO_D_MAX,
		               (unsigned long long)FEATIO_N_MAX);
	return 0;
}

/* -------------------------------------------------------------- dispatch */

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	if (a < b)
		return 0;
	for (size_t i = 0; i < b; i++) {
		char c = s[a - b + i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != suf[i])
			return 0;
	}
	return 1;
}

int featio_read(struct feats *f, const char *path, struct err *e)
{
	if (ends_with(path, ".npy"))
		return featio_read_npy(f, path, e);
	if (ends_with(path, ".csv"))
		return featio_read_csv(f, path, e);
	if (ends_with(path, ".h5") || ends_with(path, ".hdf5"))
		return featio_read_h5(f, path, e);
	feats_init(f);
	if (ends_with(path, ".pt") || ends_with(path, ".pth"))
		return err_set(e, ERR_UNSUPPORTED, "%s: pytorch .pt files cannot be read\nhint: "
		               "np.save('x.npy', torch.load(path).float().numpy())", path);
	return err_set(e, ERR_USAGE, "%s: unknown feature file type, expected .npy, .csv, .h5 or "
	               ".hdf5", path);
}
