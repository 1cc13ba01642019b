/* GPU suite: the cuda backend (profile/device_cuda.c, device_cuda_time.c) and measured
 * timing on a real device. Exits 77 (skipped) when no driver or GPU is usable. Covers
 * device properties (name, UUID), memory round trips (with poison tails), parameter sizes
 * from the driver, the shared-memory opt-in with static shared memory (16 KiB static + 40
 * KiB dynamic, and 100 KiB dynamic), verification of a seed on the GPU, measured timing
 * (reps, median/min/spread, roofline in (0, 1], one named source, >= 200 ms warm-up, the
 * SM clock seen), a measured ordering (coalesced beats strided), "auto" picking the GPU,
 * and a faulting kernel poisoning the context with its error kept (first wins; no "0
 * arguments", no cuMemFree error) — last, since the context is then unusable. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "compile/compile.h"
#include "profile/profile.h"
#include "tests/gpu_lion_kernels.h"

static kiln_device *dev;
static kiln_target *lion;

static const char strided_cu[] = LION_STRIDED_CU;
static const char strided_json[] = LION_STRIDED_JSON;

static const char null_cu[] = "extern \"C\" __global__ void k" LION_PARAMS
	"{ if (threadIdx.x == 0) *(volatile float *)(p + (1ll << 40)) = 1.0f; }\n";
static const char null_json[] = "{\"launches\": [{\"kernel\": \"k\", \"grid\": [1], \"block\": [32], " LION_ARGS "}]}";

static int setup(void **state)
{
	(void)state;
	if (kiln_device_open(&dev, "cuda", NULL) || kiln_target_find(&lion, "lion", NULL)) {
		fprintf(stderr, "setup: %s\n", kiln_error_last());
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kiln_device_free(dev);
	kiln_target_free(lion);
	return 0;
}

static void test_gpu__device_properties(void **state)
{
	(void)state;
	const kiln_device_info *in = kiln_device_info_get(dev);
	printf("# %s %s, %u SMs, L2 %llu B, %.0f GB/s peak, smem/SM %u, driver %d\n", in->name, in->arch, in->sm_count,
	       (unsigned long long)in->l2_bytes, in->peak_bw_gbs, in->smem_per_sm, in->driver_version);
	assert_int_equal(in->kind, KILN_DEVICE_CUDA);
	assert_false(in->modeled);
	assert_int_equal(strncmp(in->arch, "sm_", 3), 0);
	assert_true(in->sm_count > 0 && in->l2_bytes > 0 && in->total_mem > 0);
	assert_true(in->peak_bw_gbs > 100);
	assert_true(in->max_shared_per_block >= 48 * 1024);
	printf("# uuid %s, GPU index %d\n", in->uuid, in->gpu_index);
	assert_int_equal(strncmp(in->uuid, "GPU-", 4), 0);
}

static const char smem_cu[] =
	"extern \"C\" __global__ void smem(float *p, int n, char c, double d)\n"
	"{ __shared__ float st[4096]; extern __shared__ float dyn[];\n"
	"  st[threadIdx.x] = (float)threadIdx.x; dyn[threadIdx.x] = c + (float)d; __syncthreads();\n"
	"  if ((int)threadIdx.x < n) p[threadIdx.x] = st[threadIdx.x ^ 1] + dyn[threadIdx.x ^ 1]; }\n";

/* 16 KiB static + 40 KiB dynamic needs the opt-in although 40 KiB < 48 KiB; 100 KiB too */
static void test_gpu__params_and_shared_opt_in(void **state)
{
	(void)state;
	kiln_compile_options co = KILN_COMPILE_OPTIONS_INIT;
	kiln_compiled *c = NULL;
	kiln_module *m = NULL;
	co.source = smem_cu;
	co.arch = kiln_device_info_get(dev)->arch;
	assert_int_equal(kiln_compile(&c, &co), 0);
	assert_true(c->ok);
	assert_int_equal(kiln_device_module_load(dev, &m, c), 0);
	uint32_t sz[8];
	size_t n = 0;
	assert_int_equal(kiln_module_params(m, "smem", &n, sz, 8), 0);
	assert_true(n == 4 && sz[0] == 8 && sz[1] == 4 && sz[2] == 1 && sz[3] == 8);
	uint64_t buf = 0;
	int cnt = 32;
	char ch = 1;
	double dd = 2;
	assert_int_equal(kiln_device_alloc(dev, &buf, 4096), 0);
	const void *args[] = {&buf, &cnt, &ch, &dd};
	const uint32_t dyn[] = {40 * 1024, 100 * 1024};
	for (int i = 0; i < 2; i++) {
		kiln_dims dm = {{1, 1, 1}, {32, 1, 1}, dyn[i]};
		if (kiln_device_launch(dev, m, "smem", &dm, args, NULL))
			fail_msg("16 KiB static + %u B dynamic: %s", dyn[i], kiln_error_last());
	}
	float out[32];
	assert_int_equal(kiln_device_read(dev, out, buf, sizeof(out)), 0);
	assert_true(out[0] == 1.0f + 3.0f && out[1] == 0.0f + 3.0f);
	assert_int_equal(kiln_device_mem_free(dev, buf), 0);
	kiln_module_free(m);
	kiln_compiled_free(c);
}

static void test_gpu__memory_round_trip_and_poison(void **state)
{
	(void)state;
	uint64_t a = 0;
	uint8_t w[7] = {1, 2, 3, 4, 5, 6, 7}, r[7] = {0};
	assert_int_equal(kiln_device_alloc(dev, &a, sizeof(w)), 0);
	assert_int_equal(kiln_device_write(dev, a, w, sizeof(w)), 0);
	assert_int_equal(kiln_device_read(dev, r, a, sizeof(r)), 0);
	assert_memory_equal(w, r, sizeof(w));
	assert_int_equal(kiln_device_poison(dev, a, sizeof(w), 0xdeadbeefu), 0);
	assert_int_equal(kiln_device_read(dev, r, a, sizeof(r)), 0);
	const uint8_t want[7] = {0xef, 0xbe, 0xad, 0xde, 0xef, 0xbe, 0xad};
	assert_memory_equal(r, want, sizeof(want));
	assert_int_equal(kiln_device_mem_free(dev, a), 0);
}

/* (the probe itself ran in main, before this process touched CUDA: a probe after cuInit
 * would fork a child that cannot use CUDA) */
static void test_gpu__auto_picks_the_gpu(void **state)
{
	(void)state;
	kiln_device *d2 = NULL;
	assert_int_equal(kiln_device_open(&d2, "auto", NULL), 0);
	assert_int_equal(kiln_device_info_get(d2)->kind, KILN_DEVICE_CUDA);
	assert_string_equal(kiln_device_info_get(d2)->note, "");
	kiln_device_free(d2);
}

static kiln_err load(const char *path, char **src)
{
	size_t len;
	return kiln_file_read(src, &len, path, 0);
}

static void test_gpu__verify_seed_on_gpu(void **state)
{
	(void)state;
	char *src = NULL;
	kiln_plan *plan = NULL;
	assert_int_equal(load(lion->seed_path, &src), 0);
	assert_int_equal(kiln_plan_load(&plan, lion->launch_path, lion), 0);
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src.target = lion;
	vo.src.source = src;
	vo.src.plan = plan;
	vo.src.device = dev;
	kiln_verdict v;
	assert_int_equal(kiln_verify(&v, &vo), 0);
	if (!v.pass)
		fail_msg("seed failed on the GPU: [%s] %s", v.check, v.message);
	kiln_plan_free(plan);
	free(src);
}

static kiln_timing measure(const char *src, const char *plan_json)
{
	kiln_plan *plan = NULL;
	kiln_timing tm;
	assert_int_equal(kiln_plan_parse(&plan, plan_json, strlen(plan_json), lion, "test plan"), 0);
	kiln_time_options o = KILN_TIME_OPTIONS_INIT;
	o.src.target = lion;
	o.src.source = src;
	o.src.plan = plan;
	o.src.device = dev;
	o.seed = 3;
	o.max_seconds = 2;
	if (kiln_time(&tm, &o))
		fail_msg("kiln_time: %s", kiln_error_last());
	kiln_plan_free(plan);
	return tm;
}

static void test_gpu__measured_timing(void **state)
{
	(void)state;
	char *src = NULL, *plan = NULL;
	assert_int_equal(load(lion->seed_path, &src), 0);
	assert_int_equal(load(lion->launch_path, &plan), 0);
	kiln_timing tm = measure(src, plan);
	printf("# lion seed: %.2f us median, %.2f min, spread %.3f, %lld reps (%s), %.0f GB/s, roofline %.3f\n", tm.time_us,
	       tm.min_us, tm.spread, (long long)tm.reps, tm.cupti ? "CUPTI" : "events", tm.bandwidth_gbs, tm.roofline);
	assert_false(tm.modeled);
	assert_true(tm.reps >= 10);
	assert_true(tm.time_us > 0 && tm.min_us > 0 && tm.min_us <= tm.time_us);
	assert_true(tm.spread >= 0);
	assert_true(tm.roofline > 0 && tm.roofline <= 1);
	printf("# source: %s; warm-up %.2f s; SM clock %.0f MHz after warm-up, %.0f at the end; %lld reps left out, %lld "
	       "CUPTI records dropped\n", tm.source_why, tm.warmup_s, tm.sm_mhz[0], tm.sm_mhz[1], (long long)tm.invalid_reps,
	       (long long)tm.cupti_dropped);
	assert_true(tm.source_why[0] && tm.warmup_s >= 0.2);
	assert_true(tm.sm_mhz[0] > 100 && tm.sm_mhz[0] < 5000 && tm.sm_mhz[1] > 100);
	char cupti_path[512], why[320];
	if (kiln_device_cupti_find(cupti_path, sizeof(cupti_path), why, sizeof(why)))
		assert_true(tm.cupti); /* CUPTI found: the measurement is CUPTI's, whole */
	cJSON *s = cJSON_Parse(tm.samples_json);
	assert_true(cJSON_IsArray(s));
	assert_int_equal(cJSON_GetArraySize(s), (int)tm.reps);
	cJSON_Delete(s);
	char *j = kiln_timing_to_json(&tm);
	assert_non_null(j);
	assert_non_null(strstr(j, "\"label\":\"measured\""));
	free(j);
	/* measured ordering: a strided access pattern is slower than the coalesced seed */
	kiln_timing st = measure(strided_cu, strided_json);
	printf("# strided: %.2f us\n", st.time_us);
	assert_true(st.time_us > 1.2 * tm.time_us);
	kiln_timing_free(&st);
	kiln_timing_free(&tm);
	free(src);
	free(plan);
}

/* Two dependent launches, as stream launches and as one CUDA graph: with CUPTI the kernel
 * time and the gap are apart, the ranked time is their sum (medians: within 5%), and the
 * graph runs the same kernels; ranked on kernels, the gap is left out. */
static void test_gpu__kernel_time_and_launch_gaps(void **state)
{
	(void)state;
	static const char cu[] = LION_SPLIT_CU;
	kiln_timing st = measure(cu, LION_SPLIT_JSON("")), gr = measure(cu, LION_SPLIT_JSON("\"graph\": true, "));
	printf("# two launches: %.2f us = kernels %.2f + gap %.2f (%s); as a CUDA graph %.2f = %.2f + %.2f (%s)\n",
	       st.time_us, st.kernel_us, st.gap_us, st.source_why, gr.time_us, gr.kernel_us, gr.gap_us, gr.source_why);
	assert_string_equal(st.time_def, "sum of kernel times + 1 launch gap");
	assert_true(gr.graph); /* every CUDA 12+ driver has the graph entry points */
	if (st.cupti && gr.cupti) {
		assert_true(st.gap_us >= 0 && gr.gap_us >= 0);
		assert_true(fabs(st.time_us - (st.kernel_us + st.gap_us)) <= 0.05 * st.time_us);
		assert_true(fabs(gr.kernel_us - st.kernel_us) <= 0.2 * st.kernel_us);
	}
	kiln_timing_free(&st);
	kiln_timing_free(&gr);
}

/* Last: a fault leaves the context unusable, and kiln says so instead of crashing. */
static void test_gpu__fault_poisons_the_context(void **state)
{
	(void)state;
	kiln_plan *plan = NULL;
	assert_int_equal(kiln_plan_parse(&plan, null_json, strlen(null_json), lion, "test plan"), 0);
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src.target = lion;
	vo.src.source = null_cu;
	vo.src.plan = plan;
	vo.src.device = dev;
	kiln_verdict v;
	kiln_err e = kiln_verify(&v, &vo);
	assert_true(e != 0 || !v.pass);
	if (!e)
		printf("# fault verdict: [%s] %s\n", v.check, v.message);
	uint64_t a = 0;
	assert_int_equal(kiln_device_alloc(dev, &a, 64), KILN_EDEVICE);
	assert_non_null(strstr(kiln_error_last(), "fresh process"));
	assert_non_null(strstr(kiln_error_last(), "CUDA_ERROR_ILLEGAL_ADDRESS"));
	assert_null(strstr(kiln_error_last(), "cuMemFree"));
	kiln_plan_free(plan);
}

int main(void)
{
	char why[240];
	if (!kiln_device_cuda_probe(why, sizeof(why))) {
		printf("skipped: %s\n", why);
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpu__device_properties),
		cmocka_unit_test(test_gpu__memory_round_trip_and_poison),
		cmocka_unit_test(test_gpu__params_and_shared_opt_in),
		cmocka_unit_test(test_gpu__auto_picks_the_gpu),
		cmocka_unit_test(test_gpu__verify_seed_on_gpu),
		cmocka_unit_test(test_gpu__measured_timing),
		cmocka_unit_test(test_gpu__kernel_time_and_launch_gaps),
		cmocka_unit_test(test_gpu__fault_poisons_the_context),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
