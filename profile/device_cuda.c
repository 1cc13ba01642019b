/* profile: the "cuda" device backend. libcuda.so.1 and libcupti are loaded with dlopen
 * (kiln never links them; cuda.h / cupti.h give the types), so one kiln binary runs with
 * and without a driver. One device ($KILN_GPU_INDEX among the visible ones, default 0) in
 * its primary context; modules load from the cubin built for the device's exact sm with
 * the PTX as fallback; every launch is synchronized and checked (when timed: the warm-up's,
 * device_cuda_time.c), so a fault surfaces at the launch that caused it. The first sticky error (cuda.h: the
 * context is unusable, the process must end) poisons the device: it is kept as the fault,
 * later calls fail with KILN_EDEVICE naming it, and cleanup calls no driver function.
 * Timing (device_cuda_time.c). Not fork safe: cuInit in a process that then forks leaves
 * the child unusable. Environment: KILN_LIBCUDA = path of the driver library (default
 * libcuda.so.1), KILN_GPU_INDEX = the GPU ordinal. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "profile/cuda_int.h"

/* In cuda_api order; "a|b" tries a, then b; a trailing '?' marks an optional entry. */
static const char *const sym_names[] = {
	"cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet", "cuDeviceGetName",
	"cuDeviceGetAttribute", "cuDeviceTotalMem_v2", "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRelease_v2",
	"cuCtxSetCurrent", "cuCtxSynchronize", "cuMemAlloc_v2", "cuMemFree_v2", "cuMemcpyHtoD_v2",
	"cuMemcpyDtoH_v2", "cuMemsetD32_v2", "cuMemsetD32Async", "cuModuleLoadData", "cuModuleUnload",
	"cuModuleGetFunction", "cuFuncSetAttribute", "cuFuncGetAttribute", "cuLaunchKernel", "cuEventCreate",
	"cuEventRecord", "cuEventSynchronize", "cuEventElapsedTime_v2|cuEventElapsedTime", "cuEventDestroy_v2",
	"cuGetErrorName", "cuFuncGetParamInfo?", "cuDeviceGetUuid_v2|cuDeviceGetUuid?",
	"cuGraphCreate?", "cuGraphAddKernelNode_v2?", "cuGraphInstantiateWithFlags?", "cuGraphLaunch?",
	"cuGraphExecDestroy?", "cuGraphDestroy?",
};
_Static_assert(sizeof(cuda_api) == sizeof(sym_names) / sizeof(sym_names[0]) * sizeof(void (*)(void)),
	       "sym_names must list every cuda_api entry");

const char *kiln_cuda_name(const cuda_dev *d, CUresult r)
{
	const char *s = NULL;
	if (d->api.GetErrorName && d->api.GetErrorName(r, &s) == CUDA_SUCCESS && s)
		return s;
	return "CUDA_ERROR_UNKNOWN";
}

/* The codes after which cuda.h says the context (or process) is unusable: "any further
 * CUDA work will return the same error". 720 is listed as well (kiln never launches
 * cooperatively, so it can only mean something went very wrong); 999 is trusted no more. */
bool kiln_cuda_sticky(CUresult r)
{
	switch ((int)r) {
	case 214: /* ECC_UNCORRECTABLE */
	case 226: /* CONTAINED */
	case 700: /* ILLEGAL_ADDRESS */
	case 702: /* LAUNCH_TIMEOUT */
	case 709: /* CONTEXT_IS_DESTROYED */
	case 710: /* ASSERT */
	case 714: /* HARDWARE_STACK_ERROR */
	case 715: /* ILLEGAL_INSTRUCTION */
	case 716: /* MISALIGNED_ADDRESS */
	case 717: /* INVALID_ADDRESS_SPACE */
	case 718: /* INVALID_PC */
	case 719: /* LAUNCH_FAILED */
	case 720: /* COOPERATIVE_LAUNCH_TOO_LARGE */
	case 721: /* TENSOR_MEMORY_LEAK */
	case 810: /* MPS_CLIENT_TERMINATED */
	case 911: /* EXTERNAL_DEVICE */
	case 999: /* UNKNOWN */
		return true;
	default:
		return false;
	}
}

static kiln_fault_kind fault_kind(CUresult r)
{
	switch (r) {
	case CUDA_ERROR_ILLEGAL_ADDRESS:
	case CUDA_ERROR_INVALID_ADDRESS_SPACE: return KILN_FAULT_OOB;
	case CUDA_ERROR_MISALIGNED_ADDRESS: return KILN_FAULT_MISALIGNED;
	case CUDA_ERROR_ASSERT:
	case CUDA_ERROR_ILLEGAL_INSTRUCTION:
	case CUDA_ERROR_INVALID_PC:
	case CUDA_ERROR_HARDWARE_STACK_ERROR:
	case CUDA_ERROR_TENSOR_MEMORY_LEAK:
	case CUDA_ERROR_LAUNCH_FAILED: return KILN_FAULT_TRAP;
	case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES:
	case CUDA_ERROR_INVALID_VALUE: return KILN_FAULT_LIMIT;
	case CUDA_ERROR_LAUNCH_TIMEOUT: return KILN_FAULT_BUDGET;
	default: return KILN_FAULT_DEVICE;
	}
}

static kiln_err poisoned_error(const cuda_dev *d)
{
	return kiln_error_set(KILN_EDEVICE, "cuda: the context is unusable after an earlier fault (%s); evaluate in a fresh process",
			      d->poison_text);
}

/* Marks the context unusable with its first sticky error; later ones never overwrite it. */
static void poison(cuda_dev *d, kiln_fault_kind kind, const char *text)
{
	if (d->poisoned)
		return;
	d->poisoned = true;
	d->poison_kind = kind;
	snprintf(d->poison_text, sizeof(d->poison_text), "%.290s", text);
}

/* One CUresult -> kiln_err translation, with the driver's name kept. A sticky code here
 * (not at a launch) still poisons; after poisoning, the first fault is what is reported. */
kiln_err kiln_cuda_err(cuda_dev *d, CUresult r, const char *what)
{
	if (d->poisoned)
		return poisoned_error(d);
	if (kiln_cuda_sticky(r)) {
		char text[300];
		snprintf(text, sizeof(text), "%s: %s (%d)", what, kiln_cuda_name(d, r), (int)r);
		poison(d, fault_kind(r), text);
		return kiln_error_set(KILN_EFAULT, "cuda: a kernel faulted: %s", text);
	}
	return kiln_error_set(r == CUDA_ERROR_OUT_OF_MEMORY ? KILN_ENOMEM : KILN_EDEVICE, "cuda: %s: %s (%d)", what,
			      kiln_cuda_name(d, r), (int)r);
}

static kiln_err check_ctx(const cuda_dev *d)
{
	return d->poisoned ? poisoned_error(d) : 0;
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
		return kiln_cuda_err(d, r, "cuMemAlloc");
	*out = (uint64_t)p;
	return 0;
}

/* After a fault nothing is freed: the driver would only repeat the fault (and the
 * process is about to end); the first error stays the one reported. */
static kiln_err cu_mem_free(void *impl, uint64_t a)
{
	cuda_dev *d = impl;
	if (d->poisoned)
		return 0;
	CUresult r = d->api.MemFree((CUdeviceptr)a);
	return r == CUDA_SUCCESS ? 0 : kiln_cuda_err(d, r, "cuMemFree");
}

static kiln_err cu_write(void *impl, uint64_t a, const void *s, size_t n)
{
	cuda_dev *d = impl;
	kiln_err e = check_ctx(d);
	CUresult r = e || !n ? CUDA_SUCCESS : d->api.MemcpyHtoD((CUdeviceptr)a, s, n);
	return e ? e : r == CUDA_SUCCESS ? 0 : kiln_cuda_err(d, r, "cuMemcpyHtoD");
}

static kiln_err cu_read(void *impl, void *dst, uint64_t a, size_t n)
{
	cuda_dev *d = impl;
	kiln_err e = check_ctx(d);
	CUresult r = e || !n ? CUDA_SUCCESS : d->api.MemcpyDtoH(dst, (CUdeviceptr)a, n);
	return e ? e : r == CUDA_SUCCESS ? 0 : kiln_cuda_err(d, r, "cuMemcpyDtoH");
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
		return kiln_cuda_err(d, r, "cuMemsetD32");
	uint8_t tail[4];
	for (size_t k = 0; k < n % 4; k++)
		tail[k] = (uint8_t)(pat >> (8 * k));
	if (n % 4 && (r = d->api.MemcpyHtoD((CUdeviceptr)(a + n / 4 * 4), tail, n % 4)) != CUDA_SUCCESS)
		return kiln_cuda_err(d, r, "cuMemcpyHtoD");
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
			snprintf(why, sizeof(why), "cubin (%s): %s", c->arch ? c->arch : "?", kiln_cuda_name(d, r));
	}
	if (r != CUDA_SUCCESS && !kiln_cuda_sticky(r) && m->ptx) {
		CUresult rp = d->api.ModuleLoadData(&m->mod, m->ptx);
		size_t w = strlen(why);
		snprintf(why + w, sizeof(why) - w, "%sptx: %s", w ? "; " : "", kiln_cuda_name(d, rp));
		r = rp;
	}
	if (r != CUDA_SUCCESS) {
		free(m->ptx);
		free(m);
		if (kiln_cuda_sticky(r) || d->poisoned)
			return kiln_cuda_err(d, r, "cuModuleLoadData");
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
	kiln_err e = check_ctx(m->d);
	if (e)
		return e;
	CUresult r = m->d->api.ModuleGetFunction(f, m->mod, kernel);
	if (r == CUDA_ERROR_NOT_FOUND)
		return kiln_error_set(KILN_ENOTFOUND, "cuda: the module has no kernel '%s'", kernel);
	return r == CUDA_SUCCESS ? 0 : kiln_cuda_err(m->d, r, "cuModuleGetFunction");
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
		CUresult r;
		while ((r = m->d->api.FuncGetParamInfo(f, i, &off, &sz)) == CUDA_SUCCESS) {
			if (i < max)
				sizes[i] = (uint32_t)sz;
			i++;
		}
		/* past the last parameter the driver says INVALID_VALUE; anything else is an error
		 * (a sticky fault from an earlier launch must not read as "no parameters") */
		if (r != CUDA_ERROR_INVALID_VALUE)
			return kiln_cuda_err(m->d, r, "cuFuncGetParamInfo");
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

/* A launch's fault: sticky ones poison the context with this text (the first wins). */
kiln_err kiln_cuda_launch_fault(cuda_dev *d, CUresult r, const char *what, const char *kernel, kiln_device_fault *fault)
{
	if (d->poisoned && !kiln_cuda_sticky(r)) /* the driver repeating an earlier fault */
		return poisoned_error(d);
	if (d->poisoned) {
		fault->kind = d->poison_kind;
		snprintf(fault->text, sizeof(fault->text), "%s", d->poison_text);
		return kiln_error_set(KILN_EFAULT, "%s", fault->text);
	}
	fault->kind = fault_kind(r);
	snprintf(fault->text, sizeof(fault->text), "%s %s: %s (%d)", what, kernel, kiln_cuda_name(d, r), (int)r);
	if (kiln_cuda_sticky(r))
		poison(d, fault->kind, fault->text);
	return kiln_error_set(KILN_EFAULT, "%s", fault->text);
}

/* Dynamic shared memory above 48 KiB minus the kernel's static shared memory needs the
 * opt-in attribute; static + dynamic above the device's opt-in maximum cannot launch. */
static kiln_err shared_opt_in(cuda_dev *d, CUfunction f, const char *kernel, uint32_t dynamic, kiln_device_fault *fault)
{
	int st = 0;
	CUresult r = d->api.FuncGetAttribute(&st, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, f);
	if (r != CUDA_SUCCESS)
		return kiln_cuda_err(d, r, "cuFuncGetAttribute");
	uint64_t total = (uint64_t)st + dynamic;
	if (total <= KILN_CUDA_DEFAULT_SHARED)
		return 0;
	if (total > d->max_shared_optin) {
		fault->kind = KILN_FAULT_LIMIT;
		snprintf(fault->text, sizeof(fault->text),
			 "%s: %d B static + %u B dynamic shared memory exceeds the device's %u B per block", kernel, st,
			 dynamic, d->max_shared_optin);
		return kiln_error_set(KILN_EFAULT, "%s", fault->text);
	}
	r = d->api.FuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)dynamic);
	return r == CUDA_SUCCESS ? 0 : kiln_cuda_launch_fault(d, r, "shared-memory opt-in for", kernel, fault);
}

static kiln_err cu_launch(void *impl, const void *mod, const char *kernel, const kiln_dims *dm,
			  const void *const *args, kiln_device_counters *c, kiln_device_fault *fault)
{
	cuda_dev *d = impl;
	const cuda_mod *m = mod;
	CUfunction f;
	(void)c; /* no counters on a GPU */
	kiln_err e = get_function(m, kernel, &f);
	if (e || (e = shared_opt_in(d, f, kernel, dm->shared_bytes, fault)))
		return e;
	if (d->timing)
		return kiln_cuda_timed_launch(d, f, kernel, dm, args, fault);
	CUresult r = d->api.LaunchKernel(f, dm->grid[0], dm->grid[1], dm->grid[2], dm->block[0], dm->block[1],
					 dm->block[2], dm->shared_bytes, NULL, (void **)args, NULL);
	if (r != CUDA_SUCCESS)
		return kiln_cuda_launch_fault(d, r, "cuLaunchKernel", kernel, fault);
	if ((r = d->api.CtxSynchronize()) != CUDA_SUCCESS)
		return kiln_cuda_launch_fault(d, r, "kernel", kernel, fault);
	return 0;
}

static kiln_err cu_sync(void *impl)
{
	cuda_dev *d = impl;
	kiln_err e = check_ctx(d);
	if (e)
		return e;
	CUresult r = d->api.CtxSynchronize();
	return r == CUDA_SUCCESS ? 0 : kiln_cuda_err(d, r, "cuCtxSynchronize");
}

/* After a fault the context is left alone: releasing it would only return the fault. */
static void cu_destroy(void *impl)
{
	cuda_dev *d = impl;
	if (!d)
		return;
	if (d->ctx && !d->poisoned) {
		kiln_cuda_probe_free(d);
		for (int i = 0; i < 2; i++)
			if (d->ev[i])
				d->api.EventDestroy(d->ev[i]);
		d->api.PrimaryCtxRelease(d->dev);
	}
	/* libcuda stays loaded: unloading a driver library is not safe */
	free(d);
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
		size_t len = strlen(names);
		bool optional = len && names[len - 1] == '?';
		if (optional)
			names[len - 1] = 0;
		for (char *tok = strtok_r(names, "|", &save); tok && !slots[i]; tok = strtok_r(NULL, "|", &save))
			slots[i] = dlsym(d->lib, tok);
		if (!slots[i] && !optional)
			return kiln_error_set(KILN_EUNSUPPORTED, "device cuda: the driver is too old (no %s)", sym_names[i]);
	}
	return 0;
}

static int attr(cuda_dev *d, CUdevice_attribute a)
{
	int v = 0;
	return d->api.DeviceGetAttribute(&v, a, d->dev) == CUDA_SUCCESS ? v : 0;
}

/* nvidia-smi's spelling: GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx */
static void uuid_text(char *out, size_t n, const CUuuid *u)
{
	size_t at = (size_t)snprintf(out, n, "GPU-");
	for (int i = 0; i < 16 && at < n; i++)
		at += (size_t)snprintf(out + at, n - at, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ? "-" : "",
				       (unsigned)(unsigned char)u->bytes[i]);
}

static void fill_info(cuda_dev *d, kiln_device_info *in, int driver, int index)
{
	size_t total = 0;
	CUuuid u;
	in->kind = KILN_DEVICE_CUDA;
	d->api.DeviceGetName(in->name, (int)sizeof(in->name), d->dev);
	in->gpu_index = index;
	if (d->api.DeviceGetUuid && d->api.DeviceGetUuid(&u, d->dev) == CUDA_SUCCESS)
		uuid_text(in->uuid, sizeof(in->uuid), &u);
	in->cc_major = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
	in->cc_minor = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
	snprintf(in->arch, sizeof(in->arch), "sm_%u%u", in->cc_major, in->cc_minor);
	in->sm_count = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
	in->max_threads_per_block = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
	in->max_shared_per_block = (uint32_t)attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
	d->max_shared_optin = in->max_shared_per_block ? in->max_shared_per_block : KILN_CUDA_DEFAULT_SHARED;
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

/* $KILN_GPU_INDEX: a non-negative ordinal (the driver already applied CUDA_VISIBLE_DEVICES). */
static kiln_err gpu_index(int *out, int count)
{
	const char *s = getenv("KILN_GPU_INDEX");
	char *end = NULL;
	long v = s && *s ? strtol(s, &end, 10) : 0;
	if (s && *s && (*end || v < 0))
		return kiln_error_set(KILN_EINVAL, "device cuda: KILN_GPU_INDEX='%s': expected a GPU ordinal (0, 1, ...)", s);
	if (v >= count)
		return kiln_error_set(KILN_EUNSUPPORTED, "device cuda: GPU index %ld, but %d GPU%s visible%s", v, count,
				      count == 1 ? " is" : "s are", getenv("CUDA_VISIBLE_DEVICES") ? " (CUDA_VISIBLE_DEVICES is set)" : "");
	*out = (int)v;
	return 0;
}

kiln_err kiln_device_cuda_init(kiln_device *dev, const kiln_device_options *o)
{
	cuda_dev *d = kiln_calloc(1, sizeof(*d));
	int count = 0, driver = 0, index = 0;
	kiln_err e;
	CUresult r;
	(void)o;
	if (!d)
		return KILN_ENOMEM;
	if ((e = load_api(d)))
		goto fail;
	if ((r = d->api.Init(0)) != CUDA_SUCCESS) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "device cuda: cuInit failed: %s", kiln_cuda_name(d, r));
		goto fail;
	}
	d->api.DriverGetVersion(&driver);
	if (driver < CUDA_VERSION / 1000 * 1000) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "device cuda: the driver supports CUDA %d.%d, older than the toolkit's %d.%d PTX; update the driver",
				   driver / 1000, driver % 1000 / 10, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
		goto fail;
	}
	if ((r = d->api.DeviceGetCount(&count)) != CUDA_SUCCESS || count < 1) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "device cuda: no GPU (%s)", r != CUDA_SUCCESS ? kiln_cuda_name(d, r) : "0 devices");
		goto fail;
	}
	if ((e = gpu_index(&index, count)))
		goto fail;
	if ((r = d->api.DeviceGet(&d->dev, index)) != CUDA_SUCCESS || (r = d->api.PrimaryCtxRetain(&d->ctx, d->dev)) != CUDA_SUCCESS) {
		e = kiln_error_set(KILN_EUNSUPPORTED, "device cuda: cannot open GPU %d: %s", index, kiln_cuda_name(d, r));
		d->ctx = NULL;
		goto fail;
	}
	if ((r = d->api.CtxSetCurrent(d->ctx)) != CUDA_SUCCESS || (r = d->api.EventCreate(&d->ev[0], CU_EVENT_DEFAULT)) ||
	    (r = d->api.EventCreate(&d->ev[1], CU_EVENT_DEFAULT))) {
		e = kiln_cuda_err(d, r, "context setup");
		goto fail;
	}
	fill_info(d, &dev->info, driver, index);
	dev->ops = &cuda_ops;
	dev->impl = d;
	dev->time_plan = kiln_cuda_time_plan;
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
