/* nn_cuda.h - the CUDA backend (kernels/nn_cuda_*.cu): the nn.h operation table on
 * one NVIDIA GPU, with cuBLAS for matrix products, cuDNN for convolutions
 * and CUDA kernels for the rest.
 *
 * The table itself is reached through nn_backend_get("cuda") (NULL when the
 * build has no CUDA backend or no GPU is usable), so callers never need
 * #ifdef WENO_CUDA.  These functions exist in every build; without
 * WENO_CUDA they say "built without CUDA".
 *
 * Semantics (kernels/nn_cuda.cuh has the details):
 *   - every buffer the table hands out is device memory; upload and
 *     download are synchronous from the caller's view, every other op is
 *     queued on one CUDA stream;
 *   - deterministic by default: deterministic cuDNN algorithms with FMA
 *     math (no TF32), cuBLAS without TF32, fixed-order reductions and no
 *     atomics, one stream; the same inputs give bit-identical results run
 *     to run on the same GPU model, toolkit and library versions;
 *   - WENO_CUDA_FAST=1 in the environment (read once, at initialisation)
 *     lets cuBLAS and cuDNN use TF32 tensor cores: faster, still run-to-run
 *     reproducible, but further from the CPU (about 1e-3 relative);
 *   - graphs (nn.h graph_begin): the encoders' and heads' passes (not
 *     DSMIL's) are recorded as CUDA graphs and replayed (net.c),
 *     bit-identical to the ops run one by one (dropout reads its generator
 *     from device memory, dropout_forward_at);
 *     WENO_CUDA_GRAPHS=0 turns them off, and a device that refuses a
 *     recording turns them off for the run with a note on stderr.
 *
 * Errors: a missing driver or device is not an error of the ops but a
 * reason for nn_cuda_available to say 0.  A CUDA, cuBLAS or cuDNN call that
 * fails inside an op (out of memory in a workspace, an illegal address) sets
 * a sticky error (the first one wins), prints it once on stderr (the ops
 * have no error return), and turns every later op into a no-op; downloads
 * then give NaN and losses NaN, so a run cannot silently continue.
 *
 * Thread safety: one global GPU context; call from one thread at a time, as
 * for every backend.
 */
#ifndef WENO_NN_CUDA_H
#define WENO_NN_CUDA_H

#include <stddef.h>

/* 1 when the CUDA backend is built in and a GPU is usable (initialising
 * it on the first call: device, stream, cuBLAS, cuDNN); else 0 with the
 * reason in why (n bytes; why may be NULL), e.g. "no CUDA-capable device is
 * detected", "the NVIDIA driver is missing or too old for CUDA 13.0",
 * "cuDNN initialisation failed: ...", "this build has no CUDA backend". */
int nn_cuda_available(char *why, size_t n);

/* 1 when an op has failed since start-up (the sticky error), with its
 * message in msg (n bytes; msg may be NULL); 0 otherwise. */
int nn_cuda_error(char *msg, size_t n);

/* A one-line description of the device and mode for logs, e.g.
 * "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs), deterministic"; "" when
 * unavailable. */
const char *nn_cuda_describe(void);

#endif
