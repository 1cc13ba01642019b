/* Unit tests for profile/: the device front end, the plan runner's argument checks and
 * every verification check, on a tiny synthetic target (y = a*x over f32) written into a
 * temp folder with a float64 reference defined here. Each broken kernel must fail with
 * its named check; the correct one must pass; seeds replay to the same verdict. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "profile/profile_int.h"

static char basedir[256], tmpdir[320];

static const char target_fmt[] =
	"{\"name\": \"%s\", \"family\": \"test\", \"summary\": \"y = a*x\", \"math\": \"y = a*x\",\n"
	" \"symbols\": {\"n\": {\"verify\": [1, 7, 1000], \"bench\": [1000000]}},\n"
	" \"buffers\": [\n"
	"  {\"name\": \"x\", \"dtype\": \"f32\", \"shape\": [\"n\"], \"role\": \"in\", \"init\": \"normal(0,1)\"},\n"
	"  {\"name\": \"y\", \"dtype\": \"%s\", \"shape\": [\"n\"], \"role\": \"out\"}],\n"
	" \"scalars\": [{\"name\": \"a\", \"dtype\": \"f32\", \"value\": 2.5}],\n"
	" \"tolerance\": {\"y\": %s},\n"
	" \"traffic_bytes\": \"8*n\", \"reference\": \"adamw\"}\n";

static const char plan_json[] =
	"{\"launches\": [{\"kernel\": \"axpy\", \"grid\": [\"ceil_div(n, 128)\"], \"block\": [128],"
	" \"shared_bytes\": \"0\", \"args\": [\"x\", \"y\", \"a\", \"n\"]}], \"scratch\": [], \"nvrtc_flags\": []}";

static const char good_cu[] =
	"extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
	"  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
	"  if (i < n) y[i] = a * x[i];\n}\n";

static bool zero_ref_mode;
static const char *target_dir; /* NULL: the f32 toy */
static size_t test_threads;    /* kiln_verify_options.threads */
static const char *test_regime;

static kiln_err toy_ref(kiln_ref_io *io)
{
	double *x = kiln_ref_buf(io, "x"), *y = kiln_ref_buf(io, "y");
	double a = kiln_ref_scalar(io, "a");
	size_t n = kiln_ref_count(io, "y");
	if (!x || !y)
		return kiln_error_set(KILN_EINVAL, "toy: missing buffers");
	for (size_t i = 0; i < n; i++)
		y[i] = zero_ref_mode ? 1e-9 * x[i] : a * x[i];
	return 0;
}

static void write_file(const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(basedir, sizeof(basedir), "/tmp/kiln_test_profile_XXXXXX");
	if (!mkdtemp(basedir))
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "%s/toyaxpy", basedir);
	if (mkdir(tmpdir, 0700))
		return -1;
	char *tj0 = kiln_asprintf(target_fmt, "toyaxpy", "f32", "{\"rtol\": 1e-6, \"atol\": 1e-6}");
	write_file("target.json", tj0);
	free(tj0);
	write_file("launch.json", plan_json);
	write_file("seed.cu", good_cu);
	/* a bf16 twin judged by the ULP rule */
	snprintf(tmpdir, sizeof(tmpdir), "%s/toybf16", basedir);
	if (mkdir(tmpdir, 0700))
		return -1;
	char *tj = kiln_asprintf(target_fmt, "toybf16", "bf16", "{\"rule\": \"ulp\", \"ulps\": 2}");
	write_file("target.json", tj);
	free(tj);
	write_file("launch.json", plan_json);
	write_file("seed.cu", good_cu);
	snprintf(tmpdir, sizeof(tmpdir), "%s/toyaxpy", basedir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	const char *names[] = {"target.json", "launch.json", "seed.cu"};
	char path[512];
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/toybf16/%s", basedir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/toybf16", basedir);
	rmdir(path);
	rmdir(basedir);
	return 0;
}

/* Verifies src with plan text (NULL: the default) on the toy target. */
static kiln_err verify_src(kiln_verdict *v, const char *src, const char *plan_text,
			   const uint64_t *seeds, size_t nseeds)
{
	kiln_target *t = NULL;
	kiln_plan *p = NULL;
	kiln_device *dev = NULL;
	kiln_device_options dopt = {0};
	dopt.instruction_budget = 2000000;
	if (kiln_target_load(&t, target_dir ? target_dir : tmpdir))
		fail_msg("toy target: %s", kiln_error_last());
	t->ref_fn = toy_ref;
	const char *pt = plan_text ? plan_text : plan_json;
	assert_int_equal(kiln_plan_parse(&p, pt, strlen(pt), t, "test plan"), 0);
	assert_int_equal(kiln_device_open(&dev, "emu", &dopt), 0);
	kiln_verify_options o = KILN_VERIFY_OPTIONS_INIT;
	o.src.target = t;
	o.src.source = src;
	o.src.plan = p;
	o.src.device = dev;
	o.nseeds = 2;
	o.seeds = seeds;
	o.nseeds_given = nseeds;
	o.threads = test_threads;
	o.regime = test_regime;
	kiln_err e = kiln_verify(v, &o);
	if (e)
		print_message("verify: %s\n", kiln_error_last());
	kiln_device_free(dev);
	kiln_plan_free(p);
	kiln_target_free(t);
	return e;
}

static void expect_fail(const char *src, const char *plan, const char *check, const char *msg_part)
{
	kiln_verdict v;
	assert_int_equal(verify_src(&v, src, plan, NULL, 0), 0);
	if (v.pass || strcmp(v.check, check) != 0)
		fail_msg("expected check %s, got pass=%d check=%s: %s", check, v.pass, v.check, v.message);
	if (msg_part && !strstr(v.message, msg_part))
		fail_msg("message lacks \"%s\": %s", msg_part, v.message);
}

static void test_profile__device_open(void **state)
{
	(void)state;
	kiln_device *dev = NULL;
	assert_int_equal(kiln_device_open(&dev, "cuda", NULL), KILN_EUNSUPPORTED);
	assert_null(dev);
	assert_int_equal(kiln_device_open(&dev, "tpu", NULL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "tpu"));
	assert_int_equal(kiln_device_open(&dev, "auto", NULL), 0);
	const kiln_device_info *info = kiln_device_info_get(dev);
	assert_int_equal(info->kind, KILN_DEVICE_EMU);
	assert_true(info->modeled);
	assert_true(info->sm_count > 0);
	uint64_t a = 0;
	uint32_t w[4] = {1, 2, 3, 4}, r[4] = {0};
	assert_int_equal(kiln_device_alloc(dev, &a, sizeof(w)), 0);
	assert_int_equal(kiln_device_write(dev, a, w, sizeof(w)), 0);
	assert_int_equal(kiln_device_read(dev, r, a, sizeof(r)), 0);
	assert_memory_equal(w, r, sizeof(w));
	assert_int_equal(kiln_device_poison(dev, a, sizeof(w), 0xdeadbeefu), 0);
	assert_int_equal(kiln_device_read(dev, r, a, sizeof(r)), 0);
	assert_int_equal(r[3], 0xdeadbeefu);
	assert_int_equal(kiln_device_mem_free(dev, a), 0);
	kiln_device_free(dev);
	kiln_device_free(NULL);
}

static void test_profile__pass_and_replay(void **state)
{
	(void)state;
	kiln_verdict v, v2;
	assert_int_equal(verify_src(&v, good_cu, NULL, NULL, 0), 0);
	if (!v.pass)
		fail_msg("good kernel failed [%s]: %s", v.check, v.message);
	assert_int_equal(v.nseeds, 2);
	assert_int_equal(v.runs, 6); /* 3 sizes x 2 seeds */
	const char *want[] = {"compile", "launch", "bounds", "initcheck", "race", "written",
			      "inputs-unchanged", "values", "nontrivial"};
	assert_int_equal(v.nchecks_run, 9);
	for (size_t i = 0; i < 9; i++)
		assert_string_equal(v.checks_run[i], want[i]);
	assert_true(v.counters.thread_instructions > 0);
	/* the verdict's JSON counts the instructions of every run, not the last one */
	assert_true(v.thread_instructions > 2 * v.counters.thread_instructions);
	char *vj = kiln_verdict_to_json(&v);
	cJSON *vo = cJSON_Parse(vj);
	assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(vo, "thread_instructions")) ==
		    (double)v.thread_instructions);
	cJSON_Delete(vo);
	free(vj);
	/* replay: a wrong kernel fails at the same place with the same seeds */
	const char *off = "extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
			  "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
			  "  if (i < n) y[i] = a * x[i] * (i == 500 ? 1.001f : 1.0f);\n}\n";
	assert_int_equal(verify_src(&v, off, NULL, NULL, 0), 0);
	assert_false(v.pass);
	assert_string_equal(v.check, "values");
	assert_int_equal(v.worst_index, 500);
	assert_string_equal(v.worst_buffer, "y");
	assert_int_equal(v.mismatches, 1);
	assert_int_equal(v.nfirst, 1);
	assert_int_equal(v.first[0].index, 500);
	assert_true(v.have_input);
	assert_int_equal(verify_src(&v2, off, NULL, v.seeds, v.nseeds), 0);
	assert_int_equal(v2.input_seed, v.input_seed);
	assert_true(v2.worst_abs == v.worst_abs);
	char *js = kiln_verdict_to_json(&v);
	assert_non_null(js);
	cJSON *j = cJSON_Parse(js);
	assert_non_null(j);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "pass")));
	assert_string_equal(cJSON_GetObjectItem(j, "check")->valuestring, "values");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "seeds")), 2);
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "worst"), "index")->valueint, 500);
	cJSON_Delete(j);
	free(js);
}

static void test_profile__written(void **state)
{
	(void)state;
	expect_fail("extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
		    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
		    "  if (i < n - 1) y[i] = a * x[i];\n}\n", NULL, "written", "never written");
}

static void test_profile__bounds(void **state)
{
	(void)state;
	expect_fail("extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
		    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
		    "  if (i <= n) y[i] = a * x[i < n ? i : 0];\n}\n", NULL, "bounds", "launch 0 (axpy)");
}

static void test_profile__inputs_unchanged(void **state)
{
	(void)state;
	expect_fail("extern \"C\" __global__ void axpy(float *x, float *y, float a, long long n) {\n"
		    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
		    "  if (i < n) { y[i] = a * x[i]; x[i] = 0.0f; }\n}\n", NULL, "inputs-unchanged", "input 'x'");
}

static void test_profile__values_nan(void **state)
{
	(void)state;
	expect_fail("extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
		    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
		    "  if (i < n) y[i] = (i == 3) ? __int_as_float(0x7fc00000) : a * x[i];\n}\n",
		    NULL, "values", "first in 'y'");
}

static void test_profile__race_and_initcheck(void **state)
{
	(void)state;
	/* phase 2 reads a neighbour warp's slot without a barrier after writing its own */
	expect_fail("extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
		    "  __shared__ float s[128];\n"
		    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
		    "  s[threadIdx.x] = 0.0f;\n  __syncthreads();\n"
		    "  s[threadIdx.x] = i < n ? x[i] : 0.0f;\n"
		    "  float v = s[(threadIdx.x + 32) % 128];\n"
		    "  if (i < n) y[i] = a * x[i] + 0.0f * v;\n}\n", NULL, "race", NULL);
	/* reads a shared slot nobody wrote */
	expect_fail("extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
		    "  __shared__ float s[256];\n"
		    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
		    "  s[threadIdx.x] = i < n ? x[i] : 0.0f;\n  __syncthreads();\n"
		    "  float v = s[threadIdx.x + 128];\n"
		    "  if (i < n) y[i] = a * x[i] + v * 0.0f;\n}\n", NULL, "initcheck", NULL);
}

static void test_profile__budget_and_launch(void **state)
{
	(void)state;
	expect_fail("extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
		    "  volatile int k = 0;\n  while (k == 0) { }\n"
		    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
		    "  if (i < n) y[i] = a * x[i];\n}\n", NULL, "launch", "budget");
	/* the kernel takes a double where the plan passes an f32 scalar */
	expect_fail("extern \"C\" __global__ void axpy(const float *x, float *y, double a, long long n) {\n"
		    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
		    "  if (i < n) y[i] = a * x[i];\n}\n", NULL, "launch",
		    "launch 0 (axpy): argument 2 'a' is 4 bytes but the kernel's param 2 is 8 bytes");
	/* a plan naming a kernel the module lacks */
	expect_fail(good_cu, "{\"launches\": [{\"kernel\": \"nope\", \"grid\": [1], \"block\": [32],"
		    " \"shared_bytes\": \"0\", \"args\": [\"x\"]}]}", "launch", "no kernel named 'nope'");
	expect_fail("extern \"C\" __global__ void axpy(const float *x) { syntax error }\n", NULL, "compile", NULL);
}

static void test_profile__multi_launch_scratch(void **state)
{
	(void)state;
	/* two passes through a scratch buffer: t = x (poisoned first), then y = a*t */
	const char *src = "extern \"C\" __global__ void copy(const float *x, float *t, long long n) {\n"
			  "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
			  "  if (i < n) t[i] = x[i];\n}\n"
			  "extern \"C\" __global__ void scale(const float *t, float *y, float a, long long n) {\n"
			  "  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;"
			  " i += (long long)gridDim.x * blockDim.x) y[i] = a * t[i];\n}\n";
	const char *plan = "{\"launches\": ["
			   "{\"kernel\": \"copy\", \"grid\": [\"ceil_div(n, 64)\"], \"block\": [64], \"shared_bytes\": \"0\", \"args\": [\"x\", \"t\", \"n\"]},"
			   "{\"kernel\": \"scale\", \"grid\": [\"min(sm_count, 3)\"], \"block\": [32], \"shared_bytes\": \"0\", \"args\": [\"t\", \"y\", \"a\", \"n\"]}],"
			   " \"scratch\": [{\"name\": \"t\", \"dtype\": \"f32\", \"count\": \"n\"}]}";
	kiln_verdict v;
	assert_int_equal(verify_src(&v, src, plan, NULL, 0), 0);
	if (!v.pass)
		fail_msg("two-pass kernel failed [%s]: %s", v.check, v.message);
	assert_int_equal(v.counters.launches, 2);
}

/* A kernel that reads the clocks passes with a warning; device printf lands in the verdict. */
static void test_profile__clock_warning_and_printf(void **state)
{
	(void)state;
	kiln_verdict v;
	assert_int_equal(verify_src(&v, "extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
				    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
				    "  long long t = clock64();\n"
				    "  if (i == 0) printf(\"n=%lld\\n\", n);\n"
				    "  if (i < n) y[i] = a * x[i] + 0.0f * (float)(t & 1);\n}\n", NULL, NULL, 0), 0);
	if (!v.pass)
		fail_msg("clock kernel failed [%s]: %s", v.check, v.message);
	assert_non_null(strstr(v.warnings, "%clock"));
	assert_non_null(strstr(v.device_printf, "n="));
	char *js = kiln_verdict_to_json(&v);
	assert_non_null(js);
	assert_non_null(strstr(js, "\"warnings\":\"reads %clock"));
	free(js);
}

static void test_profile__nontrivial(void **state)
{
	(void)state;
	zero_ref_mode = true;
	kiln_verdict v;
	/* every reference output is ~1e-9 * x: zeros would pass the 1e-6 atol */
	assert_int_equal(verify_src(&v, "extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
				    "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
				    "  if (i < n) y[i] = 0.0f;\n}\n", NULL, NULL, 0), 0);
	zero_ref_mode = false;
	assert_false(v.pass);
	assert_string_equal(v.check, "nontrivial");
	assert_true(v.target_weak);
}

static void test_profile__ulp_rule(void **state)
{
	(void)state;
	char dir[400];
	snprintf(dir, sizeof(dir), "%s/toybf16", basedir);
	target_dir = dir;
	/* round to nearest, then move DELTA bf16 steps away from zero */
	const char *fmt = "#include <cuda_bf16.h>\n"
			  "extern \"C\" __global__ void axpy(const float *x, __nv_bfloat16 *y, float a, long long n) {\n"
			  "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
			  "  if (i < n) { __nv_bfloat16 r = __float2bfloat16_rn(a * x[i]);\n"
			  "    unsigned short b = __bfloat16_as_ushort(r); if ((b & 0x7fff) != 0) b += %d;\n"
			  "    y[i] = __ushort_as_bfloat16(b); }\n}\n";
	kiln_verdict v;
	/* ulps = 2; the kernel's float product may round to a bf16 one step from the
	 * reference's rounding, so +1 is within 2 and +4 is at least 3 steps off */
	const int deltas[] = {0, 1, 4};
	for (size_t k = 0; k < 3; k++) {
		int delta = deltas[k];
		char *src = kiln_asprintf(fmt, delta);
		assert_int_equal(verify_src(&v, src, NULL, NULL, 0), 0);
		free(src);
		if (delta < 4 && !v.pass)
			fail_msg("%d ulp failed [%s]: %s", delta, v.check, v.message);
		if (delta == 4) {
			assert_false(v.pass);
			assert_string_equal(v.check, "values");
		}
	}
	target_dir = NULL;
}

/* One output element judged by kiln_verify_outputs: the toy target's y (dtype of the
 * target at dir) with reference ref and slack sl, the kernel wrote got. */
static bool judge_one(const char *dir, kiln_tol_rule rule, double ref, double sl, double got)
{
	kiln_target *t = NULL;
	if (kiln_target_load(&t, dir))
		fail_msg("toy target: %s", kiln_error_last());
	((kiln_tolerance *)kiln_target_tolerance(t, "y"))->rule = rule;
	kiln_hostbuf bufs[2];
	uint8_t xb[8] = {0}, yb[8] = {0}, gb[8] = {0};
	memset(bufs, 0, sizeof(bufs));
	for (size_t b = 0; b < 2; b++) {
		bufs[b].spec = &t->buffers[b];
		bufs[b].count = 1;
		bufs[b].bytes = kiln_dtype_size(t->buffers[b].dtype);
		bufs[b].data = b ? yb : xb;
	}
	kiln_inputs in;
	memset(&in, 0, sizeof(in));
	in.bufs = bufs;
	in.n = 2;
	double x = 0, xs = 0, *values[2] = {&x, &ref}, *slack[2] = {&xs, &sl};
	size_t counts[2] = {1, 1};
	kiln_refdata rd = {values, slack, counts, 2};
	kiln_dtype_store(t->buffers[1].dtype, gb, 0, got);
	uint8_t *gots[2] = {xb, gb};
	kiln_verdict v;
	assert_int_equal(kiln_verify_outputs(&v, t, &in, &rd, gots, "test"), 0);
	kiln_target_free(t);
	return v.pass;
}

/* Rule ulp counts representable steps (toybf16: ulps = 2), not multiples of the step
 * above the reference: below a power of two the steps are half as large, and +0/-0 are
 * one point. */
static void test_profile__ulp_counts_steps(void **state)
{
	(void)state;
	char bf[400];
	snprintf(bf, sizeof(bf), "%s/toybf16", basedir);
	/* from 1.0 down, a step is 2^-8: two steps pass, three fail (3 * 2^-8 is less than
	 * two of the steps above 1.0, which a size-based rule let through) */
	assert_true(judge_one(bf, KILN_TOL_ULP, 1.0, 0, 1.0 - 2 * 0x1p-8));
	assert_false(judge_one(bf, KILN_TOL_ULP, 1.0, 0, 1.0 - 3 * 0x1p-8));
	/* from the top of the binade below 1.0, up across it: 1 + 2^-7 is two steps */
	assert_true(judge_one(bf, KILN_TOL_ULP, 1.0 - 0x1p-8, 0, 1.0 + 0x1p-7));
	assert_false(judge_one(bf, KILN_TOL_ULP, 1.0 - 0x1p-8, 0, 1.0 + 2 * 0x1p-7));
	/* through zero: the smallest subnormal to its negative is two steps */
	assert_true(judge_one(bf, KILN_TOL_ULP, 0x1p-133, 0, -0x1p-133));
	assert_false(judge_one(bf, KILN_TOL_ULP, 0x1p-133, 0, -0x1p-132));
	/* the same steps on the other side of zero */
	assert_true(judge_one(bf, KILN_TOL_ULP, -1.0, 0, -1.0 + 2 * 0x1p-8));
	assert_false(judge_one(bf, KILN_TOL_ULP, -1.0, 0, -1.0 + 3 * 0x1p-8));
}

/* f16/bf16 outputs under rule exact: equal to the nearest-even rounding of the reference,
 * one ulp only through the slack; an f32 reference past FLT_MAX is +-Inf. */
static void test_profile__half_exact_and_overflow(void **state)
{
	(void)state;
	char bf[400];
	snprintf(bf, sizeof(bf), "%s/toybf16", basedir);
	/* 257 is the bf16 midpoint of 256 and 258: nearest even is 256; half-away gives 258 */
	assert_true(judge_one(bf, KILN_TOL_EXACT, 257.0, 0, 256.0));
	assert_false(judge_one(bf, KILN_TOL_EXACT, 257.0, 0, 258.0));
	/* 1 + 3*2^-9 rounds up to 1 + 2^-7; truncation gives 1 */
	assert_true(judge_one(bf, KILN_TOL_EXACT, 1.0 + 3 * 0x1p-9, 0, 1.0 + 0x1p-7));
	assert_false(judge_one(bf, KILN_TOL_EXACT, 1.0 + 3 * 0x1p-9, 0, 1.0));
	/* a slack of one ulp (near a midpoint) admits either neighbour, not two ulps */
	assert_true(judge_one(bf, KILN_TOL_EXACT, 259.0, 2.0, 258.0));
	assert_true(judge_one(bf, KILN_TOL_EXACT, 259.0, 2.0, 260.0));
	assert_false(judge_one(bf, KILN_TOL_EXACT, 259.0, 2.0, 262.0));
	/* the explicit ulp rule stays looser */
	assert_true(judge_one(bf, KILN_TOL_ULP, 257.0, 0, 258.0));
	/* f32: 1e39 overflows to +Inf, which is the answer; FLT_MAX is not */
	assert_true(judge_one(tmpdir, KILN_TOL_PLAIN, 1e39, 0, INFINITY));
	assert_true(judge_one(tmpdir, KILN_TOL_PLAIN, -1e39, 0, -INFINITY));
	assert_false(judge_one(tmpdir, KILN_TOL_PLAIN, 1e39, 0, 3.4028234663852886e38));
	assert_false(judge_one(tmpdir, KILN_TOL_PLAIN, 1e39, 0, -INFINITY));
	/* a finite reference whose band stays below FLT_MAX: Inf fails; one whose band
	 * reaches past it: Inf passes */
	assert_false(judge_one(tmpdir, KILN_TOL_PLAIN, 3.0e38, 0, INFINITY));
	assert_true(judge_one(tmpdir, KILN_TOL_PLAIN, 3.4028234e38, 1e33, INFINITY));
	/* bf16 overflow too: 3.4e38 is past bf16's largest finite value */
	assert_true(judge_one(bf, KILN_TOL_EXACT, 3.4e38, 0, INFINITY));
}

/* A toy with a regime that changes the scalar: a kernel that hard-codes a = 2.5 fails
 * there, the verdict names the regime, --regime replays it; threads give the verdict one
 * thread gives; a grid capped by sm_count without a stride loop fails at the
 * cap-breaking size. */
static void test_profile__regimes_threads_caps(void **state)
{
	(void)state;
	char dir[300], path[512];
	snprintf(dir, sizeof(dir), "%.250s/toyreg", basedir);
	assert_int_equal(mkdir(dir, 0700), 0);
	char *tj = kiln_asprintf(target_fmt, "toyreg", "f32", "{\"rtol\": 1e-6, \"atol\": 1e-6}");
	char *at = strstr(tj, " \"traffic_bytes\"");
	assert_non_null(at);
	char *tj2 = kiln_asprintf("%.*s \"regimes\": {\"a5\": {\"note\": \"another a\", \"scalars\": {\"a\": 5}}},\n%s",
				  (int)(at - tj), tj, at);
	snprintf(tmpdir, sizeof(tmpdir), "%s", dir);
	write_file("target.json", tj2);
	write_file("launch.json", plan_json);
	write_file("seed.cu", good_cu);
	free(tj);
	free(tj2);
	target_dir = dir;
	static const char hard[] = "extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
				   "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
				   "  if (i < n) y[i] = 2.5f * x[i];\n}\n";
	kiln_verdict v, v2;
	assert_int_equal(verify_src(&v, good_cu, NULL, NULL, 0), 0);
	if (!v.pass)
		fail_msg("good kernel failed on the regime toy [%s]: %s", v.check, v.message);
	assert_int_equal(verify_src(&v, hard, NULL, NULL, 0), 0);
	assert_false(v.pass);
	assert_string_equal(v.check, "values");
	assert_string_equal(v.input_regime, "a5");
	assert_non_null(strstr(v.message, "regime a5"));
	char *js = kiln_verdict_to_json(&v);
	assert_non_null(strstr(js, "\"regime\":\"a5\""));
	free(js);
	test_regime = "a5"; /* replay: the first set already fails */
	assert_int_equal(verify_src(&v2, hard, NULL, v.seeds, 1), 0);
	assert_false(v2.pass);
	assert_string_equal(v2.input_regime, "a5");
	test_regime = "default";
	assert_int_equal(verify_src(&v2, hard, NULL, v.seeds, 1), 0);
	assert_true(v2.pass);
	test_regime = "nope";
	assert_int_equal(verify_src(&v2, hard, NULL, v.seeds, 1), KILN_EINVAL);
	test_regime = NULL;
	/* threads: the first failing set in plan order decides, however many threads */
	static const char off[] = "extern \"C\" __global__ void axpy(const float *x, float *y, float a, long long n) {\n"
				  "  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
				  "  if (i < n) y[i] = a * x[i] * (i >= 500 && n > 7 ? 1.001f : 1.0f);\n}\n";
	test_threads = 1;
	assert_int_equal(verify_src(&v, off, NULL, NULL, 0), 0);
	for (size_t th = 2; th <= 4; th += 2) {
		test_threads = th;
		assert_int_equal(verify_src(&v2, off, NULL, v.seeds, v.nseeds), 0);
		assert_false(v2.pass);
		assert_string_equal(v2.check, v.check);
		assert_string_equal(v2.message, v.message);
		assert_string_equal(v2.input_kind, v.input_kind);
		assert_int_equal(v2.input_seed, v.input_seed);
		assert_int_equal(v2.mismatches, v.mismatches);
	}
	/* a grid capped by sm_count with no stride loop */
	static const char capped[] =
		"{\"launches\": [{\"kernel\": \"axpy\", \"grid\": [\"min(ceil_div(n, 128), 2 * sm_count)\"], \"block\": [128],"
		" \"shared_bytes\": \"0\", \"args\": [\"x\", \"y\", \"a\", \"n\"]}], \"scratch\": [], \"nvrtc_flags\": []}";
	assert_int_equal(verify_src(&v, good_cu, capped, NULL, 0), 0);
	assert_false(v.pass);
	assert_string_equal(v.input_kind, "cap-breaking");
	assert_int_equal(v.input_sm_count, 4);
	assert_non_null(strstr(v.message, "cap-breaking size n="));
	test_threads = 0;
	target_dir = NULL;
	const char *names[] = {"target.json", "launch.json", "seed.cu"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
	snprintf(tmpdir, sizeof(tmpdir), "%s/toyaxpy", basedir);
}

/* The knob resolver verification and timing share (profile/build.c): knobs given as
 * -D NAME=V set the value launch expressions see, knobs not given take their first
 * listed value and get a define of it, other defines pass through unchanged. */
static void test_profile__knobs_resolve(void **state)
{
	(void)state;
	int64_t block[] = {128, 256}, items[] = {4, 1};
	kiln_knob knobs[] = {{"BLOCK", block, 2}, {"ITEMS", items, 2}};
	kiln_target t;
	kiln_knob_defs kd;
	int64_t v = 0;
	memset(&t, 0, sizeof(t));
	t.knobs = knobs;
	t.nknobs = 2;
	/* nothing given: every knob at its first value, one define each */
	assert_int_equal(kiln_knobs_resolve(&kd, &t, NULL, 0, "verify"), 0);
	assert_int_equal(kd.ndefs, 2);
	assert_string_equal(kd.defs[0], "BLOCK=128");
	assert_string_equal(kd.defs[1], "ITEMS=4");
	assert_true(kiln_env_get(&kd.knobs, "BLOCK", &v) && v == 128);
	assert_true(kiln_env_get(&kd.knobs, "ITEMS", &v) && v == 4);
	kiln_knob_defs_free(&kd);
	/* given ones first and in order (base 0: 0x10 is 16); a name that only starts like a
	 * knob, a non-knob and a define without '=' pass through; BLOCK (no value) is no
	 * knob value, so BLOCK still gets its first value appended */
	const char *given[] = {"ITEMS=0x10", "BLOCKX=3", "FAST", "OTHER=7", "BLOCK"};
	assert_int_equal(kiln_knobs_resolve(&kd, &t, given, 5, "timing"), 0);
	assert_int_equal(kd.ndefs, 6);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(kd.defs[i], given[i]);
	assert_string_equal(kd.defs[5], "BLOCK=128");
	assert_true(kiln_env_get(&kd.knobs, "ITEMS", &v) && v == 16);
	assert_true(kiln_env_get(&kd.knobs, "BLOCK", &v) && v == 128);
	assert_false(kiln_env_get(&kd.knobs, "OTHER", &v));
	assert_false(kiln_env_get(&kd.knobs, "BLOCKX", &v));
	assert_int_equal(kd.knobs.n, 2);
	/* the compile options take the defines as resolved */
	kiln_plan plan;
	memset(&plan, 0, sizeof(plan));
	kiln_build_src bs = KILN_BUILD_SRC_INIT;
	bs.source = good_cu;
	bs.plan = &plan;
	kiln_compile_options co;
	kiln_build_src_compile_options(&co, &bs, &kd, "sm_80", false);
	assert_string_equal(co.name, "kernel.cu");
	assert_string_equal(co.arch, "sm_80");
	assert_ptr_equal(co.source, good_cu);
	assert_int_equal(co.ndefines, 6);
	assert_ptr_equal(co.defines, (const char *const *)kd.defs);
	assert_false(co.want_cubin);
	kiln_knob_defs_free(&kd);
	/* a knob's value must be an integer, whole */
	const char *bad[] = {"BLOCK=big", "ITEMS=", "BLOCK=12x", "ITEMS=1.5"};
	const char *want[] = {"define BLOCK=big: knob BLOCK needs an integer value",
			      "define ITEMS=: knob ITEMS needs an integer value",
			      "define BLOCK=12x: knob BLOCK needs an integer value",
			      "define ITEMS=1.5: knob ITEMS needs an integer value"};
	for (size_t i = 0; i < 4; i++) {
		const char *two[] = {"FAST", bad[i]};
		assert_int_equal(kiln_knobs_resolve(&kd, &t, two, 2, "verify"), KILN_EINVAL);
		assert_string_equal(kiln_error_last(), want[i]);
		kiln_knob_defs_free(&kd); /* what was copied before the error */
	}
	/* at most 64 defines, the knobs' defaults counted */
	const char *many[64];
	for (size_t i = 0; i < 64; i++)
		many[i] = "FAST";
	assert_int_equal(kiln_knobs_resolve(&kd, &t, many, 62, "verify"), 0);
	assert_int_equal(kd.ndefs, 64);
	kiln_knob_defs_free(&kd);
	assert_int_equal(kiln_knobs_resolve(&kd, &t, many, 63, "verify"), KILN_EINVAL);
	assert_string_equal(kiln_error_last(), "verify: at most 64 defines");
	kiln_knob_defs_free(&kd);
	assert_int_equal(kiln_knobs_resolve(&kd, &t, many, 63, "timing"), KILN_EINVAL);
	assert_string_equal(kiln_error_last(), "timing: at most 64 defines");
	kiln_knob_defs_free(&kd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_profile__device_open),
		cmocka_unit_test(test_profile__pass_and_replay),
		cmocka_unit_test(test_profile__written),
		cmocka_unit_test(test_profile__bounds),
		cmocka_unit_test(test_profile__inputs_unchanged),
		cmocka_unit_test(test_profile__values_nan),
		cmocka_unit_test(test_profile__race_and_initcheck),
		cmocka_unit_test(test_profile__budget_and_launch),
		cmocka_unit_test(test_profile__multi_launch_scratch),
		cmocka_unit_test(test_profile__nontrivial),
		cmocka_unit_test(test_profile__clock_warning_and_printf),
		cmocka_unit_test(test_profile__ulp_rule),
		cmocka_unit_test(test_profile__ulp_counts_steps),
		cmocka_unit_test(test_profile__half_exact_and_overflow),
		cmocka_unit_test(test_profile__regimes_threads_caps),
		cmocka_unit_test(test_profile__knobs_resolve),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
