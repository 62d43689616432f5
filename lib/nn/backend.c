/* backend.c - picks a backend by name.  The CUDA backend (kernels/) joins
 * the table here when the build has it (WENO_CUDA). */
#include "nn.h"

#include <string.h>

const struct nn_backend *nn_backend_get(const char *name)
{
	if (!name || !strcmp(name, "cpu") || !strcmp(name, "auto"))
		return &nn_cpu;
	return NULL;
}
