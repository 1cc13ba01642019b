/* kiln doctor: what this machine offers kiln — CUDA toolkit (NVRTC, nvJitLink), a
 * driver and GPU (probed with dlopen, never linked), LLM configuration, work directory. */
#include "cli/cli.h"

#include <dlfcn.h>
#include <stdint.h>
#include <nvJitLink.h>
#include <nvrtc.h>
#include <stdlib.h>
#include <string.h>

static const char usage_line[] = "kiln doctor [--workdir DIR]";

static void report_driver(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		printf("driver:      not found (libcuda.so.1): kernels run on the PTX emulator (--device emu)\n");
		return;
	}
	typedef int (*init_fn)(unsigned);
	typedef int (*count_fn)(int *);
	typedef int (*ver_fn)(int *);
	init_fn cu_init = (init_fn)(uintptr_t)dlsym(h, "cuInit");
	count_fn cu_count = (count_fn)(uintptr_t)dlsym(h, "cuDeviceGetCount");
	ver_fn cu_ver = (ver_fn)(uintptr_t)dlsym(h, "cuDriverGetVersion");
	int n = 0, v = 0;
	if (cu_init && cu_count && cu_init(0) == 0 && cu_count(&n) == 0 && n > 0) {
		if (cu_ver)
			cu_ver(&v);
		printf("driver:      CUDA %d.%d, %d device(s): kernels run on the GPU (--device cuda)\n",
		       v / 1000, (v % 1000) / 10, n);
	} else {
		printf("driver:      libcuda.so.1 present but no usable device: kernels run on the PTX emulator\n");
	}
	dlclose(h);
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
	report_driver();
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
