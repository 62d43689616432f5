/* backend.c - picks a backend by name.  The CUDA backend (kernels/) joins
 * the table here when the build has it (WENO_CUDA); without it the
 * nn_cuda.h functions say why there is no GPU. */
#include "nn.h"
#include "nn_cuda.h"

#include <stdio.h>
#include <string.h>

#ifdef WENO_CUDA
extern const struct nn_backend nn_cuda; /* kernels/nn_cuda_core.cu */
#else
int nn_cuda_available(char *why, size_t n)
{
	if (why && n)
		snprintf(why, n, "this build has no CUDA backend (built with CUDA=0, or nvcc or "
		                 "cuDNN was not found)");
	return 0;
}

int nn_cuda_error(char *msg, size_t n)
{
	if (msg && n)
		msg[0] = '\0';
	return 0;
}

const char *nn_cuda_describe(void)
{
	return "";
}
#endif

/* "cpu"; "cuda" when a GPU is usable (else NULL: nn_cuda_available says
 * why); "auto": the GPU when usable, else the CPU.  NULL name: the CPU. */
const struct nn_backend *nn_backend_get(const char *name)
{
	if (!name || !strcmp(name, "cpu"))
		return &nn_cpu;
	int gpu = !strcmp(name, "cuda");
	if (!gpu && strcmp(name, "auto"))
		return NULL;
#ifdef WENO_CUDA
	if (nn_cuda_available(NULL, 0))
		return &nn_cuda;
#endif
	return gpu ? NULL : &nn_cpu;
}
