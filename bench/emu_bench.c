/* emu_bench: emulated thread-instructions per second of the PTX emulator on one core, on
 * two built-in seeds compiled here with NVRTC: targets/adamw/seed.cu (n = 1,048,576 by
 * default) and targets/ratio_cumulative/seed.cu with BLOCK=1024, a shared-memory
 * Hillis-Steele scan over B x 1024 tokens (B*1024 = n). Results are spot-checked against
 * the host so a fast but wrong emulator cannot report a figure.
 * Usage: emu_bench [n] [repeats] (n a multiple of 1024; KILN_SOURCE_ROOT overrides the
 * source tree the seeds are read from). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nvrtc.h>

#include "profile/emu/emu.h"

#ifndef KILN_BENCH_SOURCE_ROOT
#define KILN_BENCH_SOURCE_ROOT "."
#endif

/* PTX of <root>/targets/<target>/seed.cu compiled with `define`; caller frees. */
static char *compile_seed(const char *target, const char *define)
{
	const char *root = getenv("KILN_SOURCE_ROOT") ? getenv("KILN_SOURCE_ROOT") : KILN_BENCH_SOURCE_ROOT;
	char path[1024];
	snprintf(path, sizeof path, "%s/targets/%s/seed.cu", root, target);
	char *src = NULL;
	size_t n = 0;
	if (kiln_file_read(&src, &n, path, 1 << 20)) {
		fprintf(stderr, "emu_bench: %s\n", kiln_error_last());
		return NULL;
	}
	nvrtcProgram prog;
	const char *opts[] = {"--gpu-architecture=compute_90", define};
	char *ptx = NULL;
	if (nvrtcCreateProgram(&prog, src, path, 0, NULL, NULL) != NVRTC_SUCCESS)
		goto done;
	if (nvrtcCompileProgram(prog, define ? 2 : 1, opts) == NVRTC_SUCCESS && nvrtcGetPTXSize(prog, &n) == NVRTC_SUCCESS &&
	    (ptx = malloc(n + 1)) != NULL)
		nvrtcGetPTX(prog, ptx);
	nvrtcDestroyProgram(&prog);
done:
	if (!ptx)
		fprintf(stderr, "emu_bench: NVRTC failed to compile %s\n", path);
	free(src);
	return ptx;
}

static int fail(const char *what)
{
	fprintf(stderr, "emu_bench: %s: %s\n", what, kiln_error_last());
	return 1;
}

typedef struct bench_kernel {
	const char *label;         /* printed */
	const kiln_emu_module *mod;
	const char *name;          /* kernel */
	const void *const *args;
	uint32_t grid, block;
} bench_kernel;

/* Best rate of `reps` launches of k; prints one line unless mode is NULL. */
static int time_kernel(kiln_emu *emu, const bench_kernel *k, int reps, const char *mode)
{
	double best = 0;
	kiln_emu_counters c;
	for (int r = 0; r < reps; r++) {
		memset(&c, 0, sizeof c);
		uint32_t grid[3] = {k->grid, 1, 1}, block[3] = {k->block, 1, 1};
		clock_t t0 = clock(); /* CPU time of this (single-threaded) process: per core even on a busy machine */
		if (kiln_emu_launch(emu, k->mod, k->name, grid, block, 0, k->args, &c))
			return fail(k->label);
		double rate = (double)c.thread_instructions / ((double)(clock() - t0) / CLOCKS_PER_SEC);
		best = rate > best ? rate : best;
	}
	if (mode)
		printf("%-34s %-23s %llu thread-instructions, %llu warp-instructions, best of %d: %.1f M thread-instructions/s/core\n",
	       k->label, mode, (unsigned long long)c.thread_instructions, (unsigned long long)c.warp_instructions, reps,
	       best / 1e6);
	return 0;
}

/* adamw seed: p, g, m, v fp32; checks p against a float64 AdamW step at a few indices. */
static int bench_adamw(const kiln_emu_module *mod, kiln_emu *emu, int n, int reps, const char *mode)
{
	size_t bytes = (size_t)n * 4;
	float *h = malloc(bytes), *z = calloc(1, bytes), *out = malloc(bytes);
	uint64_t dp, dg, dm, dv;
	int rc = 1;
	if (!h || !z || !out)
		goto done;
	for (int i = 0; i < n; i++)
		h[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
	if (kiln_emu_alloc(emu, &dp, bytes) || kiln_emu_alloc(emu, &dg, bytes) || kiln_emu_alloc(emu, &dm, bytes) ||
	    kiln_emu_alloc(emu, &dv, bytes)) {
		rc = fail("alloc");
		goto done;
	}
	float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
	int step = 3;
	long long nn = n;
	const void *args[] = {&dp, &dg, &dm, &dv, &lr, &b1, &b2, &eps, &wd, &step, &nn};
	bench_kernel k = {"adamw seed (BLOCK=256)", mod, "adamw_step", args, (uint32_t)((n + 255) / 256), 256};
	for (int r = 0; r < 2; r++) { /* timed launches, then one checked from a known state */
		kiln_emu_write(emu, dp, h, bytes);
		kiln_emu_write(emu, dg, h, bytes);
		kiln_emu_write(emu, dm, z, bytes);
		kiln_emu_write(emu, dv, z, bytes);
		if ((rc = time_kernel(emu, &k, r ? 1 : reps, r ? NULL : mode)))
			goto done;
	}
	kiln_emu_read(emu, out, dp, bytes);
	for (int i = 0; i < n; i += n / 7 + 1) {
		double g = h[i], m = (1 - (double)b1) * g, v = (1 - (double)b2) * g * g;
		double want = h[i] * (1 - (double)lr * wd) -
			      lr / (1 - pow(b1, step)) * m / (sqrt(v) / sqrt(1 - pow(b2, step)) + eps);
		if (fabs(out[i] - want) > 1e-5 * (1 + fabs(want))) {
			fprintf(stderr, "emu_bench: adamw result wrong at %d: %g vs %g\n", i, out[i], want);
			rc = 1;
			goto done;
		}
	}
	rc = 0;
done:
	free(h);
	free(z);
	free(out);
	return rc;
}

/* ratio_cumulative seed, BLOCK=1024: B rows of T=1024 tokens, all valid; checks row 0's
 * ratio = exp(min(prefix sum, 10)). */
static int bench_scan(const kiln_emu_module *mod, kiln_emu *emu, int n, int reps, const char *mode)
{
	long long T = 1024, B = n / 1024;
	size_t cnt = (size_t)(B * T);
	float *lp = malloc(cnt * 4), *lo = calloc(cnt, 4), *out = malloc(T * 4);
	unsigned char *mask = malloc(cnt);
	uint64_t dn, dl, dmask, dr, dc;
	int rc = 1;
	if (!lp || !lo || !out || !mask)
		goto done;
	for (size_t i = 0; i < cnt; i++) {
		lp[i] = -(float)((i * 7919) % 1000) / 50000.0f;
		mask[i] = 1;
	}
	if (kiln_emu_alloc(emu, &dn, cnt * 4) || kiln_emu_alloc(emu, &dl, cnt * 4) || kiln_emu_alloc(emu, &dmask, cnt) ||
	    kiln_emu_alloc(emu, &dr, cnt * 4) || kiln_emu_alloc(emu, &dc, cnt * 4)) {
		rc = fail("alloc");
		goto done;
	}
	kiln_emu_write(emu, dn, lp, cnt * 4);
	kiln_emu_write(emu, dl, lo, cnt * 4);
	kiln_emu_write(emu, dmask, mask, cnt);
	float c_lo = 0.2f, c_hi = 0.28f, power = 0.5f;
	const void *args[] = {&dn, &dl, &dmask, &dr, &dc, &c_lo, &c_hi, &power, &B, &T};
	bench_kernel k = {"ratio_cumulative seed (BLOCK=1024)", mod, "ratio_cumulative", args, (uint32_t)B, 1024};
	if ((rc = time_kernel(emu, &k, reps, mode)))
		goto done;
	kiln_emu_read(emu, out, dr, (size_t)T * 4);
	double acc = 0;
	for (int t = 0; t < T; t++) {
		acc += lp[t];
		double want = exp(fmin(acc, 10.0));
		if (fabs(out[t] - want) > 1e-4 * want) {
			fprintf(stderr, "emu_bench: scan result wrong at %d: %g vs %g\n", t, out[t], want);
			rc = 1;
			goto done;
		}
	}
	rc = 0;
done:
	free(lp);
	free(lo);
	free(out);
	free(mask);
	return rc;
}

static int run(const kiln_emu_module *adamw, const kiln_emu_module *scan, int n, int reps, bool racecheck)
{
	kiln_emu_options o = KILN_EMU_OPTIONS_INIT;
	o.racecheck = racecheck;
	kiln_emu *emu = NULL;
	if (kiln_emu_new(&emu, &o))
		return fail("device");
	const char *mode = racecheck ? "(initcheck+racecheck):" : "(initcheck):";
	int rc = bench_adamw(adamw, emu, n, reps, mode);
	if (!rc)
		rc = bench_scan(scan, emu, n, reps, mode);
	kiln_emu_free(emu);
	return rc;
}

static kiln_emu_module *parse(char *ptx, const char *name)
{
	kiln_emu_module *mod = NULL;
	if (ptx && kiln_emu_module_parse(&mod, ptx, strlen(ptx), name))
		fail(name);
	free(ptx);
	return mod;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1048576;
	int reps = argc > 2 ? atoi(argv[2]) : 3;
	if (n < 1024 || n % 1024 || reps <= 0) {
		fprintf(stderr, "usage: emu_bench [n (a multiple of 1024)] [repeats]\n");
		return 2;
	}
	kiln_emu_module *adamw = parse(compile_seed("adamw", NULL), "adamw.ptx");
	kiln_emu_module *scan = parse(compile_seed("ratio_cumulative", "-DBLOCK=1024"), "ratio_cumulative.ptx");
	int rc = 1;
	if (adamw && scan) {
		printf("emu_bench: n = %d, one core\n", n);
		rc = run(adamw, scan, n, reps, false);
		if (!rc)
			rc = run(adamw, scan, n, reps, true);
	}
	kiln_emu_module_free(adamw);
	kiln_emu_module_free(scan);
	return rc;
}
