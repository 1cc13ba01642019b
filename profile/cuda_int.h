/* profile: private to the cuda backend (device_cuda.c: driver, memory, modules, launches;
 * device_cuda_time.c: the timing loop, CUPTI and the probe kernels). The driver entry
 * points are loaded with dlopen into cuda_api; cuda_dev is one device in its primary
 * context, poisoned for good by the first sticky error. */
#ifndef KILN_PROFILE_CUDA_INT_H
#define KILN_PROFILE_CUDA_INT_H

#include <cuda.h>

#include "profile/profile_int.h"

#define CU_FN(ret, name, args) ret(CUDAAPI *name) args
#define KILN_CUDA_DEFAULT_SHARED (48u * 1024) /* static + dynamic without the opt-in */

/* The driver entry points kiln uses (exported symbol names in device_cuda.c). */
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
	CU_FN(CUresult, FuncGetAttribute, (int *, CUfunction_attribute, CUfunction));
	CU_FN(CUresult, LaunchKernel, (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
				       unsigned, CUstream, void **, void **));
	CU_FN(CUresult, EventCreate, (CUevent *, unsigned int));
	CU_FN(CUresult, EventRecord, (CUevent, CUstream));
	CU_FN(CUresult, EventSynchronize, (CUevent));
	CU_FN(CUresult, EventElapsedTime, (float *, CUevent, CUevent));
	CU_FN(CUresult, EventDestroy, (CUevent));
	CU_FN(CUresult, GetErrorName, (CUresult, const char **));
	CU_FN(CUresult, FuncGetParamInfo, (CUfunction, size_t, size_t *, size_t *)); /* optional: driver >= 12.4 */
	CU_FN(CUresult, DeviceGetUuid, (CUuuid *, CUdevice));                      /* optional */
	/* optional: CUDA graphs for plans with "graph": true (plain launches without them) */
	CU_FN(CUresult, GraphCreate, (CUgraph *, unsigned int));
	CU_FN(CUresult, GraphAddKernelNode, (CUgraphNode *, CUgraph, const CUgraphNode *, size_t,
					     const CUDA_KERNEL_NODE_PARAMS *));
	CU_FN(CUresult, GraphInstantiate, (CUgraphExec *, CUgraph, unsigned long long));
	CU_FN(CUresult, GraphLaunch, (CUgraphExec, CUstream));
	CU_FN(CUresult, GraphExecDestroy, (CUgraphExec));
	CU_FN(CUresult, GraphDestroy, (CUgraph));
} cuda_api;

typedef struct cuda_dev {
	void *lib;
	cuda_api api;
	CUdevice dev;
	CUcontext ctx;
	uint32_t max_shared_optin;  /* bytes per block with the opt-in */
	bool poisoned;              /* a sticky fault happened: the context is unusable */
	kiln_fault_kind poison_kind;
	char poison_text[300];      /* the first sticky error, naming its launch */
	/* timing (device_cuda_time.c): warm-up launches (and all of them when events rank
	 * kernels) bracketed by events and synchronized one by one (sync_each); measured
	 * reps queue their launches back to back, or add them to a CUDA graph (graph_on) */
	bool timing, rep_started, sync_each, graph_on;
	size_t rep, rep_launch;     /* the rep being timed, its launch index */
	double rep_event_us;        /* sync_each: this rep's launches, summed from events */
	const char *rep_kernel;     /* the rep's last kernel (borrowed from the plan), for faults */
	kiln_device_fault *rep_fault; /* the device's fault record (from the timed launches), for a
				       * fault seen at a rep's end */
	CUgraph graph;              /* graph_on: this rep's graph, its last node */
	CUgraphNode graph_last;
	bool cupti_on;              /* push an external correlation id around each launch */
	CUevent ev[2];
	CUdeviceptr flush, flush_out; /* the L2 flush buffer (2x L2) and the read kernel's sink */
	size_t flush_words;
	CUmodule probe;             /* kiln's own kernels: kiln_l2_read, kiln_clock_probe */
	CUfunction l2_read, clock_probe;
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

const char *kiln_cuda_name(const cuda_dev *d, CUresult r);
bool kiln_cuda_sticky(CUresult r);
/* CUresult -> kiln_err; a sticky code poisons d (KILN_EFAULT), after which every error
 * reported is the first fault (KILN_EDEVICE). */
kiln_err kiln_cuda_err(cuda_dev *d, CUresult r, const char *what);
kiln_err kiln_cuda_launch_fault(cuda_dev *d, CUresult r, const char *what, const char *kernel,
				kiln_device_fault *fault);
/* device_cuda_time.c */
kiln_err kiln_cuda_timed_launch(cuda_dev *d, CUfunction f, const char *kernel, const kiln_dims *dm,
				const void *const *args, kiln_device_fault *fault);
#define KILN_CUDA_MAX_KPR 16 /* launches per timed plan (targets/plan.c's limit) */
kiln_err kiln_cuda_time_plan(void *impl, kiln_err (*run)(void *ctx, size_t rep), void *ctx, size_t kpr,
			     double max_seconds, kiln_time_samples *out);
void kiln_cuda_probe_free(cuda_dev *d);

#endif
