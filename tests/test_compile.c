/* Unit tests for compile/: real NVRTC + nvJitLink compiles of tiny kernels — resources
 * parsed, compile errors as data with line numbers, spills detected, the cache (a hit
 * makes no NVRTC call, defines change the key, damaged entries are rewritten), toolkit
 * headers, and a fat binary of two architectures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compile/compile.h"

/* LeakSanitizer hook (ASan builds only call it): nvJitLink 13.0 leaks one ~4 KB buffer
 * inside the library each time ptxas rejects a PTX (test_compile__ptxas_error_is_data);
 * that is the toolkit's leak, not kiln's, so the toolkit libraries are suppressed. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libnvJitLink.so\nleak:libnvrtc.so\n";
}

static const char tiny_src[] =
	"extern \"C\" __global__ void scale(float *a, float s, int n)\n"
	"{\n"
	"\tint i = blockIdx.x * blockDim.x + threadIdx.x;\n"
	"\tif (i < n)\n"
	"\t\ta[i] *= s;\n"
	"}\n"
	"extern \"C\" __global__ void tile(float *a)\n"
	"{\n"
	"\t__shared__ float t[128];\n"
	"\tt[threadIdx.x] = a[threadIdx.x];\n"
	"\t__syncthreads();\n"
	"\ta[threadIdx.x] = t[127 - threadIdx.x];\n"
	"}\n";

/* 64 values live at once under a 24-register cap must spill. */
static const char spill_src[] =
	"extern \"C\" __global__ void spill(const float *a, float *b, int n)\n"
	"{\n"
	"\tfloat v[64];\n"
	"#pragma unroll\n"
	"\tfor (int j = 0; j < 64; j++) v[j] = a[j * n + threadIdx.x];\n"
	"\tfloat s = 0.f;\n"
	"#pragma unroll\n"
	"\tfor (int j = 0; j < 64; j++) s += v[j] * v[63 - j] * s + v[(j * 5) % 64];\n"
	"\tb[threadIdx.x] = s;\n"
	"}\n";

static char *make_tmpdir(void)
{
	char tmpl[] = "/tmp/kiln-test-compile-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void rm_rf(const char *dir)
{
	char *cmd = kiln_asprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void test_compile__tiny_kernel_resources(void **state)
{
	(void)state;
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = tiny_src;
	o.name = "tiny.cu";
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_true(c->ok);
	assert_non_null(strstr(c->ptx, ".entry scale"));
	assert_non_null(c->cubin);
	assert_true(c->cubin_len > 16);
	assert_memory_equal(c->cubin, "\x7f" "ELF", 4);
	assert_int_equal(c->nkernels, 2);
	const kiln_kernel_resources *k = kiln_compile_kernel(c, "scale");
	assert_non_null(k);
	assert_true(k->registers > 0 && k->registers <= 255);
	assert_int_equal(k->spill_store_bytes, 0);
	assert_int_equal(k->shared_bytes, 0);
	assert_true(k->const_bytes > 0); /* parameters live in constant bank 0 */
	const kiln_kernel_resources *t = kiln_compile_kernel(c, "tile");
	assert_non_null(t);
	assert_int_equal(t->shared_bytes, 128 * 4);
	assert_int_equal(t->barriers, 1);
	assert_null(kiln_compile_kernel(c, "nope"));
	assert_string_equal(c->arch, "sm_90");
	assert_non_null(strstr(c->toolkit, "NVRTC"));
	assert_false(c->cache_hit);
	assert_true(c->wall_s > 0);
	char *j = kiln_compile_resources_json(c);
	assert_non_null(strstr(j, "\"name\":\"tile\""));
	assert_non_null(strstr(j, "\"shared_bytes\":512"));
	free(j);
	kiln_compiled_free(c);
	kiln_compiled_free(NULL);
}

static void test_compile__syntax_error_is_data(void **state)
{
	(void)state;
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = "extern \"C\" __global__ void k(float *a)\n{\n\ta[0] = 1.0f\n\tint x = ;\n}\n";
	o.name = "broken.cu";
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_false(c->ok);
	assert_null(c->ptx);
	assert_null(c->cubin);
	/* NVRTC names the file and the line: "broken.cu(4): error: ..." */
	assert_non_null(strstr(c->log, "broken.cu(4)"));
	assert_non_null(strstr(c->log, "error"));
	kiln_compiled_free(c);
}

/* NVRTC accepts it, ptxas (inside nvJitLink) refuses: still data, not a kiln_err. */
static void test_compile__ptxas_error_is_data(void **state)
{
	(void)state;
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = "extern \"C\" __global__ void big(float *a)\n"
		   "{ __shared__ float s[100000]; s[threadIdx.x] = a[threadIdx.x]; __syncthreads();"
		   " a[threadIdx.x] = s[99999 - threadIdx.x]; }\n";
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_false(c->ok);
	assert_null(c->cubin);
	assert_non_null(strstr(c->log, "shared"));
	kiln_compiled_free(c);
}

static void test_compile__bad_arch_is_einval(void **state)
{
	(void)state;
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = tiny_src;
	o.arch = "gfx90a";
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), KILN_EINVAL);
	assert_null(c);
	assert_non_null(strstr(kiln_error_last(), "gfx90a"));
	o.arch = NULL;
	o.source = NULL;
	assert_int_equal(kiln_compile(&c, &o), KILN_EINVAL);
}

static void test_compile__spills_reported(void **state)
{
	(void)state;
	const char *flags[] = {"--maxrregcount=24"};
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = spill_src;
	o.flags = flags;
	o.nflags = 1;
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_true(c->ok);
	const kiln_kernel_resources *k = kiln_compile_kernel(c, "spill");
	assert_non_null(k);
	assert_true(k->registers <= 24);
	assert_true(k->spill_store_bytes > 0);
	assert_true(k->spill_load_bytes > 0);
	assert_true(k->stack_bytes > 0);
	kiln_compiled_free(c);
	/* without the cap the same kernel does not spill */
	o.nflags = 0;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_int_equal(kiln_compile_kernel(c, "spill")->spill_store_bytes, 0);
	kiln_compiled_free(c);
}

static void test_compile__cache_hit_makes_no_nvrtc_call(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = tiny_src;
	o.name = "first.cu";
	o.cache_dir = dir;
	kiln_compiled *a = NULL, *b = NULL;
	kiln_compile_stats s;
	kiln_compile_stats_reset();
	assert_int_equal(kiln_compile(&a, &o), 0);
	kiln_compile_stats_get(&s);
	assert_int_equal(s.nvrtc_calls, 1);
	assert_int_equal(s.cache_misses, 1);
	assert_false(a->cache_hit);
	o.name = "second.cu";
	assert_int_equal(kiln_compile(&b, &o), 0);
	kiln_compile_stats_get(&s);
	assert_int_equal(s.nvrtc_calls, 1);
	assert_int_equal(s.jitlink_calls, 1);
	assert_int_equal(s.cache_hits, 1);
	assert_true(b->cache_hit);
	assert_true(b->ok);
	assert_string_equal(a->key, b->key);
	assert_string_equal(a->ptx, b->ptx);
	assert_int_equal(a->cubin_len, b->cubin_len);
	assert_memory_equal(a->cubin, b->cubin, a->cubin_len);
	assert_int_equal(b->nkernels, 2);
	assert_int_equal(kiln_compile_kernel(b, "tile")->shared_bytes, 512);
	assert_int_equal(kiln_compile_kernel(b, "scale")->registers,
			 kiln_compile_kernel(a, "scale")->registers);
	kiln_compiled_free(a);
	kiln_compiled_free(b);
	rm_rf(dir);
	free(dir);
}

/* One compile per candidate: a PTX-only request (verification on the emulator) is served
 * by the entry the cubin compile (evaluation) stored; the other way round is a miss that
 * links the cubin. */
static void test_compile__cubin_entry_serves_ptx_only(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = tiny_src;
	o.cache_dir = dir;
	kiln_compiled *a = NULL, *b = NULL, *c = NULL;
	kiln_compile_stats s;
	kiln_compile_stats_reset();
	assert_int_equal(kiln_compile(&a, &o), 0);
	o.want_cubin = false;
	assert_int_equal(kiln_compile(&b, &o), 0);
	kiln_compile_stats_get(&s);
	assert_int_equal(s.nvrtc_calls, 1);
	assert_true(b->cache_hit);
	assert_string_equal(a->key, b->key);
	assert_string_equal(a->ptx, b->ptx);
	/* PTX-only first (a fresh source): the cubin request compiles and links */
	o.source = "extern \"C\" __global__ void z(float *a) { a[threadIdx.x] = 7.0f; }\n";
	kiln_compiled_free(b);
	assert_int_equal(kiln_compile(&b, &o), 0);
	assert_null(b->cubin);
	o.want_cubin = true;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_false(c->cache_hit);
	assert_non_null(c->cubin);
	kiln_compile_stats_get(&s);
	assert_int_equal(s.nvrtc_calls, 3);
	kiln_compiled_free(c);
	o.want_cubin = false; /* the rewritten entry now serves both */
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_true(c->cache_hit);
	assert_non_null(c->cubin);
	kiln_compiled_free(a);
	kiln_compiled_free(b);
	kiln_compiled_free(c);
	rm_rf(dir);
	free(dir);
}

static void test_compile__cached_error_log_names_new_file(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = "extern \"C\" __global__ void k() { undeclared = 1; }\n";
	o.name = "one.cu";
	o.cache_dir = dir;
	kiln_compiled *a = NULL, *b = NULL;
	assert_int_equal(kiln_compile(&a, &o), 0);
	assert_false(a->ok);
	o.name = "two.cu";
	assert_int_equal(kiln_compile(&b, &o), 0);
	assert_true(b->cache_hit);
	assert_false(b->ok);
	assert_non_null(strstr(b->log, "two.cu(1)"));
	assert_null(strstr(b->log, "one.cu"));
	kiln_compiled_free(a);
	kiln_compiled_free(b);
	rm_rf(dir);
	free(dir);
}

static void test_compile__key_depends_on_defines_and_arch(void **state)
{
	(void)state;
	const char *d1[] = {"BLOCK=128", "VEC=2"}, *d2[] = {"VEC=2", "BLOCK=128"}, *d3[] = {"BLOCK=256", "VEC=2"};
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	char k1[65], k2[65], k3[65], k4[65], k5[65];
	o.source = tiny_src;
	o.defines = d1;
	o.ndefines = 2;
	assert_int_equal(kiln_compile_key(k1, &o), 0);
	o.defines = d2; /* same set, other order: same key */
	assert_int_equal(kiln_compile_key(k2, &o), 0);
	o.defines = d3;
	assert_int_equal(kiln_compile_key(k3, &o), 0);
	o.arch = "sm_80";
	assert_int_equal(kiln_compile_key(k4, &o), 0);
	o.source = "/* changed */";
	assert_int_equal(kiln_compile_key(k5, &o), 0);
	assert_string_equal(k1, k2);
	assert_string_not_equal(k1, k3);
	assert_string_not_equal(k3, k4);
	assert_string_not_equal(k4, k5);
	assert_int_equal(strlen(k1), 64);
}

static void test_compile__defines_reach_the_source(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	const char *src = "#ifndef BLOCK\n#error BLOCK must be defined\n#endif\n"
			  "extern \"C\" __global__ void k(float *a) { __shared__ float s[BLOCK];"
			  " s[threadIdx.x] = 1.f; __syncthreads(); a[threadIdx.x] = s[0]; }\n";
	const char *d128[] = {"BLOCK=128"}, *d64[] = {"BLOCK=64"};
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = src;
	o.cache_dir = dir;
	kiln_compiled *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_false(c->ok);
	assert_non_null(strstr(c->log, "BLOCK must be defined"));
	o.defines = d128;
	o.ndefines = 1;
	assert_int_equal(kiln_compile(&a, &o), 0);
	o.defines = d64;
	assert_int_equal(kiln_compile(&b, &o), 0);
	assert_false(b->cache_hit); /* different define, different entry */
	assert_int_equal(kiln_compile_kernel(a, "k")->shared_bytes, 512);
	assert_int_equal(kiln_compile_kernel(b, "k")->shared_bytes, 256);
	kiln_compiled_free(a);
	kiln_compiled_free(b);
	kiln_compiled_free(c);
	rm_rf(dir);
	free(dir);
}

static void test_compile__corrupt_cache_entry_is_rewritten(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = tiny_src;
	o.cache_dir = dir;
	kiln_compiled *a = NULL, *b = NULL, *c = NULL;
	kiln_compile_stats s;
	assert_int_equal(kiln_compile(&a, &o), 0);
	/* damage the cubin: its hash no longer matches the record */
	char *path = kiln_asprintf("%s/%.2s/%s.cubin", dir, a->key, a->key);
	assert_int_equal(kiln_file_write_atomic(path, "garbage", 7), 0);
	kiln_compile_stats_reset();
	assert_int_equal(kiln_compile(&b, &o), 0);
	kiln_compile_stats_get(&s);
	assert_int_equal(s.cache_corrupt, 1);
	assert_int_equal(s.nvrtc_calls, 1);
	assert_false(b->cache_hit);
	assert_int_equal(b->cubin_len, a->cubin_len);
	/* and it was rewritten: the next compile hits */
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_true(c->cache_hit);
	assert_memory_equal(c->cubin, a->cubin, a->cubin_len);
	free(path);
	/* a record that is not JSON is damage too */
	path = kiln_asprintf("%s/%.2s/%s.json", dir, a->key, a->key);
	assert_int_equal(kiln_file_write_atomic(path, "{not json", 9), 0);
	kiln_compiled_free(c);
	kiln_compile_stats_reset();
	assert_int_equal(kiln_compile(&c, &o), 0);
	kiln_compile_stats_get(&s);
	assert_int_equal(s.cache_corrupt, 1);
	assert_false(c->cache_hit);
	assert_true(c->ok);
	free(path);
	kiln_compiled_free(a);
	kiln_compiled_free(b);
	kiln_compiled_free(c);
	rm_rf(dir);
	free(dir);
}

static void test_compile__bf16_header_works(void **state)
{
	(void)state;
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = "#include <cuda_bf16.h>\n#include <cuda_fp16.h>\n"
		   "extern \"C\" __global__ void cvt(const __nv_bfloat16 *x, __half *y, int n)\n"
		   "{ int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
		   "  if (i < n) y[i] = __float2half(__bfloat162float(x[i]) * 2.f); }\n";
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	if (!c->ok)
		fprintf(stderr, "%s\n", c->log);
	assert_true(c->ok);
	assert_non_null(kiln_compile_kernel(c, "cvt"));
	kiln_compiled_free(c);
}

static void test_compile__ptx_only(void **state)
{
	(void)state;
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = tiny_src;
	o.want_cubin = false;
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_true(c->ok);
	assert_null(c->cubin);
	assert_int_equal(c->nkernels, 2);
	assert_int_equal(c->kernels[0].registers, -1); /* no cubin, no report */
	assert_non_null(strstr(c->ptx, ".target sm_90"));
	kiln_compiled_free(c);
}

static void test_compile__fatbin_two_archs(void **state)
{
	(void)state;
	const char *archs[] = {"sm_80", "sm_90"};
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = tiny_src;
	kiln_fatbin *f = NULL;
	kiln_err e = kiln_compile_fatbin(&f, &o, archs, 2);
	if (e == KILN_EUNSUPPORTED) {
		kiln_fatbin_free(f);
		skip();
	}
	assert_int_equal(e, 0);
	assert_true(f->ok);
	assert_int_equal(f->nparts, 2);
	assert_string_equal(f->parts[0]->arch, "sm_80");
	assert_string_equal(f->parts[1]->arch, "sm_90");
	assert_non_null(f->data);
	/* fatbin magic 0xBA55ED50, little endian */
	assert_true(f->len > f->parts[0]->cubin_len);
	assert_memory_equal(f->data, "\x50\xed\x55\xba", 4);
	kiln_fatbin_free(f);
	/* one arch failing is data, not an error */
	o.source = "extern \"C\" __global__ void k() { nope; }\n";
	assert_int_equal(kiln_compile_fatbin(&f, &o, archs, 2), 0);
	assert_false(f->ok);
	assert_null(f->data);
	kiln_fatbin_free(f);
}

/* The gate before NVRTC: host files are never read, whatever spelling the model tries;
 * the toolkit's headers and ordinary kernel code pass. */
static void test_compile__source_gate_refuses_host_reads(void **state)
{
	(void)state;
	static const char *const refused[] = {
		"#include \"/etc/passwd\"\n", "#include \"/proc/self/environ\"\n", "#include \".env\"\n",
		"#include <../../../../etc/passwd>\n", "#include <cuda/../../../../../etc/passwd>\n",
		"#include <stdio.h>\n", "%:include \"/etc/passwd\"\n", "  /* c\n */ # /**/ include \"/etc/passwd\"\n",
		"#inc\\\nlude \"/etc/passwd\"\n", "#include \\\n\"/etc/passwd\"\n", "#define F \"/etc/passwd\"\n#include F\n",
		"#include_next <cuda_fp16.h>\n", "#embed \"/etc/passwd\"\n", "#import \"/etc/passwd\"\n",
		"#if __has_include(\"/home/u/.ssh/id_rsa\")\n#endif\n", "#if __has_include_next(<x>)\n#endif\n",
		"#define H(x) __has_include(x)\n", "#pragma GCC dependency \"/etc/passwd\"\n",
		"#pragma include_alias(\"a.h\", \"/etc/passwd\")\n", "_Pragma(\"GCC dependency \\\"/etc/passwd\\\"\")\n",
		"#define P(x) _Pragma(#x)\n", "__pragma(message(\"x\"))\n", "#define C(a, b) a##b\n",
		"#define C(a, b) a %:%: b\n", ("?" "?=include \"/etc/passwd\"\n"), "#include \"/etc/passwd\" \\ \n",
		"const char *r = R\"x(\n)x\";\n", "#define __THRUST_DEVICE_SYSTEM_VECTOR_HEADER \"/etc/passwd\"\n",
		"#undef _CCCL_ASSERT\n", "int a = 1;\r#include \"/etc/passwd\"\n", "const char *s = \"abc\n",
		"/* never closed\n", "// \xff\n", "int \\u0061 = 1;\n", "#include \"cuda_fp16.h\" extra\n",
		"const char *s = u8\"/*\";\n#include \"/etc/passwd\"\n// */\n", "#1 \"/etc/passwd\"\n",
		"\xEF\xBB\xBF#include \"/etc/passwd\"\n", "int a;\n\xC2\xA0#include \"/etc/passwd\"\n", "int caf\xC3\xA9 = 1;\n"};
	for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
		if (kiln_compile_source_check(refused[i], strlen(refused[i]), "kernel.cu") != KILN_EINVAL)
			fail_msg("source %zu was not refused: %s", i, refused[i]);
		if (!strstr(kiln_error_last(), "kernel.cu:") || !strstr(kiln_error_last(), "refused") ||
		    strchr(kiln_error_last(), '\n'))
			fail_msg("source %zu: not one line naming the file: %s", i, kiln_error_last());
	}
	static const char *const ok[] = {
		"#include <cuda_fp16.h>\n", "#include \"cuda_bf16.h\"\n", "#include <cub/block/block_reduce.cuh>\n",
		"#include <cuda/std/cstdint>\n", "#include <cooperative_groups.h>\n",
		"#if __has_include(<cuda_fp8.h>)\n#endif\n", "#pragma unroll 4\n", "_Pragma(\"unroll\")\n",
		"#pragma nv_diag_suppress 177\n", "// #include \"/etc/passwd\"\n", "/* #include \"/etc/passwd\" */\n",
		"const char *s = \"#include \\\"/etc/passwd\\\"\";\n", "int n = 1'000'000; char c = '\\'';\n",
		"#ifndef BLOCK\n#define BLOCK 256\n#endif\n", "#define S(x) #x\n", "const char *u = u8\"caf\xc3\xa9\";\n",
		"#define LONG_MACRO(a) \\\n\t((a) + 1)\n", "float x = 1.5e+3f, y = 0x1p-3;\r\n", "#error stop\n"};
	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
		if (kiln_compile_source_check(ok[i], strlen(ok[i]), "kernel.cu") != 0)
			fail_msg("source %zu was refused: %s: %s", i, ok[i], kiln_error_last());
	/* size and NUL, with one line saying so */
	char *big = malloc(KILN_COMPILE_MAX_SOURCE + 2);
	memset(big, ' ', KILN_COMPILE_MAX_SOURCE + 1);
	big[KILN_COMPILE_MAX_SOURCE + 1] = '\0';
	assert_int_equal(kiln_compile_source_check(big, KILN_COMPILE_MAX_SOURCE + 1, "k.cu"), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "at most 1048576 (1 MiB)"));
	free(big);
	assert_int_equal(kiln_compile_source_check("int a;\0#include \"/etc/passwd\"\n", 30, "k.cu"), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "NUL byte"));
	/* kiln_compile: a refusal is a failed compile with that line, and NVRTC is not called
	 * (not even a cache entry stored before the gate existed is used) */
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = "#include \"/etc/hostname\"\nextern \"C\" __global__ void k(float *a) {}\n";
	kiln_compiled *c = NULL;
	kiln_compile_stats st;
	kiln_compile_stats_reset();
	assert_int_equal(kiln_compile(&c, &o), 0);
	kiln_compile_stats_get(&st);
	assert_false(c->ok);
	assert_int_equal(st.nvrtc_calls, 0);
	assert_non_null(strstr(c->log, "kernel.cu:1: refused: \"/etc/hostname\""));
	kiln_compiled_free(c);
	/* a flag that reads files never reaches NVRTC */
	const char *flags[] = {"--pre-include=/etc/passwd"};
	o.source = tiny_src;
	o.flags = flags;
	o.nflags = 1;
	assert_int_equal(kiln_compile(&c, &o), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "makes NVRTC read files"));
}

/* NVRTC runs in a child under --compile-timeout: past the deadline the compile is a failed
 * one with one line, not cached, and the next compile with time to spare succeeds. */
static void test_compile__deadline_is_a_failed_compile(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	kiln_limits saved = *kiln_limits_get(), l = saved;
	l.compile_timeout_s = 0.005;
	kiln_limits_set(&l);
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = spill_src;
	o.cache_dir = dir;
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_false(c->ok);
	assert_non_null(strstr(c->log, "kernel.cu: refused: NVRTC did not finish within 0 s (--compile-timeout); killed"));
	kiln_compiled_free(c);
	kiln_limits_set(&saved);
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_true(c->ok);
	assert_false(c->cache_hit);
	assert_non_null(kiln_compile_kernel(c, "spill"));
	kiln_compiled_free(c);
	rm_rf(dir);
	free(dir);
}

/* Device globals are counted from the PTX and a module past the budget is refused as a
 * resource limit (a 1 GB __device__ array used to cost 4 GB of RSS and win). */
static void test_compile__device_globals_budget(void **state)
{
	(void)state;
	const char *ptx = ".version 8.0\n.target sm_90\n.global .align 4 .b8 big[4194304];\n"
			  ".visible .global .align 8 .u64 counters[2][3];\n.global .align 16 .v4 .f32 vec[10];\n"
			  ".extern .global .align 4 .b8 ext[100];\n.global .u32 one = 7;\n"
			  ".visible .entry k(\n\t.param .u64 k_param_0\n)\n{\n\t.local .align 4 .b8 notme[99];\n\tret;\n}\n";
	assert_int_equal(kiln_compile_ptx_global_bytes(ptx), 4194304 + 48 + 160 + 4);
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = "__device__ float table[1 << 28];\n"
		   "extern \"C\" __global__ void k(float *x) { x[threadIdx.x] = table[threadIdx.x]; table[1] = 2.f; }\n";
	kiln_compiled *c = NULL;
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_false(c->ok);
	assert_true(c->resource_limit);
	assert_int_equal(c->global_bytes, (int64_t)1 << 30);
	assert_non_null(strstr(c->log, "resource-limit: the module's __device__ globals take 1024 MiB"));
	kiln_compiled_free(c);
}

/* The cache stays under --cache-max: least recently used entries go first, a hit counts
 * as a use. */
static void test_compile__cache_evicts_lru(void **state)
{
	(void)state;
	char *dir = make_tmpdir();
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.cache_dir = dir;
	o.want_cubin = false;
	char src[4][160];
	kiln_compiled *c = NULL;
	for (int i = 0; i < 3; i++) {
		snprintf(src[i], sizeof src[i], "extern \"C\" __global__ void k%d(float *a) { a[threadIdx.x] = %d.0f; }\n", i, i);
		o.source = src[i];
		assert_int_equal(kiln_compile(&c, &o), 0);
		assert_true(c->ok);
		kiln_compiled_free(c);
		usleep(20000); /* distinct use times */
	}
	int64_t three = 0;
	assert_int_equal(kiln_compile_cache_evict(dir, 0, &three), 0); /* measures only */
	assert_true(three > 0);
	o.source = src[0]; /* a hit: entry 0 is now the most recently used */
	assert_int_equal(kiln_compile(&c, &o), 0);
	assert_true(c->cache_hit);
	kiln_compiled_free(c);
	usleep(20000);
	kiln_limits saved = *kiln_limits_get(), l = saved;
	l.cache_max = three + three / 6; /* room for three entries, not four */
	kiln_limits_set(&l);
	snprintf(src[3], sizeof src[3], "extern \"C\" __global__ void k3(float *a) { a[threadIdx.x] = 3.0f; }\n");
	o.source = src[3];
	assert_int_equal(kiln_compile(&c, &o), 0);
	kiln_compiled_free(c);
	kiln_limits_set(&saved);
	int64_t left = 0;
	assert_int_equal(kiln_compile_cache_evict(dir, 0, &left), 0);
	assert_true(left <= l.cache_max);
	bool hit[4];
	kiln_compile_stats_reset();
	for (int i = 0; i < 4; i++) {
		o.source = src[i];
		kiln_compile_stats st;
		kiln_compile_stats_get(&st);
		uint64_t before = st.cache_hits;
		assert_int_equal(kiln_compile(&c, &o), 0);
		kiln_compile_stats_get(&st);
		hit[i] = st.cache_hits > before;
		kiln_compiled_free(c);
	}
	assert_true(hit[0]);  /* used recently: kept */
	assert_false(hit[1]); /* the least recently used: evicted */
	assert_true(hit[3]);  /* just stored */
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compile__tiny_kernel_resources),
		cmocka_unit_test(test_compile__syntax_error_is_data),
		cmocka_unit_test(test_compile__ptxas_error_is_data),
		cmocka_unit_test(test_compile__bad_arch_is_einval),
		cmocka_unit_test(test_compile__spills_reported),
		cmocka_unit_test(test_compile__cache_hit_makes_no_nvrtc_call),
		cmocka_unit_test(test_compile__cubin_entry_serves_ptx_only),
		cmocka_unit_test(test_compile__cached_error_log_names_new_file),
		cmocka_unit_test(test_compile__key_depends_on_defines_and_arch),
		cmocka_unit_test(test_compile__defines_reach_the_source),
		cmocka_unit_test(test_compile__corrupt_cache_entry_is_rewritten),
		cmocka_unit_test(test_compile__bf16_header_works),
		cmocka_unit_test(test_compile__ptx_only),
		cmocka_unit_test(test_compile__fatbin_two_archs),
		cmocka_unit_test(test_compile__source_gate_refuses_host_reads),
		cmocka_unit_test(test_compile__deadline_is_a_failed_compile),
		cmocka_unit_test(test_compile__device_globals_budget),
		cmocka_unit_test(test_compile__cache_evicts_lru),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
