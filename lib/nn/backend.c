/* backend.c - picks a backend by name.  The CUDA backend is a shared
 * library (libweno_cuda.so, lib/nn/cuda_api.h) loaded the first time a GPU
 * is asked for, so a build with CUDA starts and trains on the CPU where the
 * CUDA libraries are missing, and without their memory when no GPU is used.
 * A build without CUDA (WENO_CUDA undefined) says so instead of loading; a
 * build whose make found no nvcc (WENO_CUDA_BUILT 0) loads only what
 * WENO_CUDA_LIB names (the tests' emulation, tests/emu).
 *
 * Without the NVIDIA driver (libcuda.so.1; $WENO_CUDA_DRIVER names another
 * library to probe instead, for tests) nothing is loaded: no GPU can be
 * used, and the reason says so.  Where the library is looked for, first
 * found wins: $WENO_CUDA_LIB (a
 * path); ../lib/libweno_cuda.so beside the running program's folder (the
 * build tree: build/bin/weno-fit finds build/lib/libweno_cuda.so); the
 * program's own folder; then the dynamic loader's search (LD_LIBRARY_PATH,
 * the system folders).
 */
#include "nn.h"
#include "nn_cuda.h"

#include <stdio.h>
#include <string.h>

#ifdef WENO_CUDA
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include "cuda_api.h"

static const struct weno_cuda_host host = {nn_conv2d_scratch_floats};

static struct {
	int tried;
	const struct weno_cuda_api *api; /* NULL: not loaded, why says why */
	char why[768];
} lib;

/* dir holds the running program's folder ("" when unknown) */
static void exe_dir(char *dir, size_t n)
{
	ssize_t k = readlink("/proc/self/exe", dir, n - 1);
	dir[k > 0 ? k : 0] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		dir[0] = '\0';
}

/* a path with a slash that names no file is skipped quietly; any other
 * failure keeps the first loader message in err */
static void *try_open(const char *path, char *err, size_t n)
{
	if (strchr(path, '/') && access(path, F_OK) != 0)
		return NULL;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h && err[0] == '\0') {
		const char *e = dlerror();
		snprintf(err, n, "%.480s", e ? e : path);
	}
	return h;
}

static const struct weno_cuda_api *cuda_lib(void)
{
	if (lib.tried)
		return lib.api;
	lib.tried = 1;
	/* no driver, no GPU: say so without loading the CUDA libraries (which
	 * would cost their start-up time and memory for nothing) */
	const char *drv = getenv("WENO_CUDA_DRIVER");
	if (!drv || !*drv)
		drv = "libcuda.so.1";
	if (!dlopen(drv, RTLD_LAZY | RTLD_LOCAL)) {
		const char *e = dlerror();
		snprintf(lib.why, sizeof lib.why, "no NVIDIA driver is installed (%s)",
		         e ? e : drv);
		return NULL;
	}
	char err[512] = "", dir[3072], cand[3][3200];
	int nc = 0;
	const char *env = getenv("WENO_CUDA_LIB");
#if defined(WENO_CUDA_BUILT) && !WENO_CUDA_BUILT
	if (!env || !*env) {
		snprintf(lib.why, sizeof lib.why,
		         "this build has no CUDA backend (make found no nvcc or cuDNN; install the "
		         "CUDA toolkit and cuDNN and rebuild)");
		return NULL;
	}
#endif
	if (env && *env) {
		snprintf(cand[nc++], sizeof cand[0], "%s", env);
	} else {
		exe_dir(dir, sizeof dir);
		if (dir[0]) {
			snprintf(cand[nc++], sizeof cand[0], "%s/../lib/%s", dir, WENO_CUDA_LIB);
			snprintf(cand[nc++], sizeof cand[0], "%s/%s", dir, WENO_CUDA_LIB);
		}
		snprintf(cand[nc++], sizeof cand[0], "%s", WENO_CUDA_LIB);
	}
	void *h = NULL;
	const char *used = NULL;
	for (int i = 0; i < nc && !h; i++)
		if ((h = try_open(cand[i], err, sizeof err)))
			used = cand[i];
	if (!h && env && *env && err[0] == '\0')
		snprintf(err, sizeof err, "%s: no such file", env);
	if (!h) {
		snprintf(lib.why, sizeof lib.why,
		         "the CUDA backend library could not be loaded (%s; set WENO_CUDA_LIB to "
		         "its path)", err);
		return NULL;
	}
	weno_cuda_entry_fn entry;
	void *sym = dlsym(h, WENO_CUDA_ENTRY);
	memcpy(&entry, &sym, sizeof entry); /* POSIX: object to function pointer */
	const struct weno_cuda_api *api = sym ? entry(&host) : NULL;
	if (!api || api->version != WENO_CUDA_API_VERSION ||
	    api->table_bytes != sizeof(struct nn_backend)) {
		snprintf(lib.why, sizeof lib.why,
		         "%.600s is not this build's CUDA backend (%s); rebuild with make", used,
		         !sym ? "no entry point" : "another interface version");
		dlclose(h);
		return NULL;
	}
	lib.api = api;
	return api;
}

int nn_cuda_available(char *why, size_t n)
{
	const struct weno_cuda_api *api = cuda_lib();
	if (!api) {
		if (why && n)
			snprintf(why, n, "%s", lib.why);
		return 0;
	}
	return api->available(why, n);
}

int nn_cuda_error(char *msg, size_t n)
{
	const struct weno_cuda_api *api = lib.api;
	if (!api) {
		if (msg && n)
			msg[0] = '\0';
		return 0;
	}
	return api->error(msg, n);
}

const char *nn_cuda_describe(void)
{
	const struct weno_cuda_api *api = cuda_lib();
	return api ? api->describe() : "";
}

static const struct nn_backend *cuda_table(void)
{
	return nn_cuda_available(NULL, 0) ? lib.api->table : NULL;
}

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

static const struct nn_backend *cuda_table(void)
{
	return NULL;
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
	const struct nn_backend *t = cuda_table();
	if (t)
		return t;
	return gpu ? NULL : &nn_cpu;
}
