/* featio_h5.c - CLAM/TRIDENT HDF5 features and coordinates (featio.h) */
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

#include <hdf5.h>

#include "../base/afile.h"

#define H5_CHUNKED_RATIO 1024         /* deflate's best ratio is about 1032:1 */

/* ------------------------------------------------------------------ HDF5 */

struct h5quiet {
	H5E_auto2_t func;
	void *data;
};

static void h5_quiet(struct h5quiet *q)
{
	if (H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data) < 0) {
		q->func = NULL;
		q->data = NULL;
	}
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void h5_loud(const struct h5quiet *q)
{
	H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

static herr_t h5_walk(unsigned n, const H5E_error2_t *ed, void *data)
{
	char *out = data;
	if (n == 0 && ed->desc)
		snprintf(out, 160, "%s", ed->desc);
	return 0;
}

/* The innermost message on HDF5's error stack, as "\n(hdf5: ...)" or "". */
static const char *h5_why(char out[192])
{
	char desc[160] = "";
	H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk, desc);
	if (!desc[0])
		return "";
	snprintf(out, 192, " (hdf5: %s)", desc);
	return out;
}

static void h5_close(hid_t *id, herr_t (*fn)(hid_t))
{
	if (*id >= 0)
		fn(*id);
	*id = -1;
}

/* Rows x cols of a dataset, checked against what the file can hold. */
static int h5_dims(const char *path, const char *name, hid_t ds, uint64_t file_size,
                   uint64_t *rows, uint64_t *cols, struct err *e)
{
	hid_t sp = H5Dget_space(ds);
	if (sp < 0)
		return err_set(e, ERR_FORMAT, "%s: cannot read the shape of '%s'", path, name);
	int ndim = H5Sget_simple_extent_ndims(sp);
	hsize_t dims[NPY_MAXDIM];
	uint64_t shape[NPY_MAXDIM];
	if (ndim < 0 || ndim > NPY_MAXDIM || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
		H5Sclose(sp);
		return err_set(e, ERR_FORMAT, "%s: dataset '%s' has no simple shape, expected (N, D)",
		               path, name);
	}
	H5Sclose(sp);
	for (int i = 0; i < ndim; i++)
		shape[i] = dims[i];
	char what[64];
	snprintf(what, sizeof what, "dataset '%s'", name);
	int rc = fio_matrix_dims(path, what, shape, ndim, rows, cols, e);
	if (rc)
		return rc;
	hid_t ty = H5Dget_type(ds);
	size_t isz = ty >= 0 ? H5Tget_size(ty) : 0;
	if (ty >= 0)
		H5Tclose(ty);
	/* Before allocating: can the file hold that many values? */
	if (*cols == 0 || *cols > FEATIO_D_MAX || *rows > FEATIO_N_MAX)
		return 0; /* the caller's check_dims reports it */
	uint64_t bytes = *rows * *cols * (uint64_t)(isz ? isz : 1);
	hid_t dcpl = H5Dget_create_plist(ds);
	int chunked = dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED;
	if (dcpl >= 0)
		H5Pclose(dcpl);
	uint64_t room = chunked ? file_size * H5_CHUNKED_RATIO : file_size;
	if (bytes > room)
		return err_set(e, ERR_FORMAT, "%s: dataset '%s' declares %llu x %llu values (%llu "
		               "bytes), more than a file of %llu bytes can hold", path, name,
		               (unsigned long long)*rows, (unsigned long long)*cols,
		               (unsigned long long)bytes, (unsigned long long)file_size);
	return 0;
}

static const char *h5_class_name(H5T_class_t c)
{
	switch (c) {
	case H5T_INTEGER: return "integer";
	case H5T_FLOAT: return "float";
	case H5T_STRING: return "string";
	case H5T_COMPOUND: return "compound";
	case H5T_ENUM: return "enum";
	case H5T_ARRAY: return "array";
	default: return "non-numeric";
	}
}

static H5T_class_t h5_class(hid_t obj, int is_attr)
{
	hid_t ty = is_attr ? H5Aget_type(obj) : H5Dget_type(obj);
	if (ty < 0)
		return H5T_NO_CLASS;
	H5T_class_t c = H5Tget_class(ty);
	H5Tclose(ty);
	return c;
}

/* A numeric attribute of coords: *v = its first value; 0 when read, 1 when
 * absent, < 0 on error. */
static int h5_attr(const char *path, hid_t ds, const char *name, double *v, struct err *e)
{
	if (H5Aexists(ds, name) <= 0)
		return 1;
	hid_t a = H5Aopen(ds, name, H5P_DEFAULT);
	if (a < 0)
		return err_set(e, ERR_FORMAT, "%s: cannot open attribute '%s' of 'coords'", path, name);
	H5T_class_t cl = h5_class(a, 1);
	hid_t sp = H5Aget_space(a);
	hssize_t np = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
	if (sp >= 0)
		H5Sclose(sp);
	int rc = 0;
	double buf[16];
	if (cl != H5T_INTEGER && cl != H5T_FLOAT)
		rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' of 'coords' is a %s, expected a number",
		             path, name, h5_class_name(cl));
	else if (np < 1 || np > 16)
		rc = err_set(e, ERR_FORMAT, "%s: attribute '%s' of 'coords' has %lld values, expected "
		             "1 or 2", path, name, (long long)np);
	else if (H5Aread(a, H5T_NATIVE_DOUBLE, buf) < 0)
		rc = err_set(e, ERR_FORMAT, "%s: cannot read attribute '%s' of 'coords'", path, name);
	else
		*v = buf[0];
	H5Aclose(a);
	return rc;
}

static int h5_attr_int(const char *path, hid_t ds, const char *name, int32_t lo, int32_t *out,
                       struct err *e)
{
	double v = 0;
	int rc = h5_attr(path, ds, name, &v, e);
	if (rc)
		return rc < 0 ? rc : 0;
	int32_t iv;
	if (fio_to_i32(v, &iv) || iv < lo)
		return err_set(e, ERR_FORMAT, "%s: attribute '%s' of 'coords' is %.17g, expected an "
		               "integer >= %d", path, name, v, (int)lo);
	*out = iv;
	return 0;
}

/* Opens dataset name of fid (which must exist) only when its bytes are in
 * this file: a link that is not a hard link (an external link names
 * another file, a soft link may lead to one), a dataset stored in
 * external raw files and a virtual dataset (whose sources are other
 * files) are refused, since reading them would copy the bytes of
 * whatever files they name into a bag. */
static int h5_open_local(hid_t fid, const char *name, const char *path, hid_t *out, struct err *e)
{
	char why[192];
	*out = -1;
	H5L_info_t li;
	if (H5Lget_info(fid, name, &li, H5P_DEFAULT) < 0)
		return err_set(e, ERR_FORMAT, "%s: cannot read the link '%s'%s", path, name, h5_why(why));
	if (li.type != H5L_TYPE_HARD)
		return err_set(e, ERR_UNSUPPORTED, "%s: '%s' is %s, not a dataset of this file; refused, "
		               "since it would read another file", path, name,
		               li.type == H5L_TYPE_EXTERNAL ? "an external link" :
		               li.type == H5L_TYPE_SOFT ? "a soft link" : "a user-defined link");
	hid_t ds = H5Dopen2(fid, name, H5P_DEFAULT);
	if (ds < 0)
		return err_set(e, ERR_FORMAT, "%s: '%s' is not a dataset%s", path, name, h5_why(why));
	hid_t dcpl = H5Dget_create_plist(ds);
	int rc = 0;
	if (dcpl < 0) {
		rc = err_set(e, ERR_FORMAT, "%s: cannot read the storage of '%s'%s", path, name, h5_why(why));
	} else if (H5Pget_layout(dcpl) == H5D_VIRTUAL) {
		rc = err_set(e, ERR_UNSUPPORTED, "%s: '%s' is a virtual dataset, whose data lie in other "
		             "files; refused", path, name);
	} else if (H5Pget_external_count(dcpl) != 0) {
		rc = err_set(e, ERR_UNSUPPORTED, "%s: '%s' is stored in external files (%d), not in this "
		             "one; refused", path, name, H5Pget_external_count(dcpl));
	}
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (rc) {
		H5Dclose(ds);
		return rc;
	}
	*out = ds;
	return 0;
}

static int h5_read_coords(struct feats *f, const char *path, hid_t fid, uint64_t file_size,
                          struct err *e)
{
	char why[192];
	htri_t ex = H5Lexists(fid, "coords", H5P_DEFAULT);
	if (ex <= 0)
		return 0; /* optional */
	hid_t ds;
	int rc = h5_open_local(fid, "coords", path, &ds, e);
	if (rc)
		return rc;
	uint64_t rows, cols;
	rc = h5_dims(path, "coords", ds, file_size, &rows, &cols, e);
	H5T_class_t cl = h5_class(ds, 0);
	double *buf = NULL;
	if (rc)
		goto out;
	if (cols != 2 || rows != f->n) {
		rc = err_set(e, ERR_FORMAT, "%s: dataset 'coords' is %llu x %llu, expected %llu x 2",
		             path, (unsigned long long)rows, (unsigned long long)cols,
		             (unsigned long long)f->n);
		goto out;
	}
	if (cl != H5T_INTEGER && cl != H5T_FLOAT) {
		rc = err_set(e, ERR_FORMAT, "%s: dataset 'coords' has %s values, expected integers",
		             path, h5_class_name(cl));
		goto out;
	}
	buf = err_malloc(e, (size_t)rows * 2 * sizeof *buf);
	f->coords = err_malloc(e, (size_t)rows * 2 * sizeof *f->coords);
	if (!buf || !f->coords) {
		rc = ERR_NOMEM;
		goto out;
	}
	if (rows) {
		/* int64 then to double would lose nothing that fits int32 */
		if (cl == H5T_INTEGER) {
			int64_t *ib = (int64_t *)(void *)buf;
			if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ib) < 0) {
				rc = err_set(e, ERR_FORMAT, "%s: cannot read dataset 'coords'%s", path,
				             h5_why(why));
				goto out;
			}
			for (uint64_t i = 0; i < 2 * rows; i++) {
				if (ib[i] < INT32_MIN || ib[i] > INT32_MAX) {
					rc = err_set(e, ERR_FORMAT, "%s: dataset 'coords', row %llu: %s = %lld, "
					             "expected an int32", path, (unsigned long long)(i / 2 + 1),
					             i % 2 ? "y" : "x", (long long)ib[i]);
					goto out;
				}
				f->coords[i] = (int32_t)ib[i];
			}
		} else {
			if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
				rc = err_set(e, ERR_FORMAT, "%s: cannot read dataset 'coords'%s", path,
				             h5_why(why));
				goto out;
			}
			for (uint64_t i = 0; i < 2 * rows; i++)
				if (fio_to_i32(buf[i], &f->coords[i])) {
					rc = err_set(e, ERR_FORMAT, "%s: dataset 'coords', row %llu: %s = %.17g, "
					             "expected an integer that fits int32", path,
					             (unsigned long long)(i / 2 + 1), i % 2 ? "y" : "x", buf[i]);
					goto out;
				}
		}
	}
	double ds_v = 0;
	if ((rc = h5_attr_int(path, ds, "patch_size", 0, &f->patch_size, e)) ||
	    (rc = h5_attr_int(path, ds, "patch_level", -1, &f->patch_level, e)) ||
	    (rc = h5_attr_int(path, ds, "patch_size_level0", 0, &f->patch_size_level0, e)))
		goto out;
	rc = h5_attr(path, ds, "downsample", &ds_v, e);
	if (rc < 0)
		goto out;
	if (rc == 0 && (!isfinite(ds_v) || ds_v < 0)) {
		rc = err_set(e, ERR_FORMAT, "%s: attribute 'downsample' of 'coords' is %g, expected a "
		             "positive number", path, ds_v);
		goto out;
	}
	if (rc == 0)
		f->downsample = ds_v;
	rc = 0;
out:
	free(buf);
	H5Dclose(ds);
	return rc;
}

static int read_h5(struct feats *f, const char *path, uint64_t file_size, struct err *e)
{
	char why[192];
	if (H5Fis_hdf5(path) <= 0)
		return err_set(e, ERR_FORMAT, "%s: not an hdf5 file (no hdf5 signature)", path);
	hid_t fid = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (fid < 0)
		return err_set(e, ERR_FORMAT, "%s: cannot open the hdf5 file%s", path, h5_why(why));
	hid_t ds = -1;
	int rc = 0;
	if (H5Lexists(fid, "features", H5P_DEFAULT) <= 0) {
		rc = err_set(e, ERR_FORMAT, "%s: no dataset 'features'", path);
		goto out;
	}
	if ((rc = h5_open_local(fid, "features", path, &ds, e)))
		goto out;
	H5T_class_t cl = h5_class(ds, 0);
	if (cl != H5T_FLOAT) {
		rc = err_set(e, ERR_UNSUPPORTED, "%s: dataset 'features' has %s values, expected "
		             "float32 or float64", path, h5_class_name(cl));
		goto out;
	}
	uint64_t rows, cols;
	if ((rc = h5_dims(path, "features", ds, file_size, &rows, &cols, e)) ||
	    (rc = fio_check_dims(path, "dataset 'features'", rows, cols, e)))
		goto out;
	f->x = err_malloc(e, (size_t)(rows * cols) * sizeof(float));
	if (!f->x) {
		rc = ERR_NOMEM;
		goto out;
	}
	f->n = rows;
	f->d = (uint32_t)cols;
	if (rows && H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->x) < 0) {
		rc = err_set(e, ERR_FORMAT, "%s: cannot read dataset 'features'%s", path, h5_why(why));
		goto out;
	}
	if ((rc = fio_check_finite(path, f->x, f->n, f->d, e)))
		goto out;
	rc = h5_read_coords(f, path, fid, file_size, e);
out:
	h5_close(&ds, H5Dclose);
	if (H5Fclose(fid) < 0 && !rc)
		rc = err_set(e, ERR_IO, "%s: cannot close the hdf5 file", path);
	return rc;
}

int featio_read_h5(struct feats *f, const char *path, struct err *e)
{
	feats_init(f);
	struct stat st;
	if (stat(path, &st) != 0)
		return err_sys(e, ERR_IO, "cannot open '%s'", path);
	if (!S_ISREG(st.st_mode))
		return err_set(e, ERR_IO, "cannot open '%s': not a regular file", path);
	struct h5quiet q;
	h5_quiet(&q);
	int rc = read_h5(f, path, (uint64_t)st.st_size, e);
	h5_loud(&q);
	if (rc)
		feats_free(f);
	return rc;
}

static int h5_write_attr(hid_t ds, const char *name, hid_t ftype, hid_t mtype, hsize_t count,
                         const void *v)
{
	hid_t sp = count == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, NULL);
	if (sp < 0)
		return -1;
	hid_t a = H5Acreate2(ds, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
	int bad = a < 0 || H5Awrite(a, mtype, v) < 0;
	if (a >= 0)
		bad |= H5Aclose(a) < 0;
	H5Sclose(sp);
	return bad ? -1 : 0;
}

static int write_h5(const char *tmp, const char *path, const struct feats *f, struct err *e)
{
	char why[192];
	int rc = 0;
	hid_t fid = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	hid_t sp = -1, ds = -1;
	int64_t *xy = NULL;
	if (fid < 0)
		return err_set(e, ERR_IO, "cannot create '%s'%s", tmp, h5_why(why));
	hsize_t dims[2] = { f->n, f->d };
	sp = H5Screate_simple(2, dims, NULL);
	ds = sp < 0 ? -1
	            : H5Dcreate2(fid, "features", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
	                         H5P_DEFAULT);
	if (ds < 0 || (f->n && H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT,
	                                 f->x) < 0)) {
		rc = err_set(e, ERR_IO, "cannot write dataset 'features' to '%s'%s", path,
		             h5_why(why));
		goto out;
	}
	h5_close(&ds, H5Dclose);
	h5_close(&sp, H5Sclose);
	if (f->coords) {
		xy = err_malloc(e, (size_t)f->n * 2 * sizeof *xy);
		if (!xy) {
			rc = ERR_NOMEM;
			goto out;
		}
		for (uint64_t i = 0; i < 2 * f->n; i++)
			xy[i] = f->coords[i];
		dims[1] = 2;
		sp = H5Screate_simple(2, dims, NULL);
		ds = sp < 0 ? -1
		            : H5Dcreate2(fid, "coords", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
		                         H5P_DEFAULT);
		if (ds < 0 || (f->n && H5Dwrite(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
		                                 xy) < 0)) {
			rc = err_set(e, ERR_IO, "cannot write dataset 'coords' to '%s'%s", path,
			             h5_why(why));
			goto out;
		}
		int64_t ps = f->patch_size, pl = f->patch_level, ps0 = f->patch_size_level0;
		double dsv[2] = { f->downsample, f->downsample };
		if ((ps > 0 && h5_write_attr(ds, "patch_size", H5T_STD_I64LE, H5T_NATIVE_INT64, 1,
		                             &ps)) ||
		    (pl >= 0 && h5_write_attr(ds, "patch_level", H5T_STD_I64LE, H5T_NATIVE_INT64, 1,
		                              &pl)) ||
		    (f->downsample > 0 && h5_write_attr(ds, "downsample", H5T_IEEE_F64LE,
		                                        H5T_NATIVE_DOUBLE, 2, dsv)) ||
		    (ps0 > 0 && h5_write_attr(ds, "patch_size_level0", H5T_STD_I64LE,
		                              H5T_NATIVE_INT64, 1, &ps0))) {
			rc = err_set(e, ERR_IO, "cannot write the attributes of 'coords' to '%s'%s", path,
			             h5_why(why));
			goto out;
		}
	}
out:
	free(xy);
	h5_close(&ds, H5Dclose);
	h5_close(&sp, H5Sclose);
	if (H5Fclose(fid) < 0 && !rc)
		rc = err_set(e, ERR_IO, "cannot write '%s'%s", path, h5_why(why));
	return rc;
}

int featio_write_h5(const char *path, const struct feats *f, struct err *e)
{
	int rc = fio_write_rows(path, f->n, f->d, e);
	if (rc)
		return rc;
	if (f->n && !f->x)
		return err_set(e, ERR_USAGE, "%s: no features to write", path);
	if ((rc = fio_check_finite(path, f->x, f->n, f->d, e)))
		return rc;
	/* HDF5 writes by name: it writes lib/base/afile's temporary, which
	 * afile_commit then syncs (fsync is per file) and renames */
	struct afile af;
	if ((rc = afile_open(&af, path, e)))
		return rc;
	if (!af.tmp) {
		afile_abort(&af);
		return err_set(e, ERR_USAGE, "%s: HDF5 output must be a regular file", path);
	}
	struct h5quiet q;
	h5_quiet(&q);
	rc = write_h5(af.tmp, path, f, e);
	h5_loud(&q);
	if (rc) {
		afile_abort(&af);
		return rc;
	}
	return afile_commit(&af, e);
}

