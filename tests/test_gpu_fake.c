/* The cuda backend against the strict fake driver (tests/gpu_fake_libcuda.c, which also
 * plays libcupti): sticky faults (the first wins, names its launch, ends the context's
 * use; every sticky code), parameter sizes from cuFuncGetParamInfo, the shared-memory
 * opt-in with static shared memory, launch limits, timing with synchronized launches,
 * one timing source (CUPTI by correlation id, or events), warm-up by time, the SM clock,
 * the L2 flush and GPU selection. The fake's faults are sticky for the whole process, so
 * each case runs in a forked child (before any cuInit) and reports by its exit status. */
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent_int.h"
#include "compile/compile.h"
#include "profile/profile.h"
#include "targets/targets.h"

static char fake[1024];

#define CHECK(cond)                                                                                       \
	do {                                                                                              \
		if (!(cond)) {                                                                            \
			fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n", __FILE__, __LINE__, #cond, \
				kiln_error_last());                                                       \
			_exit(1);                                                                         \
		}                                                                                         \
	} while (0)

/* Runs fn in a child with the environment pairs set; asserts it exited 0. */
static void in_child(void (*fn)(void), const char *const *env)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("KILN_LIBCUDA", fake, 1);
		setenv("KILN_NO_CUPTI", "1", 1);
		for (size_t i = 0; env && env[i]; i += 2)
			setenv(env[i], env[i + 1], 1);
		fn();
		exit(0); /* not _exit: the leak checker runs in the child too */
	}
	int st = 0;
	assert_true(waitpid(pid, &st, 0) == pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("child case failed (status %d)", st);
}

static kiln_device *open_fake(void)
{
	kiln_device *d = NULL;
	CHECK(kiln_device_open(&d, "cuda", NULL) == 0);
	return d;
}

static const char kernels_cu[] =
	"extern \"C\" __global__ void fill(float *p, int n, char c, double d) { int i = blockIdx.x * blockDim.x + threadIdx.x;"
	" if (i < n) p[i] = c + d; }\n"
	"extern \"C\" __global__ void dyn(float *p) { extern __shared__ float s[]; s[threadIdx.x] = 1; __syncthreads();"
	" p[threadIdx.x] = s[threadIdx.x ^ 1]; }\n";

static kiln_module *load_kernels(kiln_device *d, kiln_compiled **c)
{
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	kiln_module *m = NULL;
	o.source = kernels_cu;
	o.name = "kernels.cu";
	o.arch = "sm_90";
	CHECK(kiln_compile(c, &o) == 0 && (*c)->ok);
	CHECK(kiln_device_module_load(d, &m, *c) == 0);
	return m;
}

/* The fake device with kernels_cu loaded and a 4 KiB buffer. */
typedef struct fx {
	kiln_device *d;
	kiln_compiled *c;
	kiln_module *m;
	uint64_t buf;
} fx;

static fx fx_open(void)
{
	fx f = {open_fake(), NULL, NULL, 0};
	f.m = load_kernels(f.d, &f.c);
	CHECK(kiln_device_alloc(f.d, &f.buf, 4096) == 0);
	return f;
}

static void fx_close(fx *f)
{
	CHECK(kiln_device_mem_free(f->d, f->buf) == 0);
	kiln_module_free(f->m);
	kiln_compiled_free(f->c);
	kiln_device_free(f->d);
}

static kiln_err launch_dyn(kiln_device *d, kiln_module *m, uint64_t buf, uint32_t shared)
{
	const void *args[] = {&buf};
	kiln_dims dm = {{1, 1, 1}, {32, 1, 1}, shared};
	return kiln_device_launch(d, m, "dyn", &dm, args, NULL);
}

/* ---- module images, parameters, limits ---- */

static void case_params_and_limits(void)
{
	fx x = fx_open();
	kiln_device *d = x.d;
	kiln_module *m = x.m;
	uint64_t buf = x.buf;
	uint32_t sz[8];
	size_t n = 0;
	CHECK(kiln_module_params(m, "fill", &n, sz, 8) == 0);
	CHECK(n == 4 && sz[0] == 8 && sz[1] == 4 && sz[2] == 1 && sz[3] == 8);
	CHECK(kiln_module_params(m, "nope", &n, sz, 8) == KILN_ENOTFOUND);
	/* a block of 2048 threads: the driver refuses it, a limit, and the context lives on */
	const void *args[] = {&buf};
	kiln_dims big = {{1, 1, 1}, {2048, 1, 1}, 0};
	CHECK(kiln_device_launch(d, m, "dyn", &big, args, NULL) == KILN_EFAULT);
	CHECK(kiln_device_last_fault(d)->kind == KILN_FAULT_LIMIT);
	CHECK(launch_dyn(d, m, buf, 0) == 0);
	fx_close(&x);
}

static void test_gpu_fake__params_from_the_driver_and_launch_limits(void **state)
{
	(void)state;
	in_child(case_params_and_limits, NULL);
}

/* 16 KiB static + 40 KiB dynamic is over the 48 KiB default: the opt-in must count the
 * static part (it used to opt in only above 48 KiB of dynamic memory) */
static void case_shared_opt_in(void)
{
	fx x = fx_open();
	kiln_device *d = x.d;
	kiln_module *m = x.m;
	uint64_t buf = x.buf;
	CHECK(launch_dyn(d, m, buf, 40 * 1024) == 0);
	CHECK(launch_dyn(d, m, buf, 100 * 1024) == 0);
	/* beyond the device's opt-in maximum: a limit fault naming both parts */
	CHECK(launch_dyn(d, m, buf, 220 * 1024) == KILN_EFAULT);
	CHECK(kiln_device_last_fault(d)->kind == KILN_FAULT_LIMIT);
	CHECK(strstr(kiln_error_last(), "16384 B static"));
	CHECK(launch_dyn(d, m, buf, 1024) == 0);
	fx_close(&x);
}

static void test_gpu_fake__shared_opt_in_counts_static_shared_memory(void **state)
{
	(void)state;
	const char *env[] = {"FAKE_CUDA_STATIC_SMEM", "16384", NULL};
	in_child(case_shared_opt_in, env);
}

/* ---- sticky faults ---- */

/* A launch of dyn that faults; afterwards the context refuses work, naming the fault. */
static void fault_dyn(fx *x)
{
	setenv("FAKE_CUDA_FAULT", "1", 1);
	CHECK(launch_dyn(x->d, x->m, x->buf, 0) == KILN_EFAULT);
	unsetenv("FAKE_CUDA_FAULT");
	uint64_t more = 0;
	CHECK(kiln_device_alloc(x->d, &more, 64) == KILN_EDEVICE);
	CHECK(strstr(kiln_error_last(), "fresh process") && strstr(kiln_error_last(), "kernel dyn"));
}

/* A faulting launch (visible 3 calls later on the fake): the launch is named, the context
 * is unusable, parameters are not read as "0 arguments", and cleanup does not replace the
 * fault with cuMemFree's error. */
static void case_sticky_first_wins(void)
{
	fx x = fx_open();
	fault_dyn(&x);
	const kiln_device_fault *f = kiln_device_last_fault(x.d);
	CHECK(f->kind == KILN_FAULT_OOB);
	CHECK(strstr(f->text, "dyn") && strstr(f->text, "CUDA_ERROR_ILLEGAL_ADDRESS"));
	uint32_t sz[8];
	size_t n = 99;
	CHECK(kiln_module_params(x.m, "fill", &n, sz, 8) == KILN_EDEVICE);
	CHECK(n == 99 && strstr(kiln_error_last(), "kernel dyn: CUDA_ERROR_ILLEGAL_ADDRESS"));
	CHECK(kiln_device_mem_free(x.d, x.buf) == 0); /* no driver call after the fault */
	CHECK(kiln_device_sync(x.d) == KILN_EDEVICE);
	CHECK(!strstr(kiln_error_last(), "cuMemFree") && strstr(kiln_error_last(), "kernel dyn"));
	fx_close(&x);
}

static void test_gpu_fake__sticky_fault_first_error_wins(void **state)
{
	(void)state;
	const char *env[] = {"FAKE_CUDA_STICKY_AFTER", "3", NULL};
	in_child(case_sticky_first_wins, env);
}

static void case_sticky_code(void)
{
	fx x = fx_open();
	fault_dyn(&x);
	fx_close(&x);
}

/* Every code cuda.h calls sticky ends the context's use (the fake repeats it forever). */
static void test_gpu_fake__every_sticky_code_poisons(void **state)
{
	(void)state;
	static const char *const codes[] = {"214", "226", "700", "702", "709", "710", "714", "715", "716",
					    "717", "718", "719", "720", "721", "810", "911", "999"};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *env[] = {"FAKE_CUDA_FAULT_CODE", codes[i], "FAKE_CUDA_STICKY_AFTER", "1", NULL};
		in_child(case_sticky_code, env);
	}
}

/* ---- timing ---- */

static kiln_target *target;
static kiln_plan *plan;
static char *src;

static void load_target(void)
{
	size_t len;
	char *pj = NULL;
	setenv("FAKE_CUDA_RATIO_TOKEN", "1", 1); /* the fake computes the target on the host */
	CHECK(kiln_target_find(&target, "ratio_token", NULL) == 0);
	CHECK(kiln_file_read(&src, &len, target->seed_path, 0) == 0);
	CHECK(kiln_file_read(&pj, &len, target->launch_path, 0) == 0);
	CHECK(kiln_plan_parse(&plan, pj, strlen(pj), target, "seed plan") == 0);
	free(pj);
}

static kiln_err time_ranked(kiln_device *d, kiln_timing *tm, kiln_rank_time rank)
{
	kiln_time_options o = KILN_TIME_OPTIONS_INIT;
	o.src.target = target;
	o.src.source = src;
	o.src.plan = plan;
	o.src.device = d;
	o.seed = 1;
	o.max_seconds = 2;
	o.rank = rank;
	return kiln_time(tm, &o);
}

static kiln_err time_seed(kiln_device *d, kiln_timing *tm)
{
	return time_ranked(d, tm, KILN_RANK_LAUNCHES);
}

/* A kernel that faults only when timed: the error names the rep and launch, the kind is
 * the kernel's (out of bounds), not a failed cuEventRecord or cuMemFree. */
static void case_timing_fault(void)
{
	kiln_device *d = open_fake();
	kiln_timing tm;
	load_target();
	CHECK(time_seed(d, &tm) == KILN_EFAULT);
	CHECK(strstr(kiln_error_last(), "timing rep 3, launch 0: kernel ratio_token: CUDA_ERROR_ILLEGAL_ADDRESS"));
	CHECK(kiln_device_last_fault(d)->kind == KILN_FAULT_OOB);
	kiln_timing_free(&tm);
	kiln_device_free(d);
}

static void test_gpu_fake__fault_while_timing_names_the_launch(void **state)
{
	(void)state;
	const char *env[] = {"FAKE_CUDA_FAULT_KERNEL", "ratio_token", "FAKE_CUDA_FAULT_AT", "4",
			     "FAKE_CUDA_STICKY_AFTER", "5", NULL};
	in_child(case_timing_fault, env);
}

/* The search's evaluation: a kernel that passes verification and faults only at the bench
 * size fails with the fault as its verdict (check "bounds"), not as "could not run". */
static void case_eval_fault_is_the_verdict(void)
{
	kiln_eval ev;
	load_target();
	kiln_eval_job job = {0};
	job.target = target;
	job.source = src;
	char *pj = NULL;
	size_t len;
	CHECK(kiln_file_read(&pj, &len, target->launch_path, 0) == 0);
	job.launch_json = pj;
	job.device = "cuda";
	job.arch = "sm_90";
	job.nseeds = 1;
	job.threads = 1;
	job.timing_seed = 1;
	job.timeout_s = 120;
	CHECK(kiln_eval_run(&ev, &job) == 0);
	CHECK(ev.outcome == KILN_OUT_FAILED && ev.has_verify);
	CHECK(ev.failed_check && strcmp(ev.failed_check, "bounds") == 0);
	CHECK(ev.message && strstr(ev.message, "while timed at the bench size") && strstr(ev.message, "timing rep 0, launch 0"));
	kiln_eval_free(&ev);
	free(pj);
}

static void test_gpu_fake__eval_fault_while_timed_is_the_verdict(void **state)
{
	(void)state;
	const char *env[] = {"FAKE_CUDA_FAULT_KERNEL", "ratio_token", "FAKE_CUDA_FAULT_MIN_THREADS", "60000", NULL};
	in_child(case_eval_fault_is_the_verdict, env);
}

typedef long (*stat_fn)(const char *);

static void case_timing_events(void)
{
	kiln_device *d = open_fake();
	kiln_timing tm;
	stat_fn stat = (stat_fn)(uintptr_t)dlsym(dlopen(fake, RTLD_NOW | RTLD_NOLOAD), "fake_cuda_stat");
	load_target();
	CHECK(time_seed(d, &tm) == 0);
	CHECK(!tm.cupti && strstr(tm.source_why, "KILN_NO_CUPTI=1"));
	CHECK(tm.time_us > 9.99 && tm.time_us < 10.01); /* the kernel alone: no flush, no host gap */
	CHECK(tm.warmup_s >= 0.2);
	CHECK(tm.sm_mhz[0] > 1754 && tm.sm_mhz[0] < 1756 && tm.sm_mhz[1] > 1754);
	CHECK(stat && stat("l2_reads") >= tm.reps); /* one written-then-read flush per rep */
	char *j = kiln_timing_to_json(&tm);
	CHECK(j && strstr(j, "\"source\":\"cuda-events\"") && strstr(j, "\"after_warmup\":1755"));
	CHECK(strstr(j, "\"uuid\":\"GPU-00102030-4050-6070-8090-a0b0c0d0e0f0\""));
	free(j);
	kiln_timing_free(&tm);
	kiln_device_free(d);
}

/* A plan with a scratch buffer: per rep the scratch is poisoned (M), then the L2 flushed
 * (write F, read R), then the kernel (K): the poison's dirty lines are flushed too. */
static void case_scratch_before_flush(void)
{
	kiln_device *d = open_fake();
	kiln_timing tm;
	const char *(*ops)(void) = (const char *(*)(void))(uintptr_t)dlsym(dlopen(fake, RTLD_NOW | RTLD_NOLOAD), "fake_cuda_ops");
	load_target();
	kiln_plan_free(plan);
	static const char pj[] = "{\"launches\": [{\"kernel\": \"ratio_token\", \"grid\": [\"ceil_div(B*T, BLOCK*ITEMS)\"],"
				 " \"block\": [\"BLOCK\"], \"args\": [\"logp_new\", \"logp_old\", \"mask\", \"ratio\", \"B\", \"T\"]}],"
				 " \"scratch\": [{\"name\": \"tmp\", \"dtype\": \"f32\", \"count\": \"B\"}]}";
	CHECK(kiln_plan_parse(&plan, pj, strlen(pj), target, "scratch plan") == 0);
	CHECK(time_seed(d, &tm) == 0);
	CHECK(ops && strstr(ops(), "MFRKMFRK") && !strstr(ops(), "FRM"));
	kiln_timing_free(&tm);
	kiln_device_free(d);
}

static void test_gpu_fake__scratch_poisoned_before_the_flush(void **state)
{
	(void)state;
	in_child(case_scratch_before_flush, NULL);
}

static void test_gpu_fake__timing_on_events_warm_up_clock_flush(void **state)
{
	(void)state;
	in_child(case_timing_events, NULL);
}

/* CUPTI records: every sample is a CUPTI duration (9 us on the fake, events say 10),
 * never a mix; zero-timestamp and dropped records cost their rep, counted. */
static void case_timing_cupti(void)
{
	kiln_device *d = open_fake();
	kiln_timing tm;
	load_target();
	CHECK(time_seed(d, &tm) == 0);
	CHECK(tm.cupti && strstr(tm.source_why, "matched by correlation id"));
	CHECK(tm.min_us > 8.99 && tm.time_us < 9.01 && tm.spread == 0);
	CHECK(tm.invalid_reps > 0 && tm.cupti_dropped > 0);
	kiln_timing_free(&tm);
	kiln_device_free(d);
}

static void test_gpu_fake__cupti_by_correlation_never_mixed(void **state)
{
	(void)state;
	const char *env[] = {"KILN_NO_CUPTI", "0", "KILN_LIBCUPTI", fake, "FAKE_CUPTI_ZERO_EVERY", "7",
			     "FAKE_CUPTI_DROP_EVERY", "11", "FAKE_CUPTI_INVERT_EVERY", "13", "FAKE_CUPTI_REVERSE", "1", NULL};
	in_child(case_timing_cupti, env);
}

static void case_cupti_unusable(void)
{
	kiln_device *d = open_fake();
	kiln_timing tm;
	load_target();
	CHECK(time_seed(d, &tm) == 0);
	CHECK(!tm.cupti && strstr(tm.source_why, "no usable kernel record"));
	/* events only, every sample: 10..10.4 us as the fake's kernels vary, never CUPTI's 9 */
	CHECK(tm.min_us > 9.99 && tm.time_us < 10.41 && tm.spread > 0);
	kiln_timing_free(&tm);
	kiln_device_free(d);
}

static void test_gpu_fake__cupti_without_records_falls_back_whole(void **state)
{
	(void)state;
	const char *env[] = {"KILN_NO_CUPTI", "0", "KILN_LIBCUPTI", fake, "FAKE_CUPTI_DROP_EVERY", "1", "FAKE_CUDA_VARY", "1", NULL};
	in_child(case_cupti_unusable, env);
}

/* ---- measured time = kernels + gaps between dependent launches ---- */

/* ratio_token launched twice per rep (the second rewrites the same output), as a CUDA
 * graph when graph. */
static void two_launch_plan(bool graph)
{
	char pj[512];
	static const char l[] = "{\"kernel\": \"ratio_token\", \"grid\": [\"ceil_div(B*T, BLOCK*ITEMS)\"], \"block\": [\"BLOCK\"],"
				" \"args\": [\"logp_new\", \"logp_old\", \"mask\", \"ratio\", \"B\", \"T\"]}";
	snprintf(pj, sizeof(pj), "{\"launches\": [%s, %s]%s}", l, l, graph ? ", \"graph\": true" : "");
	kiln_plan_free(plan);
	plan = NULL;
	CHECK(kiln_plan_parse(&plan, pj, strlen(pj), target, "two-launch plan") == 0 && plan->graph == graph);
}

#define NEAR(x, v) ((x) > (v) - 0.01 && (x) < (v) + 0.01)

/* The fake's CUPTI records: each kernel 9 us, each stream launch 2.5 us after the previous
 * kernel ended on the GPU clock (+1 us, the record's end is 1 us early): 2 x 9 us of
 * kernels, one 3.5 us gap; ranked on launches 21.5 us, on kernels 18 us. As a graph (0.5 us
 * per node): one 1.5 us gap, and the graph really launched. */
static void case_cupti_kernels_and_gaps(void)
{
	kiln_device *d = open_fake();
	kiln_timing tm;
	stat_fn stat = (stat_fn)(uintptr_t)dlsym(dlopen(fake, RTLD_NOW | RTLD_NOLOAD), "fake_cuda_stat");
	load_target();
	two_launch_plan(false);
	CHECK(time_ranked(d, &tm, KILN_RANK_LAUNCHES) == 0 && tm.cupti && !tm.graph);
	CHECK(NEAR(tm.kernel_us, 18) && NEAR(tm.gap_us, 3.5) && NEAR(tm.time_us, 21.5) && tm.spread == 0);
	CHECK(strcmp(tm.time_def, "sum of kernel times + 1 launch gap") == 0);
	char *j = kiln_timing_to_json(&tm);
	CHECK(j && strstr(j, "\"rank_time\":\"launches\"") && strstr(j, "\"gap_us\":3.5"));
	free(j);
	kiln_timing_free(&tm);
	CHECK(time_ranked(d, &tm, KILN_RANK_KERNELS) == 0 && tm.cupti);
	CHECK(NEAR(tm.time_us, 18) && NEAR(tm.kernel_us, 18) && NEAR(tm.gap_us, 3.5));
	CHECK(strcmp(tm.time_def, "sum of kernel times (launch gaps not counted)") == 0);
	kiln_timing_free(&tm);
	two_launch_plan(true);
	long before = stat("graph_launches");
	CHECK(time_ranked(d, &tm, KILN_RANK_LAUNCHES) == 0 && tm.cupti && tm.graph);
	CHECK(NEAR(tm.kernel_us, 18) && NEAR(tm.gap_us, 1.5) && NEAR(tm.time_us, 19.5));
	CHECK(stat("graph_launches") - before >= tm.reps && strstr(tm.source_why, "one CUDA graph"));
	CHECK(strcmp(tm.time_def, "sum of kernel times + 1 CUDA-graph launch gap") == 0);
	kiln_timing_free(&tm);
	kiln_device_free(d);
}

static void test_gpu_fake__cupti_kernel_time_and_launch_gaps(void **state)
{
	(void)state;
	const char *env[] = {"KILN_NO_CUPTI", "0", "KILN_LIBCUPTI", fake, "FAKE_CUDA_GAP_US", "2.5",
			     "FAKE_CUDA_GRAPH_GAP_US", "0.5", NULL};
	in_child(case_cupti_kernels_and_gaps, env);
}

/* CUDA events cannot tell kernels from gaps: ranked on launches they bracket the whole
 * plan (2.5 + 10 + 2.5 + 10 us: the first launch's latency too), kernel time and gaps
 * unknown; ranked on kernels each launch is bracketed (12.5 us each), gaps unknown. */
static void case_events_kernels_and_gaps(void)
{
	kiln_device *d = open_fake();
	kiln_timing tm;
	load_target();
	two_launch_plan(false);
	CHECK(time_ranked(d, &tm, KILN_RANK_LAUNCHES) == 0 && !tm.cupti);
	CHECK(NEAR(tm.time_us, 25) && isnan(tm.kernel_us) && isnan(tm.gap_us));
	CHECK(strstr(tm.source_why, "events around the whole plan"));
	char *j = kiln_timing_to_json(&tm);
	CHECK(j && strstr(j, "\"kernel_us\":null"));
	free(j);
	kiln_timing_free(&tm);
	CHECK(time_ranked(d, &tm, KILN_RANK_KERNELS) == 0 && !tm.cupti);
	CHECK(NEAR(tm.time_us, 25) && NEAR(tm.kernel_us, 25) && isnan(tm.gap_us));
	CHECK(strstr(tm.source_why, "each launch between its own events"));
	kiln_timing_free(&tm);
	two_launch_plan(true); /* events bracket the graph: 0.5 + 10 + 0.5 + 10 */
	CHECK(time_ranked(d, &tm, KILN_RANK_LAUNCHES) == 0 && tm.graph && NEAR(tm.time_us, 21));
	kiln_timing_free(&tm);
	kiln_device_free(d);
}

static void test_gpu_fake__events_bracket_what_they_can(void **state)
{
	(void)state;
	const char *env[] = {"FAKE_CUDA_GAP_US", "2.5", "FAKE_CUDA_GRAPH_GAP_US", "0.5", NULL};
	in_child(case_events_kernels_and_gaps, env);
}

/* A fault that shows only at a measured rep's end (here: inside its CUDA graph) names the
 * rep, how its launches ran and its last kernel; the kind is the kernel's. */
static void case_fault_at_rep_end(void)
{
	kiln_device *d = open_fake();
	kiln_timing tm;
	load_target();
	two_launch_plan(true);
	CHECK(time_seed(d, &tm) == KILN_EFAULT);
	CHECK(strstr(kiln_error_last(), "launches in one CUDA graph, synchronized at its end; the fault may be any of "
					"them): last kernel ratio_token: CUDA_ERROR_ILLEGAL_ADDRESS"));
	CHECK(kiln_device_last_fault(d)->kind == KILN_FAULT_OOB);
	kiln_timing_free(&tm);
	kiln_device_free(d);
}

static void test_gpu_fake__fault_at_a_measured_reps_end_names_the_rep(void **state)
{
	(void)state;
	const char *env[] = {"FAKE_CUDA_FAULT_IN_GRAPH", "1", NULL};
	in_child(case_fault_at_rep_end, env);
}

/* ---- GPU selection ---- */

static void case_gpu_index(void)
{
	kiln_device *d = open_fake();
	const kiln_device_info *in = kiln_device_info_get(d);
	CHECK(in->gpu_index == 1 && strstr(in->name, "#1"));
	CHECK(strcmp(in->uuid, "GPU-01112131-4151-6171-8191-a1b1c1d1e1f1") == 0);
	kiln_device_free(d);
	setenv("KILN_GPU_INDEX", "2", 1);
	CHECK(kiln_device_open(&d, "cuda", NULL) == KILN_EUNSUPPORTED);
	CHECK(strstr(kiln_error_last(), "GPU index 2, but 2 GPUs are visible"));
}

static void test_gpu_fake__gpu_index_and_uuid(void **state)
{
	(void)state;
	const char *env[] = {"FAKE_CUDA_DEVICES", "2", "KILN_GPU_INDEX", "1", NULL};
	in_child(case_gpu_index, env);
}

static void test_gpu_fake__cupti_search_and_why(void **state)
{
	(void)state;
	char path[512], why[320];
	setenv("KILN_NO_CUPTI", "1", 1);
	assert_false(kiln_device_cupti_find(path, sizeof(path), why, sizeof(why)));
	assert_non_null(strstr(why, "KILN_NO_CUPTI=1"));
	unsetenv("KILN_NO_CUPTI");
	setenv("KILN_LIBCUPTI", fake, 1);
	assert_true(kiln_device_cupti_find(path, sizeof(path), why, sizeof(why)));
	assert_string_equal(path, fake);
	setenv("KILN_LIBCUPTI", "/nonexistent/libcupti.so", 1);
	assert_false(kiln_device_cupti_find(path, sizeof(path), why, sizeof(why)));
	assert_non_null(strstr(why, "KILN_LIBCUPTI=/nonexistent/libcupti.so does not load"));
	unsetenv("KILN_LIBCUPTI");
}

int main(void)
{
	const char *root = getenv("KILN_BUILD_ROOT");
	snprintf(fake, sizeof(fake), "%s/tests/libcuda.so.1", root ? root : ".");
	if (!root || !kiln_path_exists(fake)) {
		printf("skipped: no fake driver (KILN_BUILD_ROOT)\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpu_fake__params_from_the_driver_and_launch_limits),
		cmocka_unit_test(test_gpu_fake__shared_opt_in_counts_static_shared_memory),
		cmocka_unit_test(test_gpu_fake__sticky_fault_first_error_wins),
		cmocka_unit_test(test_gpu_fake__every_sticky_code_poisons),
		cmocka_unit_test(test_gpu_fake__fault_while_timing_names_the_launch),
		cmocka_unit_test(test_gpu_fake__eval_fault_while_timed_is_the_verdict),
		cmocka_unit_test(test_gpu_fake__timing_on_events_warm_up_clock_flush),
		cmocka_unit_test(test_gpu_fake__scratch_poisoned_before_the_flush),
		cmocka_unit_test(test_gpu_fake__cupti_by_correlation_never_mixed),
		cmocka_unit_test(test_gpu_fake__cupti_without_records_falls_back_whole),
		cmocka_unit_test(test_gpu_fake__cupti_kernel_time_and_launch_gaps),
		cmocka_unit_test(test_gpu_fake__events_bracket_what_they_can),
		cmocka_unit_test(test_gpu_fake__fault_at_a_measured_reps_end_names_the_rep),
		cmocka_unit_test(test_gpu_fake__gpu_index_and_uuid),
		cmocka_unit_test(test_gpu_fake__cupti_search_and_why),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
