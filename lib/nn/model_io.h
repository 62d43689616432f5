/* model_io.h - the model file (formats/model.md): configuration, modules
 * (architecture, weights, BN running statistics), optimizer state, RNG
 * states, epoch and a trainer blob, each section with a CRC-32.
 *
 * Saving is atomic (lib/base/afile.h): an interrupted save leaves the old file.
 * Loading never trusts a size: every count is checked against the limits
 * below and against the bytes left in the file before anything is
 * allocated, and the architecture stored in the file is rebuilt and
 * compared tensor by tensor.  Errors name the file, the byte offset and
 * the field.
 *
 * Thread safety: none needed (no globals); one struct nn_model per thread.
 * Errors: 0 or a negative ERR_* code with the message in e.
 */
#ifndef WENO_NN_MODEL_IO_H
#define WENO_NN_MODEL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "../base/err.h"
#include "../base/rng.h"
#include "net.h"

#define NN_MODEL_VERSION 1
#define NN_MODEL_MAX_MODULES 8
#define NN_MODEL_MAX_RNGS 16
#define NN_MODEL_MAX_CONFIG (1u << 20)   /* bytes of key=value text */
#define NN_MODEL_MAX_EXTRA (1u << 24)    /* bytes of trainer blob */
#define NN_MODEL_MAX_TENSORS 1024        /* per module */

struct nn_model {
	char *config;                /* "key=value\n" lines, NUL-terminated; may be NULL */
	int nmodules;
	struct nn_module *mods[NN_MODEL_MAX_MODULES];
	struct nn_optim *opts[NN_MODEL_MAX_MODULES];   /* NULL: no optimizer saved */
	int nrngs;
	struct rng rngs[NN_MODEL_MAX_RNGS];
	uint64_t epoch;
	void *extra;                 /* trainer state, opaque bytes; may be NULL */
	size_t extra_size;
	int owned;                   /* set by load: nn_model_free frees everything */
};

/* Writes m to path atomically ("-" is stdout).  Modules and optimizers are
 * borrowed. */
int nn_model_save(const char *path, const struct nn_model *m, struct err *e);

/* Reads a model: creates its modules (on backend be, arenas allocated on the
 * first forward) and optimizers, and fills config, RNGs, epoch and extra;
 * free with nn_model_free.  On failure nothing is left allocated. */
int nn_model_load(const char *path, const struct nn_backend *be, struct nn_model *m,
                  struct err *e);

/* The same from memory (name is used in messages). */
int nn_model_load_mem(const void *data, size_t size, const char *name,
                      const struct nn_backend *be, struct nn_model *m, struct err *e);

/* Frees what a load created (no-op on a model assembled by the caller). */
void nn_model_free(struct nn_model *m);

/* The value of key in m->config, copied into buf; NULL when absent. */
const char *nn_model_config_get(const struct nn_model *m, const char *key, char *buf,
                                size_t n);

#endif
