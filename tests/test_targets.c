/* Unit tests of targets/: the expression evaluator, dtype conversions (against the
 * compiler's own _Float16 and the float->bf16 bit trick), target.json and launch.json
 * validation (each malformed file must give one line naming the file and the field),
 * seeded input generation (pinned bytes), running a reference, and every built-in target
 * loading with its seed launch plan. Fixtures are written to a fresh temp folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "targets/targets.h"
#include "targets/targets_int.h"

/* ---- helpers ---- */

static char tmp_root[256];

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			char *sub = kiln_path_join(path, de->d_name);
			rm_rf(sub);
			free(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static int setup_tmp(void **state)
{
	(void)state;
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/kiln_test_targets_XXXXXX");
	return mkdtemp(tmp_root) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
	(void)state;
	rm_rf(tmp_root);
	return 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char *p = kiln_path_join(dir, name);
	assert_non_null(p);
	assert_int_equal(kiln_file_write_atomic(p, text, strlen(text)), 0);
	free(p);
}

/* A valid target "toy" exercising every feature; cases below break one thing each. */
static const char toy_json[] =
	"{\n"
	"  \"name\": \"toy\", \"family\": \"test\", \"summary\": \"a toy target\", \"math\": \"y = alpha*x\",\n"
	"  \"symbols\": { \"B\": { \"verify\": [1, 3, 50], \"bench\": [512] },\n"
	"               \"T\": { \"verify\": [1, 7, 33], \"bench\": [8192] } },\n"
	"  \"buffers\": [\n"
	"    { \"name\": \"x\", \"dtype\": \"f32\", \"shape\": [\"B\", \"T\"], \"role\": \"in\", \"init\": \"logprob(2)\", \"masked_by\": \"mask\" },\n"
	"    { \"name\": \"mask\", \"dtype\": \"bool\", \"shape\": [\"B\", \"T\"], \"role\": \"in\", \"init\": \"mask(0.25)\" },\n"
	"    { \"name\": \"h\", \"dtype\": \"bf16\", \"shape\": [\"B*T\"], \"role\": \"inout\", \"init\": \"uniform(-2, 2)\" },\n"
	"    { \"name\": \"q\", \"dtype\": \"u8\", \"shape\": [\"B\", 4], \"role\": \"in\", \"init\": \"randint(0, 255)\" },\n"
	"    { \"name\": \"y\", \"dtype\": \"f32\", \"shape\": [\"B\", \"T\"], \"role\": \"out\" }\n"
	"  ],\n"
	"  \"scalars\": [ { \"name\": \"alpha\", \"dtype\": \"f32\", \"value\": 0.1 }, { \"name\": \"k\", \"dtype\": \"i32\", \"value\": 3 } ],\n"
	"  \"tolerance\": { \"h\": { \"rule\": \"ulp\", \"ulps\": 1 }, \"y\": { \"rtol\": 1e-5, \"atol\": 1e-6 } },\n"
	"  \"traffic_bytes\": \"13*B*T + 4*B\",\n"
	"  \"reference\": \"adamw\",\n"
	"  \"knobs\": { \"BLOCK\": [128, 256], \"VEC\": [1, 4] },\n"
	"  \"notes\": \"masked positions hold garbage\"\n"
	"}\n";

static const char toy_launch[] =
	"{ \"launches\": [ { \"kernel\": \"toy_k\", \"grid\": [\"ceil_div(B*T, BLOCK*VEC)\"], \"block\": [\"BLOCK\"],\n"
	"    \"shared_bytes\": \"4*BLOCK\", \"args\": [\"x\", \"mask\", \"h\", \"q\", \"y\", \"alpha\", \"k\", \"B\", \"T\", \"tmp\"] },\n"
	"  { \"kernel\": \"toy_fix\", \"grid\": [\"min(sm_count, B)\", 2], \"block\": [32, 4], \"args\": [\"tmp\", \"y\"] } ],\n"
	"  \"scratch\": [ { \"name\": \"tmp\", \"dtype\": \"f32\", \"count\": \"B*sm_count\" } ],\n"
	"  \"nvrtc_flags\": [\"-use_fast_math\", \"--fmad=false\", \"-maxrregcount=64\", \"-DUNROLL=4\"] }\n";

/* Makes <tmp>/<sub>/<name>/ holding target.json (toy with `from` replaced by `to`),
 * seed.cu and launch.json (launch text given). Returns the folder (caller frees). */
static char *make_target(const char *sub, const char *name, const char *from, const char *to,
			 const char *launch)
{
	char *base = kiln_path_join(tmp_root, sub);
	char *dir = kiln_path_join(base, name);
	assert_int_equal(kiln_mkdir_p(dir), 0);
	kiln_buf b = KILN_BUF_INIT;
	const char *at = from ? strstr(toy_json, from) : NULL;
	if (from)
		assert_non_null(at); /* the case must really change the fixture */
	if (at) {
		kiln_buf_append(&b, toy_json, (size_t)(at - toy_json));
		kiln_buf_puts(&b, to);
		kiln_buf_puts(&b, at + strlen(from));
	} else {
		kiln_buf_puts(&b, toy_json);
	}
	write_file(dir, "target.json", b.data);
	write_file(dir, "seed.cu", "extern \"C\" __global__ void toy_k() {}\n");
	write_file(dir, "launch.json", launch ? launch : toy_launch);
	kiln_buf_free(&b);
	free(base);
	return dir;
}

static kiln_target *load_toy(void)
{
	char *dir = make_target("ok", "toy", NULL, NULL, NULL);
	kiln_target *t = NULL;
	kiln_err e = kiln_target_load(&t, dir);
	if (e)
		fail_msg("toy target failed to load: %s", kiln_error_last());
	free(dir);
	return t;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("expected \"%s\" in: %s", needle, hay);
}

/* ---- the expression evaluator ---- */

static int64_t ev(const char *expr, const kiln_env *env)
{
	int64_t v = -12345;
	kiln_err e = kiln_expr_eval(&v, expr, env, "test");
	if (e)
		fail_msg("\"%s\" failed: %s", expr, kiln_error_last());
	return v;
}

static void test_targets__expr_values(void **state)
{
	(void)state;
	kiln_env env;
	kiln_env_init(&env);
	assert_int_equal(kiln_env_set(&env, "n", 1000), 0);
	assert_int_equal(kiln_env_set(&env, "BLOCK", 256), 0);
	assert_int_equal(kiln_env_set(&env, "sm_count", 132), 0);
	assert_int_equal(ev("1+2*3", &env), 7);
	assert_int_equal(ev("(1+2)*3", &env), 9);
	assert_int_equal(ev("10-4-3", &env), 3);
	assert_int_equal(ev("100/10/5", &env), 2);
	assert_int_equal(ev("7/2", &env), 3);
	assert_int_equal(ev("-7/2", &env), -3);
	assert_int_equal(ev("-7%3", &env), -1);
	assert_int_equal(ev("7%-3", &env), 1);
	assert_int_equal(ev("2*-3", &env), -6);
	assert_int_equal(ev("- -3", &env), 3);
	assert_int_equal(ev("1 + 2 * 3 % 4", &env), 3);
	assert_int_equal(ev("ceil_div(10, 3)", &env), 4);
	assert_int_equal(ev("ceil_div(9, 3)", &env), 3);
	assert_int_equal(ev("ceil_div(0, 5)", &env), 0);
	assert_int_equal(ev("ceil_div(1, 5)", &env), 1);
	assert_int_equal(ev("ceil_div(-7, 2)", &env), -3);
	assert_int_equal(ev("ceil_div(9223372036854775807, 2)", &env), INT64_C(4611686018427387904));
	assert_int_equal(ev("min(3, 1, 2)", &env), 1);
	assert_int_equal(ev("max(3, 1, 2, -5)", &env), 3);
	assert_int_equal(ev("ceil_div(n, BLOCK)", &env), 4);
	assert_int_equal(ev(" min( sm_count*4 , ceil_div(n,BLOCK) ) ", &env), 4);
	assert_int_equal(ev("9223372036854775807", &env), INT64_MAX);
	assert_int_equal(ev("-9223372036854775807-1", &env), INT64_MIN);
	/* 64 levels of nesting are allowed */
	char deep[200] = "";
	for (int i = 0; i < 64; i++)
		strcat(deep, "(");
	strcat(deep, "5");
	for (int i = 0; i < 64; i++)
		strcat(deep, ")");
	assert_int_equal(ev(deep, &env), 5);
	/* kiln_env_set replaces */
	assert_int_equal(kiln_env_set(&env, "n", 7), 0);
	assert_int_equal(ev("n", &env), 7);
	assert_int_equal(env.n, 3);
}

static void expect_err(const char *expr, kiln_err code, const char *needle)
{
	kiln_env env;
	kiln_env_init(&env);
	kiln_env_set(&env, "n", 10);
	int64_t v = 0;
	kiln_err e = kiln_expr_eval(&v, expr, &env, "f.json: grid[0]");
	if (e != code)
		fail_msg("\"%s\": expected error %d, got %d (%s)", expr, code, e, kiln_error_last());
	assert_contains(kiln_error_last(), "f.json: grid[0]");
	assert_contains(kiln_error_last(), needle);
	assert_null(strchr(kiln_error_last(), '\n'));
}

static void test_targets__expr_errors(void **state)
{
	(void)state;
	expect_err("n + q", KILN_EINVAL, "unknown name \"q\"");
	expect_err("foo(1, 2)", KILN_EINVAL, "unknown function \"foo\"");
	expect_err("ceil_div(1)", KILN_EINVAL, "wrong number of arguments");
	expect_err("ceil_div(1, 2, 3)", KILN_EINVAL, "wrong number of arguments");
	expect_err("min(1)", KILN_EINVAL, "wrong number of arguments");
	expect_err("max()", KILN_EINVAL, "wrong number of arguments");
	expect_err("n / (n - 10)", KILN_EINVAL, "division by zero");
	expect_err("n % 0", KILN_EINVAL, "modulo by zero");
	expect_err("ceil_div(n, 0)", KILN_EINVAL, "non-positive divisor");
	expect_err("ceil_div(n, -2)", KILN_EINVAL, "non-positive divisor");
	expect_err("1 2", KILN_EINVAL, "unexpected text");
	expect_err("n)", KILN_EINVAL, "unexpected text at column 2");
	expect_err("n*4 ; rm", KILN_EINVAL, "unexpected text");
	expect_err("", KILN_EINVAL, "empty expression");
	expect_err("   ", KILN_EINVAL, "empty expression");
	expect_err("n +", KILN_EINVAL, "unexpected end");
	expect_err("(n", KILN_EINVAL, "expected ')'");
	expect_err("2.5", KILN_EINVAL, "unexpected character after a number");
	expect_err("9223372036854775807 + 1", KILN_EOVERFLOW, "overflow");
	expect_err("-9223372036854775807 - 2", KILN_EOVERFLOW, "overflow");
	expect_err("4611686018427387904 * 2", KILN_EOVERFLOW, "overflow");
	expect_err("(-9223372036854775807-1) / -1", KILN_EOVERFLOW, "overflow");
	expect_err("-(-9223372036854775807-1)", KILN_EOVERFLOW, "overflow");
	expect_err("99999999999999999999", KILN_EOVERFLOW, "does not fit");
	char deep[200] = "";
	for (int i = 0; i < 65; i++)
		strcat(deep, "(");
	strcat(deep, "1");
	for (int i = 0; i < 65; i++)
		strcat(deep, ")");
	expect_err(deep, KILN_EINVAL, "nested deeper than 64");
	char deep_neg[100] = "";
	for (int i = 0; i < 70; i++)
		strcat(deep_neg, "-");
	strcat(deep_neg, "1");
	expect_err(deep_neg, KILN_EINVAL, "nested deeper than 64");
}

static void test_targets__expr_check(void **state)
{
	(void)state;
	const char *names[] = {"B", "T", "BLOCK"};
	assert_int_equal(kiln_expr_check("ceil_div(B*T, BLOCK) + min(B, T, 3)", names, 3, "w"), 0);
	assert_int_equal(kiln_expr_check("B*Q", names, 3, "x.json: shape[1]"), KILN_EINVAL);
	assert_contains(kiln_error_last(), "x.json: shape[1]");
	assert_contains(kiln_error_last(), "unknown name \"Q\" (known: B, T, BLOCK)");
	assert_int_equal(kiln_expr_check("B*", names, 3, "w"), KILN_EINVAL);
	assert_int_equal(kiln_expr_check("sqrt(B)", names, 3, "w"), KILN_EINVAL);
	assert_int_equal(kiln_expr_check("ceil_div(B)", names, 3, "w"), KILN_EINVAL);
}

static void test_targets__env_capacity(void **state)
{
	(void)state;
	kiln_env env;
	kiln_env_init(&env);
	char name[16];
	for (int i = 0; i < KILN_ENV_MAX; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		assert_int_equal(kiln_env_set(&env, name, i), 0);
	}
	assert_int_equal(kiln_env_set(&env, "one_more", 1), KILN_EINVAL);
	int64_t v = 0;
	assert_true(kiln_env_get(&env, "s47", &v));
	assert_int_equal(v, 47);
	assert_false(kiln_env_get(&env, "nope", &v));
}

/* ---- dtypes ---- */

static uint16_t bf16_from_float_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((u >> 16) | 0x40);
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

static void test_targets__bf16_rounding(void **state)
{
	(void)state;
	assert_int_equal(kiln_f64_to_bf16(1.0), 0x3f80);
	assert_int_equal(kiln_f64_to_bf16(-2.0), 0xc000);
	assert_int_equal(kiln_f64_to_bf16(0.0), 0x0000);
	assert_int_equal(kiln_f64_to_bf16(-0.0), 0x8000);
	/* ties go to even */
	assert_int_equal(kiln_f64_to_bf16(1.0 + 0x1p-8), 0x3f80);
	assert_int_equal(kiln_f64_to_bf16(1.0 + 3 * 0x1p-8), 0x3f82);
	/* single rounding: through float, 1 + 2^-8 + 2^-30 would first become the tie 1 + 2^-8
	 * and then round down; rounded once it is above the tie and rounds up */
	assert_int_equal(kiln_f64_to_bf16(1.0 + 0x1p-8 + 0x1p-30), 0x3f81);
	/* overflow: max finite is 0x7f7f; the halfway point to 2^128 rounds to Inf */
	assert_int_equal(kiln_f64_to_bf16(3.389e38), 0x7f7f);
	assert_int_equal(kiln_f64_to_bf16(0x1.ffp127 - 0x1p110), 0x7f7f);
	assert_int_equal(kiln_f64_to_bf16(0x1.ffp127), 0x7f80);
	assert_int_equal(kiln_f64_to_bf16(1e300), 0x7f80);
	assert_int_equal(kiln_f64_to_bf16(-INFINITY), 0xff80);
	/* NaN stays NaN (quiet), sign kept */
	uint16_t n = kiln_f64_to_bf16(NAN);
	assert_int_equal(n & 0x7f80, 0x7f80);
	assert_true((n & 0x7f) != 0);
	assert_true(isnan(kiln_bf16_to_f64(n)));
	assert_int_equal(kiln_f64_to_bf16(-NAN) & 0x8000, 0x8000);
	/* subnormals: smallest 2^-133; half of it ties to 0; 3/4 of it rounds up */
	assert_int_equal(kiln_f64_to_bf16(0x1p-133), 0x0001);
	assert_int_equal(kiln_f64_to_bf16(0x1p-134), 0x0000);
	assert_int_equal(kiln_f64_to_bf16(0x1.8p-134), 0x0001);
	assert_int_equal(kiln_f64_to_bf16(-0x1p-140), 0x8000);
	assert_true(kiln_bf16_to_f64(0x0001) == 0x1p-133);
	/* every finite pattern round-trips exactly */
	for (uint32_t h = 0; h < 0x10000; h++) {
		double v = kiln_bf16_to_f64((uint16_t)h);
		if (isnan(v))
			continue;
		if (kiln_f64_to_bf16(v) != h)
			fail_msg("bf16 0x%04x does not round-trip", h);
	}
	/* agrees with the float->bf16 rounding trick on floats (exact in double) */
	kiln_rng rng;
	kiln_rng_seed(&rng, 7);
	for (int i = 0; i < 200000; i++) {
		uint32_t u = (uint32_t)kiln_rng_u64(&rng);
		float f;
		memcpy(&f, &u, 4);
		if (isnan(f))
			continue;
		if (kiln_f64_to_bf16(f) != bf16_from_float_bits(f))
			fail_msg("bf16 of float bits 0x%08x: got 0x%04x want 0x%04x", u, kiln_f64_to_bf16(f),
				 bf16_from_float_bits(f));
	}
}

static void test_targets__f16_rounding(void **state)
{
	(void)state;
	assert_int_equal(kiln_f64_to_f16(1.0), 0x3c00);
	assert_int_equal(kiln_f64_to_f16(65504.0), 0x7bff);
	assert_int_equal(kiln_f64_to_f16(65519.0), 0x7bff);
	assert_int_equal(kiln_f64_to_f16(65520.0), 0x7c00); /* tie with Inf rounds to even = Inf */
	assert_int_equal(kiln_f64_to_f16(-1e6), 0xfc00);
	assert_int_equal(kiln_f64_to_f16(1.0 + 0x1p-11), 0x3c00);
	assert_int_equal(kiln_f64_to_f16(1.0 + 3 * 0x1p-11), 0x3c02);
	assert_int_equal(kiln_f64_to_f16(0x1p-24), 0x0001);
	assert_int_equal(kiln_f64_to_f16(0x1p-25), 0x0000);
	assert_int_equal(kiln_f64_to_f16(0x1p-25 + 0x1p-60), 0x0001);
	assert_int_equal(kiln_f64_to_f16(1023.5 * 0x1p-24), 0x0400); /* largest subnormal + 1/2 -> min normal */
	assert_true(kiln_f16_to_f64(0x03ff) == 1023 * 0x1p-24);
	assert_true(isnan(kiln_f16_to_f64(kiln_f64_to_f16(NAN))));
	for (uint32_t h = 0; h < 0x10000; h++) {
		double v = kiln_f16_to_f64((uint16_t)h);
		if (!isnan(v) && kiln_f64_to_f16(v) != h)
			fail_msg("f16 0x%04x does not round-trip", h);
	}
#ifdef __FLT16_MAX__
	/* the compiler's double -> _Float16 conversion rounds once, nearest even */
	__extension__ typedef _Float16 f16_t;
	kiln_rng rng;
	kiln_rng_seed(&rng, 11);
	for (int i = 0; i < 200000; i++) {
		double v = ldexp(kiln_rng_uniform(&rng) * 2 - 1, (int)kiln_rng_below(&rng, 50) - 30);
		if (i % 3 == 0) /* exact ties and near-ties */
			v = (double)(f16_t)v + ldexp(1.0, (int)kiln_rng_below(&rng, 40) - 40);
		volatile double vv = v;
		f16_t h = (f16_t)vv;
		uint16_t want;
		memcpy(&want, &h, 2);
		if (kiln_f64_to_f16(v) != want)
			fail_msg("f16(%a): got 0x%04x want 0x%04x", v, kiln_f64_to_f16(v), want);
	}
#endif
}

static void test_targets__dtype_store_load(void **state)
{
	(void)state;
	int32_t i32[1];
	uint8_t u8[1];
	int64_t i64[1];
	uint32_t u32[1];
	float f32[1];
	struct { double v; int32_t want; } ci[] = {
		{2.5, 2}, {3.5, 4}, {-2.5, -2}, {-3.5, -4}, {2.4999, 2}, {1e10, INT32_MAX},
		{-1e10, INT32_MIN}, {NAN, 0}, {INFINITY, INT32_MAX}, {-INFINITY, INT32_MIN}};
	for (size_t i = 0; i < KILN_ARRAY_LEN(ci); i++) {
		kiln_dtype_store(KILN_I32, i32, 0, ci[i].v);
		if (i32[0] != ci[i].want)
			fail_msg("i32 of %g: got %d want %d", ci[i].v, i32[0], ci[i].want);
		assert_true(kiln_dtype_load(KILN_I32, i32, 0) == ci[i].want);
	}
	kiln_dtype_store(KILN_U8, u8, 0, 300);
	assert_int_equal(u8[0], 255);
	kiln_dtype_store(KILN_U8, u8, 0, -5);
	assert_int_equal(u8[0], 0);
	kiln_dtype_store(KILN_U8, u8, 0, 254.5);
	assert_int_equal(u8[0], 254);
	kiln_dtype_store(KILN_U32, u32, 0, -1);
	assert_int_equal(u32[0], 0);
	kiln_dtype_store(KILN_U32, u32, 0, 5e9);
	assert_int_equal(u32[0], UINT32_MAX);
	kiln_dtype_store(KILN_I64, i64, 0, 1e19);
	assert_true(i64[0] == INT64_MAX);
	kiln_dtype_store(KILN_I64, i64, 0, -1e19);
	assert_true(i64[0] == INT64_MIN);
	kiln_dtype_store(KILN_I64, i64, 0, 4503599627370497.5);
	assert_true(i64[0] == INT64_C(4503599627370498));
	kiln_dtype_store(KILN_BOOL, u8, 0, 0.25);
	assert_int_equal(u8[0], 1);
	kiln_dtype_store(KILN_BOOL, u8, 0, 0.0);
	assert_int_equal(u8[0], 0);
	kiln_dtype_store(KILN_F32, f32, 0, 1e39);
	assert_true(isinf(f32[0]) && f32[0] > 0);
	kiln_dtype_store(KILN_F32, f32, 0, -0x1.ffffffp127);
	assert_true(isinf(f32[0]) && f32[0] < 0);
	kiln_dtype_store(KILN_F32, f32, 0, 0x1.fffffefp127);
	assert_true(f32[0] == FLT_MAX);
	kiln_dtype_store(KILN_F32, f32, 0, 0.1);
	assert_true(f32[0] == 0.1f);
	kiln_dtype_store(KILN_F32, f32, 0, NAN);
	assert_true(isnan(kiln_dtype_load(KILN_F32, f32, 0)));
	uint16_t h[3];
	kiln_dtype_store(KILN_BF16, h, 2, 1.0);
	assert_int_equal(h[2], 0x3f80);
	kiln_dtype_store(KILN_F16, h, 1, -2.0);
	assert_int_equal(h[1], 0xc000);
	assert_true(kiln_dtype_load(KILN_F16, h, 1) == -2.0);
	assert_int_equal(kiln_dtype_size(KILN_BF16), 2);
	assert_int_equal(kiln_dtype_size(KILN_BOOL), 1);
	assert_int_equal(kiln_dtype_size(KILN_I64), 8);
	kiln_dtype t;
	assert_int_equal(kiln_dtype_parse(&t, "bf16", "w"), 0);
	assert_int_equal(t, KILN_BF16);
	assert_string_equal(kiln_dtype_name(KILN_U32), "u32");
	assert_int_equal(kiln_dtype_parse(&t, "f33", "t.json: buffers[1].dtype"), KILN_EINVAL);
	assert_contains(kiln_error_last(), "t.json: buffers[1].dtype: unknown dtype \"f33\" (known: f32");
}

/* ---- target.json ---- */

static void test_targets__load_valid(void **state)
{
	(void)state;
	kiln_target *t = load_toy();
	assert_string_equal(t->name, "toy");
	assert_int_equal(t->nsymbols, 2);
	assert_int_equal(t->nverify_sizes, 3);
	assert_int_equal(t->nbench_sizes, 1);
	assert_int_equal(t->nbuffers, 5);
	assert_int_equal(t->buffers[2].dtype, KILN_BF16);
	assert_int_equal(t->buffers[3].ndim, 2);
	assert_string_equal(t->buffers[3].shape[1], "4"); /* integer shape entries become text */
	assert_int_equal(t->buffers[4].role, KILN_ROLE_OUT);
	assert_string_equal(t->buffers[0].masked_by, "mask");
	assert_int_equal(t->nscalars, 2);
	assert_int_equal(t->ntolerances, 2);
	assert_int_equal(kiln_target_tolerance(t, "h")->rule, KILN_TOL_ULP);
	assert_true(kiln_target_tolerance(t, "y")->rtol == 1e-5);
	assert_null(kiln_target_tolerance(t, "x"));
	assert_int_equal(t->nknobs, 2);
	assert_int_equal(t->knobs[0].values[1], 256);
	assert_non_null(t->ref_fn);
	assert_string_equal(t->notes, "masked positions hold garbage");
	assert_non_null(strstr(t->seed_path, "toy/seed.cu"));
	assert_non_null(kiln_target_scalar(t, "alpha"));
	assert_null(kiln_target_buffer(t, "alpha"));

	kiln_env env;
	assert_int_equal(kiln_target_sizes(&env, t, false, 1), 0);
	int64_t v;
	assert_true(kiln_env_get(&env, "B", &v) && v == 3);
	assert_true(kiln_env_get(&env, "T", &v) && v == 7);
	size_t count;
	assert_int_equal(kiln_target_count(&count, t, &t->buffers[3], &env), 0);
	assert_int_equal(count, 12);
	assert_int_equal(kiln_target_sizes(&env, t, true, 0), 0);
	assert_int_equal(kiln_expr_eval(&v, t->traffic_bytes, &env, "traffic"), 0);
	assert_int_equal(v, 13 * 512 * 8192 + 4 * 512);
	assert_int_equal(kiln_target_sizes(&env, t, true, 1), KILN_EINVAL);
	kiln_target_free(t);
	kiln_target_free(NULL);
}

typedef struct bad_case {
	const char *from, *to;   /* the change to the valid toy target.json */
	const char *field;       /* must appear in the message */
	const char *what;        /* and so must this */
} bad_case;

static void test_targets__load_malformed(void **state)
{
	(void)state;
	static const bad_case cases[] = {
		{"\"dtype\": \"bf16\"", "\"dtype\": \"f33\"", "buffers[2].dtype", "unknown dtype \"f33\""},
		{"\"shape\": [\"B\", \"T\"], \"role\": \"in\", \"init\": \"logprob",
		 "\"shape\": [\"B\", \"Q\"], \"role\": \"in\", \"init\": \"logprob", "buffers[0].shape[1]",
		 "unknown name \"Q\""},
		{"\"reference\": \"adamw\"", "\"reference\": \"no_such_ref\"", "reference", "no built-in reference named \"no_such_ref\""},
		{", \"y\": { \"rtol\": 1e-5, \"atol\": 1e-6 }", "", "tolerance", "missing for output buffer \"y\""},
		{"\"notes\":", "\"colour\": 1, \"notes\":", "toy/target.json: unknown field \"colour\"", "known: name"},
		{"[1, 7, 33]", "[1, 7]", "symbols.T.verify", "has 2 sizes but symbols.B.verify has 3"},
		{"\"uniform(-2, 2)\"", "\"uniform(2)\"", "buffers[2].init", "uniform takes 2 arguments"},
		{"\"uniform(-2, 2)\"", "\"gauss(0, 1)\"", "buffers[2].init", "unknown distribution"},
		{"\"uniform(-2, 2)\"", "\"uniform(2, -2)\"", "buffers[2].init", "lo must be <= hi"},
		{"\"name\": \"k\"", "\"name\": \"h\"", "scalars[1].name", "duplicate name \"h\" (already a buffer)"},
		{"\"VEC\":", "\"B\":", "knobs.B", "duplicate name \"B\" (already a symbol)"},
		{"\"13*B*T + 4*B\"", "\"13*B*T + 4*B)\"", "traffic_bytes", "unexpected text"},
		{"\"13*B*T + 4*B\"", "\"13*B*T + 4*BLOCK\"", "traffic_bytes", "unknown name \"BLOCK\""},
		{"\"role\": \"inout\"", "\"role\": \"output\"", "buffers[2].role", "unknown role \"output\""},
		{"\"masked_by\": \"mask\"", "\"masked_by\": \"h\"", "buffers[0].masked_by", "is not a mask"},
		{"{ \"name\": \"y\"", "{ \"name\": \"2y\"", "buffers[4].name", "not a C identifier"},
		{"\"name\": \"toy\"", "\"name\": \"other\"", "name", "must match its folder name \"toy\""},
		{"\"rule\": \"ulp\", \"ulps\": 1", "\"rule\": \"ulps\", \"ulps\": 1", "tolerance.h.rule", "unknown rule"},
		{"\"h\": { \"rule\"", "\"x\": { \"rule\"", "tolerance.x", "in buffer"},
		{"\"value\": 3 }", "\"value\": 3.5 }", "scalars[1].value", "not a i32 value"},
		{"\"bench\": [512]", "\"bench\": [0]", "symbols.B.bench[0]", "out of range"},
		{"\"role\": \"out\" }", "\"role\": \"out\", \"init\": \"normal(0,1)\" }", "buffers[4].init", "zero-filled"},
		{"\"shape\": [\"B*T\"]", "\"shape\": []", "buffers[2].shape", "1 to 8 dimensions"},
		{"\"summary\": \"a toy target\",", "", "target.json", "missing field \"summary\""},
		{"\"traffic_bytes\": \"13*B*T + 4*B\",", "\"traffic_bytes\": \"13*B*T + 4*B\"", "target.json", "invalid JSON near line"},
		{"\"notes\":", "\"regimes\": { \"z\": { \"init\": { \"nope\": \"const(0)\" } } }, \"notes\":", "regimes.z.init.nope", "no buffer named \"nope\""},
		{"\"notes\":", "\"regimes\": { \"z\": { \"scalars\": { \"beta\": 1 } } }, \"notes\":", "regimes.z.scalars.beta", "no scalar named \"beta\""},
		{"\"notes\":", "\"regimes\": { \"z\": { \"scalars\": { \"k\": 1.5 } } }, \"notes\":", "regimes.z.scalars.k", "not a i32 value"},
		{"\"notes\":", "\"regimes\": { \"z\": { \"init\": { \"h\": \"special(normal(0,1), zero=2)\" } } }, \"notes\":", "regimes.z.init.h", "P in [0, 1]"},
		{"\"notes\":", "\"regimes\": { \"z\": { \"init\": { \"h\": \"special(normal(0,1), pink=0.1)\" } } }, \"notes\":", "regimes.z.init.h", "unknown special kind \"pink\""},
		{"\"notes\":", "\"regimes\": { \"z\": { \"init\": { \"q\": \"special(randint(0,9), nan=0.1)\" } } }, \"notes\":", "regimes.z.init.q", "needs a float buffer"},
		{"\"notes\":", "\"regimes\": { \"z\": { \"init\": { \"y\": \"const(0)\" } } }, \"notes\":", "regimes.z.init.y", "out buffer"},
		{"\"notes\":", "\"regimes\": { \"z\": { \"init\": { \"mask\": \"normal(0,1)\" } } }, \"notes\":", "regimes.z.init.mask", "must stay a mask"},
		{"\"notes\":", "\"regimes\": { \"z\": { \"note\": \"nothing\" } }, \"notes\":", "regimes.z", "overrides nothing"},
		{"\"notes\":", "\"regimes\": { \"default\": { \"scalars\": { \"k\": 1 } } }, \"notes\":", "regimes.default", "other than \"default\""},
		{"\"notes\":", "\"regimes\": { \"z\": { \"scalars\": { \"k\": 1 }, \"colour\": 1 } }, \"notes\":", "regimes.z", "unknown field \"colour\""},
		{"\"notes\":", "\"multistep\": { \"steps\": 2, \"scalars\": { \"k\": [1, 2] } }, \"notes\":", "multistep.steps", "expected 3 to 16"},
		{"\"notes\":", "\"multistep\": { \"steps\": 3, \"scalars\": { \"k\": [1, 2] } }, \"notes\":", "multistep.scalars.k", "array of 3 values"},
		{"\"notes\":", "\"multistep\": { \"steps\": 3, \"scalars\": { \"kk\": [1, 2, 3] } }, \"notes\":", "multistep.scalars.kk", "no scalar named"},
		{"\"notes\":", "\"multistep\": { \"steps\": 3, \"scalars\": { \"k\": [1, 2.5, 3] } }, \"notes\":", "multistep.scalars.k[1]", "not a i32 value"},
		{"\"uniform(-2, 2)\"", "\"special(uniform(-2, 2), nan=0.1\"", "buffers[2].init", "expected ', kind=p' or ')'"},
		{"\"uniform(-2, 2)\"", "\"special(special(uniform(-2, 2), nan=0.1), zero=0.1)\"", "buffers[2].init", "cannot wrap"},
		{"\"uniform(-2, 2)\"", "\"mask_holes(1.5)\"", "buffers[2].init", "pvalid must be in [0, 1]"},
		{"\"notes\":", "\"bench_weights\": [1, 2], \"notes\":", "bench_weights", "has 2 weights but the symbols give 1 bench sizes"},
		{"\"notes\":", "\"bench_weights\": [0], \"notes\":", "bench_weights[0]", "expected a positive number"},
		{"\"notes\":", "\"bench_weights\": [\"1\"], \"notes\":", "bench_weights[0]", "expected a positive number"},
		{"\"notes\":", "\"bench_weights\": 2, \"notes\":", "bench_weights", "expected an array of positive numbers"},
		{"\"bench\": [512]", "\"bench\": [1,2,3,4,5,6,7,8,9]", "symbols", "9 bench sizes, at most 8"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "bad%zu", i);
		char *dir = make_target(sub, "toy", cases[i].from, cases[i].to, NULL);
		kiln_target *t = (kiln_target *)0x1;
		kiln_err e = kiln_target_load(&t, dir);
		if (e != KILN_EINVAL)
			fail_msg("case %zu (%s): expected KILN_EINVAL, got %d: %s", i, cases[i].what, e, kiln_error_last());
		assert_null(t);
		const char *msg = kiln_error_last();
		char file[512];
		snprintf(file, sizeof(file), "%s/target.json", dir);
		assert_contains(msg, file);
		assert_contains(msg, cases[i].field);
		assert_contains(msg, cases[i].what);
		assert_null(strchr(msg, '\n'));
		free(dir);
	}
	/* a missing seed.cu is named */
	char *dir = make_target("noseed", "toy", NULL, NULL, NULL);
	char *seed = kiln_path_join(dir, "seed.cu");
	unlink(seed);
	kiln_target *t = NULL;
	assert_int_equal(kiln_target_load(&t, dir), KILN_EINVAL);
	assert_contains(kiln_error_last(), seed);
	free(seed);
	free(dir);
}

/* bench_weights weigh the bench sizes; --size specs replace ("B=..,T=..") or add
 * ("+B=..") sizes with an optional "@W" weight, and every bad spec is one line naming it
 * with the target unchanged. */
static void test_targets__bench_sizes_and_weights(void **state)
{
	(void)state;
	kiln_target *t = NULL;
	/* B has two bench sizes, T one (broadcast), weights 1 and 3 */
	char *dir = make_target("weights", "toy", "\"bench\": [512] },", "\"bench\": [64, 512] },", NULL);
	char *path = kiln_path_join(dir, "target.json");
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(kiln_file_read(&text, &len, path, 1u << 20), 0);
	char *with = kiln_asprintf("%.*s\"bench_weights\": [1, 3],\n%s", (int)(strstr(text, "\"notes\"") - text), text,
				   strstr(text, "\"notes\""));
	write_file(dir, "target.json", with);
	assert_int_equal(kiln_target_load(&t, dir), 0);
	assert_int_equal(t->nbench_sizes, 2);
	assert_true(kiln_target_bench_weight(t, 0) == 1 && kiln_target_bench_weight(t, 1) == 3);
	char spec[128];
	assert_int_equal(kiln_target_bench_spec(spec, sizeof spec, t, 1), 0);
	assert_string_equal(spec, "B=512,T=8192@3");
	/* adding one: the list grows, weights kept, the new size weighs 1 */
	const char *add[] = {"+B=1024,T=4096"};
	assert_int_equal(kiln_target_set_bench_sizes(t, add, 1), 0);
	assert_int_equal(t->nbench_sizes, 3);
	kiln_env env;
	assert_int_equal(kiln_target_sizes(&env, t, true, 2), 0);
	assert_true(env.values[0] == 1024 && env.values[1] == 4096);
	assert_true(kiln_target_bench_weight(t, 1) == 3 && kiln_target_bench_weight(t, 2) == 1);
	/* replacing: only the given sizes, in order, with their weights */
	const char *rep[] = {"T=100,B=7@2.5", "+B=9,T=9"};
	assert_int_equal(kiln_target_set_bench_sizes(t, rep, 2), 0);
	assert_int_equal(t->nbench_sizes, 2);
	assert_int_equal(kiln_target_sizes(&env, t, true, 0), 0);
	assert_true(env.values[0] == 7 && env.values[1] == 100);
	assert_true(kiln_target_bench_weight(t, 0) == 2.5 && kiln_target_bench_weight(t, 1) == 1);
	/* bad specs: one line naming the spec, the list unchanged */
	static const struct { const char *spec, *what; } bad[] = {
		{"B=1", "symbol T is missing"}, {"B=1,T=2,Q=3", "no symbol 'Q'"}, {"B=0,T=2", "B must be an integer"},
		{"B=1,T=x", "T must be an integer"}, {"B=1,B=2,T=3", "symbol B given twice"}, {"B=1,T=2@0", "weight"},
		{"B=1,T=2@", "weight"}, {"B1,T=2", "expected SYMBOL=VALUE"}, {"+", "expected SYMBOL=VALUE"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		const char *one[] = {bad[i].spec};
		assert_int_equal(kiln_target_set_bench_sizes(t, one, 1), KILN_EINVAL);
		assert_contains(kiln_error_last(), bad[i].spec);
		assert_contains(kiln_error_last(), bad[i].what);
		assert_null(strchr(kiln_error_last(), '\n'));
		assert_int_equal(t->nbench_sizes, 2);
	}
	const char *many[] = {"+B=1,T=1", "+B=2,T=1", "+B=3,T=1", "+B=4,T=1", "+B=5,T=1", "+B=6,T=1", "+B=7,T=7"};
	assert_int_equal(kiln_target_set_bench_sizes(t, many, 7), KILN_EINVAL);
	assert_contains(kiln_error_last(), "at most 8");
	kiln_target_free(t);
	free(with);
	free(text);
	free(path);
	free(dir);
}

/* ---- launch.json ---- */

static void test_targets__plan_valid(void **state)
{
	(void)state;
	kiln_target *t = load_toy();
	kiln_plan *p = NULL;
	if (kiln_plan_load(&p, t->launch_path, t))
		fail_msg("%s", kiln_error_last());
	assert_int_equal(p->nlaunches, 2);
	assert_string_equal(p->launches[0].kernel, "toy_k");
	assert_string_equal(p->launches[0].grid[1], "1");
	assert_int_equal(p->launches[0].nargs, 10);
	assert_string_equal(p->launches[1].shared_bytes, "0");
	assert_int_equal(p->nscratch, 1);
	assert_int_equal(p->scratch[0].dtype, KILN_F32);
	assert_int_equal(p->nflags, 4);

	kiln_env env;
	assert_int_equal(kiln_target_sizes(&env, t, false, 2), 0); /* B=50, T=33 */
	kiln_env_set(&env, "BLOCK", 128);
	kiln_env_set(&env, "VEC", 4);
	kiln_env_set(&env, "sm_count", 132);
	kiln_dims d;
	assert_int_equal(kiln_plan_dims(&d, p, 0, &env), 0);
	assert_int_equal(d.grid[0], 4); /* ceil(1650 / 512) */
	assert_int_equal(d.grid[1], 1);
	assert_int_equal(d.block[0], 128);
	assert_int_equal(d.shared_bytes, 512);
	assert_int_equal(kiln_plan_dims(&d, p, 1, &env), 0);
	assert_int_equal(d.grid[0], 50);
	assert_int_equal(d.grid[1], 2);
	assert_int_equal(d.block[1], 4);
	assert_int_equal(kiln_plan_dims(&d, p, 2, &env), KILN_EINVAL);
	kiln_env_set(&env, "BLOCK", 2048);
	assert_int_equal(kiln_plan_dims(&d, p, 0, &env), KILN_EINVAL);
	assert_contains(kiln_error_last(), "launch 0 (toy_k): block[0]");

	/* canonical JSON parses back to the same canonical JSON */
	char *j1 = kiln_plan_to_json(p);
	assert_non_null(j1);
	kiln_plan *p2 = NULL;
	if (kiln_plan_parse(&p2, j1, strlen(j1), t, "canonical"))
		fail_msg("%s", kiln_error_last());
	char *j2 = kiln_plan_to_json(p2);
	assert_string_equal(j1, j2);
	assert_non_null(strstr(j1, "\"grid\":[\"min(sm_count, B)\",\"2\"]"));
	free(j1);
	free(j2);
	kiln_plan_free(p2);
	kiln_plan_free(p);
	kiln_plan_free(NULL);
	kiln_target_free(t);
}

/* "graph": true is kept and written back; absent (false) it stays out of the canonical text. */
static void test_targets__plan_graph_opt_in(void **state)
{
	(void)state;
	kiln_target *t = load_toy();
	kiln_plan *p = NULL, *p2 = NULL;
	assert_int_equal(kiln_plan_parse(&p, toy_launch, strlen(toy_launch), t, "plain"), 0);
	assert_false(p->graph);
	char *j = kiln_plan_to_json(p);
	assert_null(strstr(j, "graph"));
	free(j);
	kiln_plan_free(p);
	kiln_buf b = KILN_BUF_INIT;
	kiln_buf_puts(&b, "{\"graph\": true, ");
	kiln_buf_puts(&b, strchr(toy_launch, '{') + 1);
	assert_int_equal(kiln_plan_parse(&p, b.data, b.len, t, "graph plan"), 0);
	assert_true(p->graph);
	j = kiln_plan_to_json(p);
	assert_non_null(strstr(j, "\"graph\":true"));
	assert_int_equal(kiln_plan_parse(&p2, j, strlen(j), t, "canonical"), 0);
	assert_true(p2->graph);
	free(j);
	kiln_buf_free(&b);
	kiln_plan_free(p2);
	kiln_plan_free(p);
	kiln_target_free(t);
}

static void test_targets__plan_block_limit(void **state)
{
	(void)state;
	kiln_target *t = load_toy();
	static const char plan[] =
		"{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"B\", 0], \"block\": [64, 32], \"args\": []}]}";
	kiln_plan *p = NULL;
	assert_int_equal(kiln_plan_parse(&p, plan, strlen(plan), t, "cand 3"), 0);
	kiln_env env;
	kiln_target_sizes(&env, t, false, 0);
	kiln_dims d;
	assert_int_equal(kiln_plan_dims(&d, p, 0, &env), KILN_EINVAL);
	assert_contains(kiln_error_last(), "grid[1]"); /* 0 blocks */
	kiln_plan_free(p);
	static const char plan2[] =
		"{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"B\"], \"block\": [64, 32], \"args\": []}]}";
	assert_int_equal(kiln_plan_parse(&p, plan2, strlen(plan2), t, "cand 3"), 0);
	assert_int_equal(kiln_plan_dims(&d, p, 0, &env), KILN_EINVAL);
	assert_contains(kiln_error_last(), "2048 threads, at most 1024");
	kiln_plan_free(p);
	/* sm_count is an argument too (a long long, README's argument table) */
	static const char plan3[] =
		"{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"sm_count\"], \"block\": [64], \"args\": [\"sm_count\", \"B\"]}]}";
	assert_int_equal(kiln_plan_parse(&p, plan3, strlen(plan3), t, "cand 4"), 0);
	kiln_plan_free(p);
	kiln_target_free(t);
}

static void test_targets__plan_malformed(void **state)
{
	(void)state;
	kiln_target *t = load_toy();
	static const struct {
		const char *from, *to, *field, *what;
	} cases[] = {
		{"\"T\", \"tmp\"]", "\"T\", \"tmp\", \"zz\"]", "launches[0].args[10]", "unknown name \"zz\""},
		{"\"ceil_div(B*T, BLOCK*VEC)\"", "\"ceil_div(B*T, )\"", "launches[0].grid[0]", "expected a number"},
		{"\"ceil_div(B*T, BLOCK*VEC)\"", "\"ceil_div(B*T, BLOCK*VEC) x\"", "launches[0].grid[0]", "unexpected text"},
		{"\"ceil_div(B*T, BLOCK*VEC)\"", "\"B*tmp\"", "launches[0].grid[0]", "unknown name \"tmp\""},
		{"\"ceil_div(B*T, BLOCK*VEC)\"", "\"alpha\"", "launches[0].grid[0]", "unknown name \"alpha\""},
		{"\"-use_fast_math\"", "\"-I/etc\"", "nvrtc_flags[0]", "flag \"-I/etc\" is not allowed"},
		{"\"-use_fast_math\"", "\"-maxrregcount=300\"", "nvrtc_flags[0]", "16..255"},
		{"\"-DUNROLL=4\"", "\"-DBLOCK=64\"", "nvrtc_flags[3]", "redefines knob BLOCK"},
		{"\"-DUNROLL=4\"", "\"-DUNROLL=4;x\"", "nvrtc_flags[3]", "-DNAME=VALUE"},
		{"\"kernel\": \"toy_k\"", "\"kernel\": \"toy-k\"", "launches[0].kernel", "not a C identifier"},
		{"\"block\": [32, 4]", "\"block\": [32, 4, 1, 1]", "launches[1].block", "1 to 3 dimensions"},
		{"\"nvrtc_flags\"", "\"nvrtc_flag\"", "unknown field \"nvrtc_flag\"", "known: launches"},
		{"\"name\": \"tmp\"", "\"name\": \"x\"", "scratch[0].name", "already a name of target toy"},
		{"\"count\": \"B*sm_count\"", "\"count\": \"B*sm_count*tmp\"", "scratch[0].count", "unknown name \"tmp\""},
		{"\"shared_bytes\": \"4*BLOCK\"", "\"shared_bytes\": \"4*BLOCK/0\"", "launches[0].shared_bytes", ""},
		{"\"scratch\": [", "\"scratch\": [[", "launch.json", "invalid JSON"},
		{"\"-use_fast_math\"", "\"--pre-include=/etc/passwd\"", "nvrtc_flags[0]", "is not allowed"},
		{"\"-use_fast_math\"", "\"--include-path=/home\"", "nvrtc_flags[0]", "is not allowed"},
		{"\"-DUNROLL=4\"", "\"-D__THRUST_DEVICE_SYSTEM_VECTOR_HEADER=x\"", "nvrtc_flags[3]", "reserved for the toolkit"},
		{"\"-DUNROLL=4\"", "\"-D_CCCL_X=1\"", "nvrtc_flags[3]", "reserved for the toolkit"},
		{"\"nvrtc_flags\": [\"-use_fast_math\"", "\"nvrtc_flags\": [\"-use_fast_math\" // c\n", "launch.json", "comment"},
		{"\"scratch\": [", "\"graph\": 1, \"scratch\": [", "field \"graph\"", "expected true or false"},
		{"\"scratch\": [", "\"graph\": \"yes\", \"scratch\": [", "field \"graph\"", "expected true or false"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		const char *at = strstr(toy_launch, cases[i].from);
		assert_non_null(at);
		kiln_buf b = KILN_BUF_INIT;
		kiln_buf_append(&b, toy_launch, (size_t)(at - toy_launch));
		kiln_buf_puts(&b, cases[i].to);
		kiln_buf_puts(&b, at + strlen(cases[i].from));
		char *path = kiln_path_join(tmp_root, "launch.json");
		write_file(tmp_root, "launch.json", b.data);
		kiln_plan *p = (kiln_plan *)0x1;
		kiln_err e = kiln_plan_load(&p, path, t);
		if (i == 14) {
			/* division by a literal zero only shows when evaluated */
			assert_int_equal(e, 0);
			kiln_env env;
			kiln_target_sizes(&env, t, false, 0);
			kiln_env_set(&env, "BLOCK", 128);
			kiln_env_set(&env, "VEC", 1);
			kiln_env_set(&env, "sm_count", 132);
			kiln_dims d;
			assert_int_equal(kiln_plan_dims(&d, p, 0, &env), KILN_EINVAL);
			assert_contains(kiln_error_last(), "division by zero");
			kiln_plan_free(p);
		} else {
			if (e != KILN_EINVAL)
				fail_msg("case %zu (%s): expected KILN_EINVAL, got %d: %s", i, cases[i].what, e,
					 kiln_error_last());
			assert_null(p);
			assert_contains(kiln_error_last(), path);
			assert_contains(kiln_error_last(), cases[i].field);
			assert_contains(kiln_error_last(), cases[i].what);
			assert_null(strchr(kiln_error_last(), '\n'));
		}
		free(path);
		kiln_buf_free(&b);
	}
	kiln_target_free(t);
}

/* ---- inputs ---- */

static void hash_inputs(char out[65], const kiln_inputs *in, const char *const *only, size_t nonly)
{
	kiln_sha256 s;
	kiln_sha256_init(&s);
	for (size_t i = 0; i < in->n; i++) {
		bool take = nonly == 0;
		for (size_t j = 0; j < nonly; j++)
			take |= strcmp(in->bufs[i].spec->name, only[j]) == 0;
		if (take)
			kiln_sha256_update(&s, in->bufs[i].data, in->bufs[i].bytes);
	}
	uint8_t d[32];
	kiln_sha256_final(&s, d);
	kiln_hex(out, d, 32);
}

static void test_targets__inputs_deterministic(void **state)
{
	(void)state;
	kiln_target *t = load_toy();
	kiln_env env;
	assert_int_equal(kiln_target_sizes(&env, t, false, 1), 0); /* B=3, T=7 */
	kiln_inputs *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(kiln_inputs_generate(&a, t, &env, 42), 0);
	assert_int_equal(kiln_inputs_generate(&b, t, &env, 42), 0);
	assert_int_equal(kiln_inputs_generate(&c, t, &env, 43), 0);
	assert_int_equal(a->n, 5);
	assert_int_equal(a->bufs[0].count, 21);
	assert_int_equal(a->bufs[0].bytes, 84);
	assert_int_equal(a->bufs[2].bytes, 42);
	assert_int_equal(a->bufs[3].count, 12);
	char ha[65], hb[65], hc[65];
	hash_inputs(ha, a, NULL, 0);
	hash_inputs(hb, b, NULL, 0);
	hash_inputs(hc, c, NULL, 0);
	assert_string_equal(ha, hb);
	assert_string_not_equal(ha, hc);
	/* Pinned bytes of the buffers drawn without libm (mask, uniform bf16, randint u8):
	 * a change here changes every recorded verification seed's meaning. */
	static const char *const pure[] = {"mask", "h", "q"};
	char hp[65];
	hash_inputs(hp, a, pure, 3);
	print_message("pinned sha256(mask, h, q) = %s\n", hp);
	assert_string_equal(hp, "80f7747479d4dac7b0b5b36cde78b7e6fac11fda2406aaa36f7f510189abf48a");
	/* values are what the distributions promise */
	for (size_t i = 0; i < a->bufs[2].count; i++) {
		double v = kiln_dtype_load(KILN_BF16, a->bufs[2].data, i);
		assert_true(v >= -2.0 && v <= 2.0);
	}
	bool seen_hi = false;
	for (size_t i = 0; i < a->bufs[3].count; i++)
		seen_hi |= ((uint8_t *)a->bufs[3].data)[i] > 128;
	assert_true(seen_hi);
	for (size_t i = 0; i < a->bufs[4].count; i++)
		assert_true(((float *)a->bufs[4].data)[i] == 0.0f); /* out: zero */
	kiln_inputs_free(a);
	kiln_inputs_free(b);
	kiln_inputs_free(c);
	kiln_inputs_free(NULL);
	kiln_target_free(t);
}

static void test_targets__mask_and_garbage(void **state)
{
	(void)state;
	kiln_target *t = load_toy();
	kiln_env env;
	assert_int_equal(kiln_target_sizes(&env, t, false, 2), 0); /* B=50, T=33 */
	kiln_inputs *in = NULL;
	assert_int_equal(kiln_inputs_generate(&in, t, &env, 7), 0);
	const uint8_t *mask = in->bufs[1].data;
	const float *x = in->bufs[0].data;
	size_t rows = 50, cols = 33, minlen = 9; /* ceil(0.25 * 33) */
	size_t short_rows = 0, lens_seen = 0, kinds[4] = {0};
	bool len_hit[34] = {0};
	for (size_t r = 0; r < rows; r++) {
		size_t len = 0;
		while (len < cols && mask[r * cols + len])
			len++;
		for (size_t j = len; j < cols; j++)
			if (mask[r * cols + j])
				fail_msg("row %zu: a one after the prefix at column %zu", r, j);
		if (len < minlen)
			fail_msg("row %zu: prefix %zu shorter than %zu", r, len, minlen);
		short_rows += len < cols;
		if (!len_hit[len]) {
			len_hit[len] = true;
			lens_seen++;
		}
		for (size_t j = 0; j < cols; j++) {
			float v = x[r * cols + j];
			if (j < len) {
				assert_true(isfinite(v) && v <= 0.0f); /* logprob */
			} else if (isnan(v)) {
				kinds[0]++;
			} else if (isinf(v)) {
				kinds[v > 0 ? 1 : 2]++;
			} else {
				assert_true(fabsf(v) >= 1e37f);
				kinds[3]++;
			}
		}
	}
	assert_true(short_rows > 10);
	assert_true(lens_seen > 5);
	for (int k = 0; k < 4; k++)
		if (kinds[k] == 0)
			fail_msg("garbage kind %d never drawn", k);
	kiln_inputs_free(in);

	/* the size-1 edge: one row of one element, the mask must still be 1 */
	assert_int_equal(kiln_target_sizes(&env, t, false, 0), 0);
	assert_int_equal(kiln_inputs_generate(&in, t, &env, 1), 0);
	assert_int_equal(((uint8_t *)in->bufs[1].data)[0], 1);
	assert_true(isfinite(((float *)in->bufs[0].data)[0]));
	kiln_inputs_free(in);
	kiln_target_free(t);
}


/* ---- regimes and multi-step ---- */

static const char regimes_json[] =
	"\"regimes\": {\n"
	"  \"holes\": { \"note\": \"masks with holes\", \"init\": { \"mask\": \"mask_holes(0.5)\" } },\n"
	"  \"odd\": { \"init\": { \"h\": \"special(uniform(-2, 2), zero=0.2, negzero=0.1, denorm=0.1, negtiny=0.1, posinf=0.1, neginf=0.1, nan=0.1, huge=0.1)\" },\n"
	"           \"scalars\": { \"k\": 7, \"alpha\": 0.5 } }\n"
	"},\n"
	"\"multistep\": { \"steps\": 3, \"scalars\": { \"k\": [1, 2, 3] } },\n"
	"\"notes\":";

static void test_targets__regimes(void **state)
{
	(void)state;
	char *dir = make_target("reg", "toy", "\"notes\":", regimes_json, NULL);
	kiln_target *t = NULL;
	if (kiln_target_load(&t, dir))
		fail_msg("%s", kiln_error_last());
	free(dir);
	assert_int_equal(t->nregimes, 2);
	assert_int_equal(kiln_target_regime_index(t, "odd"), 1);
	assert_int_equal(kiln_target_regime_index(t, "default"), -1);
	assert_string_equal(kiln_target_regime_name(t, -1), "default");
	assert_string_equal(t->regimes[0].note, "masks with holes");
	assert_true(t->regimes[1].scalar_set[1] && t->regimes[1].scalars[1] == 7 && t->regimes[1].scalars[0] == 0.5);
	assert_false(t->regimes[0].scalar_set[0]);
	assert_true(t->regimes[0].scalars[1] == 3);
	kiln_env env;
	assert_int_equal(kiln_target_sizes(&env, t, false, 2), 0); /* B=50, T=33 */
	/* holes: forced rows, holes inside rows, garbage only where masked */
	kiln_inputs *in = NULL;
	assert_int_equal(kiln_inputs_generate_regime(&in, t, &env, 11, 0), 0);
	const uint8_t *mask = in->bufs[1].data;
	const float *x = in->bufs[0].data;
	size_t cols = 33, all0 = 0, all1 = 0, single = 0, leftpad = 0, holes = 0;
	for (size_t r = 0; r < 50; r++) {
		size_t ones = 0, first = cols;
		bool hole_inside = false;
		for (size_t j = 0; j < cols; j++) {
			ones += mask[r * cols + j];
			if (mask[r * cols + j] && first == cols)
				first = j;
			if (j > 0 && !mask[r * cols + j] && mask[r * cols + j - 1] && j + 1 < cols && mask[r * cols + j + 1])
				hole_inside = true;
			assert_true(mask[r * cols + j] ? isfinite(x[r * cols + j]) : !isfinite(x[r * cols + j]) || fabsf(x[r * cols + j]) >= 1e37f);
		}
		all0 += ones == 0;
		all1 += ones == cols;
		single += ones == 1;
		leftpad += first > 0 && first < cols && ones == cols - first;
		holes += hole_inside;
	}
	assert_true(all0 >= 1 && all1 >= 1 && single >= 1 && leftpad >= 1 && holes > 10);
	assert_true(in->scalars[0] == 0.1 && in->scalars[1] == 3);
	kiln_inputs_free(in);
	/* odd: every special kind, and the regime's scalars */
	assert_int_equal(kiln_inputs_generate_regime(&in, t, &env, 12, 1), 0);
	assert_true(in->scalars[0] == 0.5 && in->scalars[1] == 7 && in->regime == 1);
	size_t seen[8] = {0};
	for (size_t i = 0; i < in->bufs[2].count; i++) {
		double v = kiln_dtype_load(KILN_BF16, in->bufs[2].data, i);
		seen[0] += v == 0 && !signbit(v);
		seen[1] += v == 0 && signbit(v);
		seen[2] += v != 0 && fabs(v) < 0x1p-126 && v > 0;
		seen[3] += v < 0 && v > -0x1p-118;
		seen[4] += isinf(v) && v > 0;
		seen[5] += isinf(v) && v < 0;
		seen[6] += isnan(v);
		seen[7] += fabs(v) > 1e29 && isfinite(v);
	}
	for (int k = 0; k < 8; k++)
		if (!seen[k])
			fail_msg("special kind %d never drawn", k);
	/* multi-step: scalars per step, `in` buffers redrawn, inout kept */
	uint8_t h0[4096], q0[4096];
	memcpy(h0, in->bufs[2].data, in->bufs[2].bytes);
	memcpy(q0, in->bufs[3].data, in->bufs[3].bytes);
	assert_int_equal(kiln_inputs_step(in, t, 0), 0);
	assert_true(in->scalars[1] == 1 && in->scalars[0] == 0.5);
	assert_int_equal(kiln_inputs_step(in, t, 2), 0);
	assert_true(in->scalars[1] == 3);
	assert_memory_equal(h0, in->bufs[2].data, in->bufs[2].bytes);
	assert_memory_not_equal(q0, in->bufs[3].data, in->bufs[3].bytes);
	assert_int_equal(kiln_inputs_step(in, t, 3), KILN_EINVAL);
	kiln_inputs_free(in);
	assert_int_equal(kiln_inputs_generate_regime(&in, t, &env, 1, 2), KILN_EINVAL);
	kiln_target_free(t);
}

/* ---- the reference ---- */

static int ref_calls;

static kiln_err toy_ref(kiln_ref_io *io)
{
	ref_calls++;
	double *x = kiln_ref_buf(io, "x"), *mask = kiln_ref_buf(io, "mask"), *y = kiln_ref_buf(io, "y");
	double *h = kiln_ref_buf(io, "h"), *ys = kiln_ref_slack(io, "y");
	size_t n = kiln_ref_count(io, "y");
	if (!x || !mask || !y || !h || !ys || n != kiln_ref_count(io, "x"))
		return kiln_error_set(KILN_EINVAL, "toy: missing buffer");
	if (kiln_ref_buf(io, "nope") || kiln_ref_count(io, "nope") != 0 || !isnan(kiln_ref_scalar(io, "nope")) ||
	    kiln_ref_symbol(io, "nope") != -1 || kiln_ref_slack(io, "x"))
		return kiln_error_set(KILN_EINVAL, "toy: unknown names must give NULL / 0 / NaN / -1");
	if ((size_t)(kiln_ref_symbol(io, "B") * kiln_ref_symbol(io, "T")) != n)
		return kiln_error_set(KILN_EINVAL, "toy: symbols do not match the count");
	double alpha = kiln_ref_scalar(io, "alpha");
	if (alpha != (double)0.1f || kiln_ref_scalar(io, "k") != 3.0)
		return kiln_error_set(KILN_EINVAL, "toy: scalars must be rounded to their dtype");
	for (size_t i = 0; i < n; i++) {
		if (y[i] != 0.0 || ys[i] != 0.0)
			return kiln_error_set(KILN_EINVAL, "toy: out buffers must start at zero");
		y[i] = mask[i] ? alpha * x[i] : 0.0;
		ys[i] = 0.5;
	}
	for (size_t i = 0; i < kiln_ref_count(io, "h"); i++)
		h[i] *= 2;
	return KILN_OK;
}

static kiln_err failing_ref(kiln_ref_io *io)
{
	(void)io;
	return kiln_error_set(KILN_EINVAL, "bad sizes");
}

static void test_targets__reference_run(void **state)
{
	(void)state;
	kiln_target *t = load_toy();
	t->ref_fn = toy_ref;
	kiln_env env;
	kiln_target_sizes(&env, t, false, 1);
	kiln_inputs *in = NULL;
	kiln_refdata *r = NULL;
	assert_int_equal(kiln_inputs_generate(&in, t, &env, 5), 0);
	ref_calls = 0;
	if (kiln_reference_run(&r, t, in))
		fail_msg("%s", kiln_error_last());
	assert_int_equal(ref_calls, 1);
	assert_int_equal(r->n, 5);
	assert_null(r->slack[0]);      /* in */
	assert_non_null(r->slack[2]);  /* inout */
	assert_int_equal(r->count[4], 21);
	for (size_t i = 0; i < 21; i++) {
		double xv = kiln_dtype_load(KILN_F32, in->bufs[0].data, i);
		double mv = kiln_dtype_load(KILN_BOOL, in->bufs[1].data, i);
		assert_true(isnan(xv) ? isnan(r->values[0][i]) : r->values[0][i] == xv); /* in: as given */
		assert_true(r->values[4][i] == (mv ? (double)0.1f * xv : 0.0));
		assert_true(r->slack[4][i] == 0.5);
		assert_true(r->values[2][i] == 2 * kiln_dtype_load(KILN_BF16, in->bufs[2].data, i));
		assert_true(r->slack[2][i] == 0.0);
	}
	kiln_refdata_free(r);
	kiln_refdata_free(NULL);
	t->ref_fn = failing_ref;
	r = (kiln_refdata *)0x1;
	assert_int_equal(kiln_reference_run(&r, t, in), KILN_EINVAL);
	assert_null(r);
	assert_contains(kiln_error_last(), "target toy: reference adamw: bad sizes");
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* ---- external references (reference.c / reference.py) and scaffolding ---- */

static const char toy_ref_c[] =
	"#include <kiln/reference.h>\n"
	"int kiln_reference(kiln_ref_io *io)\n{\n"
	"\tdouble *x = kiln_ref_buf(io, \"x\"), *mask = kiln_ref_buf(io, \"mask\"), *y = kiln_ref_buf(io, \"y\");\n"
	"\tdouble *h = kiln_ref_buf(io, \"h\"), *ys = kiln_ref_slack(io, \"y\");\n"
	"\tif (!x || !mask || !y || !h || !ys || kiln_ref_slack(io, \"x\") || kiln_ref_buf(io, \"nope\"))\n"
	"\t\treturn kiln_ref_fail(io, \"toy: accessors %d\", 1);\n"
	"\tdouble alpha = kiln_ref_scalar(io, \"alpha\");\n"
	"\tfor (size_t i = 0; i < kiln_ref_count(io, \"y\"); i++) {\n"
	"\t\ty[i] = mask[i] ? alpha * x[i] : 0.0;\n\t\tys[i] = 0.5;\n\t}\n"
	"\tfor (size_t i = 0; i < kiln_ref_count(io, \"h\"); i++)\n\t\th[i] *= 2;\n"
	"\treturn kiln_ref_symbol(io, \"B\") > 0 ? 0 : kiln_ref_fail(io, \"no B\");\n}\n";

static const char toy_ref_py[] =
	"import numpy as np\n"
	"def reference(inputs, scalars, sizes):\n"
	"    m = inputs['mask'] != 0\n"
	"    assert inputs['x'].shape == (sizes['B'], sizes['T']) and 'y' not in inputs\n"
	"    y = np.where(m, scalars['alpha'] * np.where(m, inputs['x'], 0.0), 0.0)\n"
	"    return {'y': y, 'h': inputs['h'] * 2}, {'y': 0.5}\n";

/* A toy target whose reference is the given file; returns it loaded. */
static kiln_target *ext_toy(const char *sub, const char *file, const char *text)
{
	char ref[64];
	snprintf(ref, sizeof ref, "\"reference\": \"%s\"", file);
	char *dir = make_target(sub, "toy", "\"reference\": \"adamw\"", ref, NULL);
	write_file(dir, file, text);
	kiln_target *t = NULL;
	if (kiln_target_load(&t, dir))
		fail_msg("%s", kiln_error_last());
	free(dir);
	return t;
}

/* The external reference's answer equals the built-in toy_ref's, bit for bit. */
static void assert_same_as_toy(kiln_target *t)
{
	kiln_env env;
	kiln_inputs *in = NULL;
	kiln_refdata *a = NULL, *b = NULL;
	kiln_target_sizes(&env, t, false, 2);
	assert_int_equal(kiln_inputs_generate(&in, t, &env, 9), 0);
	if (kiln_reference_run(&a, t, in))
		fail_msg("%s", kiln_error_last());
	kiln_ref_kind kind = t->ref_kind;
	t->ref_fn = toy_ref;
	t->ref_kind = KILN_REF_BUILTIN;
	assert_int_equal(kiln_reference_run(&b, t, in), 0);
	t->ref_fn = NULL;
	t->ref_kind = kind;
	for (size_t i = 0; i < a->n; i++)
		for (size_t j = 0; j < a->count[i]; j++) {
			if (memcmp(&a->values[i][j], &b->values[i][j], sizeof(double)) &&
			    !(isnan(a->values[i][j]) && isnan(b->values[i][j])))
				fail_msg("buffer %zu [%zu]: %.17g vs %.17g", i, j, a->values[i][j], b->values[i][j]);
			if (a->slack[i] && a->slack[i][j] != b->slack[i][j])
				fail_msg("slack %zu [%zu]: %g vs %g", i, j, a->slack[i][j], b->slack[i][j]);
		}
	kiln_refdata_free(a);
	kiln_refdata_free(b);
	kiln_inputs_free(in);
}

/* Runs t's reference on a small set and returns the error code (message in kiln_error_last). */
static kiln_err run_small(kiln_target *t)
{
	kiln_env env;
	kiln_inputs *in = NULL;
	kiln_refdata *r = NULL;
	kiln_target_sizes(&env, t, false, 1);
	assert_int_equal(kiln_inputs_generate(&in, t, &env, 3), 0);
	kiln_err e = kiln_reference_run(&r, t, in);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	return e;
}

static void test_targets__external_c(void **state)
{
	(void)state;
	char *cache = kiln_path_join(tmp_root, "refcache");
	kiln_reference_cache_set(cache);
	kiln_target *t = ext_toy("extc", "reference.c", toy_ref_c);
	assert_int_equal(t->ref_kind, KILN_REF_C);
	assert_null(t->ref_fn);
	assert_same_as_toy(t);
	assert_same_as_toy(t); /* loaded once per process: the second run reuses it */
	kiln_target_free(t);
	static const struct {
		const char *body, *want;
		kiln_err code;
	} bad[] = {
		{"int kiln_reference(kiln_ref_io *io) { return 0 }\n", "does not compile", KILN_EINVAL},
		{"int kiln_reference(kiln_ref_io *io) { *(volatile int *)0 = 1; return 0; }\n", "crashed (signal 11",
		 KILN_EFAULT},
		{"int kiln_reference(kiln_ref_io *io) { for (;;) { volatile int x = 0; (void)x; } }\n", "did not finish",
		 KILN_ETIMEOUT},
		{"int kiln_reference(kiln_ref_io *io) { return kiln_ref_fail(io, \"bad %s\", \"z\"); }\n",
		 "reference.c failed (returned -1): bad z", KILN_EINVAL},
		{"int kiln_reference(kiln_ref_io *io) { kiln_ref_slack(io, \"y\")[0] = -1; return 0; }\n",
		 "gave slack -1 for y[0]", KILN_EINVAL},
	};
	setenv("KILN_REF_TIMEOUT", "0.5", 1);
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		char sub[32], text[512];
		snprintf(sub, sizeof sub, "extbad%zu", i);
		snprintf(text, sizeof text, "#include <kiln/reference.h>\n%s", bad[i].body);
		t = ext_toy(sub, "reference.c", text);
		assert_int_equal(run_small(t), bad[i].code);
		assert_contains(kiln_error_last(), bad[i].want);
		assert_contains(kiln_error_last(), "target toy");
		kiln_target_free(t);
	}
	unsetenv("KILN_REF_TIMEOUT");
	kiln_reference_cache_set(NULL);
	free(cache);
}

/* python3 with numpy: $KILN_PYTHON, python3 or /usr/bin/python3 (set as KILN_PYTHON). */
static bool have_numpy(void)
{
	const char *c[] = {getenv("KILN_PYTHON"), "python3", "/usr/bin/python3"};
	for (size_t i = 0; i < 3; i++) {
		char cmd[512];
		if (!c[i] || !*c[i])
			continue;
		snprintf(cmd, sizeof cmd, "%s -c 'import numpy' >/dev/null 2>&1", c[i]);
		if (system(cmd) == 0) {
			setenv("KILN_PYTHON", c[i], 1);
			return true;
		}
	}
	return false;
}

static void test_targets__external_py(void **state)
{
	(void)state;
	if (!have_numpy()) {
		print_message("no python3 with numpy (apt-get install python3-numpy): skipped\n");
		skip();
	}
	kiln_target *t = ext_toy("extpy", "reference.py", toy_ref_py);
	assert_int_equal(t->ref_kind, KILN_REF_PY);
	assert_same_as_toy(t);
	kiln_target_free(t);
	t = ext_toy("extpy2", "reference.py", "def reference(inputs, scalars, sizes):\n    return {'y': 0}\n");
	assert_int_equal(run_small(t), KILN_EINVAL);
	assert_contains(kiln_error_last(), "expected exactly ['h', 'y']");
	kiln_target_free(t);
}

static void test_targets__reference_resolution(void **state)
{
	(void)state;
	kiln_target *t = NULL;
	char *dir = make_target("res1", "toy", "  \"reference\": \"adamw\",\n", "", NULL);
	assert_int_equal(kiln_target_load(&t, dir), KILN_EINVAL);
	assert_contains(kiln_error_last(), "reference: missing, and the folder has no reference.c or reference.py");
	write_file(dir, "reference.py", "def reference(i, s, z):\n    return {}\n");
	assert_int_equal(kiln_target_load(&t, dir), 0);
	assert_int_equal(t->ref_kind, KILN_REF_PY);
	assert_contains(t->ref_path, "res1/toy/reference.py");
	kiln_target_free(t);
	write_file(dir, "reference.c", "int kiln_reference(void *io) { return 0; }\n");
	assert_int_equal(kiln_target_load(&t, dir), KILN_EINVAL);
	assert_contains(kiln_error_last(), "has both reference.c and reference.py; say which");
	free(dir);
	dir = make_target("res2", "toy", "\"reference\": \"adamw\"", "\"reference\": \"reference.c\"", NULL);
	assert_int_equal(kiln_target_load(&t, dir), KILN_EINVAL);
	assert_contains(kiln_error_last(), "reference.c: no such file");
	free(dir);
	dir = make_target("res3", "toy", "\"reference\": \"adamw\"", "\"reference\": \"nonesuch\"", NULL);
	assert_int_equal(kiln_target_load(&t, dir), KILN_EINVAL);
	assert_contains(kiln_error_last(), "no built-in reference named \"nonesuch\"");
	free(dir);
}

static void test_targets__search_path(void **state)
{
	(void)state;
	char **dirs = NULL;
	size_t n = 0;
	setenv("KILN_TARGETS_DIR", "/a/b::/c", 1);
	assert_int_equal(kiln_targets_search_path(&dirs, &n, "/mine"), 0);
	assert_int_equal(n, 4);
	assert_string_equal(dirs[0], "/mine");
	assert_string_equal(dirs[1], "/a/b");
	assert_string_equal(dirs[2], "/c");
	assert_string_equal(dirs[3], kiln_targets_builtin_dir());
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	free(dirs);
	/* a folder of $KILN_TARGETS_DIR adds to the built-ins */
	char *dir = make_target("envlib", "toy", NULL, NULL, NULL), *lib = kiln_path_join(tmp_root, "envlib");
	setenv("KILN_TARGETS_DIR", lib, 1);
	kiln_target *t = NULL;
	assert_int_equal(kiln_target_find(&t, "toy", NULL), 0);
	kiln_target_free(t);
	assert_int_equal(kiln_target_find(&t, "lion", NULL), 0);
	kiln_target_free(t);
	unsetenv("KILN_TARGETS_DIR");
	free(lib);
	free(dir);
}

static void test_targets__scaffold(void **state)
{
	(void)state;
	char *parent = kiln_path_join(tmp_root, "scaffold"), *made = NULL, *cu = kiln_path_join(tmp_root, "k.cu");
	write_file(tmp_root, "k.cu",
		   "#define BLOCK 128\nextern \"C\" __global__ void __launch_bounds__(BLOCK)\n"
		   "my_kernel(float *__restrict__ out, const __nv_bfloat16 *in, const unsigned char *mask,\n"
		   "          float scale, int k, long long rows, long long cols)\n{ }\n");
	assert_int_equal(kiln_target_scaffold(&made, "mine", parent, cu, true), 0);
	kiln_target *t = NULL;
	if (kiln_target_load(&t, made))
		fail_msg("%s", kiln_error_last());
	assert_int_equal(t->nbuffers, 3);
	assert_string_equal(t->buffers[0].name, "out");
	assert_int_equal(t->buffers[0].role, KILN_ROLE_INOUT);
	assert_int_equal(t->buffers[1].dtype, KILN_BF16);
	assert_int_equal(t->buffers[1].role, KILN_ROLE_IN);
	assert_int_equal(t->buffers[2].dtype, KILN_U8);
	assert_int_equal(t->nscalars, 2);
	assert_int_equal(t->scalars[1].dtype, KILN_I32);
	assert_int_equal(t->nsymbols, 2);
	assert_string_equal(t->symbols[1].name, "cols");
	assert_int_equal(t->ref_kind, KILN_REF_PY);
	kiln_plan *p = NULL;
	if (kiln_plan_load(&p, t->launch_path, t))
		fail_msg("%s", kiln_error_last());
	assert_string_equal(p->launches[0].kernel, "my_kernel");
	assert_int_equal(p->launches[0].nargs, 7);
	kiln_plan_free(p);
	kiln_target_free(t);
	free(made);
	assert_int_equal(kiln_target_scaffold(&made, "mine", parent, cu, true), KILN_EINVAL);
	assert_contains(kiln_error_last(), "already exists");
	write_file(tmp_root, "k.cu", "extern \"C\" __global__ void k(float **pp, long long n) {}\n");
	assert_int_equal(kiln_target_scaffold(&made, "mine2", parent, cu, false), KILN_EINVAL);
	assert_contains(kiln_error_last(), "parameter pp is a pointer to a pointer");
	write_file(tmp_root, "k.cu", "extern \"C\" __global__ void k(float4 *v, long long n) {}\n");
	assert_int_equal(kiln_target_scaffold(&made, "mine3", parent, cu, false), KILN_EINVAL);
	assert_contains(kiln_error_last(), "parameter v has type \"float4\" *");
	assert_int_equal(kiln_target_scaffold(&made, "min", parent, NULL, false), KILN_EINVAL); /* reserved */
	assert_int_equal(kiln_target_scaffold(&made, "axpy", parent, NULL, false), 0);
	assert_int_equal(kiln_target_load(&t, made), 0);
	assert_int_equal(t->ref_kind, KILN_REF_C);
	kiln_target_free(t);
	free(made);
	free(cu);
	free(parent);
}

/* ---- finding and listing ---- */

static void test_targets__find_and_list(void **state)
{
	(void)state;
	char *dir = make_target("lib", "toy", NULL, NULL, NULL);
	char *lib = kiln_path_join(tmp_root, "lib");
	char *junk = kiln_path_join(lib, "not_a_target");
	kiln_mkdir_p(junk);
	char **names = NULL;
	size_t n = 0;
	assert_int_equal(kiln_targets_list(&names, &n, lib), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "toy");
	free(names[0]);
	free(names);
	kiln_target *t = NULL;
	assert_int_equal(kiln_target_find(&t, "toy", lib), 0);
	assert_string_equal(t->name, "toy");
	kiln_target_free(t);
	assert_int_equal(kiln_target_find(&t, dir, NULL), 0); /* a path */
	kiln_target_free(t);
	assert_int_equal(kiln_target_find(&t, "no_such_target", lib), KILN_ENOTFOUND);
	assert_contains(kiln_error_last(), "no target named \"no_such_target\"");
	assert_null(t);
	char *nowhere = kiln_path_join(tmp_root, "nowhere");
	assert_int_equal(kiln_targets_list(&names, &n, nowhere), KILN_EIO);
	assert_contains(kiln_error_last(), nowhere);
	free(nowhere);
	free(junk);
	free(lib);
	free(dir);
}

/* Every built-in target loads, its seed launch plan validates and evaluates at every
 * verification size, inputs generate and the reference runs at the smallest size. */
static void test_targets__builtin_targets(void **state)
{
	(void)state;
	char **names = NULL;
	size_t n = 0;
	if (kiln_targets_list(&names, &n, KILN_SOURCE_ROOT "/targets") || n == 0) {
		free(names);
		skip();
	}
	for (size_t i = 0; i < n; i++) {
		kiln_target *t = NULL;
		kiln_plan *p = NULL;
		char *dir = kiln_path_join(KILN_SOURCE_ROOT "/targets", names[i]);
		if (kiln_target_load(&t, dir))
			fail_msg("built-in target %s: %s", names[i], kiln_error_last());
		if (kiln_plan_load(&p, t->launch_path, t))
			fail_msg("built-in target %s: %s", names[i], kiln_error_last());
		for (size_t s = 0; s < t->nverify_sizes; s++) {
			kiln_env env;
			assert_int_equal(kiln_target_sizes(&env, t, false, s), 0);
			for (size_t k = 0; k < t->nknobs; k++)
				kiln_env_set(&env, t->knobs[k].name, t->knobs[k].values[0]);
			kiln_env_set(&env, "sm_count", 132);
			for (size_t l = 0; l < p->nlaunches; l++) {
				kiln_dims d;
				if (kiln_plan_dims(&d, p, l, &env))
					fail_msg("built-in target %s: %s", names[i], kiln_error_last());
			}
		}
		kiln_env env;
		kiln_inputs *in = NULL;
		kiln_refdata *r = NULL;
		assert_int_equal(kiln_target_sizes(&env, t, false, 0), 0);
		if (kiln_inputs_generate(&in, t, &env, 1) || kiln_reference_run(&r, t, in))
			fail_msg("built-in target %s: %s", names[i], kiln_error_last());
		kiln_refdata_free(r);
		kiln_inputs_free(in);
		kiln_plan_free(p);
		kiln_target_free(t);
		free(dir);
		free(names[i]);
	}
	free(names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets__expr_values),
		cmocka_unit_test(test_targets__expr_errors),
		cmocka_unit_test(test_targets__expr_check),
		cmocka_unit_test(test_targets__env_capacity),
		cmocka_unit_test(test_targets__bf16_rounding),
		cmocka_unit_test(test_targets__f16_rounding),
		cmocka_unit_test(test_targets__dtype_store_load),
		cmocka_unit_test(test_targets__load_valid),
		cmocka_unit_test(test_targets__load_malformed),
		cmocka_unit_test(test_targets__bench_sizes_and_weights),
		cmocka_unit_test(test_targets__plan_valid),
		cmocka_unit_test(test_targets__plan_block_limit),
		cmocka_unit_test(test_targets__plan_graph_opt_in),
		cmocka_unit_test(test_targets__plan_malformed),
		cmocka_unit_test(test_targets__inputs_deterministic),
		cmocka_unit_test(test_targets__mask_and_garbage),
		cmocka_unit_test(test_targets__regimes),
		cmocka_unit_test(test_targets__reference_run),
		cmocka_unit_test(test_targets__find_and_list),
		cmocka_unit_test(test_targets__builtin_targets),
		cmocka_unit_test(test_targets__external_c),
		cmocka_unit_test(test_targets__external_py),
		cmocka_unit_test(test_targets__reference_resolution),
		cmocka_unit_test(test_targets__search_path),
		cmocka_unit_test(test_targets__scaffold),
	};
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
