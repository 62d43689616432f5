/* fuzz_model.c - libFuzzer target for lib/nn/model_io's loader.
 *
 * Loads the input from memory (nn_model_load_mem, the same parser as the
 * file loader) and frees what it made.  Seeds in tests/fuzz/corpus/model
 * are tiny mlp models written by tests/unit/test_nn_model.c
 * (WENO_WRITE_FUZZ_SEEDS=tests/fuzz/corpus/model build/tests/test_nn_model).
 * Built by `make fuzz`; replayed over tests/fuzz/corpus/model and
 * tests/fuzz/crashes/model by `make test`.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../../lib/nn/model_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nn_model m;
	struct err e = {0};
	if (nn_model_load_mem(data, size, "fuzz", &nn_cpu, &m, &e) == 0)
		nn_model_free(&m);
	return 0;
}
