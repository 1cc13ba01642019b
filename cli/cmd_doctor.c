/* kiln doctor: what this machine offers kiln — CUDA toolkit (NVRTC, nvJitLink), a
 * driver and GPU (probed with dlopen, never linked), which timing source measurements will
 * use and why (CUPTI, CUDA events, or the cost model), LLM configuration, work directory. */
#include "cli/cli.h"
#include "profile/profile.h"

#include <dlfcn.h>
#include <stdint.h>
#include <nvJitLink.h>
#include <nvrtc.h>
#include <stdlib.h>
#include <string.h>

static const char usage_line[] = "kiln doctor [--workdir DIR]";

/* probed: kiln_device_cuda_probe's answer, asked before this process touched CUDA (a
 * probe forked after cuInit would find CUDA unusable in its child). */
static void report_timing(bool gpu, bool probed, const char *name)
{
	char path[512], why[320];
	if (!gpu) {
		printf("timing:      modeled (cost model on emulator counters): no usable GPU\n");
		return;
	}
	if (probed)
		printf("gpu:         %s (index %s of the visible GPUs%s)\n", name,
		       getenv("KILN_GPU_INDEX") ? getenv("KILN_GPU_INDEX") : "0",
		       getenv("CUDA_VISIBLE_DEVICES") ? "; CUDA_VISIBLE_DEVICES is set" : "");
	bool cupti = kiln_device_cupti_find(path, sizeof(path), why, sizeof(why));
	printf("timing:      measured, %s%s\n", why, cupti ? " (one source per measurement; KILN_NO_CUPTI=1 for events)" : "");
}

/* true when a GPU is usable */
static bool report_driver(void)
{
	const char *lib = getenv("KILN_LIBCUDA");
	lib = lib && *lib ? lib : "libcuda.so.1";
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		printf("driver:      not found (%s): kernels run on the PTX emulator (--device emu)\n", lib);
		return false;
	}
	typedef int (*init_fn)(unsigned);
	typedef int (*count_fn)(int *);
	typedef int (*ver_fn)(int *);
	init_fn cu_init = (init_fn)(uintptr_t)dlsym(h, "cuInit");
	count_fn cu_count = (count_fn)(uintptr_t)dlsym(h, "cuDeviceGetCount");
	ver_fn cu_ver = (ver_fn)(uintptr_t)dlsym(h, "cuDriverGetVersion");
	int n = 0, v = 0;
	bool ok = cu_init && cu_count && cu_init(0) == 0 && cu_count(&n) == 0 && n > 0;
	if (ok) {
		if (cu_ver)
			cu_ver(&v);
		printf("driver:      CUDA %d.%d, %d device(s): kernels run on the GPU (--device cuda)\n",
		       v / 1000, (v % 1000) / 10, n);
	} else {
		printf("driver:      %s present but no usable device: kernels run on the PTX emulator\n", lib);
	}
	dlclose(h);
	return ok;
}

int kiln_cmd_doctor(int argc, char **argv)
{
	const char *workdir = NULL, *pos[1];
	int npos, rc = 0;
	kiln_cli_opt opts[] = {{"workdir", 1, &workdir, NULL}, {0}};
	if (!kiln_cli_parse(argc, argv, opts, pos, 0, &npos, usage_line,
			    "Reports what kiln found on this machine.\n", &rc))
		return rc;
	int major = 0, minor = 0;
	if (nvrtcVersion(&major, &minor) == NVRTC_SUCCESS)
		printf("toolkit:     %s, NVRTC %d.%d\n", KILN_CUDA_ROOT, major, minor);
	else
		printf("toolkit:     %s, NVRTC not usable\n", KILN_CUDA_ROOT);
	unsigned jmaj = 0, jmin = 0;
	if (nvJitLinkVersion(&jmaj, &jmin) == NVJITLINK_SUCCESS)
		printf("nvJitLink:   %u.%u\n", jmaj, jmin);
	char name[240];
	bool probed = kiln_device_cuda_probe(name, sizeof(name));
	report_timing(report_driver(), probed, name);
	kiln_cli_llm_doctor();
	const char *wd = kiln_cli_workdir(workdir);
	char *db = kiln_path_join(wd, "history.db");
	printf("workdir:     %s (%s)\n", wd, db && kiln_path_exists(db) ? "history.db present" : "no history yet");
	if (kiln_path_exists(wd)) {
		printf("disk:        ");
		kiln_cli_print_workdir_size(wd);
	}
	free(db);
	return KILN_EXIT_OK;
}
