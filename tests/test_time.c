/* Unit tests for timing (profile/time.c) on the emulator: real kernels for the lion
 * target compiled with NVRTC, verified and modeled. Orderings every GPU engineer expects
 * on a memory-bound kernel (float4 < scalar coalesced < strided; a grid too small for
 * the GPU is slower; bank conflicts cost; two launches cost more than one fused; more
 * bytes take longer), determinism bit for bit, the extrapolation to the bench size, every
 * seed's roofline fraction in (0, 1], and that a kernel misbehaving on a later launch is
 * refused rather than timed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "profile/profile.h"
#include "tests/gpu_lion_kernels.h"

static kiln_target *lion;
static kiln_device *dev;

static const char scalar_cu[] = LION_BODY
	"extern \"C\" __global__ void k" LION_PARAMS
	"{ long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; if (i < n) LION(i) }\n";
static const char scalar_json[] = "{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"ceil_div(n, 256)\"], \"block\": [256], " LION_ARGS "}]}";

static const char vec4_cu[] = LION_BODY
	"extern \"C\" __global__ void k" LION_PARAMS
	"{ long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;"
	"  if (i + 3 < n) {"
	"    float4 pv = *(const float4 *)(p + i), gv = *(const float4 *)(g + i), mv = *(const float4 *)(m + i);"
	"    float pa[4] = {pv.x, pv.y, pv.z, pv.w}, ga[4] = {gv.x, gv.y, gv.z, gv.w}, ma[4] = {mv.x, mv.y, mv.z, mv.w};"
	"    for (int k = 0; k < 4; k++) { const float gi = ga[k], mi = ma[k];"
	"      const float c = beta1 * mi + (1.0f - beta1) * gi;"
	"      const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);"
	"      pa[k] = pa[k] * (1.0f - lr * weight_decay) - lr * s; ma[k] = beta2 * mi + (1.0f - beta2) * gi; }"
	"    *(float4 *)(p + i) = make_float4(pa[0], pa[1], pa[2], pa[3]);"
	"    *(float4 *)(m + i) = make_float4(ma[0], ma[1], ma[2], ma[3]);"
	"  } else { for (long long j = i; j < n; j++) LION(j) } }\n";
static const char vec4_json[] = "{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"ceil_div(n, 1024)\"], \"block\": [256], " LION_ARGS "}]}";

static const char strided_cu[] = LION_STRIDED_CU;
static const char strided_json[] = LION_STRIDED_JSON;

static const char gridstride_cu[] = LION_BODY
	"extern \"C\" __global__ void k" LION_PARAMS
	"{ for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;"
	"       i += (long long)gridDim.x * blockDim.x) LION(i) }\n";
static const char small_grid_json[] = "{\"launches\": [{\"kernel\": \"k\", \"grid\": [4], \"block\": [256], " LION_ARGS "}]}";
static const char full_grid_json[] = "{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"sm_count * 8\"], \"block\": [256], " LION_ARGS "}]}";

/* g staged through shared memory at sh[t * STRIDE]: STRIDE 32 puts a warp on one bank */
#define SHARED_CU(stride)                                                                  \
	LION_BODY "extern \"C\" __global__ void k" LION_PARAMS                               \
	"{ __shared__ float sh[256 * 32]; const int t = threadIdx.x;"                        \
	"  long long i = (long long)blockIdx.x * blockDim.x + t;"                            \
	"  if (i < n) sh[t * " #stride "] = g[i]; __syncthreads();"                          \
	"  if (i < n) { const float gi = sh[t * " #stride "], mi = m[i];"                    \
	"    const float c = beta1 * mi + (1.0f - beta1) * gi;"                               \
	"    const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);"                   \
	"    p[i] = p[i] * (1.0f - lr * weight_decay) - lr * s;"                             \
	"    m[i] = beta2 * mi + (1.0f - beta2) * gi; } }\n"
static const char conflict_cu[] = SHARED_CU(32);
static const char no_conflict_cu[] = SHARED_CU(1);

/* the same elements in two launches: [0, n/2) then [n/2, n) */
static const char split_cu[] = LION_SPLIT_CU;
static const char split_json[] = LION_SPLIT_JSON("");

/* right on its first launch, does nothing afterwards: the block that finishes last (in
 * any block order) sets the flag (atomics: no data race for the global racecheck) */
static const char first_only_cu[] = LION_BODY
	"__device__ int done_once; __device__ unsigned int finished;\n"
	"extern \"C\" __global__ void k" LION_PARAMS
	"{ if (atomicAdd(&done_once, 0)) return; long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;"
	"  if (i < n) LION(i)"
	"  __syncthreads();"
	"  if (threadIdx.x == 0 && atomicAdd(&finished, 1u) == gridDim.x - 1) atomicExch(&done_once, 1); }\n";

static int setup(void **state)
{
	(void)state;
	if (kiln_target_find(&lion, "lion", NULL) || kiln_device_open(&dev, "emu", NULL)) {
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

/* Times src/plan on target t (bench size index bs), ranked as rank; fails the test on an error. */
static kiln_timing time_ranked(const kiln_target *t, const char *src, const char *plan_json, size_t bs,
			       kiln_rank_time rank)
{
	kiln_plan *plan = NULL;
	kiln_timing tm;
	if (kiln_plan_parse(&plan, plan_json, strlen(plan_json), t, "test plan"))
		fail_msg("plan: %s", kiln_error_last());
	kiln_time_options o = KILN_TIME_OPTIONS_INIT;
	o.src.target = t;
	o.src.source = src;
	o.src.plan = plan;
	o.src.device = dev;
	o.seed = 7;
	o.bench_size = bs;
	o.rank = rank;
	kiln_err e = kiln_time(&tm, &o);
	kiln_plan_free(plan);
	if (e)
		fail_msg("kiln_time: %s", kiln_error_last());
	assert_true(tm.modeled);
	assert_true(tm.time_us > 0);
	return tm;
}

static kiln_timing time_on(const kiln_target *t, const char *src, const char *plan_json, size_t bs)
{
	return time_ranked(t, src, plan_json, bs, KILN_RANK_LAUNCHES);
}

/* Options timing the scalar lion kernel (seed 7); *plan is the caller's to free. */
static kiln_time_options lion_scalar(kiln_plan **plan)
{
	assert_int_equal(kiln_plan_parse(plan, scalar_json, strlen(scalar_json), lion, "test plan"), 0);
	kiln_time_options o = KILN_TIME_OPTIONS_INIT;
	o.src.target = lion;
	o.src.source = scalar_cu;
	o.src.plan = *plan;
	o.src.device = dev;
	o.seed = 7;
	return o;
}

static double time_lion(const char *src, const char *plan_json)
{
	kiln_timing tm = time_on(lion, src, plan_json, 0);
	double us = tm.time_us;
	kiln_timing_free(&tm);
	return us;
}

static void test_time__float4_scalar_strided_order(void **state)
{
	(void)state;
	double v4 = time_lion(vec4_cu, vec4_json), s = time_lion(scalar_cu, scalar_json),
	       st = time_lion(strided_cu, strided_json);
	printf("# float4 %.2f us, scalar %.2f us, strided %.2f us\n", v4, s, st);
	/* beyond the model's 1% tie band, so a search would rank them */
	assert_true(v4 * 1.01 < s);
	assert_true(s * 1.01 < st);
}

static void test_time__small_grid_is_slower(void **state)
{
	(void)state;
	double small = time_lion(gridstride_cu, small_grid_json), full = time_lion(gridstride_cu, full_grid_json);
	printf("# grid 4: %.2f us, grid 8*sm_count: %.2f us\n", small, full);
	assert_true(small > 2 * full);
}

static void test_time__bank_conflicts_cost(void **state)
{
	(void)state;
	double bad = time_lion(conflict_cu, scalar_json), good = time_lion(no_conflict_cu, scalar_json);
	printf("# 32-way conflicts %.2f us, none %.2f us\n", bad, good);
	assert_true(bad > 1.01 * good);
}

static void test_time__two_launches_cost_more_than_fused(void **state)
{
	(void)state;
	double two = time_lion(split_cu, split_json), one = time_lion(scalar_cu, scalar_json);
	printf("# two launches %.2f us, fused %.2f us\n", two, one);
	assert_true(two > 1.01 * one);
}

/* The modeled time is defined as the measured one: kernels + the gap between the two
 * dependent launches (none before the first); ranked on kernels, the kernels alone; as a
 * CUDA graph, the same kernels and no longer a gap. */
static void test_time__ranked_time_kernels_and_gaps(void **state)
{
	(void)state;
	static const char graph_json[] = LION_SPLIT_JSON("\"graph\": true, ");
	kiln_timing tm = time_on(lion, split_cu, split_json, 0);
	assert_true(tm.gap_us > 0 && tm.kernel_us > 0 && !tm.graph);
	assert_true(tm.model.launch[0].overhead_us == 0 && tm.model.launch[1].overhead_us == tm.gap_us);
	assert_true(fabs(tm.time_us - (tm.kernel_us + tm.gap_us)) < 1e-9);
	assert_string_equal(tm.time_def, "sum of kernel times + 1 launch gap");
	double kern = tm.kernel_us, gap = tm.gap_us;
	kiln_timing_free(&tm);
	tm = time_ranked(lion, split_cu, split_json, 0, KILN_RANK_KERNELS);
	assert_true(tm.time_us == kern && tm.kernel_us == kern && tm.rank == KILN_RANK_KERNELS);
	char *j = kiln_timing_to_json(&tm);
	assert_non_null(strstr(j, "\"rank_time\":\"kernels\""));
	free(j);
	kiln_timing_free(&tm);
	tm = time_on(lion, split_cu, graph_json, 0);
	printf("# gap %.3f us, as a CUDA graph %.3f us\n", gap, tm.gap_us);
	/* these kernels outlast a launch period, so both gaps are the least one (test_calib's
	 * small-kernel rows show the graph's shorter period) */
	assert_true(tm.graph && tm.kernel_us == kern && tm.gap_us > 0 && tm.gap_us <= gap);
	assert_string_equal(tm.time_def, "sum of kernel times + 1 CUDA-graph launch gap");
	kiln_timing_free(&tm);
}

static void test_time__more_bytes_more_time(void **state)
{
	(void)state;
	kiln_timing a = time_on(lion, scalar_cu, scalar_json, 0), b = time_on(lion, scalar_cu, scalar_json, 1);
	assert_true(b.traffic_bytes > a.traffic_bytes);
	assert_true(b.time_us > a.time_us);
	/* 16x the bytes of a DRAM-bound kernel: close to 16x the time */
	double ratio = b.time_us / a.time_us;
	assert_true(ratio > 10 && ratio < 17);
	kiln_timing_free(&a);
	kiln_timing_free(&b);
}

static void test_time__deterministic(void **state)
{
	(void)state;
	kiln_timing a = time_on(lion, scalar_cu, scalar_json, 0), b = time_on(lion, scalar_cu, scalar_json, 0);
	assert_memory_equal(&a.time_us, &b.time_us, sizeof(double));
	assert_memory_equal(&a.roofline, &b.roofline, sizeof(double));
	assert_string_equal(a.counters_json, b.counters_json);
	char *ja = kiln_timing_to_json(&a), *jb = kiln_timing_to_json(&b);
	assert_non_null(ja);
	assert_string_equal(ja, jb);
	assert_non_null(strstr(ja, "\"modeled\":true"));
	free(ja);
	free(jb);
	kiln_timing_free(&a);
	kiln_timing_free(&b);
}

static double at_bench(const cJSON *launch, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(launch, "at_bench"), name);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

/* Counters measured at n = 1000 and 65539 predict n = 16777216: one load request per
 * warp and array (p, g, m), 4 sectors each, and the exact warp count. */
static void test_time__extrapolates_to_bench_size(void **state)
{
	(void)state;
	kiln_timing tm = time_on(lion, scalar_cu, scalar_json, 0);
	cJSON *j = cJSON_Parse(tm.counters_json);
	assert_non_null(j);
	const cJSON *l = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "launches"), 0);
	assert_non_null(l);
	double n = 16777216.0, warps = n / 32;
	assert_true(at_bench(l, "warps") == warps);
	double req = at_bench(l, "gld_requests"), sec = at_bench(l, "gld_sectors");
	assert_true(req > 3 * warps * 0.995 && req < 3 * warps * 1.005);
	assert_true(sec > 4 * req * 0.99 && sec < 4 * req * 1.01);
	assert_true(at_bench(l, "dram_sectors") > 12 * n / 32 * 0.99);
	assert_true(tm.traffic_bytes == 20 * n);
	cJSON_Delete(j);
	kiln_timing_free(&tm);
}

/* The objective over bench sizes is the weighted geometric mean of the times: ranking by
 * it ranks by the weighted geometric mean of the speedups over any baseline, and weights
 * can flip which of two candidates wins. */
static void test_time__objective_is_weighted_geomean(void **state)
{
	(void)state;
	kiln_size_timing a[2], b[2], seed[2];
	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	memset(seed, 0, sizeof seed);
	double ta[2] = {10, 100}, tb[2] = {20, 60}, ts[2] = {40, 150};
	for (int k = 0; k < 2; k++) {
		a[k].time_us = ta[k];
		b[k].time_us = tb[k];
		seed[k].time_us = ts[k];
		a[k].weight = b[k].weight = seed[k].weight = 1;
	}
	/* equal weights: A (sqrt 1000) beats B (sqrt 1200) */
	assert_true(fabs(kiln_time_objective(a, 2) - sqrt(1000.0)) < 1e-9);
	assert_true(kiln_time_objective(a, 2) < kiln_time_objective(b, 2));
	/* the speedup of the objective is the geometric mean of the per-size speedups */
	double sp = kiln_time_objective(seed, 2) / kiln_time_objective(a, 2);
	assert_true(fabs(sp - sqrt((40.0 / 10) * (150.0 / 100))) < 1e-9);
	/* weighting the large size 3:1 makes B, faster there, the winner */
	a[1].weight = b[1].weight = seed[1].weight = 3;
	assert_true(fabs(kiln_time_objective(a, 2) - pow(10.0, 1.75)) < 1e-9);
	assert_true(kiln_time_objective(b, 2) < kiln_time_objective(a, 2));
	sp = kiln_time_objective(seed, 2) / kiln_time_objective(b, 2);
	assert_true(fabs(sp - pow(40.0 / 20, 0.25) * pow(150.0 / 60, 0.75)) < 1e-9);
	/* one size is that size's time exactly; a size without a time has no objective */
	assert_true(kiln_time_objective(a, 1) == 10);
	b[0].time_us = 0;
	assert_true(kiln_time_objective(b, 2) == 0);
}

/* every_size: one emulator run serves every bench size; each size's modeled time equals
 * timing that size alone, the time is their geometric mean, and the record says how. */
static void test_time__every_size_models_each_bench_size(void **state)
{
	(void)state;
	kiln_plan *plan = NULL;
	kiln_timing all, one[2];
	kiln_time_options o = lion_scalar(&plan);
	for (size_t k = 0; k < 2; k++) {
		o.bench_size = k;
		assert_int_equal(kiln_time(&one[k], &o), 0);
		assert_int_equal(one[k].nsizes, 1);
	}
	o.bench_size = 0;
	o.every_size = true;
	assert_int_equal(kiln_time(&all, &o), 0);
	assert_int_equal(all.nsizes, 2);
	for (size_t k = 0; k < 2; k++) {
		assert_true(all.size[k].time_us == one[k].time_us);
		assert_true(all.size[k].roofline == one[k].roofline);
		assert_true(all.size[k].weight == 1);
		assert_string_equal(all.size[k].bound, one[k].bound);
	}
	assert_true(fabs(all.time_us - sqrt(one[0].time_us * one[1].time_us)) < 1e-9 * all.time_us);
	/* the primary size (most traffic) is n = 2^28: its counters and breakdown ride along */
	int64_t n = 0;
	assert_true(kiln_env_get(&all.bench_env, "n", &n) && n == 268435456);
	assert_string_equal(all.counters_json, one[1].counters_json);
	/* roofline stays floor / time / peak over the combined numbers */
	assert_true(fabs(all.roofline - all.traffic_floor_bytes / 3352e3 / all.time_us) < 1e-9);
	assert_non_null(strstr(all.how, "modeled, not measured"));
	assert_non_null(strstr(all.how, "n=65539"));
	assert_non_null(strstr(all.how, "n=16777216 and n=268435456"));
	cJSON *sj = cJSON_Parse(all.sizes_json);
	assert_int_equal(cJSON_GetArraySize(sj), 2);
	const cJSON *s1 = cJSON_GetArrayItem(sj, 1);
	assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(s1, "time_us")) == one[1].time_us);
	assert_true(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s1, "breakdown")) == 1);
	cJSON_Delete(sj);
	char *js = kiln_timing_to_json(&all);
	assert_non_null(strstr(js, "\"per_size\""));
	assert_non_null(strstr(js, "\"how\""));
	free(js);
	kiln_timing_free(&all);
	kiln_timing_free(&one[0]);
	kiln_timing_free(&one[1]);
	kiln_plan_free(plan);
}

static void test_time__every_seed_roofline_in_0_1(void **state)
{
	(void)state;
	char **names = NULL;
	size_t n = 0;
	assert_int_equal(kiln_targets_list(&names, &n, NULL), 0);
	assert_true(n >= 9);
	for (size_t i = 0; i < n; i++) {
		kiln_target *t = NULL;
		char *src = NULL, *plan = NULL;
		size_t len = 0, plen = 0;
		assert_int_equal(kiln_target_find(&t, names[i], NULL), 0);
		assert_int_equal(kiln_file_read(&src, &len, t->seed_path, 0), 0);
		assert_int_equal(kiln_file_read(&plan, &plen, t->launch_path, 0), 0);
		kiln_timing tm = time_on(t, src, plan, 0);
		printf("# %-18s %10.2f us modeled, roofline %.3f (%s)%s\n", t->name, tm.time_us, tm.roofline, tm.bound,
		       tm.fit_raised ? " fit raised to the floor" : "");
		assert_true(tm.roofline > 0 && tm.roofline <= 1);
		assert_true(tm.bandwidth_gbs > 0);
		kiln_timing_free(&tm);
		free(src);
		free(plan);
		kiln_target_free(t);
		free(names[i]);
	}
	free(names);
}

static void test_time__refuses_kernel_wrong_on_later_launch(void **state)
{
	(void)state;
	kiln_plan *plan = NULL;
	assert_int_equal(kiln_plan_parse(&plan, scalar_json, strlen(scalar_json), lion, "test plan"), 0);
	kiln_time_options o = KILN_TIME_OPTIONS_INIT;
	o.src.target = lion;
	o.src.source = first_only_cu;
	o.src.plan = plan;
	o.src.device = dev;
	o.seed = 7;
	kiln_timing tm;
	/* it passes a plain verification (one launch per input set on a fresh module)... */
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src.target = lion;
	vo.src.source = first_only_cu;
	vo.src.plan = plan;
	vo.src.device = dev;
	vo.nseeds = 1;
	size_t one_size = 3;
	vo.sizes = &one_size;
	vo.nsizes = 1;
	kiln_verdict v;
	assert_int_equal(kiln_verify(&v, &vo), 0);
	if (!v.pass)
		printf("# %s: %s\n", v.check, v.message);
	assert_true(v.pass);
	/* ...but the timing runs check every run, so it is refused, not timed doing nothing */
	assert_int_equal(kiln_time(&tm, &o), KILN_EVERIFY);
	assert_non_null(strstr(kiln_error_last(), "not timed"));
	kiln_timing_free(&tm);
	/* bad options and an unknown GPU spec are errors, not crashes */
	o.src.source = scalar_cu;
	o.gpu = "rtx9999";
	assert_int_equal(kiln_time(&tm, &o), KILN_EINVAL);
	o.gpu = NULL;
	o.bench_size = 9;
	assert_int_equal(kiln_time(&tm, &o), KILN_EINVAL);
	kiln_plan_free(plan);
}

/* Reads a target's seed kernel and plan; fails the test when they are missing. */
static void seed_of(kiln_target **t, char **src, char **plan, const char *name)
{
	size_t len = 0;
	assert_int_equal(kiln_target_find(t, name, NULL), 0);
	assert_int_equal(kiln_file_read(src, &len, (*t)->seed_path, 0), 0);
	assert_int_equal(kiln_file_read(plan, &len, (*t)->launch_path, 0), 0);
}

/* ratio_seq's seed, plus a scratch pad written only at small sizes (20000 - 4*B*T floats):
 * correct at every size, but the pad shrinks as the problem grows, so the line through
 * the two largest verification sizes has well under half the real DRAM slope and would
 * model the kernel much faster than the same kernel without the pad. */
#define PADDED_SEQ_CU(pad) \
	"extern \"C\" __global__ void k(const float *ln, const float *lo, const unsigned char *mask, float *ratio," \
	"  float *pad, long long B, long long T)\n" \
	"{ __shared__ float ssum[256]; __shared__ int scount[256]; const long long b = blockIdx.x; const int tid = threadIdx.x;" \
	"  const long long np = " #pad " - 4 * B * T;" \
	"  for (long long i = b * 256 + tid; i < np; i += B * 256) pad[i] = 0.0f;" \
	"  const long long row = b * T; float sum = 0.0f; int count = 0;" \
	"  for (long long t = tid; t < T; t += 256) if (mask[row + t]) { sum += ln[row + t] - lo[row + t]; count++; }" \
	"  ssum[tid] = sum; scount[tid] = count; __syncthreads();" \
	"  for (int s = 128; s > 0; s >>= 1) { if (tid < s) { ssum[tid] += ssum[tid + s]; scount[tid] += scount[tid + s]; }" \
	"    __syncthreads(); }" \
	"  if (tid == 0) ratio[b] = expf(ssum[0] / (float)max(scount[0], 1)); }\n"
static const char padded_seq_cu[] = PADDED_SEQ_CU(20000);
static const char honest_seq_cu[] = PADDED_SEQ_CU(0); /* the same kernel, no pad */
static const char padded_seq_json[] =
	"{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"B\"], \"block\": [256], \"shared_bytes\": \"0\","
	" \"args\": [\"logp_new\", \"logp_old\", \"mask\", \"ratio\", \"pad\", \"B\", \"T\"]}],"
	" \"scratch\": [{\"name\": \"pad\", \"dtype\": \"f32\", \"count\": \"max(1, 20000 - 4*B*T)\"}]}";

/* ratio_seq, one warp per row; CONTEND adds a per-token atomic on one global counter */
#define WARP_SEQ_CU(contend) \
	"__device__ unsigned long long tokens;\n" \
	"extern \"C\" __global__ void k(const float *ln, const float *lo, const unsigned char *mask, float *ratio," \
	"  long long B, long long T)\n" \
	"{ const long long b = (long long)blockIdx.x * 8 + threadIdx.x / 32; const int lane = threadIdx.x & 31;" \
	"  if (b >= B) return; const long long row = b * T; float sum = 0.0f; int count = 0;" \
	"  for (long long t = lane; t < T; t += 32) if (mask[row + t]) { sum += ln[row + t] - lo[row + t]; count++; " contend " }" \
	"  for (int o = 16; o > 0; o >>= 1) { sum += __shfl_xor_sync(0xffffffffu, sum, o);" \
	"    count += __shfl_xor_sync(0xffffffffu, count, o); }" \
	"  if (lane == 0) ratio[b] = expf(sum / (float)max(count, 1)); }\n"
static const char warp_seq_cu[] = WARP_SEQ_CU("");
static const char contended_seq_cu[] = WARP_SEQ_CU("atomicAdd(&tokens, 1ull);");
static const char warp_seq_json[] =
	"{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"ceil_div(B, 8)\"], \"block\": [256], \"shared_bytes\": \"0\","
	" \"args\": [\"logp_new\", \"logp_old\", \"mask\", \"ratio\", \"B\", \"T\"]}]}";

/* Same-address atomics serialize at L2: funnelling every valid token through one global
 * counter models slower than the warp-per-row kernel without it. */
static void test_time__contended_atomic_is_slower(void **state)
{
	(void)state;
	kiln_target *t = NULL;
	assert_int_equal(kiln_target_find(&t, "ratio_seq", NULL), 0);
	kiln_timing plain = time_on(t, warp_seq_cu, warp_seq_json, 0), hot = time_on(t, contended_seq_cu, warp_seq_json, 0);
	printf("# warp per row %.3f us (%s), with one contended atomic %.3f us (atomics %.3f us)\n", plain.time_us,
	       plain.bound, hot.time_us, hot.model.launch[0].atomic_us);
	assert_true(hot.time_us > plain.time_us * 2);
	assert_true(hot.model.launch[0].atomic_us > plain.time_us);
	kiln_timing_free(&plain);
	kiln_timing_free(&hot);
	kiln_target_free(t);
}

/* A kernel whose counter fit undercounts is caught by the traffic floor (the bytes any
 * correct kernel moves at the bench size), its counters are taken conservatively, and it
 * is not a new best over the same kernel without the pad (1% tie band). */
static void test_time__undercounting_fit_is_not_a_new_best(void **state)
{
	(void)state;
	kiln_target *t = NULL;
	char *src = NULL, *plan = NULL;
	seed_of(&t, &src, &plan, "ratio_seq");
	/* the pad is far over the default scratch cap (4 x the buffers) at the small sizes:
	 * this test is about the fit, so the cap is lifted for it */
	kiln_limits lim = *kiln_limits_get(), wide = lim;
	wide.scratch_factor = 1000;
	kiln_limits_set(&wide);
	kiln_timing seed = time_on(t, honest_seq_cu, padded_seq_json, 0), pad = time_on(t, padded_seq_cu, padded_seq_json, 0);
	kiln_limits_set(&lim);
	cJSON *j = cJSON_Parse(pad.counters_json);
	const cJSON *fit = cJSON_GetObjectItemCaseSensitive(j, "fit");
	double fitted = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(fit, "fit_dram_bytes"));
	printf("# seed %.3f us, padded %.3f us (fit %.4g DRAM bytes, floor %.4g: %s)\n", seed.time_us, pad.time_us, fitted,
	       pad.traffic_floor_bytes, pad.fit_note);
	assert_false(seed.fit_raised);
	assert_true(!*seed.fit_note);
	assert_true(pad.fit_raised);
	assert_true(fitted < 0.6 * pad.traffic_floor_bytes); /* what it would have been timed on */
	assert_non_null(strstr(pad.fit_note, "undercounts"));
	assert_true(pad.time_us >= seed.time_us * 0.99);
	assert_true(pad.roofline <= 1);
	/* the evidence is in the record: the fit and the breakdown ride in the counters */
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fit, "raised_to_floor")));
	const cJSON *b0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "breakdown"), 0);
	assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b0, "bound")));
	assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(b0, "occupancy")));
	assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(b0, "waves")));
	cJSON_Delete(j);
	kiln_timing_free(&seed);
	kiln_timing_free(&pad);
	free(src);
	free(plan);
	kiln_target_free(t);
}

/* Masked targets: the seed skips masked loads; at B=512, T=8192 it moves less than the
 * declared 9*B*T + 4*B bytes, so a fast enough skipping kernel would pass roofline 1 on the
 * declared traffic. The roofline (and the physical-limit check that reads it) is over the
 * floor from the drawn mask: valid tokens x their bytes + mask + outputs. */
static void test_time__masked_floor_keeps_roofline_under_1(void **state)
{
	(void)state;
	kiln_target *t = NULL;
	char *src = NULL, *plan = NULL;
	seed_of(&t, &src, &plan, "ratio_seq");
	kiln_timing tm = time_on(t, src, plan, 1);
	double declared_roofline = tm.roofline * tm.traffic_bytes / tm.traffic_floor_bytes;
	printf("# ratio_seq B=512 T=8192: %.3f us, floor %.4g of declared %.4g bytes, roofline %.3f (declared: %.3f)\n",
	       tm.time_us, tm.traffic_floor_bytes, tm.traffic_bytes, tm.roofline, declared_roofline);
	assert_true(tm.traffic_bytes == 9.0 * 512 * 8192 + 4 * 512);
	assert_true(tm.traffic_floor_bytes < 0.85 * tm.traffic_bytes && tm.traffic_floor_bytes > 0.5 * tm.traffic_bytes);
	assert_true(tm.roofline > 0 && tm.roofline <= 1);
	/* roofline and bandwidth are over the floor, not the declared traffic */
	assert_true(fabs(tm.roofline - tm.traffic_floor_bytes / 3352e3 / tm.time_us) < 1e-9);
	assert_true(declared_roofline > tm.roofline * 1.15);
	char *js = kiln_timing_to_json(&tm);
	assert_non_null(strstr(js, "\"traffic_floor_bytes\""));
	assert_non_null(strstr(js, "masked positions included"));
	free(js);
	kiln_timing_free(&tm);
	free(src);
	free(plan);
	kiln_target_free(t);
}

static void test_time__other_gpu_spec(void **state)
{
	(void)state;
	kiln_plan *plan = NULL;
	kiln_time_options o = lion_scalar(&plan);
	kiln_timing h100, a100;
	assert_int_equal(kiln_time(&h100, &o), 0);
	o.gpu = "a100_sxm";
	assert_int_equal(kiln_time(&a100, &o), 0);
	/* 3.35 vs 2.04 TB/s on a DRAM-bound kernel */
	assert_true(a100.time_us > 1.3 * h100.time_us);
	assert_non_null(strstr(a100.device, "A100"));
	kiln_timing_free(&h100);
	kiln_timing_free(&a100);
	kiln_plan_free(plan);
}

/* The cuda backend and measured timing against tests/gpu_fake_libcuda.c (no GPU needed):
 * properties, memory with poison tails, the PTX fallback for parameter sizes, the timing
 * loop on CUDA events, and a fault leaving the context unusable. Last: the fake driver
 * stays loaded in this process. */
static void test_time__cuda_backend_on_a_fake_driver(void **state)
{
	(void)state;
	const char *root = getenv("KILN_BUILD_ROOT");
	char lib[1024];
	snprintf(lib, sizeof(lib), "%s/tests/libcuda.so.1", root ? root : ".");
	if (!root || !kiln_path_exists(lib))
		skip();
	setenv("KILN_LIBCUDA", lib, 1);
	setenv("KILN_NO_CUPTI", "1", 1);
	char why[240];
	assert_true(kiln_device_cuda_probe(why, sizeof(why))); /* in a child: this process stays clean */
	assert_non_null(strstr(why, "Fake H100"));
	kiln_device *cd = NULL;
	assert_int_equal(kiln_device_open(&cd, "cuda", NULL), 0);
	const kiln_device_info *in = kiln_device_info_get(cd);
	assert_int_equal(in->kind, KILN_DEVICE_CUDA);
	assert_false(in->modeled);
	assert_string_equal(in->arch, "sm_90");
	assert_int_equal(in->sm_count, 132);
	assert_true(in->peak_bw_gbs > 3352 && in->peak_bw_gbs < 3353); /* 2 x 2619 MHz x 640 B */
	uint64_t a = 0;
	uint8_t r[7];
	const uint8_t want[7] = {0xef, 0xbe, 0xad, 0xde, 0xef, 0xbe, 0xad};
	assert_int_equal(kiln_device_alloc(cd, &a, 7), 0);
	assert_int_equal(kiln_device_poison(cd, a, 7, 0xdeadbeefu), 0);
	assert_int_equal(kiln_device_read(cd, r, a, 7), 0);
	assert_memory_equal(r, want, 7);
	assert_int_equal(kiln_device_mem_free(cd, a), 0);

	/* measured timing: the fake's events say 10 us per plan, every rep */
	kiln_target *t = NULL;
	char *src = NULL, *pj = NULL;
	size_t len;
	kiln_plan *plan = NULL;
	assert_int_equal(kiln_target_find(&t, "ratio_token", NULL), 0);
	assert_int_equal(kiln_file_read(&src, &len, t->seed_path, 0), 0);
	assert_int_equal(kiln_file_read(&pj, &len, t->launch_path, 0), 0);
	assert_int_equal(kiln_plan_parse(&plan, pj, strlen(pj), t, "seed plan"), 0);
	kiln_time_options o = KILN_TIME_OPTIONS_INIT;
	o.src.target = t;
	o.src.source = src;
	o.src.plan = plan;
	o.src.device = cd;
	o.seed = 1;
	kiln_timing tm;
	setenv("FAKE_CUDA_RATIO_TOKEN", "1", 1); /* the fake computes the target on the host */
	if (kiln_time(&tm, &o))
		fail_msg("kiln_time on the fake driver: %s", kiln_error_last());
	assert_false(tm.modeled);
	assert_false(tm.cupti);
	assert_int_equal(tm.reps, 10); /* identical samples: the median's error is 0 after the first batch */
	assert_true(tm.time_us > 9.99 && tm.time_us < 10.01 && tm.spread == 0);
	/* ratio_token is masked: the roofline is over the floor from the drawn mask */
	assert_true(tm.traffic_floor_bytes > 0 && tm.traffic_floor_bytes < tm.traffic_bytes);
	assert_true(tm.roofline > 0 && fabs(tm.roofline - tm.traffic_floor_bytes / 10.0 / 1e3 / in->peak_bw_gbs) < 1e-3);
	char *j = kiln_timing_to_json(&tm);
	assert_non_null(strstr(j, "\"label\":\"measured\""));
	assert_non_null(strstr(j, "\"source\":\"cuda-events\""));
	assert_non_null(strstr(j, "Fake H100"));
	free(j);
	kiln_timing_free(&tm);
	/* every bench size measured in turn (B=256,T=4096 and B=512,T=8192), each with its own
	 * reps and output check; the time is their geometric mean and says how it was taken */
	o.every_size = true;
	if (kiln_time(&tm, &o))
		fail_msg("kiln_time every size on the fake driver: %s", kiln_error_last());
	assert_int_equal(tm.nsizes, 2);
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(tm.size[k].reps, 10);
		assert_true(tm.size[k].time_us > 9.99 && tm.size[k].time_us < 10.01);
		assert_true(tm.size[k].roofline > 0 && tm.size[k].traffic_floor_bytes < tm.size[k].traffic_bytes);
	}
	assert_true(tm.size[1].traffic_bytes == 13.0 * 512 * 8192);
	assert_true(tm.time_us > 9.99 && tm.time_us < 10.01);
	assert_non_null(strstr(tm.how, "measured on Fake H100"));
	assert_non_null(strstr(tm.how, "B=256,T=4096 (median of 10 reps), B=512,T=8192 (median of 10 reps)"));
	if (!strstr(tm.sizes_json, "\"reps\":10,") || !strstr(tm.sizes_json, "\"samples\":[9.99"))
		fail_msg("sizes_json: %s", tm.sizes_json);
	kiln_timing_free(&tm);
	o.every_size = false;
	/* a kernel that stops working once timed: what the timed module computes at the bench
	 * size after its repetitions is judged against the reference, and refused */
	setenv("FAKE_CUDA_STOP_AFTER", "1", 1);
	assert_int_equal(kiln_time(&tm, &o), KILN_EVERIFY);
	assert_non_null(strstr(kiln_error_last(), "the timed module after its repetitions, at the bench size"));
	kiln_timing_free(&tm);
	unsetenv("FAKE_CUDA_STOP_AFTER");
	unsetenv("FAKE_CUDA_RATIO_TOKEN");

	/* verification on the device: the fake now runs no kernel, so the outputs stay poisoned */
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src.target = t;
	vo.src.source = src;
	vo.src.plan = plan;
	vo.src.device = cd;
	kiln_verdict v;
	assert_int_equal(kiln_verify(&v, &vo), 0);
	assert_false(v.pass);
	/* a fault: reported as bounds, then the context refuses work with a clear line */
	setenv("FAKE_CUDA_FAULT", "1", 1);
	assert_int_equal(kiln_verify(&v, &vo), 0);
	unsetenv("FAKE_CUDA_FAULT");
	assert_false(v.pass);
	assert_string_equal(v.check, "bounds");
	assert_int_equal(kiln_device_alloc(cd, &a, 64), KILN_EDEVICE);
	assert_non_null(strstr(kiln_error_last(), "fresh process"));
	kiln_plan_free(plan);
	free(src);
	free(pj);
	kiln_target_free(t);
	kiln_device_free(cd);
	unsetenv("KILN_LIBCUDA");
	unsetenv("KILN_NO_CUPTI");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_time__float4_scalar_strided_order),
		cmocka_unit_test(test_time__small_grid_is_slower),
		cmocka_unit_test(test_time__bank_conflicts_cost),
		cmocka_unit_test(test_time__two_launches_cost_more_than_fused),
		cmocka_unit_test(test_time__ranked_time_kernels_and_gaps),
		cmocka_unit_test(test_time__more_bytes_more_time),
		cmocka_unit_test(test_time__contended_atomic_is_slower),
		cmocka_unit_test(test_time__deterministic),
		cmocka_unit_test(test_time__extrapolates_to_bench_size),
		cmocka_unit_test(test_time__objective_is_weighted_geomean),
		cmocka_unit_test(test_time__every_size_models_each_bench_size),
		cmocka_unit_test(test_time__every_seed_roofline_in_0_1),
		cmocka_unit_test(test_time__refuses_kernel_wrong_on_later_launch),
		cmocka_unit_test(test_time__other_gpu_spec),
		cmocka_unit_test(test_time__undercounting_fit_is_not_a_new_best),
		cmocka_unit_test(test_time__masked_floor_keeps_roofline_under_1),
		cmocka_unit_test(test_time__cuda_backend_on_a_fake_driver),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
