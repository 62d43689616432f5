/* tests/emu/emu.cpp - the CUDA runtime, cuBLAS and cuDNN calls of kernels/,
 * emulated on the CPU (cuda_runtime.h says what that means and what it is
 * not).  Every call checks what the real library would refuse: device
 * pointers that are not inside one cudaMalloc'd block for the whole range a
 * copy or a product touches, host pointers where device ones belong,
 * overlapping device copies, launch shapes over the limits, leading
 * dimensions, disagreeing convolution shapes, too small a workspace.  A
 * refusal prints "emu: ..." on stderr and returns the library's error code,
 * which the backend turns into its sticky error.  Every call that queues
 * work on a stream is split in two: its argument checks, at the call, and a
 * node that checks its pointers and runs, at once or (the stream capturing)
 * at each cudaGraphLaunch. */
#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "cudnn.h"

#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <ucontext.h>

#include <map>
#include <set>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

/* ---------------- errors ---------------- */

static cudaError_t last_error = cudaSuccess;

static void vsay(const char *what, const char *fmt, va_list ap)
{
	fprintf(stderr, "emu: %s", what);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
}

/* a failing runtime call: says why, and sets the error cudaGetLastError returns */
static cudaError_t fail(cudaError_t e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("", fmt, ap);
	va_end(ap);
	last_error = e;
	return e;
}

cudaError_t cudaGetLastError(void)
{
	cudaError_t e = last_error;
	last_error = cudaSuccess;
	return e;
}

const char *cudaGetErrorString(cudaError_t e)
{
	switch (e) {
	case cudaSuccess: return "no error";
	case cudaErrorInvalidValue: return "invalid argument";
	case cudaErrorMemoryAllocation: return "out of memory";
	case cudaErrorInvalidConfiguration: return "invalid configuration argument";
	case cudaErrorInsufficientDriver: return "CUDA driver version is insufficient";
	case cudaErrorInvalidDeviceFunction: return "invalid device function";
	case cudaErrorNoDevice: return "no CUDA-capable device is detected";
	case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
	case cudaErrorLaunchFailure: return "unspecified launch failure";
	case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
	case cudaErrorStreamCaptureInvalidated:
		return "operation failed due to a previous error during capture";
	}
	return "unknown error";
}

/* ---------------- streams and capture ---------------- */

/* A piece of queued work: checks its pointers and runs, returning the
 * runtime's error (a cuBLAS or cuDNN failure is cudaErrorLaunchFailure).
 * An eager call runs it at once, a capture records it. */
struct emu_node {
	const char *what;
	std::function<cudaError_t()> run;
};

struct emu_graph {
	std::vector<emu_node> nodes; /* in the order recorded: one stream, a chain */
};
struct emu_graph_exec {
	std::vector<emu_node> nodes; /* its own copy: the graph may go first */
};

struct emu_stream {
	int flags;
	cudaStreamCaptureStatus capture;
	cudaStreamCaptureMode mode;
	emu_graph *graph; /* what the capture has recorded, while it is on */
};
struct emu_event {
	int recorded;
};

static std::set<emu_stream *> capturing;         /* capture not None */
static std::set<const emu_graph *> graphs;       /* live ones, for the checks */
static std::set<const emu_graph_exec *> execs;

static void invalidate(cudaStream_t s)
{
	if (s && s->capture == cudaStreamCaptureStatusActive)
		s->capture = cudaStreamCaptureStatusInvalidated;
}

/* 1 when call (which would synchronize, allocate or touch host memory) is
 * refused: on s capturing, or while any Global or ThreadLocal capture is on
 * (one thread here).  Refused: says so, invalidates the captures concerned,
 * sets the last error. */
static int refused(const char *call, cudaStream_t s)
{
	std::vector<emu_stream *> hit;
	if (s && s->capture != cudaStreamCaptureStatusNone)
		hit.push_back(s);
	else
		for (emu_stream *c : capturing)
			if (c->mode != cudaStreamCaptureModeRelaxed)
				hit.push_back(c);
	if (hit.empty())
		return 0;
	for (emu_stream *c : hit)
		invalidate(c);
	fail(cudaErrorStreamCaptureUnsupported,
	     "%s while stream %p is capturing: not permitted, the capture is invalidated", call,
	     (void *)hit[0]);
	return 1;
}

static cudaError_t as_cuda(cudaError_t e)
{
	return e;
}

static cudaError_t as_cuda(cublasStatus_t st)
{
	return st == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorLaunchFailure;
}

static cudaError_t as_cuda(cudnnStatus_t st)
{
	return st == CUDNN_STATUS_SUCCESS ? cudaSuccess : cudaErrorLaunchFailure;
}

/* Queues op (it checks its pointers and runs, returning status type S) on
 * stream s: runs it now, or records it when s is capturing and returns ok.
 * Into an invalidated capture: nothing, and gone (the runtime's error also
 * set as the last one). */
template <typename S, typename F>
static S enqueue(cudaStream_t s, const char *what, F op, S ok, S gone)
{
	if (!s || s->capture == cudaStreamCaptureStatusNone)
		return op();
	if (s->capture == cudaStreamCaptureStatusInvalidated) {
		say("%s on stream %p, whose capture was invalidated: not recorded", what, (void *)s);
		if (std::is_same<S, cudaError_t>::value)
			last_error = cudaErrorStreamCaptureInvalidated;
		return gone;
	}
	s->graph->nodes.push_back(emu_node{what, [op = std::move(op)]() { return as_cuda(op()); }});
	return ok;
}

/* ---------------- the device ---------------- */

cudaError_t cudaGetDeviceCount(int *count)
{
	*count = 1;
	return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev)
{
	return dev == 0 ? cudaSuccess : fail(cudaErrorInvalidValue, "cudaSetDevice(%d)", dev);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev)
{
	if (dev != 0)
		return cudaErrorInvalidValue;
	memset(p, 0, sizeof *p);
	snprintf(p->name, sizeof p->name, "CPU emulation (tests/emu)");
	p->major = 9;
	p->minor = 0;
	p->multiProcessorCount = 1;
	p->totalGlobalMem = (size_t)8 << 30;
	return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *v)
{
	*v = 13000;
	return cudaSuccess;
}

cudaError_t emu_func_attributes(cudaFuncAttributes *a, const void *f)
{
	if (!f)
		return cudaErrorInvalidDeviceFunction;
	a->maxThreadsPerBlock = 1024;
	return cudaSuccess;
}

/* ---------------- memory ---------------- */

static std::map<const char *, size_t> dev_blocks; /* start -> bytes */
static std::set<const void *> host_blocks;        /* cudaMallocHost */

/* 1 when [p, p + bytes) lies inside one device block */
static int dev_range(const void *p, size_t bytes)
{
	const char *c = (const char *)p;
	auto it = dev_blocks.upper_bound(c);
	if (it == dev_blocks.begin())
		return 0;
	--it;
	return c >= it->first && c + bytes <= it->first + it->second;
}

static int is_dev(const void *p)
{
	return dev_range(p, 1);
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
	if (refused("cudaMalloc", NULL))
		return cudaErrorStreamCaptureUnsupported;
	size_t b = bytes ? bytes : 1;
	char *m = (char *)aligned_alloc(256, (b + 255) / 256 * 256);
	if (!m)
		return last_error = cudaErrorMemoryAllocation;
	memset(m, 0xff, b); /* NaN floats: a GPU leaves new memory unset */
	dev_blocks[m] = b;
	*p = m;
	return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
	if (refused("cudaFree", NULL))
		return cudaErrorStreamCaptureUnsupported;
	if (!p)
		return cudaSuccess;
	auto it = dev_blocks.find((const char *)p);
	if (it == dev_blocks.end())
		return fail(cudaErrorInvalidValue, "cudaFree(%p): not the start of a device block", p);
	dev_blocks.erase(it);
	free(p);
	return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
	if (refused("cudaMallocHost", NULL))
		return cudaErrorStreamCaptureUnsupported;
	*p = malloc(bytes ? bytes : 1);
	if (!*p)
		return last_error = cudaErrorMemoryAllocation;
	host_blocks.insert(*p);
	return cudaSuccess;
}

cudaError_t cudaFreeHost(void *p)
{
	if (refused("cudaFreeHost", NULL))
		return cudaErrorStreamCaptureUnsupported;
	if (!p)
		return cudaSuccess;
	if (!host_blocks.erase(p))
		return fail(cudaErrorInvalidValue, "cudaFreeHost(%p): not from cudaMallocHost", p);
	free(p);
	return cudaSuccess;
}

/* the copy of cudaMemcpyAsync, when it runs (kind checked at the call) */
static cudaError_t copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
	int dd = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
	int sd = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
	if (dd ? !dev_range(dst, bytes) : is_dev(dst))
		return fail(cudaErrorInvalidValue, "cudaMemcpyAsync kind %d: destination %p (%zu bytes) is %s",
		            kind, dst, bytes, dd ? "not inside one device block" : "device memory");
	if (sd ? !dev_range(src, bytes) : is_dev(src))
		return fail(cudaErrorInvalidValue, "cudaMemcpyAsync kind %d: source %p (%zu bytes) is %s", kind,
		            src, bytes, sd ? "not inside one device block" : "device memory");
	const char *a = (const char *)dst, *b = (const char *)src;
	if (a < b + bytes && b < a + bytes)
		return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: source and destination overlap");
	memcpy(dst, src, bytes);
	return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s)
{
	if (!bytes)
		return cudaSuccess;
	if (kind != cudaMemcpyHostToDevice && kind != cudaMemcpyDeviceToHost &&
	    kind != cudaMemcpyDeviceToDevice)
		return fail(cudaErrorInvalidValue, "cudaMemcpyAsync: kind %d not used by the backend", kind);
	/* pageable host memory cannot be captured; pinned could, the backend never does */
	if (kind != cudaMemcpyDeviceToDevice && s && s->capture != cudaStreamCaptureStatusNone &&
	    refused(kind == cudaMemcpyHostToDevice ? "cudaMemcpyAsync host to device"
	                                           : "cudaMemcpyAsync device to host", s))
		return cudaErrorStreamCaptureUnsupported;
	return enqueue(s, "cudaMemcpyAsync", [=]() { return copy(dst, src, bytes, kind); }, cudaSuccess,
	               cudaErrorStreamCaptureInvalidated);
}

static cudaError_t fill(void *p, int v, size_t bytes)
{
	if (!dev_range(p, bytes))
		return fail(cudaErrorInvalidValue, "cudaMemsetAsync: %p (%zu bytes) not inside one device block",
		            p, bytes);
	memset(p, v, bytes);
	return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s)
{
	if (!bytes)
		return cudaSuccess;
	return enqueue(s, "cudaMemsetAsync", [=]() { return fill(p, v, bytes); }, cudaSuccess,
	               cudaErrorStreamCaptureInvalidated);
}

/* ---------------- streams, events and graphs ---------------- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
	*s = new emu_stream{(int)flags, cudaStreamCaptureStatusNone, cudaStreamCaptureModeGlobal, NULL};
	return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
	if (refused("cudaStreamSynchronize", s))
		return cudaErrorStreamCaptureUnsupported;
	return cudaSuccess; /* everything queued has run */
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned)
{
	*e = new emu_event{0};
	return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
	if (!e)
		return fail(cudaErrorInvalidValue, "cudaEventRecord: no event");
	if (refused("cudaEventRecord", s))
		return cudaErrorStreamCaptureUnsupported;
	e->recorded = 1;
	return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
	if (!e)
		return fail(cudaErrorInvalidValue, "cudaEventSynchronize: no event");
	if (refused("cudaEventSynchronize", NULL))
		return cudaErrorStreamCaptureUnsupported;
	return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode)
{
	if (!s)
		return fail(cudaErrorStreamCaptureUnsupported,
		            "cudaStreamBeginCapture: the legacy default stream cannot capture");
	if (mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
	    mode != cudaStreamCaptureModeRelaxed)
		return fail(cudaErrorInvalidValue, "cudaStreamBeginCapture: mode %d", mode);
	if (s->capture != cudaStreamCaptureStatusNone)
		return fail(cudaErrorIllegalState, "cudaStreamBeginCapture: stream %p is capturing already",
		            (void *)s);
	s->capture = cudaStreamCaptureStatusActive;
	s->mode = mode;
	s->graph = new emu_graph;
	capturing.insert(s);
	return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
	if (!g)
		return fail(cudaErrorInvalidValue, "cudaStreamEndCapture: no graph pointer");
	*g = NULL;
	if (!s || s->capture == cudaStreamCaptureStatusNone)
		return fail(cudaErrorIllegalState, "cudaStreamEndCapture: stream %p is not capturing",
		            (void *)s);
	emu_graph *r = s->graph;
	int spoilt = s->capture == cudaStreamCaptureStatusInvalidated;
	s->capture = cudaStreamCaptureStatusNone;
	s->graph = NULL;
	capturing.erase(s);
	if (spoilt) {
		delete r;
		return fail(cudaErrorStreamCaptureInvalidated,
		            "cudaStreamEndCapture: the capture on stream %p was invalidated, no graph",
		            (void *)s);
	}
	graphs.insert(r);
	*g = r;
	return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *st)
{
	if (!st)
		return fail(cudaErrorInvalidValue, "cudaStreamIsCapturing: no status pointer");
	*st = s ? s->capture : cudaStreamCaptureStatusNone;
	return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long flags)
{
	if (!x)
		return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: no exec pointer");
	if (!graphs.count(g))
		return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: %p is not a live graph", (void *)g);
	if (flags)
		return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: flags %llu (only 0 is emulated)",
		            flags);
	*x = new emu_graph_exec{g->nodes};
	execs.insert(*x);
	return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s)
{
	if (!execs.count(x))
		return fail(cudaErrorInvalidValue, "cudaGraphLaunch: %p is not a live graph exec", (void *)x);
	if (s && s->capture != cudaStreamCaptureStatusNone && refused("cudaGraphLaunch", s))
		return cudaErrorStreamCaptureUnsupported;
	for (size_t i = 0; i < x->nodes.size(); i++) {
		cudaError_t e = x->nodes[i].run();
		if (e != cudaSuccess)
			return fail(e, "cudaGraphLaunch: node %zu of %zu (%s) failed, the rest did not run", i + 1,
			            x->nodes.size(), x->nodes[i].what);
	}
	return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x)
{
	if (!execs.erase(x))
		return fail(cudaErrorInvalidValue, "cudaGraphExecDestroy: %p is not a live graph exec",
		            (void *)x);
	delete x;
	return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t g)
{
	if (!graphs.erase(g))
		return fail(cudaErrorInvalidValue, "cudaGraphDestroy: %p is not a live graph", (void *)g);
	delete g;
	return cudaSuccess;
}

/* ---------------- kernels ---------------- */

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {

const size_t STACK_BYTES = 128 * 1024;

/* A block's threads are fibers.  Each starts on its own stack (start());
 * after that, switches are _setjmp/_longjmp (no signal-mask system call,
 * unlike swapcontext): a barrier jumps back to the scheduler, the scheduler
 * jumps back into the fiber. */
struct fiber {
	ucontext_t ctx;
	jmp_buf jb;
	char *stack;
	int state; /* 0 runnable, 1 at a barrier, 2 finished */
	int started;
};

std::vector<fiber> fibers;
jmp_buf sched_jb;
int cur;
int mode;      /* 1: plain calls (no barrier expected), 2: fibers */
int barriers;  /* barriers met in this launch */
const char *kname;
void (*kbody)(void *);
void *kctx;

/* per kernel: 0 unknown, 1 uses barriers, 2 never did */
std::unordered_map<const void *, int> kinds;

void fiber_main()
{
	kbody(kctx);
	fibers[cur].state = 2;
	_longjmp(sched_jb, 1); /* never returns: its stack is reused */
}

void set_thread(unsigned t)
{
	threadIdx.x = t % blockDim.x;
	threadIdx.y = t / blockDim.x % blockDim.y;
	threadIdx.z = t / (blockDim.x * blockDim.y);
}

int reverse_order()
{
	static int r = -1;
	if (r < 0) {
		const char *o = getenv("EMU_ORDER");
		r = o && !strcmp(o, "reverse");
	}
	return r;
}

/* first entry of a fiber: on x86-64, switch the stack pointer and call
 * fiber_main (which never returns); elsewhere through setcontext (a system
 * call for the signal mask, per fiber start) */
void start(fiber &f)
{
#if defined(__x86_64__)
	char *top = (char *)(((uintptr_t)(f.stack + STACK_BYTES)) & ~(uintptr_t)15);
	__asm__ volatile("mov %0, %%rsp\n\tcall *%1\n\tud2" : : "r"(top), "r"(fiber_main) : "memory");
#else
	setcontext(&f.ctx);
#endif
}

/* runs fiber t until its next barrier or its end */
void resume(unsigned t)
{
	fiber &f = fibers[t];
	f.state = 0;
	set_thread(t);
	cur = (int)t;
	if (_setjmp(sched_jb))
		return;
	if (!f.started) {
		f.started = 1;
		start(f);
	}
	_longjmp(f.jb, 1);
}

/* one block as fibers; 0, or -1 when a barrier was not reached by all */
int run_fibers(unsigned nt)
{
	if (fibers.size() < nt) {
		size_t old = fibers.size();
		fibers.resize(nt);
		for (size_t i = old; i < nt; i++)
			fibers[i].stack = (char *)malloc(STACK_BYTES);
	}
	for (unsigned t = 0; t < nt; t++) {
		fiber &f = fibers[t];
#if !defined(__x86_64__)
		getcontext(&f.ctx);
		f.ctx.uc_stack.ss_sp = f.stack;
		f.ctx.uc_stack.ss_size = STACK_BYTES;
		f.ctx.uc_link = NULL;
		makecontext(&f.ctx, fiber_main, 0);
#endif
		f.state = 0;
		f.started = 0;
	}
	int rev = reverse_order();
	for (;;) {
		for (unsigned i = 0; i < nt; i++) {
			unsigned t = rev ? nt - 1 - i : i;
			if (fibers[t].state != 2)
				resume(t);
		}
		unsigned waiting = 0, done = 0;
		for (unsigned t = 0; t < nt; t++) {
			waiting += fibers[t].state == 1;
			done += fibers[t].state == 2;
		}
		if (!waiting)
			return 0;
		if (done)
			return -1; /* some threads ended while others wait at a barrier */
	}
}

} // namespace

void __syncthreads(void)
{
	if (mode != 2) {
		say("kernel %s called __syncthreads although its first launch did not: not emulated", kname);
		abort();
	}
	barriers++;
	fiber &f = fibers[cur];
	f.state = 1;
	if (!_setjmp(f.jb))
		_longjmp(sched_jb, 1);
}

static void call(void *body)
{
	(*(const std::function<void()> *)body)();
}

/* one launch, when it runs (its shape checked at the launch): 0, or
 * cudaErrorLaunchFailure for a barrier not every thread of a block reached */
static cudaError_t run_kernel(dim3 g, dim3 b, const std::function<void()> &body, const void *key,
                              const char *name)
{
	unsigned long long nt = (unsigned long long)b.x * b.y * b.z;
	int &kind = kinds[key];
	gridDim = g;
	blockDim = b;
	kname = name;
	kbody = call;
	kctx = (void *)&body;
	mode = kind == 2 ? 1 : 2;
	barriers = 0;
	for (unsigned z = 0; z < g.z; z++)
		for (unsigned y = 0; y < g.y; y++)
			for (unsigned x = 0; x < g.x; x++) {
				blockIdx.x = x, blockIdx.y = y, blockIdx.z = z;
				if (mode == 1) {
					for (unsigned t = 0; t < nt; t++) {
						set_thread(t);
						body();
					}
				} else if (run_fibers((unsigned)nt) < 0) {
					say("kernel %s: block (%u,%u,%u): a __syncthreads not reached by every thread",
					    name, x, y, z);
					return cudaErrorLaunchFailure;
				}
			}
	if (kind == 0)
		kind = barriers ? 1 : 2;
	return cudaSuccess;
}

void emu_kernel(cudaStream_t s, dim3 g, dim3 b, size_t shmem, std::function<void()> body,
                const void *key, const char *name)
{
	unsigned long long nt = (unsigned long long)b.x * b.y * b.z;
	if (!nt || nt > 1024 || b.z > 64 || !g.x || !g.y || !g.z || g.x > 2147483647u || g.y > 65535 ||
	    g.z > 65535 || shmem > 48 * 1024) {
		say("kernel %s: launch of grid %ux%ux%u, blocks %ux%ux%u, %zu B shared: over the limits", name,
		    g.x, g.y, g.z, b.x, b.y, b.z, shmem);
		last_error = cudaErrorInvalidConfiguration;
		invalidate(s);
		return;
	}
	cudaError_t e = enqueue(
		s, name, [g, b, body = std::move(body), key, name]() {
			return run_kernel(g, b, body, key, name);
		},
		cudaSuccess, cudaErrorStreamCaptureInvalidated);
	if (e != cudaSuccess)
		last_error = e;
}

/* ---------------- cuBLAS ---------------- */

struct emu_blas {
	int math;
	cudaStream_t stream;
	void *ws; /* cublasSetWorkspace's, NULL: cuBLAS's own pool */
	size_t wsb;
};

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
	*h = new emu_blas{0, NULL, NULL, 0};
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	h->stream = s;
	h->ws = NULL; /* as cuBLAS: back to the default pool */
	h->wsb = 0;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes)
{
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	if (ws || bytes) {
		if ((uintptr_t)ws % 256) {
			say("cublasSetWorkspace: %p is not aligned to 256 bytes", ws);
			return CUBLAS_STATUS_INVALID_VALUE;
		}
		if (!dev_range(ws, bytes ? bytes : 1)) {
			say("cublasSetWorkspace: %zu B at %p is not inside one device block", bytes, ws);
			return CUBLAS_STATUS_INVALID_VALUE;
		}
	}
	h->ws = ws;
	h->wsb = bytes;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m)
{
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	h->math = m;
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetAtomicsMode(cublasHandle_t h, cublasAtomicsMode_t)
{
	return h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

/* a column-major rows x cols matrix with leading dimension ld in one device block */
static int mat_ok(const char *what, const float *p, int rows, int cols, int ld)
{
	if (rows <= 0 || cols <= 0)
		return 1;
	size_t bytes = ((size_t)(cols - 1) * ld + rows) * sizeof(float);
	if (dev_range(p, bytes))
		return 1;
	say("cublasSgemm: %s (%d x %d, ld %d, %zu B at %p) is not inside one device block", what, rows,
	    cols, ld, bytes, (const void *)p);
	return 0;
}

/* the product, when it runs (its values checked at the call); m, n > 0 */
static cublasStatus_t sgemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            float alpha, const float *A, int lda, const float *B, int ldb,
                            float beta, float *C, int ldc, const void *ws, size_t wsb)
{
	int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
	int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
	if ((k && (!mat_ok("A", A, ar, ac, lda) || !mat_ok("B", B, br, bc, ldb))) ||
	    !mat_ok("C", C, m, n, ldc))
		return CUBLAS_STATUS_INVALID_VALUE;
	if (wsb && !dev_range(ws, wsb)) {
		say("cublasSgemm: its workspace (%zu B at %p) is no longer device memory", wsb, ws);
		return CUBLAS_STATUS_INVALID_VALUE;
	}
	if (!k) { /* C = beta C, as cuBLAS (BLAS would too) */
		for (int j = 0; j < n; j++)
			for (int i = 0; i < m; i++)
				C[(size_t)j * ldc + i] = beta == 0.0f ? 0.0f : beta * C[(size_t)j * ldc + i];
		return CUBLAS_STATUS_SUCCESS;
	}
	cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
	            tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha, A, lda, B, ldb, beta,
	            C, ldc);
	return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C, int ldc)
{
	if (!h)
		return CUBLAS_STATUS_NOT_INITIALIZED;
	int ar = ta == CUBLAS_OP_N ? m : k;
	int br = tb == CUBLAS_OP_N ? k : n;
	if (m < 0 || n < 0 || k < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
	    ldc < (m > 1 ? m : 1) || (ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) ||
	    (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T)) {
		say("cublasSgemm: invalid value (op %d %d, m %d n %d k %d, ld %d %d %d)", ta, tb, m, n, k, lda,
		    ldb, ldc);
		return CUBLAS_STATUS_INVALID_VALUE;
	}
	if (!m || !n)
		return CUBLAS_STATUS_SUCCESS;
	float al = *alpha, be = *beta; /* host pointer mode: read at the call */
	const void *ws = h->ws;
	size_t wsb = h->wsb;
	return enqueue(
		h->stream, "cublasSgemm",
		[=]() { return sgemm(ta, tb, m, n, k, al, A, lda, B, ldb, be, C, ldc, ws, wsb); },
		CUBLAS_STATUS_SUCCESS, CUBLAS_STATUS_EXECUTION_FAILED);
}

/* ---------------- cuDNN ---------------- */

struct emu_dnn {
	cudaStream_t stream;
};
struct emu_tensor {
	int set, n, c, h, w;
};
struct emu_filter {
	int set, k, c, h, w;
};
struct emu_conv {
	int set, ph, pw, sh, sw, dh, dw;
	cudnnMathType_t math;
};

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
	*h = new emu_dnn{NULL};
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s)
{
	if (!h)
		return CUDNN_STATUS_NOT_INITIALIZED;
	h->stream = s;
	return CUDNN_STATUS_SUCCESS;
}

const char *cudnnGetErrorString(cudnnStatus_t st)
{
	switch (st) {
	case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
	case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
	case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
	case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
	case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
	}
	return "CUDNN_STATUS_UNKNOWN";
}

size_t cudnnGetVersion(void)
{
	return 91900;
}

static cudnnStatus_t bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay("cuDNN: ", fmt, ap);
	va_end(ap);
	return CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d)
{
	*d = new emu_tensor();
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f,
                                         cudnnDataType_t t, int n, int c, int h, int w)
{
	if (f != CUDNN_TENSOR_NCHW || t != CUDNN_DATA_FLOAT || n < 1 || c < 1 || h < 1 || w < 1)
		return bad("tensor descriptor %dx%dx%dx%d (format %d, type %d)", n, c, h, w, f, t);
	*d = emu_tensor{1, n, c, h, w};
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d)
{
	delete d;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d)
{
	*d = new emu_filter();
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t,
                                         cudnnTensorFormat_t f, int k, int c, int h, int w)
{
	if (f != CUDNN_TENSOR_NCHW || t != CUDNN_DATA_FLOAT || k < 1 || c < 1 || h < 1 || w < 1)
		return bad("filter descriptor %dx%dx%dx%d (format %d, type %d)", k, c, h, w, f, t);
	*d = emu_filter{1, k, c, h, w};
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d)
{
	delete d;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d)
{
	*d = new emu_conv();
	(*d)->math = CUDNN_DEFAULT_MATH;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph, int pw,
                                              int sh, int sw, int dh, int dw,
                                              cudnnConvolutionMode_t mode, cudnnDataType_t t)
{
	if (ph < 0 || pw < 0 || sh < 1 || sw < 1 || dh < 1 || dw < 1 || t != CUDNN_DATA_FLOAT)
		return bad("convolution descriptor pad %d,%d stride %d,%d dilation %d,%d type %d", ph, pw, sh,
		           sw, dh, dw, t);
	if (mode != CUDNN_CROSS_CORRELATION)
		return bad("convolution mode %d: the backend computes cross-correlation (PyTorch's)", mode);
	cudnnMathType_t m = d->math;
	*d = emu_conv{1, ph, pw, sh, sw, dh, dw, m};
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m)
{
	if (m != CUDNN_DEFAULT_MATH && m != CUDNN_TENSOR_OP_MATH &&
	    m != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION && m != CUDNN_FMA_MATH)
		return bad("math type %d", m);
	d->math = m;
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d)
{
	delete d;
	return CUDNN_STATUS_SUCCESS;
}

static void out_dims(const emu_conv *c, const emu_tensor *x, const emu_filter *w, int *oh, int *ow)
{
	*oh = (x->h + 2 * c->ph - c->dh * (w->h - 1) - 1) / c->sh + 1;
	*ow = (x->w + 2 * c->pw - c->dw * (w->w - 1) - 1) / c->sw + 1;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t c,
                                                    cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int *n, int *k,
                                                    int *h, int *wo)
{
	if (!c->set || !x->set || !w->set)
		return bad("output dim: a descriptor was not set");
	if (x->c != w->c)
		return bad("output dim: input has %d channels, the filter %d", x->c, w->c);
	*n = x->n;
	*k = w->k;
	out_dims(c, x, w, h, wo);
	return CUDNN_STATUS_SUCCESS;
}

/* the shapes of one convolution agree (x, w, y as forward sees them) */
static cudnnStatus_t shapes(const char *what, const emu_tensor *x, const emu_filter *w,
                            const emu_conv *c, const emu_tensor *y)
{
	if (!x->set || !w->set || !c->set || !y->set)
		return bad("%s: a descriptor was not set", what);
	int oh, ow;
	out_dims(c, x, w, &oh, &ow);
	if (x->c != w->c || y->n != x->n || y->c != w->k || y->h != oh || y->w != ow)
		return bad("%s: input %dx%dx%dx%d, filter %dx%dx%dx%d, output %dx%dx%dx%d disagree (output "
		           "should be %dx%dx%dx%d)", what, x->n, x->c, x->h, x->w, w->k, w->c, w->h, w->w,
		           y->n, y->c, y->h, y->w, x->n, w->k, oh, ow);
	return CUDNN_STATUS_SUCCESS;
}

/* The heuristics' lists, best first.  Workspace per entry: a function of the
 * shape, so that the backend's workspace choice (its scratch or its own)
 * is exercised. */
struct entry {
	int algo;
	cudnnMathType_t math;
	cudnnDeterminism_t det;
	int ws_per_out; /* workspace bytes per output element */
};
static const entry fwd_list[] = {
	{CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, CUDNN_TENSOR_OP_MATH, CUDNN_DETERMINISTIC, 8},
	{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_DEFAULT_MATH, CUDNN_DETERMINISTIC, 4},
	{CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_FMA_MATH, CUDNN_DETERMINISTIC, 0},
};
static const entry data_list[] = {
	{CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_DEFAULT_MATH, CUDNN_NON_DETERMINISTIC, 0},
	{CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED, CUDNN_TENSOR_OP_MATH, CUDNN_DETERMINISTIC, 8},
	{CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_DEFAULT_MATH, CUDNN_DETERMINISTIC, 2},
};
static const entry filter_list[] = {
	{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_DEFAULT_MATH, CUDNN_NON_DETERMINISTIC, 0},
	{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3, CUDNN_DEFAULT_MATH, CUDNN_NON_DETERMINISTIC, 0},
	{CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_FMA_MATH, CUDNN_DETERMINISTIC, 1},
};

static const entry *find(const entry *list, int n, int algo)
{
	for (int i = 0; i < n; i++)
		if (list[i].algo == algo)
			return &list[i];
	return NULL;
}

/* the entry of algo, usable with the descriptor's math type: a tensor-op
 * algorithm cannot run under FMA math, an FMA one not under TENSOR_OP */
static const entry *usable(const char *what, const entry *list, int n, int algo,
                           const emu_conv *c)
{
	const entry *e = find(list, n, algo);
	if (!e) {
		bad("%s: algorithm %d was not offered by the heuristics", what, algo);
		return NULL;
	}
	if ((e->math == CUDNN_TENSOR_OP_MATH && c->math == CUDNN_FMA_MATH) ||
	    (e->math == CUDNN_FMA_MATH && c->math == CUDNN_TENSOR_OP_MATH)) {
		bad("%s: algorithm %d (math %d) under the descriptor's math %d", what, algo, e->math, c->math);
		return NULL;
	}
	return e;
}

template <typename P>
static void fill_perf(const entry *list, int n, int req, int *ret, P *perf, size_t outs)
{
	int k = 0;
	for (int i = 0; i < n && k < req; i++, k++) {
		memset(&perf[k], 0, sizeof perf[k]);
		perf[k].algo = (decltype(perf[k].algo))list[i].algo;
		perf[k].status = CUDNN_STATUS_SUCCESS;
		perf[k].time = -1.0f;
		perf[k].memory = (size_t)list[i].ws_per_out * outs;
		perf[k].determinism = list[i].det;
		perf[k].mathType = list[i].math;
	}
	*ret = k;
}

static size_t count(const emu_tensor *t)
{
	return (size_t)t->n * t->c * t->h * t->w;
}

static size_t count(const emu_filter *f)
{
	return (size_t)f->k * f->c * f->h * f->w;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, cudnnTensorDescriptor_t x,
                                                     cudnnFilterDescriptor_t w,
                                                     cudnnConvolutionDescriptor_t c,
                                                     cudnnTensorDescriptor_t y, int req,
                                                     int *ret, cudnnConvolutionFwdAlgoPerf_t *p)
{
	cudnnStatus_t st = shapes("forward heuristics", x, w, c, y);
	if (st == CUDNN_STATUS_SUCCESS)
		fill_perf(fwd_list, 3, req, ret, p, count(y));
	return st;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
	cudnnHandle_t, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
	cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, int req, int *ret,
	cudnnConvolutionBwdDataAlgoPerf_t *p)
{
	cudnnStatus_t st = shapes("backward data heuristics", dx, w, c, dy);
	if (st == CUDNN_STATUS_SUCCESS)
		fill_perf(data_list, 3, req, ret, p, count(dx));
	return st;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
	cudnnHandle_t, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
	cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw, int req, int *ret,
	cudnnConvolutionBwdFilterAlgoPerf_t *p)
{
	cudnnStatus_t st = shapes("backward filter heuristics", x, dw, c, dy);
	if (st == CUDNN_STATUS_SUCCESS)
		fill_perf(filter_list, 3, req, ret, p, count(dw));
	return st;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w,
                                                      cudnnConvolutionDescriptor_t c,
                                                      cudnnTensorDescriptor_t y,
                                                      cudnnConvolutionFwdAlgo_t a, size_t *b)
{
	cudnnStatus_t st = shapes("forward workspace", x, w, c, y);
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	const entry *e = usable("forward workspace", fwd_list, 3, a, c);
	if (!e)
		return CUDNN_STATUS_NOT_SUPPORTED;
	*b = (size_t)e->ws_per_out * count(y);
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
	cudnnHandle_t, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
	cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, cudnnConvolutionBwdDataAlgo_t a,
	size_t *b)
{
	cudnnStatus_t st = shapes("backward data workspace", dx, w, c, dy);
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	const entry *e = usable("backward data workspace", data_list, 3, a, c);
	if (!e)
		return CUDNN_STATUS_NOT_SUPPORTED;
	*b = (size_t)e->ws_per_out * count(dx);
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
	cudnnHandle_t, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
	cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw,
	cudnnConvolutionBwdFilterAlgo_t a, size_t *b)
{
	cudnnStatus_t st = shapes("backward filter workspace", x, dw, c, dy);
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	const entry *e = usable("backward filter workspace", filter_list, 3, a, c);
	if (!e)
		return CUDNN_STATUS_NOT_SUPPORTED;
	*b = (size_t)e->ws_per_out * count(dw);
	return CUDNN_STATUS_SUCCESS;
}

/* the buffers and workspace of a call are device memory of the right size */
static cudnnStatus_t buffers(const char *what, const void *a, size_t na, const void *b, size_t nb,
                             const void *o, size_t no, const void *ws, size_t wsb, size_t need)
{
	if (!dev_range(a, na * 4) || !dev_range(b, nb * 4) || !dev_range(o, no * 4))
		return bad("%s: a tensor is not inside one device block", what);
	if (need && (wsb < need || !dev_range(ws, need)))
		return bad("%s: workspace of %zu B at %p, the algorithm needs %zu B of device memory", what, wsb,
		           ws, need);
	return CUDNN_STATUS_SUCCESS;
}

/* out = alpha acc + beta out; beta 0: out is not read (it may hold NaN) */
static void blend(float *out, const double *acc, size_t n, float alpha, float beta)
{
	for (size_t i = 0; i < n; i++)
		out[i] = beta == 0.0f ? (float)(alpha * acc[i]) : (float)(alpha * acc[i] + beta * (double)out[i]);
}

/* The convolutions: per image, the im2col matrix in double (rows c,r,s;
 * columns oh,ow; zero where the tap falls in the padding) and double
 * products through cblas_dgemm, so that the emulation is exact to double
 * rounding and fast enough for resnet18 (the CPU backend's float Winograd
 * and im2col paths are another computation). */
struct geom {
	int N, C, H, W, K, R, S, OH, OW, ph, pw, sh, sw, dh, dw;
	int rows() const { return C * R * S; }
	int cols() const { return OH * OW; }
};

static geom geom_of(const emu_tensor *x, const emu_filter *w, const emu_conv *c, const emu_tensor *y)
{
	return geom{x->n, x->c, x->h, x->w, w->k, w->h, w->w, y->h, y->w, c->ph, c->pw, c->sh, c->sw, c->dh, c->dw};
}

/* col [rows, cols] of image x (float, [C,H,W]) */
static void im2col(const geom &g, const float *x, double *col)
{
	for (int ch = 0; ch < g.C; ch++)
		for (int r = 0; r < g.R; r++)
			for (int s = 0; s < g.S; s++) {
				double *row = col + (size_t)((ch * g.R + r) * g.S + s) * g.cols();
				for (int oh = 0; oh < g.OH; oh++) {
					int ih = oh * g.sh - g.ph + r * g.dh;
					for (int ow = 0; ow < g.OW; ow++) {
						int iw = ow * g.sw - g.pw + s * g.dw;
						row[oh * g.OW + ow] = ih < 0 || ih >= g.H || iw < 0 || iw >= g.W ? 0.0
						                      : x[((size_t)ch * g.H + ih) * g.W + iw];
					}
				}
			}
}

/* dx [C,H,W] (double) += the taps of dcol [rows, cols] */
static void col2im(const geom &g, const double *col, double *dx)
{
	for (int ch = 0; ch < g.C; ch++)
		for (int r = 0; r < g.R; r++)
			for (int s = 0; s < g.S; s++) {
				const double *row = col + (size_t)((ch * g.R + r) * g.S + s) * g.cols();
				for (int oh = 0; oh < g.OH; oh++) {
					int ih = oh * g.sh - g.ph + r * g.dh;
					if (ih < 0 || ih >= g.H)
						continue;
					for (int ow = 0; ow < g.OW; ow++) {
						int iw = ow * g.sw - g.pw + s * g.dw;
						if (iw >= 0 && iw < g.W)
							dx[((size_t)ch * g.H + ih) * g.W + iw] += row[oh * g.OW + ow];
					}
				}
			}
}

static std::vector<double> to_double(const float *p, size_t n)
{
	return std::vector<double>(p, p + n);
}

/* The three convolutions, when they run: descriptors as they were at the
 * call (shapes and algorithm checked there), need the workspace the
 * algorithm asks for. */
static cudnnStatus_t conv_forward(float alpha, const emu_tensor &xd, const void *x,
                                  const emu_filter &wd, const void *w, const emu_conv &c,
                                  void *ws, size_t wsb, size_t need, float beta,
                                  const emu_tensor &yd, void *y)
{
	cudnnStatus_t st = buffers("forward", x, count(&xd), w, count(&wd), y, count(&yd), ws, wsb, need);
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	geom g = geom_of(&xd, &wd, &c, &yd);
	std::vector<double> Wd = to_double((const float *)w, count(&wd)), col((size_t)g.rows() * g.cols());
	std::vector<double> acc(count(&yd), 0.0);
	for (int n = 0; n < g.N; n++) {
		im2col(g, (const float *)x + (size_t)n * g.C * g.H * g.W, col.data());
		/* y[n] [K, cols] = W [K, rows] col [rows, cols] */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g.K, g.cols(), g.rows(), 1.0, Wd.data(),
		            g.rows(), col.data(), g.cols(), 0.0, acc.data() + (size_t)n * g.K * g.cols(), g.cols());
	}
	blend((float *)y, acc.data(), acc.size(), alpha, beta);
	return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t conv_data(float alpha, const emu_filter &wd, const void *w,
                               const emu_tensor &dyd, const void *dy, const emu_conv &c, void *ws,
                               size_t wsb, size_t need, float beta, const emu_tensor &dxd, void *dx)
{
	cudnnStatus_t st = buffers("backward data", w, count(&wd), dy, count(&dyd), dx, count(&dxd), ws,
	                           wsb, need);
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	geom g = geom_of(&dxd, &wd, &c, &dyd);
	std::vector<double> Wd = to_double((const float *)w, count(&wd)), col((size_t)g.rows() * g.cols());
	std::vector<double> acc(count(&dxd), 0.0);
	for (int n = 0; n < g.N; n++) {
		std::vector<double> dy1 = to_double((const float *)dy + (size_t)n * g.K * g.cols(), (size_t)g.K * g.cols());
		/* dcol [rows, cols] = Wᵀ [rows, K] dy[n] [K, cols] */
		cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g.rows(), g.cols(), g.K, 1.0, Wd.data(),
		            g.rows(), dy1.data(), g.cols(), 0.0, col.data(), g.cols());
		col2im(g, col.data(), acc.data() + (size_t)n * g.C * g.H * g.W);
	}
	blend((float *)dx, acc.data(), acc.size(), alpha, beta);
	return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t conv_filter(float alpha, const emu_tensor &xd, const void *x,
                                 const emu_tensor &dyd, const void *dy, const emu_conv &c,
                                 void *ws, size_t wsb, size_t need, float beta,
                                 const emu_filter &dwd, void *dw)
{
	cudnnStatus_t st = buffers("backward filter", x, count(&xd), dy, count(&dyd), dw, count(&dwd), ws,
	                           wsb, need);
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	geom g = geom_of(&xd, &dwd, &c, &dyd);
	std::vector<double> col((size_t)g.rows() * g.cols()), acc(count(&dwd), 0.0);
	for (int n = 0; n < g.N; n++) {
		im2col(g, (const float *)x + (size_t)n * g.C * g.H * g.W, col.data());
		std::vector<double> dy1 = to_double((const float *)dy + (size_t)n * g.K * g.cols(), (size_t)g.K * g.cols());
		/* dW [K, rows] += dy[n] [K, cols] colᵀ [cols, rows] */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g.K, g.rows(), g.cols(), 1.0, dy1.data(),
		            g.cols(), col.data(), g.cols(), 1.0, acc.data(), g.rows());
	}
	blend((float *)dw, acc.data(), acc.size(), alpha, beta);
	return CUDNN_STATUS_SUCCESS;
}

/* alpha and beta are host pointers (float for float data), read at the call */
static float host_float(const void *p)
{
	return *(const float *)p;
}

/* What the three convolutions check at the call (the handle; the shapes of
 * x, w, y under c; algorithm algo offered in list and usable) and what their
 * node keeps: alpha and beta read now, copies of the descriptors (the
 * caller may change or destroy them after a capture), the workspace bytes
 * the algorithm needs for out_count outputs. */
struct conv_call {
	float alpha, beta;
	emu_tensor x, y;
	emu_filter w;
	emu_conv c;
	size_t need;
};

static cudnnStatus_t conv_check(conv_call *k, const char *what, cudnnHandle_t h,
                                const void *alpha, const void *beta, cudnnTensorDescriptor_t xd,
                                cudnnFilterDescriptor_t wd, cudnnConvolutionDescriptor_t c,
                                cudnnTensorDescriptor_t yd, const entry *list, int algo,
                                size_t out_count)
{
	if (!h)
		return bad("%s: no handle", what);
	cudnnStatus_t st = shapes(what, xd, wd, c, yd);
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	const entry *e = usable(what, list, 3, algo, c);
	if (!e)
		return CUDNN_STATUS_NOT_SUPPORTED;
	*k = conv_call{host_float(alpha), host_float(beta), *xd, *yd, *wd, *c,
	               (size_t)e->ws_per_out * out_count};
	return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha,
                                      cudnnTensorDescriptor_t xd, const void *x,
                                      cudnnFilterDescriptor_t wd, const void *w,
                                      cudnnConvolutionDescriptor_t c,
                                      cudnnConvolutionFwdAlgo_t a, void *ws, size_t wsb,
                                      const void *beta, cudnnTensorDescriptor_t yd, void *y)
{
	conv_call k;
	cudnnStatus_t st = conv_check(&k, "forward", h, alpha, beta, xd, wd, c, yd, fwd_list, a,
	                              count(yd));
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	return enqueue(
		h->stream, "cudnnConvolutionForward",
		[=]() {
			return conv_forward(k.alpha, k.x, x, k.w, w, k.c, ws, wsb, k.need, k.beta, k.y, y);
		},
		CUDNN_STATUS_SUCCESS, CUDNN_STATUS_EXECUTION_FAILED);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha,
                                           cudnnFilterDescriptor_t wd, const void *w,
                                           cudnnTensorDescriptor_t dyd, const void *dy,
                                           cudnnConvolutionDescriptor_t c,
                                           cudnnConvolutionBwdDataAlgo_t a, void *ws,
                                           size_t wsb, const void *beta,
                                           cudnnTensorDescriptor_t dxd, void *dx)
{
	conv_call k;
	cudnnStatus_t st = conv_check(&k, "backward data", h, alpha, beta, dxd, wd, c, dyd,
	                              data_list, a, count(dxd));
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	return enqueue(
		h->stream, "cudnnConvolutionBackwardData",
		[=]() {
			return conv_data(k.alpha, k.w, w, k.y, dy, k.c, ws, wsb, k.need, k.beta, k.x, dx);
		},
		CUDNN_STATUS_SUCCESS, CUDNN_STATUS_EXECUTION_FAILED);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha,
                                             cudnnTensorDescriptor_t xd, const void *x,
                                             cudnnTensorDescriptor_t dyd, const void *dy,
                                             cudnnConvolutionDescriptor_t c,
                                             cudnnConvolutionBwdFilterAlgo_t a, void *ws,
                                             size_t wsb, const void *beta,
                                             cudnnFilterDescriptor_t dwd, void *dw)
{
	conv_call k;
	cudnnStatus_t st = conv_check(&k, "backward filter", h, alpha, beta, xd, dwd, c, dyd,
	                              filter_list, a, count(dwd));
	if (st != CUDNN_STATUS_SUCCESS)
		return st;
	return enqueue(
		h->stream, "cudnnConvolutionBackwardFilter",
		[=]() {
			return conv_filter(k.alpha, k.x, x, k.y, dy, k.c, ws, wsb, k.need, k.beta, k.w, dw);
		},
		CUDNN_STATUS_SUCCESS, CUDNN_STATUS_EXECUTION_FAILED);
}
