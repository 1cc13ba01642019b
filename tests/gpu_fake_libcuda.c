/* A fake libcuda.so.1 (and libcupti) for tests on machines without a GPU, as strict as the
 * real driver where kiln's CUDA backend can go wrong: host memory behind device pointers;
 * module images (cubin ELF or PTX text) parsed for their kernels and parameter sizes
 * (cuModuleGetFunction refuses a name the image lacks; cuFuncGetParamInfo exported);
 * launch limits (grid, block, registers, dynamic shared memory at most 48 KiB minus the
 * kernel's static shared memory unless cuFuncSetAttribute opted in); asynchronous work: a
 * faulting launch returns CUDA_SUCCESS, its error shows on the next synchronizing call or
 * k calls later, and then every call returns it (sticky, as cuda.h documents); events read
 * a virtual GPU clock and are complete only once synchronized. The same library exports a
 * fake libcupti (point $KILN_LIBCUPTI at it): kernel and external-correlation activity
 * records, with dropped, zero-timestamp, inverted and out-of-order records on request.
 * Module images may also be fatbins (promoted headers load them).
 * Environment (read at each call):
 *   FAKE_CUDA_FAULT=1            every launch faults (FAKE_CUDA_FAULT_KERNEL=name: that kernel's)
 *   FAKE_CUDA_FAULT_CODE=N       the fault's CUresult (default 700, illegal address)
 *   FAKE_CUDA_FAULT_AT=N         only the N-th launch (1-based) of the faulting kernel faults
 *   FAKE_CUDA_FAULT_MIN_THREADS=N  only launches of at least N threads fault (bench sizes)
 *   FAKE_CUDA_STICKY_AFTER=k     the fault shows k driver calls after the launch (default 0)
 *   FAKE_CUDA_STATIC_SMEM=B      static shared memory of every non-kiln kernel (default 0)
 *   FAKE_CUDA_REGS=R             registers per thread (default 32)
 *   FAKE_CUDA_VARY=1             kernel durations vary with the launch count (10..10.4 us)
 *   FAKE_CUDA_GAP_US=g           the clock advances g us before each stream launch of a
 *                                non-kiln kernel (its launch gap; default 0)
 *   FAKE_CUDA_GRAPH_GAP_US=g     the same for each kernel node of a launched graph
 *   FAKE_CUDA_FAULT_IN_GRAPH=1   a launched graph faults (visible at the next sync)
 * Graphs: cuGraphCreate, cuGraphAddKernelNode_v2 (checked as a launch, argument values
 * copied), cuGraphInstantiateWithFlags (a copy), cuGraphLaunch (the chain, one correlation
 * id), cuGraphExecDestroy, cuGraphDestroy.
 *   FAKE_CUDA_SM_MHZ=F           the SM clock kiln_clock_probe sees (default 1755)
 *   FAKE_CUDA_DEVICES=N          devices (default 1); device i is named "Fake H100 #i"
 *   FAKE_CUDA_RATIO_TOKEN=1      launches compute the ratio_token target on the host;
 *   FAKE_CUDA_STOP_AFTER=N       ... but only the first N launches
 *   FAKE_CUPTI_DROP_EVERY=n, FAKE_CUPTI_ZERO_EVERY=n, FAKE_CUPTI_INVERT_EVERY=n: every n-th
 *   kernel record is dropped (counted) / has start 0 / has end < start; FAKE_CUPTI_REVERSE=1
 *   delivers records in reverse order. CUPTI durations are the kernel's minus 1 us, so a
 *   test can tell them from event times.
 * fake_cuda_stat(name) returns counters for tests ("launches", "l2_reads", "syncs", ...);
 * fake_cuda_ops() the last operations as letters (see op()). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>
#include <cupti.h>

#define EXPORT __attribute__((visibility("default")))
#define OPTIN_SMEM 232448
#define MAX_FNS 256

static long env_num(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : dflt;
}

/* ---- sticky faults ---- */

static CUresult sticky;        /* once set, every call returns it */
static CUresult pending;       /* a fault not yet visible */
static long pending_calls;     /* calls left before it shows */
static long launches, l2_reads, syncs, memsets, sticky_returns;
static long graph_launches;     /* cuGraphLaunch calls */

/* Every entry point starts here: the asynchronous fault shows after k calls. */
static CUresult gate(void)
{
	if (!sticky && pending && pending_calls-- <= 0)
		sticky = pending;
	if (sticky)
		sticky_returns++;
	return sticky;
}

/* A synchronizing call: all work is done, so a pending fault shows now. */
static CUresult gate_sync(void)
{
	syncs++;
	if (!sticky && pending)
		sticky = pending;
	return gate();
}

/* The last operations, one letter each: M cuMemsetD32, F cuMemsetD32Async, R kiln_l2_read,
 * C kiln_clock_probe, K any other kernel. */
static char ops[256];
static size_t nops;

static void op(char c)
{
	if (nops + 1 == sizeof(ops)) {
		memmove(ops, ops + 128, nops - 128);
		nops -= 128;
	}
	ops[nops++] = c;
	ops[nops] = 0;
}

EXPORT const char *fake_cuda_ops(void)
{
	return ops;
}

EXPORT long fake_cuda_stat(const char *name)
{
	return strcmp(name, "launches") == 0 ? launches : strcmp(name, "l2_reads") == 0 ? l2_reads
	     : strcmp(name, "syncs") == 0 ? syncs : strcmp(name, "memsets") == 0 ? memsets
	     : strcmp(name, "sticky_returns") == 0 ? sticky_returns
	     : strcmp(name, "graph_launches") == 0 ? graph_launches : -1;
}

/* ---- modules and functions ---- */

typedef struct fn {
	CUmodule mod;
	char name[128];
	int nparams;
	uint32_t off[64], size[64];
	int max_dynamic;    /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES; -1 = default */
	long nlaunch;
} fn;

static fn fns[MAX_FNS];
static int nfns;
static uintptr_t next_mod = 0x1000;

static fn *fn_add(CUmodule m, const char *name, size_t len)
{
	if (nfns == MAX_FNS || len >= sizeof(fns[0].name))
		return NULL;
	fn *f = &fns[nfns++];
	memset(f, 0, sizeof(*f));
	f->mod = m;
	memcpy(f->name, name, len);
	f->max_dynamic = -1;
	return f;
}

static int is_kiln_internal(const fn *f)
{
	return strncmp(f->name, "kiln_", 5) == 0;
}

static int static_smem(const fn *f)
{
	return is_kiln_internal(f) ? 0 : (int)env_num("FAKE_CUDA_STATIC_SMEM", 0);
}

/* A cubin: each .nv.info.<kernel> section names a kernel; its EIATTR_KPARAM_INFO (0x17)
 * attributes give ordinal, offset and size (bits 18..31 of the last word). */
static int load_elf(CUmodule m, const uint8_t *b)
{
	uint64_t shoff;
	uint16_t shentsize, shnum, shstrndx;
	memcpy(&shoff, b + 0x28, 8);
	memcpy(&shentsize, b + 0x3a, 2);
	memcpy(&shnum, b + 0x3c, 2);
	memcpy(&shstrndx, b + 0x3e, 2);
	uint64_t stroff;
	memcpy(&stroff, b + shoff + (uint64_t)shstrndx * shentsize + 24, 8);
	int found = 0;
	for (uint16_t i = 0; i < shnum; i++) {
		const uint8_t *sh = b + shoff + (uint64_t)i * shentsize;
		uint32_t nameoff;
		uint64_t off, size;
		memcpy(&nameoff, sh, 4);
		memcpy(&off, sh + 24, 8);
		memcpy(&size, sh + 32, 8);
		const char *nm = (const char *)b + stroff + nameoff;
		if (strncmp(nm, ".nv.info.", 9) != 0)
			continue;
		fn *f = fn_add(m, nm + 9, strlen(nm + 9));
		if (!f)
			return -1;
		found++;
		const uint8_t *d = b + off;
		for (uint64_t p = 0; p + 4 <= size;) {
			uint8_t fmt = d[p], attr = d[p + 1];
			uint16_t sz;
			memcpy(&sz, d + p + 2, 2);
			if (fmt != 4) { /* not a sized value: 4 bytes */
				p += 4;
				continue;
			}
			if (attr == 0x17 && sz >= 12) {
				uint16_t ord, po;
				uint32_t tmp;
				memcpy(&ord, d + p + 8, 2);
				memcpy(&po, d + p + 10, 2);
				memcpy(&tmp, d + p + 12, 4);
				if (ord < 64) {
					f->off[ord] = po;
					f->size[ord] = (tmp >> 18) & 0x3fff;
					if (ord + 1 > f->nparams)
						f->nparams = ord + 1;
				}
			}
			p += 4 + sz;
		}
	}
	return found;
}

static uint32_t ptx_param_size(const char *p, const char *end)
{
	const char *lb = memchr(p, '[', (size_t)(end - p));
	if (lb)
		return (uint32_t)strtoul(lb + 1, NULL, 10);
	return strstr(p, "64") && strstr(p, "64") < end ? 8 : strstr(p, "16") && strstr(p, "16") < end ? 2
	     : strstr(p, "8 ") && strstr(p, "8 ") < end ? 1 : 4;
}

/* PTX text: every ".entry name(" with its ".param" list. */
static int load_ptx(CUmodule m, const char *s)
{
	int found = 0;
	for (const char *p = strstr(s, ".entry "); p; p = strstr(p + 1, ".entry ")) {
		const char *n = p + 7;
		while (*n == ' ')
			n++;
		size_t len = strcspn(n, "( \n");
		fn *f = fn_add(m, n, len);
		if (!f)
			return -1;
		found++;
		const char *close = strchr(n, ')'), *q = n;
		uint32_t off = 0;
		while (close && (q = strstr(q, ".param")) && q < close && f->nparams < 64) {
			const char *eol = strpbrk(q, ",)");
			uint32_t sz = ptx_param_size(q, eol ? eol : close);
			const char *al = strstr(q, ".align");
			uint32_t a = al && al < eol ? (uint32_t)strtoul(al + 6, NULL, 10) : sz;
			off = a ? (off + a - 1) / a * a : off;
			f->off[f->nparams] = off;
			f->size[f->nparams++] = sz;
			off += sz;
			q++;
		}
	}
	return found;
}

/* A fatbin (as `kiln promote` writes): 16-byte header, then entries (kind 1 PTX, 2 ELF;
 * header size at 4, payload size at 8, arch at 28). The device's sm_90 ELF, else the PTX. */
static const uint8_t *fatbin_pick(const uint8_t *b, int *is_elf)
{
	uint16_t hsize;
	uint64_t fsize;
	const uint8_t *ptx = NULL;
	memcpy(&hsize, b + 6, 2);
	memcpy(&fsize, b + 8, 8);
	for (uint64_t off = hsize; off < hsize + fsize;) {
		uint16_t kind;
		uint32_t esize, arch;
		uint64_t psize;
		memcpy(&kind, b + off, 2);
		memcpy(&esize, b + off + 4, 4);
		memcpy(&psize, b + off + 8, 8);
		memcpy(&arch, b + off + 28, 4);
		if (kind == 2 && arch == 90) {
			*is_elf = 1;
			return b + off + esize;
		}
		if (kind == 1)
			ptx = b + off + esize;
		off += esize + psize;
	}
	*is_elf = 0;
	return ptx;
}

EXPORT CUresult CUDAAPI cuModuleLoadData(CUmodule *m, const void *image)
{
	CUresult r = gate();
	if (r)
		return r;
	const uint8_t *b = image;
	uint32_t magic;
	int elf = memcmp(b, "\x7f" "ELF", 4) == 0;
	memcpy(&magic, b, 4);
	if (magic == 0xBA55ED50u && !(b = fatbin_pick(b, &elf)))
		return CUDA_ERROR_NO_BINARY_FOR_GPU;
	CUmodule mod = (CUmodule)next_mod;
	next_mod += 0x10;
	int n = elf ? load_elf(mod, b) : load_ptx(mod, (const char *)b);
	if (n <= 0)
		return CUDA_ERROR_INVALID_IMAGE;
	*m = mod;
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuModuleUnload(CUmodule m)
{
	CUresult r = gate();
	for (int i = 0; !r && i < nfns; i++)
		if (fns[i].mod == m)
			fns[i].mod = NULL;
	return r;
}

EXPORT CUresult CUDAAPI cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name)
{
	CUresult r = gate();
	if (r)
		return r;
	for (int i = 0; i < nfns; i++)
		if (fns[i].mod == m && m && strcmp(fns[i].name, name) == 0) {
			*f = (CUfunction)&fns[i];
			return CUDA_SUCCESS;
		}
	return CUDA_ERROR_NOT_FOUND;
}

EXPORT CUresult CUDAAPI cuFuncGetParamInfo(CUfunction func, size_t index, size_t *off, size_t *size)
{
	CUresult r = gate();
	const fn *f = (const fn *)func;
	if (r)
		return r;
	if (!f || index >= (size_t)f->nparams)
		return CUDA_ERROR_INVALID_VALUE;
	*off = f->off[index];
	*size = f->size[index];
	return CUDA_SUCCESS;
}

static int max_dynamic(const fn *f)
{
	return f->max_dynamic >= 0 ? f->max_dynamic : 48 * 1024 - static_smem(f);
}

EXPORT CUresult CUDAAPI cuFuncGetAttribute(int *v, CUfunction_attribute a, CUfunction func)
{
	CUresult r = gate();
	const fn *f = (const fn *)func;
	if (r)
		return r;
	switch (a) {
	case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *v = static_smem(f); break;
	case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *v = max_dynamic(f); break;
	case CU_FUNC_ATTRIBUTE_NUM_REGS: *v = (int)env_num("FAKE_CUDA_REGS", 32); break;
	case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
	default: *v = 0; break;
	}
	return CUDA_SUCCESS;
}

/* Opt-in: static + dynamic may reach the device's opt-in maximum. */
EXPORT CUresult CUDAAPI cuFuncSetAttribute(CUfunction func, CUfunction_attribute a, int v)
{
	CUresult r = gate();
	fn *f = (fn *)func;
	if (r)
		return r;
	if (a != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)
		return CUDA_SUCCESS;
	if (v < 0 || v + static_smem(f) > OPTIN_SMEM)
		return CUDA_ERROR_INVALID_VALUE;
	f->max_dynamic = v;
	return CUDA_SUCCESS;
}

/* ---- device ---- */

EXPORT CUresult CUDAAPI cuInit(unsigned int flags) { (void)flags; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDriverGetVersion(int *v) { *v = CUDA_VERSION; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDeviceGetCount(int *n) { *n = (int)env_num("FAKE_CUDA_DEVICES", 1); return CUDA_SUCCESS; }

EXPORT CUresult CUDAAPI cuDeviceGet(CUdevice *d, int i)
{
	if (i < 0 || i >= env_num("FAKE_CUDA_DEVICES", 1))
		return CUDA_ERROR_INVALID_DEVICE;
	*d = i;
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice d)
{
	if (d == 0)
		snprintf(name, (size_t)len, "Fake H100 (test driver)");
	else
		snprintf(name, (size_t)len, "Fake H100 #%d (test driver)", d);
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDeviceGetUuid_v2(CUuuid *u, CUdevice d)
{
	for (int i = 0; i < 16; i++)
		u->bytes[i] = (char)(0x10 * (i % 16) + d);
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d)
{
	(void)d;
	switch (a) {
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
	case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 132; break;
	case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: *v = 48 * 1024; break;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = OPTIN_SMEM; break;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *v = 233472; break;
	case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = 1 << 20; break; /* small: the flush buffer is host memory */
	case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *v = 1980000; break;
	case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *v = 2619000; break;
	case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *v = 5120; break;
	default: *v = 0; break;
	}
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDeviceTotalMem_v2(size_t *b, CUdevice d) { (void)d; *b = (size_t)8 << 30; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { *c = (CUcontext)(uintptr_t)(0x100 + d); return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice d) { (void)d; return CUDA_SUCCESS; }
static CUcontext current_ctx; /* cuCtxGetCurrent: NULL until set (promoted NAME.py retains the primary one) */
EXPORT CUresult CUDAAPI cuCtxSetCurrent(CUcontext c) { current_ctx = c; return gate(); }
EXPORT CUresult CUDAAPI cuCtxGetCurrent(CUcontext *c) { *c = current_ctx; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuCtxSynchronize(void) { return gate_sync(); }
EXPORT CUresult CUDAAPI cuCtxGetDevice(CUdevice *d) { *d = 0; return gate(); }

/* ---- memory ---- */

/* Live allocations (device memory and events), as the driver tracks them: freeing an
 * unknown pointer is CUDA_ERROR_INVALID_VALUE, and what a poisoned context keeps stays
 * reachable (no leak report for memory kiln rightly leaves to the dying process). */
static void *live[4096];

static int live_add(void *m)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (!live[i]) {
			live[i] = m;
			return 1;
		}
	return 0;
}

static int live_remove(void *m)
{
	for (size_t i = 0; m && i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == m) {
			live[i] = NULL;
			return 1;
		}
	return 0;
}

EXPORT CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr *p, size_t n)
{
	CUresult r = gate();
	if (r)
		return r;
	void *m = malloc(n ? n : 1);
	if (!m || !live_add(m)) {
		free(m);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	*p = (CUdeviceptr)(uintptr_t)m;
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemFree_v2(CUdeviceptr p)
{
	CUresult r = gate();
	if (r)
		return r;
	if (!live_remove((void *)(uintptr_t)p))
		return CUDA_ERROR_INVALID_VALUE;
	free((void *)(uintptr_t)p);
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n)
{
	CUresult r = gate_sync();
	if (!r)
		memcpy((void *)(uintptr_t)d, s, n);
	return r;
}

EXPORT CUresult CUDAAPI cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n)
{
	CUresult r = gate_sync();
	if (!r)
		memcpy(d, (const void *)(uintptr_t)s, n);
	return r;
}

static double gpu_clock_us; /* the virtual GPU clock: advances with each kernel */

static CUresult memset32(CUdeviceptr d, unsigned int v, size_t n, char what)
{
	CUresult r = gate();
	if (r)
		return r;
	uint32_t *p = (uint32_t *)(uintptr_t)d;
	for (size_t i = 0; i < n; i++)
		p[i] = v;
	memsets++;
	op(what);
	gpu_clock_us += 1;
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemsetD32_v2(CUdeviceptr d, unsigned int v, size_t n) { return memset32(d, v, n, 'M'); }

EXPORT CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s)
{
	(void)s;
	return memset32(d, v, n, 'F');
}

/* ---- fake libcupti: records collected at each launch, delivered at flush ---- */

typedef CUpti_ActivityKernel10 krec;
static struct {
	CUpti_BuffersCallbackRequestFunc req;
	CUpti_BuffersCallbackCompleteFunc comp;
	int kernels_on, ext_on;
	uint64_t ext_stack[16];
	int ext_top;
	uint32_t corr;
	size_t dropped;
	long nrec;                 /* kernel records made so far (for the every-n options) */
	struct { int is_kernel; krec k; CUpti_ActivityExternalCorrelation x; } *q;
	size_t nq, capq;
} cupti;

static void cupti_queue(int is_kernel, const krec *k, const CUpti_ActivityExternalCorrelation *x)
{
	if (cupti.nq == cupti.capq) {
		size_t nc = cupti.capq ? 2 * cupti.capq : 256;
		void *p = realloc(cupti.q, nc * sizeof(*cupti.q));
		if (!p) {
			cupti.dropped++;
			return;
		}
		cupti.q = p;
		cupti.capq = nc;
	}
	cupti.q[cupti.nq].is_kernel = is_kernel;
	if (k)
		cupti.q[cupti.nq].k = *k;
	if (x)
		cupti.q[cupti.nq].x = *x;
	cupti.nq++;
}

static int every(const char *name, long n)
{
	long e = env_num(name, 0);
	return e > 0 && n % e == 0;
}

/* An API call that launches work (cuLaunchKernel, cuGraphLaunch): its correlation id, and
 * the external id pushed around it. */
static uint32_t cupti_api_call(void)
{
	uint32_t corr = ++cupti.corr;
	if (cupti.ext_on && cupti.ext_top > 0) {
		CUpti_ActivityExternalCorrelation x;
		memset(&x, 0, sizeof(x));
		x.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
		x.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
		x.externalId = cupti.ext_stack[cupti.ext_top - 1];
		x.correlationId = corr;
		cupti_queue(0, NULL, &x);
	}
	return corr;
}

static void cupti_kernel(uint32_t corr, double start_us, double dur_us)
{
	if (!cupti.kernels_on)
		return;
	long n = ++cupti.nrec;
	if (every("FAKE_CUPTI_DROP_EVERY", n)) {
		cupti.dropped++;
		return;
	}
	krec k;
	memset(&k, 0, sizeof(k));
	k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
	k.start = (uint64_t)llround(start_us * 1e3) + 1000000;
	k.end = k.start + (uint64_t)llround((dur_us - 1) * 1e3);
	k.correlationId = corr;
	if (every("FAKE_CUPTI_ZERO_EVERY", n))
		k.start = 0;
	if (every("FAKE_CUPTI_INVERT_EVERY", n)) {
		uint64_t t = k.start;
		k.start = k.end;
		k.end = t;
	}
	cupti_queue(1, &k, NULL);
}

EXPORT CUptiResult CUPTIAPI cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc req,
							   CUpti_BuffersCallbackCompleteFunc comp)
{
	cupti.req = req;
	cupti.comp = comp;
	return CUPTI_SUCCESS;
}

static CUptiResult set_kind(CUpti_ActivityKind k, int on)
{
	if (k == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)
		cupti.kernels_on = on;
	else if (k == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION)
		cupti.ext_on = on;
	else
		return CUPTI_ERROR_NOT_SUPPORTED;
	return CUPTI_SUCCESS;
}

EXPORT CUptiResult CUPTIAPI cuptiActivityEnable(CUpti_ActivityKind k) { return set_kind(k, 1); }
EXPORT CUptiResult CUPTIAPI cuptiActivityDisable(CUpti_ActivityKind k) { return set_kind(k, 0); }

EXPORT CUptiResult CUPTIAPI cuptiActivityPushExternalCorrelationId(CUpti_ExternalCorrelationKind kind, uint64_t id)
{
	(void)kind;
	if (cupti.ext_top == 16)
		return CUPTI_ERROR_MAX_LIMIT_REACHED;
	cupti.ext_stack[cupti.ext_top++] = id;
	return CUPTI_SUCCESS;
}

EXPORT CUptiResult CUPTIAPI cuptiActivityPopExternalCorrelationId(CUpti_ExternalCorrelationKind kind, uint64_t *id)
{
	(void)kind;
	if (cupti.ext_top == 0)
		return CUPTI_ERROR_QUEUE_EMPTY;
	uint64_t v = cupti.ext_stack[--cupti.ext_top];
	if (id)
		*id = v;
	return CUPTI_SUCCESS;
}

EXPORT CUptiResult CUPTIAPI cuptiActivityGetNumDroppedRecords(CUcontext ctx, uint32_t stream, size_t *dropped)
{
	(void)stream;
	*dropped = ctx ? cupti.dropped : 0; /* kernel records live in the context's queue */
	if (ctx)
		cupti.dropped = 0;
	return CUPTI_SUCCESS;
}

static size_t rec_size(const CUpti_Activity *r)
{
	return r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL ? sizeof(krec) : sizeof(CUpti_ActivityExternalCorrelation);
}

/* Records as the real buffers hold them: each its kind's struct, back to back. */
EXPORT CUptiResult CUPTIAPI cuptiActivityFlushAll(uint32_t flag)
{
	(void)flag;
	while (cupti.nq && cupti.req && cupti.comp) {
		uint8_t *buf = NULL;
		size_t size = 0, maxr = 0, used = 0, taken = 0;
		cupti.req(&buf, &size, &maxr);
		if (!buf)
			return CUPTI_ERROR_OUT_OF_MEMORY;
		int rev = env_num("FAKE_CUPTI_REVERSE", 0) == 1;
		for (; taken < cupti.nq; taken++) {
			size_t i = rev ? cupti.nq - 1 - taken : taken;
			const void *src = cupti.q[i].is_kernel ? (const void *)&cupti.q[i].k : (const void *)&cupti.q[i].x;
			size_t sz = rec_size(src);
			if (used + sz > size)
				break;
			memcpy(buf + used, src, sz);
			used += sz;
		}
		if (!rev) /* reversed, the untaken ones are the oldest: already at the front */
			memmove(cupti.q, cupti.q + taken, (cupti.nq - taken) * sizeof(*cupti.q));
		cupti.nq -= taken;
		cupti.comp(NULL, 0, buf, size, used);
	}
	return CUPTI_SUCCESS;
}

EXPORT CUptiResult CUPTIAPI cuptiActivityGetNextRecord(uint8_t *buf, size_t valid, CUpti_Activity **rec)
{
	size_t at = *rec ? (size_t)((uint8_t *)*rec - buf) + rec_size(*rec) : 0;
	if (at + sizeof(CUpti_Activity) > valid)
		return CUPTI_ERROR_MAX_LIMIT_REACHED;
	*rec = (CUpti_Activity *)(buf + at);
	return CUPTI_SUCCESS;
}

/* ---- launches ---- */

/* ratio[i] = mask[i] ? exp(clamp(logp_new[i] - logp_old[i], -20, 20)) : 0 over B*T */
static void ratio_token(void **params)
{
	const float *lnew = *(const float **)params[0], *lold = *(const float **)params[1];
	const unsigned char *mask = *(const unsigned char **)params[2];
	float *ratio = *(float **)params[3];
	long long n = *(const long long *)params[4] * *(const long long *)params[5];
	for (long long i = 0; i < n; i++)
		ratio[i] = mask[i] ? expf(fminf(fmaxf(lnew[i] - lold[i], -20.0f), 20.0f)) : 0.0f;
}

static int faults(fn *f, unsigned long long threads)
{
	if (threads < (unsigned long long)env_num("FAKE_CUDA_FAULT_MIN_THREADS", 0))
		return 0;
	const char *all = getenv("FAKE_CUDA_FAULT"), *which = getenv("FAKE_CUDA_FAULT_KERNEL");
	int on = (all && *all == '1' && !is_kiln_internal(f)) || (which && strcmp(which, f->name) == 0);
	long at = env_num("FAKE_CUDA_FAULT_AT", 0);
	return on && (at <= 0 || f->nlaunch == at);
}

/* The kernels of kiln's own probe module (device_cuda.c). */
static void internal_kernel(const fn *f, void **params)
{
	if (strcmp(f->name, "kiln_l2_read") == 0) {
		l2_reads++;
		op('R');
	} else if (strcmp(f->name, "kiln_clock_probe") == 0) {
		op('C');
		uint64_t *out = *(uint64_t **)params[0];
		double mhz = (double)env_num("FAKE_CUDA_SM_MHZ", 1755);
		out[1] = 100000;                           /* ns of globaltimer */
		out[0] = (uint64_t)llround(mhz * 100000 / 1e3); /* clock64 cycles */
	}
}

/* What the driver checks before a launch (or when a kernel node is added to a graph). */
static CUresult launch_check(const fn *f, const unsigned g[3], const unsigned b[3], unsigned sh)
{
	if (!f || !f->mod)
		return CUDA_ERROR_INVALID_HANDLE;
	unsigned long long threads = (unsigned long long)b[0] * b[1] * b[2];
	if (!g[0] || !g[1] || !g[2] || !b[0] || !b[1] || !b[2] || g[0] > 0x7fffffffu || g[1] > 65535 || g[2] > 65535 ||
	    b[0] > 1024 || b[1] > 1024 || b[2] > 64 || threads > 1024)
		return CUDA_ERROR_INVALID_VALUE;
	if ((int)sh > max_dynamic(f) || (long)sh + static_smem(f) > OPTIN_SMEM)
		return CUDA_ERROR_INVALID_VALUE;
	if (env_num("FAKE_CUDA_REGS", 32) * (long)((threads + 31) / 32 * 32) > 65536)
		return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
	return CUDA_SUCCESS;
}

/* A checked launch that runs: the clock first advances by the launch's gap (a stream
 * launch FAKE_CUDA_GAP_US, a graph node FAKE_CUDA_GRAPH_GAP_US; kiln's own kernels none),
 * then by the kernel's 10 us; its CUPTI record carries corr. */
static CUresult run_kernel(fn *f, const unsigned g[3], const unsigned b[3], void **params, uint32_t corr, double gap_us)
{
	unsigned long long threads = (unsigned long long)b[0] * b[1] * b[2];
	launches++;
	f->nlaunch++;
	if (!is_kiln_internal(f))
		gpu_clock_us += gap_us;
	double dur = 10.0 + (env_num("FAKE_CUDA_VARY", 0) == 1 ? 0.1 * (double)(launches % 5) : 0.0);
	cupti_kernel(corr, gpu_clock_us, dur);
	gpu_clock_us += dur;
	if (faults(f, threads * g[0] * g[1] * g[2])) {
		pending = (CUresult)env_num("FAKE_CUDA_FAULT_CODE", CUDA_ERROR_ILLEGAL_ADDRESS);
		pending_calls = env_num("FAKE_CUDA_STICKY_AFTER", 0);
		return CUDA_SUCCESS; /* asynchronous: the error shows later */
	}
	if (is_kiln_internal(f)) {
		internal_kernel(f, params);
		return CUDA_SUCCESS;
	}
	op('K');
	const char *rt = getenv("FAKE_CUDA_RATIO_TOKEN");
	long stop = env_num("FAKE_CUDA_STOP_AFTER", 0);
	if (rt && *rt == '1' && !(stop > 0 && launches > stop) && f->nparams == 6)
		ratio_token(params);
	return CUDA_SUCCESS;
}

static double env_us(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strtod(v, NULL) : 0.0;
}

EXPORT CUresult CUDAAPI cuLaunchKernel(CUfunction func, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
				       unsigned bz, unsigned sh, CUstream s, void **params, void **extra)
{
	fn *f = (fn *)func;
	const unsigned g[3] = {gx, gy, gz}, b[3] = {bx, by, bz};
	(void)s;
	(void)extra;
	CUresult r = gate();
	if (r || (r = launch_check(f, g, b, sh)))
		return r;
	return run_kernel(f, g, b, params, cupti_api_call(), env_us("FAKE_CUDA_GAP_US"));
}

/* ---- graphs: kernel nodes in a chain, their argument values copied when added ---- */

#define GRAPH_MAX_NODES 32

typedef struct fake_node {
	fn *f;
	unsigned g[3], b[3], sh;
	uint8_t vals[64][16];      /* each parameter's value (at most 16 bytes here) */
	int dep;                   /* index of the node it depends on, -1 none */
} fake_node;

typedef struct fake_graph {
	fake_node node[GRAPH_MAX_NODES];
	int n;
	int exec;                  /* an instantiated copy (CUgraphExec) */
} fake_graph;

EXPORT CUresult CUDAAPI cuGraphCreate(CUgraph *out, unsigned int flags)
{
	CUresult r = gate();
	fake_graph *fg = NULL;
	if (r)
		return r;
	if (flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (!(fg = calloc(1, sizeof(*fg))) || !live_add(fg)) {
		free(fg);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	*out = (CUgraph)fg;
	return CUDA_SUCCESS;
}

/* Nodes are CUgraphNode values 1..n of their graph; a dependency must be one of them. */
EXPORT CUresult CUDAAPI cuGraphAddKernelNode_v2(CUgraphNode *out, CUgraph graph, const CUgraphNode *deps, size_t ndeps,
						const CUDA_KERNEL_NODE_PARAMS *p)
{
	fake_graph *fg = (fake_graph *)graph;
	CUresult r = gate();
	if (r)
		return r;
	if (!fg || fg->exec || ndeps > 1 || (ndeps && !deps) || !p || p->extra || fg->n == GRAPH_MAX_NODES)
		return CUDA_ERROR_INVALID_VALUE;
	fn *f = (fn *)p->func;
	const unsigned g[3] = {p->gridDimX, p->gridDimY, p->gridDimZ}, b[3] = {p->blockDimX, p->blockDimY, p->blockDimZ};
	if ((r = launch_check(f, g, b, p->sharedMemBytes)))
		return r;
	int dep = ndeps ? (int)(uintptr_t)deps[0] - 1 : -1;
	if (ndeps && (dep < 0 || dep >= fg->n))
		return CUDA_ERROR_INVALID_VALUE;
	fake_node *nd = &fg->node[fg->n];
	nd->f = f;
	memcpy(nd->g, g, sizeof(g));
	memcpy(nd->b, b, sizeof(b));
	nd->sh = p->sharedMemBytes;
	nd->dep = dep;
	for (int i = 0; i < f->nparams && i < 64; i++)
		memcpy(nd->vals[i], p->kernelParams[i], f->size[i] <= 16 ? f->size[i] : 16);
	*out = (CUgraphNode)(uintptr_t)++fg->n;
	return CUDA_SUCCESS;
}

/* The exec is a copy of the graph (later changes to the graph do not reach it). */
EXPORT CUresult CUDAAPI cuGraphInstantiateWithFlags(CUgraphExec *out, CUgraph graph, unsigned long long flags)
{
	fake_graph *fg = (fake_graph *)graph, *ex = NULL;
	CUresult r = gate();
	if (r)
		return r;
	if (!fg || flags != 0 || fg->n == 0)
		return CUDA_ERROR_INVALID_VALUE;
	if (!(ex = malloc(sizeof(*ex))) || !live_add(ex)) {
		free(ex);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	*ex = *fg;
	ex->exec = 1;
	*out = (CUgraphExec)ex;
	return CUDA_SUCCESS;
}

/* Each node in turn (a chain), all under the launch's one correlation id. */
EXPORT CUresult CUDAAPI cuGraphLaunch(CUgraphExec exec, CUstream s)
{
	fake_graph *ex = (fake_graph *)exec;
	CUresult r = gate();
	(void)s;
	if (r)
		return r;
	if (!ex || !ex->exec)
		return CUDA_ERROR_INVALID_HANDLE;
	for (int i = 0; i < ex->n; i++)
		if (ex->node[i].dep != i - 1)
			return CUDA_ERROR_INVALID_VALUE; /* kiln builds chains; anything else is a bug */
	graph_launches++;
	uint32_t corr = cupti_api_call();
	if (env_num("FAKE_CUDA_FAULT_IN_GRAPH", 0) == 1) { /* shows at the next synchronizing call */
		pending = CUDA_ERROR_ILLEGAL_ADDRESS;
		pending_calls = 1000;
	}
	for (int i = 0; i < ex->n && !r; i++) {
		fake_node *nd = &ex->node[i];
		void *params[64];
		for (int k = 0; k < nd->f->nparams && k < 64; k++)
			params[k] = nd->vals[k];
		r = run_kernel(nd->f, nd->g, nd->b, params, corr, env_us("FAKE_CUDA_GRAPH_GAP_US"));
	}
	return r;
}

static CUresult graph_free(void *g, int exec)
{
	if (!g || !live_remove(g) || ((fake_graph *)g)->exec != exec)
		return CUDA_ERROR_INVALID_VALUE;
	free(g);
	return gate();
}

EXPORT CUresult CUDAAPI cuGraphExecDestroy(CUgraphExec e) { return graph_free(e, 1); }
EXPORT CUresult CUDAAPI cuGraphDestroy(CUgraph g) { return graph_free(g, 0); }

/* ---- events: a timestamp of the virtual clock, complete once synchronized ---- */

typedef struct fake_event {
	double t_us;
	int recorded, complete;
} fake_event;

EXPORT CUresult CUDAAPI cuEventCreate(CUevent *e, unsigned int flags)
{
	(void)flags;
	fake_event *fe = calloc(1, sizeof(*fe));
	if (!fe || !live_add(fe)) {
		free(fe);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	*e = (CUevent)fe;
	return gate();
}

EXPORT CUresult CUDAAPI cuEventRecord(CUevent e, CUstream s)
{
	fake_event *fe = (fake_event *)e;
	(void)s;
	CUresult r = gate();
	if (!r) {
		fe->t_us = gpu_clock_us;
		fe->recorded = 1;
		fe->complete = 0;
	}
	return r;
}

EXPORT CUresult CUDAAPI cuEventSynchronize(CUevent e)
{
	CUresult r = gate_sync();
	if (!r)
		((fake_event *)e)->complete = 1;
	return r;
}

EXPORT CUresult CUDAAPI cuEventElapsedTime_v2(float *ms, CUevent a, CUevent b)
{
	const fake_event *x = (const fake_event *)a, *y = (const fake_event *)b;
	CUresult r = gate();
	if (r)
		return r;
	if (!x->recorded || !y->recorded)
		return CUDA_ERROR_INVALID_HANDLE;
	if (!y->complete)
		return CUDA_ERROR_NOT_READY;
	*ms = (float)((y->t_us - x->t_us) / 1e3);
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuEventDestroy_v2(CUevent e)
{
	if (!live_remove(e))
		return CUDA_ERROR_INVALID_HANDLE;
	free((fake_event *)e);
	return CUDA_SUCCESS;
}

/* NVRTC looks for the driver too (libcuda.so.1 by soname, which finds this library once
 * it is loaded): no export tables here, so it carries on without them. */
EXPORT CUresult CUDAAPI cuGetExportTable(const void **table, const CUuuid *id)
{
	(void)id;
	*table = NULL;
	return CUDA_ERROR_NOT_SUPPORTED;
}

EXPORT CUresult CUDAAPI cuGetErrorName(CUresult r, const char **s)
{
	switch (r) {
	case CUDA_ERROR_ILLEGAL_ADDRESS: *s = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
	case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
	case CUDA_ERROR_MISALIGNED_ADDRESS: *s = "CUDA_ERROR_MISALIGNED_ADDRESS"; break;
	case CUDA_ERROR_LAUNCH_FAILED: *s = "CUDA_ERROR_LAUNCH_FAILED"; break;
	case CUDA_ERROR_NOT_READY: *s = "CUDA_ERROR_NOT_READY"; break;
	default: *s = "CUDA_ERROR_FAKE"; break;
	}
	return CUDA_SUCCESS;
}
