/* cuda_api.h - the one entry point of libweno_cuda.so, the CUDA backend
 * (kernels/) built as a shared library beside the tools (build/lib/).
 *
 * The library (lib/nn/backend.c) loads it with dlopen the first time a
 * GPU is asked for (nn_backend_get("cuda"/"auto"), nn_cuda_available), so
 * the tools start, and train on the CPU, without the CUDA runtime, cuBLAS
 * or cuDNN installed and without their memory (about 150 MB resident) when
 * no GPU is used.  Internal: not part of the tools' interface.
 */
#ifndef WENO_CUDA_API_H
#define WENO_CUDA_API_H

#include <stddef.h>

/* 2: the table grew (abmil_attn_forward/backward, graph_*); the table's
 * size is checked too (weno_cuda_api.table_bytes) */
#define WENO_CUDA_API_VERSION 2
#define WENO_CUDA_LIB "libweno_cuda.so"
#define WENO_CUDA_ENTRY "weno_cuda_api"

struct nn_backend;
struct nn_conv_shape;

/* What the backend needs from the library that loads it. */
struct weno_cuda_host {
	size_t (*conv2d_scratch_floats)(const struct nn_conv_shape *s);
};

/* What it gives: the operation table and the nn_cuda.h functions. */
struct weno_cuda_api {
	int version; /* WENO_CUDA_API_VERSION of the build that made the library */
	size_t table_bytes; /* its sizeof(struct nn_backend): a table that grew is another interface */
	const struct nn_backend *table;
	int (*available)(char *why, size_t n);
	int (*error)(char *msg, size_t n);
	const char *(*describe)(void);
};

/* The entry point's type: weno_cuda_api(host), called once after dlopen. */
typedef const struct weno_cuda_api *(*weno_cuda_entry_fn)(const struct weno_cuda_host *host);

#endif
