/* fuzz_bag.c - libFuzzer target for the bag reader (lib/data/bag.c): any bytes
 * must give either a bag or a clean error, never a crash, leak or hang. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../lib/data/bag.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_scratch("fuzz_bag", data, size);
	struct err e = {0};
	struct bag_header h;
	uint64_t n;
	struct bag_inst *inst;
	uint8_t *d;
	if (bag_load(path, &h, &n, &inst, &d, &e) == 0) {
		free(inst);
		free(d);
		bag_header_free(&h);
	}
	/* the raw path (bag-pack's) too */
	struct bag_reader *r;
	err_clear(&e);
	if (bag_open(&r, path, &e) == 0) {
		struct bag_raw_chunk rc;
		while (bag_read_raw_chunk(r, &rc, &e) > 0)
			;
		bag_close(r);
	}
	return 0;
}
