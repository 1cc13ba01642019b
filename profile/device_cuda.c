/* profile: the "cuda" device backend. libcuda.so.1 and libcupti are loaded with dlopen
 * (kiln never links them; cuda.h / cupti.h give the types), so one kiln binary runs with
 * and without a driver. One device (ordinal 0) in its primary context; modules load from
 * the cubin built for the device's exact sm with the PTX as fallback; every launch is
 * checked (synchronously outside timing). A fault poisons the context: later calls fail
 * with KILN_EDEVICE, and the caller is expected to run in a child it can replace.
 * Timing (time_plan): warm-up, a 2x-L2 write before every rep, CUPTI kernel records
 * summed per plan (CUDA events around the plan as the fallback), repeated until the
 * relative standard error of the median is under 1% or the time cap.
 * Not fork safe: cuInit in a process that then forks leaves the child unusable.
 * Environment: KILN_LIBCUDA = path of the driver library (default libcuda.so.1),
 * KILN_NO_CUPTI=1 = time with CUDA events only. */
#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda.h>
#include <cupti.h>

#include "profile/profile_int.h"

#define CU_FN(ret, name, args) ret(CUDAAPI *name) args

/* The driver entry points kiln uses (exported symbol names in sym_names). */
typedef struct cuda_api {
	CU_FN(CUresult, Init, (unsigned int));
	CU_FN(CUresult, DriverGetVersion, (int *));
	CU_FN(CUresult, DeviceGetCount, (int *));
	CU_FN(CUresult, DeviceGet, (CUdevice *, int));
	CU_FN(CUresult, DeviceGetName, (char *, int, CUdevice));
	CU_FN(CUresult, DeviceGetAttribute, (int *, CUdevice_attribute, CUdevice));
	CU_FN(CUresult, DeviceTotalMem, (size_t *, CUdevice));
	CU_FN(CUresult, PrimaryCtxRetain, (CUcontext *, CUdevice));
	CU_FN(CUresult, PrimaryCtxRelease, (CUdevice));
	CU_FN(CUresult, CtxSetCurrent, (CUcontext));
	CU_FN(CUresult, CtxSynchronize, (void));
	CU_FN(CUresult, MemAlloc, (CUdeviceptr *, size_t));
	CU_FN(CUresult, MemFree, (CUdeviceptr));
	CU_FN(CUresult, MemcpyHtoD, (CUdeviceptr, const void *, size_t));
	CU_FN(CUresult, MemcpyDtoH, (void *, CUdeviceptr, size_t));
	CU_FN(CUresult, MemsetD32, (CUdeviceptr, unsigned int, size_t));
	CU_FN(CUresult, MemsetD32Async, (CUdeviceptr, unsigned int, size_t, CUstream));
	CU_FN(CUresult, ModuleLoadData, (CUmodule *, const void *));
	CU_FN(CUresult, ModuleUnload, (CUmodule));
	CU_FN(CUresult, ModuleGetFunction, (CUfunction *, CUmodule, const char *));
	CU_FN(CUresult, FuncSetAttribute, (CUfunction, CUfunction_attribute, int));
	CU_FN(CUresult, LaunchKernel, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
				       unsigned, CUstream, void **, void **));
	CU_FN(CUresult, EventCreate, (CUevent *, unsigned int));
	CU_FN(CUresult, EventRecord, (CUevent, CUstream));
	CU_FN(CUresult, EventSynchronize, (CUevent));
	CU_FN(CUresult, EventElapsedTime, (float *, CUevent, CUevent));
	CU_FN(CUresult, EventDestroy, (CUevent));
	CU_FN(CUresult, GetErrorName, (CUresult, const char **));
	CU_FN(CUresult, FuncGetParamInfo, (CUfunction, size_t, size_t *, size_t *)); /* optional: driver >= 12.4 */
} cuda_api;

/* In struct order; "a|b" tries a, then b. The last entry is optional. */
static const char *const sym_names[] = {
	"cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName",
	"cuDeviceGetAttribute", "cuDeviceTotalMem_v2", "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRelease_v2",
	"cuCtxSetCurrent", "cuCtxSynchronize", "cuMemAlloc_v2", "cuMemFree_v2", "cuMemcpyHtoD_v2",
	"cuMemcpyDtoH_v2", "cuMemsetD32_v2", "cuMemsetD32Async", "cuModuleLoadData", "cuModuleUnload",
	"cuModuleGetFunction", "cuFuncSetAttribute", "cuLaunchKernel", "cuEventCreate", "cuEventRecord",
	"cuEventSynchronize", "cuEventElapsedTime_v2|cuEventElapsedTime", "cuEventDestroy_v2", "cuGetErrorName",
	"cuFuncGetParamInfo",
};
_Static_assert(sizeof(cuda_api) == sizeof(sym_names) / sizeof(sym_names[0]) * sizeof(void (*)(void)),
	       "sym_names must list every cuda_api entry");

typedef struct cuda_dev {
	void *lib;
	cuda_api api;
	CUdevice dev;
	CUcontext ctx;
	bool poisoned;            /* a sticky fault happened: the context is unusable */
	char poison_text[200];
	/* timing: the launch op brackets each plan with events and skips its own sync */
	bool timing, rep_started;
	CUevent ev[2];
	/* Loads of an identical image while one is live share its CUmodule (and so its
	 * __device__ globals): kiln_time verifies with the very module it timed. */
	struct live_mod {
		char key[65];       /* SHA-256 of the image; "" = free slot */
		CUmodule mod;
		int refs;
	} live[8];
} cuda_dev;

typedef struct cuda_mod {
	cuda_dev *d;
	CUmodule mod;
	int slot;                 /* index in d->live, or -1 when not shared */
	char *ptx;                /* kept for parameter sizes when the driver lacks cuFuncGetParamInfo */
	size_t ptx_len;
	kiln_emu_module *parsed;  /* lazily parsed ptx */
} cuda_mod;

static const char *cu_name(const cuda_dev *d, CUresult r)
{
	const char *s = NULL;
	if (d->api.GetErrorName && d->api.GetErrorName(r, &s) == CUDA_SUCCESS && s)
		return s;
	return "CUDA_ERROR_UNKNOWN";
}

/* One CUresult -> kiln_err translation, with the driver's name kept. */
static kiln_err cu_err(cuda_dev *d, CUresult r, const char *what)
{
	return kiln_error_set(r == CUDA_ERROR_OUT_OF_MEMORY ? KILN_ENOMEM : KILN_EDEVICE, "cuda: %s: %s (%d)", what,
			      cu_name(d, r), (int)r);
}

static kiln_fault_kind fault_kind(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_ILLEGAL_ADDRESS: return KILN_FAULT_OOB;
	case CUDA_ERROR_MISALIGNED_ADDRESS: return KILN_FAULT_MISALIGNED;
	case CUDA_ERROR_ASSERT:
	case CUDA_ERROR_ILLEGAL_INSTRUCTION:
	case CUDA_ERROR_INVALID_PC:
	case CUDA_ERROR_HARDWARE_STACK_ERROR:
	case CUDA_ERROR_LAUNCH_FAILED: return KILN_FAULT_TRAP;
	case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
	case CUDA_ERROR_INVALID_VALUE: return KILN_FAULT_LIMIT;
	case CUDA_ERROR_LAUNCH_TIMEOUT: return KILN_FAULT_BUDGET;
	default: return KILN_FAULT_DEVICE;
	}
}

static bool sticky(CUresult r)
{
	return r == CUDA_ERROR_ILLEGAL_ADDRESS || r == CUDA_ERROR_MISALIGNED_ADDRESS || r == CUDA_ERROR_ASSERT ||
	       r == CUDA_ERROR_ILLEGAL_INSTRUCTION || r == CUDA_ERROR_INVALID_PC || r == CUDA_ERROR_HARDWARE_STACK_ERROR ||
	       r == CUDA_ERROR_LAUNCH_FAILED || r == CUDA_ERROR_LAUNCH_TIMEOUT;
}

static kiln_err check_ctx(cuda_dev *d)
{
	if (d->poisoned)
		return kiln_error_set(KILN_EDEVICE, "cuda: the context is unusable after an earlier fault (%s); evaluate in a fresh process",
				      d->poison_text);
	return 0;
}

/* ---- memory ---- */

static kiln_err cu_alloc(void *impl, uint64_t *out, size_t n)
{
	cuda_dev *d = impl;
	CUdeviceptr p = 0;
	kiln_err e = check_ctx(d);
	if (e)
		return e;
	CUresult r = d->api.MemAlloc(&p, n ? n : 1);
	if (r != CUDA_SUCCESS)
		return cu_err(d, r, "cuMemAlloc");
	*out = (uint64_t)p;
	return 0;
}

static kiln_err cu_mem_free(void *impl, uint64_t a)
{
	cuda_dev *d = impl;
	CUresult r = d->api.MemFree((CUdeviceptr)a);
	return r == CUDA_SUCCESS || d->poisoned ? 0 : cu_err(d, r, "cuMemFree");
}

static kiln_err cu_write(void *impl, uint64_t a, const void *s, size_t n)
{
	cuda_dev *d = impl;
	kiln_err e = check_ctx(d);
	CUresult r = e || !n ? CUDA_SUCCESS : d->api.MemcpyHtoD((CUdeviceptr)a, s, n);
	return e ? e : r == CUDA_SUCCESS ? 0 : cu_err(d, r, "cuMemcpyHtoD");
}

static kiln_err cu_read(void *impl, void *dst, uint64_t a, size_t n)
{
	cuda_dev *d = impl;
	kiln_err e = check_ctx(d);
	CUresult r = e || !n ? CUDA_SUCCESS : d->api.MemcpyDtoH(dst, (CUdeviceptr)a, n);
	return e ? e : r == CUDA_SUCCESS ? 0 : cu_err(d, r, "cuMemcpyDtoH");
}

/* Whole 32-bit words with cuMemsetD32, the 1-3 tail bytes copied from the pattern. */
static kiln_err cu_poison(void *impl, uint64_t a, size_t n, uint32_t pat)
{
	cuda_dev *d = impl;
	kiln_err e = check_ctx(d);
	if (e)
		return e;
	CUresult r = n >= 4 ? d->api.MemsetD32((CUdeviceptr)a, pat, n / 4) : CUDA_SUCCESS;
	if (r != CUDA_SUCCESS)
		return cu_err(d, r, "cuMemsetD32");
	uint8_t tail[4];
	for (size_t k = 0; k < n % 4; k++)
		tail[k] = (uint8_t)(pat >> (8 * k));
	if (n % 4 && (r = d->api.MemcpyHtoD((CUdeviceptr)(a + n / 4 * 4), tail, n % 4)) != CUDA_SUCCESS)
		return cu_err(d, r, "cuMemcpyHtoD");
	return 0;
}

/* ---- modules ---- */

static kiln_err cu_module_load(void *impl, void **out, const kiln_compiled *c)
{
	cuda_dev *d = impl;
	cuda_mod *m = NULL;
	char why[300] = "";
	kiln_err e = check_ctx(d);
	if (e)
		return e;
	if (!(m = kiln_calloc(1, sizeof(*m))))
		return KILN_ENOMEM;
	m->d = d;
	if (c->ptx && !(m->ptx = kiln_strndup(c->ptx, c->ptx_len))) {
		free(m);
		return KILN_ENOMEM;
	}
	m->ptx_len = c->ptx_len;
	m->slot = -1;
	char key[65];
	if (c->cubin)
		kiln_sha256_hex(key, c->cubin, c->cubin_len);
	else
		kiln_sha256_hex(key, c->ptx ? c->ptx : "", c->ptx ? c->ptx_len : 0);
	for (int i = 0; i < (int)KILN_ARRAY_LEN(d->live); i++)
		if (d->live[i].refs > 0 && strcmp(d->live[i].key, key) == 0) {
			m->mod = d->live[i].mod;
			m->slot = i;
			d->live[i].refs++;
			*out = m;
			return 0;
		}
	CUresult r = CUDA_ERROR_INVALID_IMAGE;
	if (c->cubin) {
		r = d->api.ModuleLoadData(&m->mod, c->cubin);
		if (r != CUDA_SUCCESS)
			snprintf(why, sizeof(why), "cubin (%s): %s", c->arch ? c->arch : "?", cu_name(d, r));
	}
	if (r != CUDA_SUCCESS && m->ptx) {
		CUresult rp = d->api.ModuleLoadData(&m->mod, m->ptx);
		size_t w = strlen(why);
		snprintf(why + w, sizeof(why) - w, "%sptx: %s", w ? "; " : "", cu_name(d, rp));
		r = rp;
	}
	if (r != CUDA_SUCCESS) {
		free(m->ptx);
		free(m);
		if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION || r == CUDA_ERROR_NO_BINARY_FOR_GPU)
			return kiln_error_set(KILN_EUNSUPPORTED, "cuda: module load: %s (is the driver older than the toolkit?)", why);
		return kiln_error_set(KILN_EDEVICE, "cuda: module load: %s", why);
	}
	for (int i = 0; i < (int)KILN_ARRAY_LEN(d->live) && m->slot < 0; i++)
		if (d->live[i].refs == 0) {
			snprintf(d->live[i].key, sizeof(d->live[i].key), "%s", key);
			d->live[i].mod = m->mod;
			d->live[i].refs = 1;
			m->slot = i;
		}
	*out = m;
	return 0;
}

static void cu_module_free(void *mod)
{
	cuda_mod *m = mod;
	if (!m)
		return;
	bool last = m->slot < 0 || --m->d->live[m->slot].refs == 0;
	if (m->mod && last && !m->d->poisoned)
		m->d->api.ModuleUnload(m->mod);
	kiln_emu_module_free(m->parsed);
	free(m->ptx);
	free(m);
}

static kiln_err get_function(const cuda_mod *m, const char *kernel, CUfunction *f)
{
	CUresult r = m->d->api.ModuleGetFunction(f, m->mod, kernel);
	if (r == CUDA_ERROR_NOT_FOUND)
		return kiln_error_set(KILN_ENOTFOUND, "cuda: the module has no kernel '%s'", kernel);
	return r == CUDA_SUCCESS ? 0 : cu_err(m->d, r, "cuModuleGetFunction");
}

static kiln_err cu_params(const void *mod, const char *kernel, size_t *n, uint32_t *sizes, size_t max)
{
	cuda_mod *m = (cuda_mod *)mod;
	CUfunction f;
	kiln_err e = get_function(m, kernel, &f);
	if (e)
		return e;
	if (m->d->api.FuncGetParamInfo) {
		size_t i = 0, off, sz;
		while (m->d->api.FuncGetParamInfo(f, i, &off, &sz) == CUDA_SUCCESS) {
			if (i < max)
				sizes[i] = (uint32_t)sz;
			i++;
		}
		*n = i;
		return 0;
	}
	/* older drivers: the PTX .entry declaration says the same */
	if (!m->parsed && m->ptx && (e = kiln_emu_module_parse(&m->parsed, m->ptx, m->ptx_len, "kernel.ptx")))
		return e;
	const kiln_emu_param *ps = NULL;
	size_t np = 0;
	if (!m->parsed || (e = kiln_emu_kernel_params(m->parsed, kernel, &np, &ps)))
		return e ? e : kiln_error_set(KILN_EUNSUPPORTED, "cuda: cannot read the parameters of '%s'", kernel);
	for (size_t i = 0; i < np && i < max; i++)
		sizes[i] = ps[i].size;
	*n = np;
	return 0;
}

/* ---- launches ---- */

static kiln_err launch_fault(cuda_dev *d, CUresult r, const char *what, const char *kernel, kiln_device_fault *fault)
{
	fault->kind = fault_kind(r);
	snprintf(fault->text, sizeof(fault->text), "%s %s: %s (%d)", what, kernel, cu_name(d, r), (int)r);
	if (sticky(r)) {
		d->poisoned = true;
		snprintf(d->poison_text, sizeof(d->poison_text), "%.190s", fault->text);
	}
	return kiln_error_set(KILN_EFAULT, "%s", fault->text);
}

static kiln_err cu_launch(void *impl, const void *mod, const char *kernel, const kiln_dims *dm,
			  const void *const *args, kiln_device_counters *c, kiln_device_fault *fault)
{
	cuda_dev *d = impl;
	const cuda_mod *m = mod;
	CUfunction f;
	(void)c; /* no counters on a GPU */
	kiln_err e = check_ctx(d);
	if (e || (e = get_function(m, kernel, &f)))
		return e;
	if (dm->shared_bytes > 48 * 1024) {
		CUresult ra = d->api.FuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)dm->shared_bytes);
		if (ra != CUDA_SUCCESS)
			return launch_fault(d, ra, "shared-memory opt-in for", kernel, fault);
	}
	if (d->timing && !d->rep_started) {
		d->api.EventRecord(d->ev[0], NULL);
		d->rep_started = true;
	}
	CUresult r = d->api.LaunchKernel(f, dm->grid[0], dm->grid[1], dm->grid[2], dm->block[0], dm->block[1],
					 dm->block[2], dm->shared_bytes, NULL, (void **)args, NULL);
	if (r != CUDA_SUCCESS)
		return launch_fault(d, r, "cuLaunchKernel", kernel, fault);
	if (d->timing)
		return (r = d->api.EventRecord(d->ev[1], NULL)) == CUDA_SUCCESS ? 0 : cu_err(d, r, "cuEventRecord");
	if ((r = d->api.CtxSynchronize()) != CUDA_SUCCESS)
		return launch_fault(d, r, "kernel", kernel, fault);
	return 0;
}

static kiln_err cu_sync(void *impl)
{
	cuda_dev *d = impl;
	kiln_err e = check_ctx(d);
	if (e)
		return e;
	CUresult r = d->api.CtxSynchronize();
	if (r == CUDA_SUCCESS)
		return 0;
	if (sticky(r)) {
		d->poisoned = true;
		snprintf(d->poison_text, sizeof(d->poison_text), "%s", cu_name(d, r));
		return kiln_error_set(KILN_EFAULT, "cuda: a kernel faulted: %s (%d)", cu_name(d, r), (int)r);
	}
	return cu_err(d, r, "cuCtxSynchronize");
}

static void cu_destroy(void *impl)
{
	cuda_dev *d = impl;
	if (!d)
		return;
	if (d->ctx) {
		for (int i = 0; i < 2; i++)
			if (d->ev[i])
				d->api.EventDestroy(d->ev[i]);
		d->api.PrimaryCtxRelease(d->dev);
	}
	/* libcuda stays loaded: unloading a driver library is not safe */
	free(d);
}

/* ---- CUPTI: kernel records (process-wide, as CUPTI's callbacks are) ---- */

#if CUPTI_API_VERSION >= 130000
typedef CUpti_ActivityKernel10 kernel_record;
#else
typedef CUpti_ActivityKernel9 kernel_record;
#endif

static struct {
	bool tried, ok;
	CUptiResult (CUPTIAPI *Enable)(CUpti_ActivityKind);
	CUptiResult (CUPTIAPI *Disable)(CUpti_ActivityKind);
	CUptiResult (CUPTIAPI *Register)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc);
	CUptiResult (CUPTIAPI *FlushAll)(uint32_t);
	CUptiResult (CUPTIAPI *Next)(uint8_t *, size_t, CUpti_Activity **);
	uint64_t *start, *end;    /* kernel records since the last take */
	size_t n, cap;
	bool overflow;
} cupti;

#define CUPTI_BUF (1u << 20)

static void CUPTIAPI cupti_requested(uint8_t **buffer, size_t *size, size_t *max_records)
{
	*buffer = aligned_alloc(8, CUPTI_BUF);
	*size = *buffer ? CUPTI_BUF : 0;
	*max_records = 0;
}

static void CUPTIAPI cupti_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid)
{
	CUpti_Activity *rec = NULL;
	(void)ctx;
	(void)stream;
	(void)size;
	while (buffer && cupti.Next(buffer, valid, &rec) == CUPTI_SUCCESS) {
		if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL)
			continue;
		const kernel_record *k = (const kernel_record *)rec;
		if (cupti.n == cupti.cap) {
			size_t nc = cupti.cap ? 2 * cupti.cap : 4096;
			uint64_t *s = realloc(cupti.start, nc * sizeof(uint64_t)), *e = s ? realloc(cupti.end, nc * sizeof(uint64_t)) : NULL;
			if (s)
				cupti.start = s;
			if (!s || !e) {
				cupti.overflow = true;
				break;
			}
			cupti.end = e;
			cupti.cap = nc;
		}
		cupti.start[cupti.n] = k->start;
		cupti.end[cupti.n++] = k->end;
	}
	free(buffer);
}

static void *open_cupti(void)
{
	static const char *const paths[] = {"libcupti.so", KILN_CUDA_ROOT "/lib64/libcupti.so",
					    KILN_CUDA_ROOT "/extras/CUPTI/lib64/libcupti.so", KILN_CUDA_ROOT "/lib/libcupti.so"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(paths); i++) {
		void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
		if (h)
			return h;
	}
	return NULL;
}

/* Loads CUPTI once and enables kernel records; false when unavailable (events then). */
static bool cupti_start(void)
{
	const char *off = getenv("KILN_NO_CUPTI"); /* 1: time with CUDA events only */
	if (off && *off == '1')
		return false;
	if (cupti.tried)
		return cupti.ok && cupti.Enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) == CUPTI_SUCCESS;
	cupti.tried = true;
	void *h = open_cupti();
	if (!h)
		return false;
	*(void **)&cupti.Enable = dlsym(h, "cuptiActivityEnable");
	*(void **)&cupti.Disable = dlsym(h, "cuptiActivityDisable");
	*(void **)&cupti.Register = dlsym(h, "cuptiActivityRegisterCallbacks");
	*(void **)&cupti.FlushAll = dlsym(h, "cuptiActivityFlushAll");
	*(void **)&cupti.Next = dlsym(h, "cuptiActivityGetNextRecord");
	if (!cupti.Enable || !cupti.Disable || !cupti.Register || !cupti.FlushAll || !cupti.Next ||
	    cupti.Register(cupti_requested, cupti_completed) != CUPTI_SUCCESS)
		return false;
	cupti.ok = true;
	return cupti.Enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) == CUPTI_SUCCESS;
}

static void cupti_stop(void)
{
	if (cupti.ok) {
		cupti.FlushAll(1);
		cupti.Disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
		cupti.n = 0;
	}
}

static int cmp_u64_pair(const void *a, const void *b)
{
	uint64_t x = ((const uint64_t *)a)[0], y = ((const uint64_t *)b)[0];
	return (x > y) - (x < y);
}

/* The plan times of the last reps from the kernel records: sorted by start, kernels_per_rep
 * records per rep; a rep's time is its kernels' durations plus the gaps between them. false when the records do not add up (then events are used). */
static bool cupti_take(double *us, size_t reps, size_t kernels_per_rep)
{
	bool ok = false;
	cupti.FlushAll(1);
	if (!cupti.overflow && cupti.n == reps * kernels_per_rep) {
		uint64_t *pairs = malloc(cupti.n * 2 * sizeof(uint64_t));
		if (pairs) {
			for (size_t i = 0; i < cupti.n; i++) {
				pairs[2 * i] = cupti.start[i];
				pairs[2 * i + 1] = cupti.end[i];
			}
			qsort(pairs, cupti.n, 2 * sizeof(uint64_t), cmp_u64_pair);
			for (size_t r = 0; r < reps; r++) {
				/* kernel durations plus the gaps between dependent launches, the
				 * definition the cost model uses (docs/cost-model.md) */
				uint64_t ns = 0;
				for (size_t k = 0; k < kernels_per_rep; k++) {
					const uint64_t *p = &pairs[2 * (r * kernels_per_rep + k)];
					ns += p[1] > p[0] ? p[1] - p[0] : 0;
					if (k > 0 && p[0] > p[-1])
						ns += p[0] - p[-1];
				}
				us[r] = (double)ns / 1e3;
			}
			free(pairs);
			ok = true;
		}
	}
	cupti.n = 0;
	cupti.overflow = false;
	return ok;
}

/* ---- timing ---- */

#define BATCH 10
#define MIN_REPS 10
#define MAX_REPS 5000
#define WARMUP_REPS 3

static double rel_se_of_median(const double *v, size_t n)
{
	double mean = 0, var = 0;
	for (size_t i = 0; i < n; i++)
		mean += v[i];
	mean /= (double)n;
	for (size_t i = 0; i < n; i++)
		var += (v[i] - mean) * (v[i] - mean);
	var /= (double)(n > 1 ? n - 1 : 1);
	double *s = malloc(n * sizeof(double));
	if (!s)
		return INFINITY;
	memcpy(s, v, n * sizeof(double));
	for (size_t i = 1; i < n; i++) /* insertion sort: n is small per check */
		for (size_t j = i; j > 0 && s[j] < s[j - 1]; j--) {
			double x = s[j];
			s[j] = s[j - 1];
			s[j - 1] = x;
		}
	double med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
	free(s);
	/* SE(median) ~ sqrt(pi/2) * sd / sqrt(n) for near-normal samples */
	return med > 0 ? 1.2533 * sqrt(var) / sqrt((double)n) / med : INFINITY;
}

static kiln_err samples_push(kiln_time_samples *out, double v)
{
	if (out->n == out->cap) {
		size_t nc = out->cap ? 2 * out->cap : 64;
		double *p = kiln_realloc(out->us, nc * sizeof(double));
		if (!p)
			return KILN_ENOMEM;
		out->us = p;
		out->cap = nc;
	}
	out->us[out->n++] = v;
	return 0;
}

/* One rep: flush L2 with a write of 2x its size, then the plan (run syncs at its end). */
static kiln_err one_rep(cuda_dev *d, CUdeviceptr flush, size_t flush_words, kiln_err (*run)(void *, size_t),
			void *ctx, size_t rep, float *event_ms)
{
	CUresult r = d->api.MemsetD32Async(flush, (unsigned)rep, flush_words, NULL);
	if (r != CUDA_SUCCESS)
		return cu_err(d, r, "L2 flush");
	d->rep_started = false;
	kiln_err e = run(ctx, rep);
	if (e)
		return e;
	*event_ms = 0;
	if (d->rep_started && (r = d->api.EventSynchronize(d->ev[1])) == CUDA_SUCCESS)
		r = d->api.EventElapsedTime(event_ms, d->ev[0], d->ev[1]);
	return r == CUDA_SUCCESS ? 0 : cu_err(d, r, "cuEventElapsedTime");
}

static kiln_err time_loop(cuda_dev *d, CUdeviceptr flush, size_t flush_words, kiln_err (*run)(void *, size_t),
			  void *ctx, size_t kpr, double max_seconds, kiln_time_samples *out)
{
	double t0 = kiln_now_s(), batch_us[BATCH];
	float ms[BATCH];
	size_t rep = 0;
	kiln_err e = 0;
	for (size_t w = 0; w < WARMUP_REPS && !e; w++)
		e = one_rep(d, flush, flush_words, run, ctx, rep++, &ms[0]);
	if (e)
		return e;
	bool use_cupti = cupti_start();
	if (use_cupti)
		cupti_take(batch_us, 0, kpr); /* drop the warm-up's records */
	out->cupti = use_cupti;
	while (out->n < MAX_REPS) {
		for (size_t b = 0; b < BATCH; b++)
			if ((e = one_rep(d, flush, flush_words, run, ctx, rep++, &ms[b])))
				goto done;
		bool from_cupti = use_cupti && cupti_take(batch_us, BATCH, kpr);
		out->cupti = out->cupti && from_cupti;
		for (size_t b = 0; b < BATCH; b++)
			if ((e = samples_push(out, from_cupti ? batch_us[b] : (double)ms[b] * 1e3)))
				goto done;
		double el = kiln_now_s() - t0;
		if ((out->n >= MIN_REPS && rel_se_of_median(out->us, out->n) < 0.01) || el > max_seconds)
			break;
	}
done:
	cupti_stop();
	out->seconds = kiln_now_s() - t0;
	return e;
}

static kiln_err cu_time_plan(void *impl, kiln_err (*run)(void *ctx, size_t rep), void *ctx, size_t kpr,
			     double max_seconds, kiln_time_samples *out)
{
	cuda_dev *d = impl;
	CUdeviceptr flush = 0;
	int l2 = 0;
	kiln_err e = check_ctx(d);
	if (e)
		return e;
	d->api.DeviceGetAttribute(&l2, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, d->dev);
	size_t flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : 64 << 20);
	CUresult r = d->api.MemAlloc(&flush, flush_bytes);
	if (r != CUDA_SUCCESS)
		return cu_err(d, r, "cuMemAlloc (L2 flush buffer)");
	d->timing = true;
	e = time_loop(d, flush, flush_bytes / 4, run, ctx, kpr ? kpr : 1, max_seconds, out);
	d->timing = false;
	if (!d->poisoned)
		d->api.MemFree(flush);
	return e;
}

/* ---- open ---- */

static const kiln_device_ops cuda_ops = {
	cu_destroy, cu_alloc, cu_mem_free, cu_write, cu_read, cu_poison,
	cu_module_load, cu_module_free, cu_params, cu_launch, cu_sync,
};

static kiln_err load_api(cuda_dev *d)
{
	const char *path = getenv("KILN_LIBCUDA"); /* another driver library (tests: a fake one) */
	if (!(d->lib = dlopen(path && *path ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL)))
		return kiln_error_set(KILN_EUNSUPPORTED, "device cuda: no CUDA driver (%s)", dlerror());
	void **slots = (void **)&d->api;
	for (size_t i = 0; i < KILN_ARRAY_LEN(sym_names); i++) {
		char names[64], *save = NULL;
		snprintf(names, sizeof(names), "%s", sym_names[i]);
		for (char *tok = strtok_r(names, "|", &save); tok && !slots[i]; tok = strtok_r(NULL, "|", &save))
			slots[i] = dlsym(d->lib, tok);
		if (!slots[i] && i + 1 < KILN_ARRAY_LEN(sym_names))
			return kiln_error_set(KILN_EUNSUPPORTED, "device cuda: the driver is too old (no %s)", sym_names[i]);
	}
	return 0;
}

static int attr(cuda_dev *d, CUdevice_attribute a)
{
	int v = 0;
	return d->api.DeviceGetAttribute(&v, a, d->dev) == CUDA_SUCCESS ? v : 0;
}

static void fill_info(cuda_dev *d, kiln_device_info *in, int driver)
{
	size_t total = 0;
	in->kind = KILN_DEVICE_CUDA;
	d->api.DeviceGetName(in->name, (int)sizeof(in->name), d->dev);
	in->cc_major = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
	in->cc_minor = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
	snprintf(in->arch, sizeof(in->arch), "sm_%u%u", in->cc_major, in->cc_minor);
	in->sm_count = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
	in->max_threads_per_block = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
	in->max_shared_per_block = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
	in->smem_per_sm = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR);
	in->l2_bytes = (uint64_t)attr(d, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
	in->clock_khz = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
	in->mem_clock_khz = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
	in->bus_width_bits = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
	/* double data rate: two transfers per memory clock */
	in->peak_bw_gbs = 2.0 * in->mem_clock_khz * 1e3 * (in->bus_width_bits / 8.0) / 1e9;
	if (d->api.DeviceTotalMem(&total, d->dev) == CUDA_SUCCESS)
		in->total_mem = total;
	in->driver_version = driver;
	in->modeled = false;
}

kiln_err kiln_device_cuda_init(kiln_device *dev, const kiln_device_options *o)
{
	cuda_dev *d = kiln_calloc(1, sizeof(*d));
	int count = 0, driver = 0;
	kiln_err e;
	CUresult r;
	(void)o;
	if (!d)
		return KILN_ENOMEM;
	if ((e = load_api(d)))
		goto fail;
	if ((r = d->api.Init(0)) != CUDA_SUCCESS) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "device cuda: cuInit failed: %s", cu_name(d, r));
		goto fail;
	}
	d->api.DriverGetVersion(&driver);
	if (driver < CUDA_VERSION / 1000 * 1000) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "device cuda: the driver supports CUDA %d.%d, older than the toolkit's %d.%d PTX; update the driver",
				   driver / 1000, driver % 1000 / 10, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
		goto fail;
	}
	if ((r = d->api.DeviceGetCount(&count)) != CUDA_SUCCESS || count < 1) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "device cuda: no GPU (%s)", r != CUDA_SUCCESS ? cu_name(d, r) : "0 devices");
		goto fail;
	}
	if ((r = d->api.DeviceGet(&d->dev, 0)) != CUDA_SUCCESS || (r = d->api.PrimaryCtxRetain(&d->ctx, d->dev)) != CUDA_SUCCESS) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "device cuda: cannot open GPU 0: %s", cu_name(d, r));
		d->ctx = NULL;
		goto fail;
	}
	if ((r = d->api.CtxSetCurrent(d->ctx)) != CUDA_SUCCESS || (r = d->api.EventCreate(&d->ev[0], CU_EVENT_DEFAULT)) ||
	    (r = d->api.EventCreate(&d->ev[1], CU_EVENT_DEFAULT))) {
		e = cu_err(d, r, "context setup");
		goto fail;
	}
	fill_info(d, &dev->info, driver);
	dev->ops = &cuda_ops;
	dev->impl = d;
	dev->time_plan = cu_time_plan;
	return 0;
fail:
	if (d->ctx)
		cu_destroy(d);
	else
		free(d);
	return e;
}

/* ---- probe in a child, so the caller never runs cuInit ---- */

bool kiln_device_cuda_probe(char *why, size_t n)
{
	int fd[2];
	char buf[240] = "";
	if (why && n)
		why[0] = 0;
	if (pipe(fd) != 0) {
		if (why)
			snprintf(why, n, "probe: pipe failed");
		return false;
	}
	pid_t pid = fork();
	if (pid == 0) {
		close(fd[0]);
		alarm(30);
		kiln_device *dev = NULL;
		kiln_err e = kiln_device_open(&dev, "cuda", NULL);
		int len = snprintf(buf, sizeof(buf), "%c%s", e ? '0' : '1', e ? kiln_error_last() : kiln_device_info_get(dev)->name);
		if (write(fd[1], buf, (size_t)(len > 0 ? len : 0)) < 0)
			_exit(2);
		_exit(0);
	}
	close(fd[1]);
	ssize_t got = pid > 0 ? read(fd[0], buf, sizeof(buf) - 1) : -1;
	close(fd[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	buf[got > 0 ? got : 0] = 0;
	if (why)
		snprintf(why, n, "%s", got > 1 ? buf + 1 : "probe: the child did not answer");
	return got > 0 && buf[0] == '1';
}
