/* A fake libcuda.so.1 for tests on machines without a GPU: just enough of the driver API
 * (host memory behind device pointers, modules and kernels as handles, launches that do
 * nothing, events that report a fixed 10 us) to drive profile/device_cuda.c through
 * open, properties, memory, module load (no cuFuncGetParamInfo: the PTX fallback),
 * launch, faults and the timing loop. tests/test_time.c loads it via $KILN_LIBCUDA.
 * Environment: FAKE_CUDA_FAULT=1 makes every launch fail with CUDA_ERROR_ILLEGAL_ADDRESS;
 * FAKE_CUDA_RATIO_TOKEN=1 makes every launch compute the ratio_token target on the host
 * (its seed's arguments), so verification can pass; FAKE_CUDA_STOP_AFTER=N stops that
 * after N launches (a kernel that stops working once it has been timed). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#define EXPORT __attribute__((visibility("default")))

static int fault_next(void)
{
	const char *f = getenv("FAKE_CUDA_FAULT");
	return f && *f == '1';
}

static int sticky;
static long launches;

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

EXPORT CUresult CUDAAPI cuInit(unsigned int flags) { (void)flags; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDriverGetVersion(int *v) { *v = CUDA_VERSION; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDeviceGetCount(int *n) { *n = 1; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDeviceGet(CUdevice *d, int i) { *d = i; return CUDA_SUCCESS; }

EXPORT CUresult CUDAAPI cuDeviceGetName(char *name, int len, CUdevice d)
{
	(void)d;
	strncpy(name, "Fake H100 (test driver)", (size_t)len - 1);
	name[len - 1] = 0;
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
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = 232448; break;
	case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: *v = 233472; break;
	case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = 1 << 20; break; /* small: the flush buffer is host memory */
	case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *v = 1980000; break;
	case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *v = 2619000; break;
	case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *v = 5120; break;
	default: *v = 0; break;
	}
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuDeviceTotalMem(size_t *b, CUdevice d) { (void)d; *b = (size_t)8 << 30; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { (void)d; *c = (CUcontext)(uintptr_t)0x1; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice d) { (void)d; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuCtxSetCurrent(CUcontext c) { (void)c; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuCtxSynchronize(void) { return sticky ? CUDA_ERROR_ILLEGAL_ADDRESS : CUDA_SUCCESS; }

EXPORT CUresult CUDAAPI cuMemAlloc(CUdeviceptr *p, size_t n)
{
	void *m = malloc(n ? n : 1);
	if (!m)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*p = (CUdeviceptr)(uintptr_t)m;
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemFree(CUdeviceptr p) { free((void *)(uintptr_t)p); return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuMemcpyHtoD(CUdeviceptr d, const void *s, size_t n) { memcpy((void *)(uintptr_t)d, s, n); return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuMemcpyDtoH(void *d, CUdeviceptr s, size_t n) { memcpy(d, (const void *)(uintptr_t)s, n); return CUDA_SUCCESS; }

EXPORT CUresult CUDAAPI cuMemsetD32(CUdeviceptr d, unsigned int v, size_t n)
{
	uint32_t *p = (uint32_t *)(uintptr_t)d;
	for (size_t i = 0; i < n; i++)
		p[i] = v;
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s)
{
	(void)s;
	return cuMemsetD32(d, v, n);
}

EXPORT CUresult CUDAAPI cuModuleLoadData(CUmodule *m, const void *image)
{
	(void)image;
	*m = (CUmodule)(uintptr_t)0x2;
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuModuleUnload(CUmodule m) { (void)m; return CUDA_SUCCESS; }

EXPORT CUresult CUDAAPI cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name)
{
	(void)m;
	*f = (CUfunction)(uintptr_t)0x3;
	return strcmp(name, "no_such_kernel") == 0 ? CUDA_ERROR_NOT_FOUND : CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuFuncSetAttribute(CUfunction f, CUfunction_attribute a, int v) { (void)f; (void)a; (void)v; return CUDA_SUCCESS; }

EXPORT CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
				       unsigned bz, unsigned sh, CUstream s, void **params, void **extra)
{
	(void)f; (void)gx; (void)gy; (void)gz; (void)by; (void)bz; (void)sh; (void)s; (void)extra;
	if (bx > 1024)
		return CUDA_ERROR_INVALID_VALUE;
	if (fault_next())
		sticky = 1;
	const char *rt = getenv("FAKE_CUDA_RATIO_TOKEN"), *stop = getenv("FAKE_CUDA_STOP_AFTER");
	launches++;
	if (rt && *rt == '1' && !(stop && launches > atol(stop)))
		ratio_token(params);
	return CUDA_SUCCESS;
}

EXPORT CUresult CUDAAPI cuEventCreate(CUevent *e, unsigned int flags) { (void)flags; *e = (CUevent)(uintptr_t)0x4; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuEventRecord(CUevent e, CUstream s) { (void)e; (void)s; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuEventSynchronize(CUevent e) { (void)e; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuEventElapsedTime(float *ms, CUevent a, CUevent b) { (void)a; (void)b; *ms = 0.010f; return CUDA_SUCCESS; }
EXPORT CUresult CUDAAPI cuEventDestroy(CUevent e) { (void)e; return CUDA_SUCCESS; }

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
	*s = r == CUDA_ERROR_ILLEGAL_ADDRESS ? "CUDA_ERROR_ILLEGAL_ADDRESS" : "CUDA_ERROR_FAKE";
	return CUDA_SUCCESS;
}
