/* fuzz_csv.c - libFuzzer target for lib/featio's CSV reader.
 *
 * Writes the input to a scratch file and reads it as DSMIL CSV features.
 * Built by `make fuzz`; replayed over tests/fuzz/corpus/csv and
 * tests/fuzz/crashes/csv by `make test`.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../lib/featio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[512];

static void cleanup(void)
{
	if (path[0])
		unlink(path);
}

static const char *scratch(void)
{
	if (!path[0]) {
		const char *dir = getenv("WENO_TEST_TMP");
		if (!dir)
			dir = getenv("TMPDIR");
		snprintf(path, sizeof path, "%s/fuzz_csv.XXXXXX", dir ? dir : "/tmp");
		int fd = mkstemp(path);
		if (fd < 0) {
			perror(path);
			abort();
		}
		close(fd);
		atexit(cleanup);
	}
	return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = scratch();
	FILE *fp = fopen(p, "wb");
	if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0)
		abort();
	struct feats f;
	struct err e = { 0 };
	if (featio_read_csv(&f, p, &e) == 0) {
		if (!f.x || f.d == 0 || f.d > FEATIO_D_MAX)
			abort(); /* a successful read always has a matrix */
		for (uint64_t i = 0; i < f.n * f.d; i++)
			if (!isfinite(f.x[i]))
				abort(); /* only finite values get through */
		feats_free(&f);
	} else if (!e.msg[0] || e.code >= 0) {
		abort(); /* every failure explains itself */
	}
	return 0;
}
