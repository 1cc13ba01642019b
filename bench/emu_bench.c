/* emu_bench: emulated thread-instructions per second of the PTX emulator on one core, on
 * two built-in seeds compiled here with NVRTC: targets/adamw/seed.cu (n = 1,048,576 by
 * default) and targets/ratio_cumulative/seed.cu with BLOCK=1024, a shared-memory
 * Hillis-Steele scan over B x 1024 tokens (B*1024 = n). Results are spot-checked against
 * the host so a fast but wrong emulator cannot report a figure.
 * Then the adamw seed on 1 and N threads, each thread with its own emulator (independent
 * emulations, as verification runs input sets in parallel): per-core and total rates in
 * wall time. Usage: emu_bench [n] [repeats] [N threads, default: online CPUs] (n a
 * multiple of 1024; KILN_SOURCE_ROOT overrides the source tree the seeds are read from). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include <unistd.h>

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

/* ---- N independent emulations on N threads ---- */
typedef struct thread_job {
	const kiln_emu_module *mod;
	int n, reps, rc;
	uint64_t thread_instructions;
	pthread_t tid;
	pthread_barrier_t *start;  /* every thread has set up its device: launch together */
	double t0, t1;             /* wall time of its launches */
	double cpu;                /* the thread's CPU time in them */
} thread_job;

static double wall_now(void);

static void *adamw_thread(void *arg)
{
	thread_job *j = arg;
	kiln_emu *emu = NULL;
	size_t bytes = (size_t)j->n * 4;
	float *h = malloc(bytes);
	uint64_t d[4];
	j->rc = 1;
	if (!h || kiln_emu_new(&emu, NULL))
		goto done;
	for (int i = 0; i < j->n; i++)
		h[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
	for (int b = 0; b < 4; b++)
		if (kiln_emu_alloc(emu, &d[b], bytes) || kiln_emu_write(emu, d[b], h, bytes))
			goto done;
	pthread_barrier_wait(j->start);
	j->t0 = wall_now();
	struct timespec c0, c1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f;
	int step = 3;
	long long nn = j->n;
	const void *args[] = {&d[0], &d[1], &d[2], &d[3], &lr, &b1, &b2, &eps, &wd, &step, &nn};
	uint32_t grid[3] = {(uint32_t)((j->n + 255) / 256), 1, 1}, block[3] = {256, 1, 1};
	for (int r = 0; r < j->reps; r++) {
		kiln_emu_counters c;
		memset(&c, 0, sizeof c);
		if (kiln_emu_launch(emu, j->mod, "adamw_step", grid, block, 0, args, &c))
			goto done;
		j->thread_instructions += c.thread_instructions;
	}
	j->t1 = wall_now();
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	j->cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) * 1e-9;
	j->rc = 0;
done:
	kiln_emu_free(emu);
	free(h);
	return NULL;
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Total and per-core rate (wall time) of nthreads independent adamw emulations. */
static int bench_threads(const kiln_emu_module *mod, int n, int reps, int nthreads)
{
	thread_job *jobs = calloc((size_t)nthreads, sizeof *jobs);
	pthread_barrier_t start;
	uint64_t total = 0;
	int rc = 0;
	if (!jobs || pthread_barrier_init(&start, NULL, (unsigned)nthreads)) {
		free(jobs);
		return 1;
	}
	for (int i = 0; i < nthreads; i++) {
		jobs[i] = (thread_job){mod, n, reps, 1, 0, 0, &start, 0, 0, 0};
		if (pthread_create(&jobs[i].tid, NULL, adamw_thread, &jobs[i])) {
			fprintf(stderr, "emu_bench: cannot start thread %d\n", i);
			exit(1); /* the others wait at the barrier for it */
		}
	}
	double t0 = 1e300, t1 = 0, cpu = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(jobs[i].tid, NULL);
		rc |= jobs[i].rc;
		total += jobs[i].thread_instructions;
		t0 = jobs[i].t0 < t0 ? jobs[i].t0 : t0;
		t1 = jobs[i].t1 > t1 ? jobs[i].t1 : t1;
		cpu += jobs[i].cpu;
	}
	double s = t1 - t0;
	if (!rc)
		printf("adamw seed (BLOCK=256), %2d thread%s    (initcheck+racecheck):  %llu thread-instructions in %.2f s wall: total %.1f M/s wall, %.1f M/s per thread of CPU time\n",
		       nthreads, nthreads == 1 ? " " : "s", (unsigned long long)total, s, (double)total / s / 1e6,
		       (double)total / cpu / 1e6);
	else
		fprintf(stderr, "emu_bench: a threaded emulation failed: %s\n", kiln_error_last());
	pthread_barrier_destroy(&start);
	free(jobs);
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
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int nthreads = argc > 3 ? atoi(argv[3]) : (int)(cpus > 0 ? cpus : 1);
	if (n < 1024 || n % 1024 || reps <= 0 || nthreads <= 0 || nthreads > 1024) {
		fprintf(stderr, "usage: emu_bench [n (a multiple of 1024)] [repeats] [threads]\n");
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
		if (!rc)
			rc = bench_threads(adamw, n, reps, 1);
		if (!rc && nthreads > 1)
			rc = bench_threads(adamw, n, reps, nthreads);
	}
	kiln_emu_module_free(adamw);
	kiln_emu_module_free(scan);
	return rc;
}
