/* scratch.h - for fuzz targets whose reader takes a path: writes the input
 * to one scratch file per process (under $WENO_TEST_TMP, $TMPDIR or /tmp,
 * removed at exit) and returns its path.  Aborts when it cannot. */
#ifndef WENO_FUZZ_SCRATCH_H
#define WENO_FUZZ_SCRATCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_scratch_path[512];

static void fuzz_scratch_cleanup(void)
{
	if (fuzz_scratch_path[0])
		unlink(fuzz_scratch_path);
}

static const char *fuzz_scratch(const char *name, const uint8_t *data, size_t size)
{
	if (!fuzz_scratch_path[0]) {
		const char *dir = getenv("WENO_TEST_TMP");
		if (!dir)
			dir = getenv("TMPDIR");
		snprintf(fuzz_scratch_path, sizeof fuzz_scratch_path, "%s/%s.XXXXXX", dir ? dir : "/tmp", name);
		int fd = mkstemp(fuzz_scratch_path);
		if (fd < 0) {
			perror(fuzz_scratch_path);
			abort();
		}
		close(fd);
		atexit(fuzz_scratch_cleanup);
	}
	FILE *fp = fopen(fuzz_scratch_path, "wb");
	if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0)
		abort();
	return fuzz_scratch_path;
}

#endif
