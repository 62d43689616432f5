/* mkevil.c - writes the hostile HDF5 feature files the probe suite feeds
 * to bag-pack --h5 (tests/probe/probe.sh): each would make a careless
 * reader copy the bytes of another file (the canary) into a bag.
 *
 *   mkevil KIND OUT.h5 CANARY_FILE OTHER.h5
 *   KIND: external-storage | external-link | virtual | soft-link | plain
 *
 * OTHER.h5 is written too: a plain file whose 'features' the links and the
 * virtual dataset point at. */
#include <stdio.h>
#include <string.h>

#include <hdf5.h>

static void put(hid_t fid, const char *name, hid_t dcpl, const float *x)
{
	hsize_t dims[2] = {4, 4};
	hid_t sp = H5Screate_simple(2, dims, NULL);
	hid_t ds = H5Dcreate2(fid, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
	if (x)
		H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
	H5Dclose(ds);
	H5Sclose(sp);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: mkevil KIND OUT.h5 CANARY_FILE OTHER.h5\n");
		return 2;
	}
	const char *kind = argv[1], *out = argv[2], *canary = argv[3], *other = argv[4];
	float x[16] = {0};
	hid_t fid = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	put(fid, "features", H5P_DEFAULT, x);
	H5Fclose(fid);
	fid = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
	if (!strcmp(kind, "external-storage")) {
		hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
		H5Pset_external(dcpl, canary, 0, 64);
		put(fid, "features", dcpl, NULL);
		H5Pclose(dcpl);
	} else if (!strcmp(kind, "external-link")) {
		H5Lcreate_external(other, "features", fid, "features", H5P_DEFAULT, H5P_DEFAULT);
	} else if (!strcmp(kind, "virtual")) {
		hsize_t dims[2] = {4, 4};
		hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
		H5Pset_virtual(dcpl, sp, other, "features", sp);
		put(fid, "features", dcpl, NULL);
		H5Pclose(dcpl);
		H5Sclose(sp);
	} else if (!strcmp(kind, "soft-link")) {
		put(fid, "data", H5P_DEFAULT, x);
		H5Lcreate_soft("/data", fid, "features", H5P_DEFAULT, H5P_DEFAULT);
	} else {
		put(fid, "features", H5P_DEFAULT, x);
	}
	H5Fclose(fid);
	return 0;
}
