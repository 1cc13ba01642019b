/* test_emu: the PTX emulator against kernels compiled at test time with NVRTC (and
 * hand-written PTX): results checked on the host, faults checked for kind and line,
 * counters checked for the differences the cost model relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvrtc.h>

#include "profile/emu/emu.h"

static char *nvrtc_ptx_opt(const char *src, const char *arch, const char *extra)
{
	nvrtcProgram prog;
	const char *opts[] = {arch, "-I" KILN_CUDA_ROOT "/include", "-I" KILN_CUDA_ROOT "/include/cccl", extra};
	assert_int_equal(nvrtcCreateProgram(&prog, src, "t.cu", 0, NULL, NULL), NVRTC_SUCCESS);
	nvrtcResult r = nvrtcCompileProgram(prog, extra ? 4 : 3, opts);
	if (r != NVRTC_SUCCESS) {
		size_t n;
		nvrtcGetProgramLogSize(prog, &n);
		char *log = malloc(n + 1);
		nvrtcGetProgramLog(prog, log);
		fprintf(stderr, "nvrtc: %s\n", log);
		free(log);
		fail();
	}
	size_t n;
	assert_int_equal(nvrtcGetPTXSize(prog, &n), NVRTC_SUCCESS);
	char *ptx = malloc(n + 1);
	assert_int_equal(nvrtcGetPTX(prog, ptx), NVRTC_SUCCESS);
	nvrtcDestroyProgram(&prog);
	return ptx;
}

static char *nvrtc_ptx(const char *src)
{
	return nvrtc_ptx_opt(src, "--gpu-architecture=compute_90", NULL);
}

static kiln_emu_module *compile_opt(const char *src, const char *arch, const char *extra)
{
	char *ptx = nvrtc_ptx_opt(src, arch, extra);
	kiln_emu_module *m = NULL;
	kiln_err err = kiln_emu_module_parse(&m, ptx, strlen(ptx), "t.ptx");
	if (err) {
		fprintf(stderr, "parse: %s\n", kiln_error_last());
		FILE *f = fopen("/tmp/test_emu_fail.ptx", "w");
		if (f) {
			fputs(ptx, f);
			fclose(f);
		}
	}
	free(ptx);
	assert_int_equal(err, 0);
	return m;
}

static kiln_emu_module *compile(const char *src)
{
	return compile_opt(src, "--gpu-architecture=compute_90", NULL);
}

/* line number (1-based) of the first PTX line of kernel source `src` containing `needle` */
static uint32_t ptx_line_of(const char *src, const char *needle, int nth)
{
	char *ptx = nvrtc_ptx(src);
	uint32_t line = 1, found = 0;
	for (const char *p = ptx; *p; p++) {
		if (strncmp(p, needle, strlen(needle)) == 0 && nth-- == 0) {
			found = line;
			break;
		}
		if (*p == '\n')
			line++;
	}
	free(ptx);
	return found;
}

static kiln_emu *device(void)
{
	kiln_emu *e = NULL;
	assert_int_equal(kiln_emu_new(&e, NULL), 0);
	return e;
}

static uint64_t upload(kiln_emu *e, const void *data, size_t n)
{
	uint64_t a;
	assert_int_equal(kiln_emu_alloc(e, &a, n), 0);
	if (data)
		assert_int_equal(kiln_emu_write(e, a, data, n), 0);
	return a;
}

static kiln_err launch1(kiln_emu *e, kiln_emu_module *m, const char *k, uint32_t g, uint32_t b,
			uint32_t dyn, const void *const *args, kiln_emu_counters *c)
{
	uint32_t grid[3] = {g, 1, 1}, block[3] = {b, 1, 1};
	kiln_err err = kiln_emu_launch(e, m, k, grid, block, dyn, args, c);
	if (err && err != KILN_EFAULT)
		fprintf(stderr, "launch: %s\n", kiln_error_last());
	return err;
}

/* ---------------------------------------------------------------- correctness */
static const char *vadd_src =
	"extern \"C\" __global__ void vadd(const float *a, const float *b, float *c, int n) {\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
	"  if (i < n) c[i] = a[i] + b[i];\n"
	"}\n";

static void test_emu__vector_add_with_tail(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(vadd_src);
	kiln_emu *e = device();
	int n = 1000;
	float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
	for (int i = 0; i < n; i++) {
		a[i] = (float)i * 0.5f;
		b[i] = (float)(n - i);
	}
	uint64_t da = upload(e, a, n * 4), db = upload(e, b, n * 4), dc = upload(e, NULL, n * 4);
	const void *args[] = {&da, &db, &dc, &n};
	kiln_emu_counters cnt = {0};
	assert_int_equal(launch1(e, m, "vadd", (n + 127) / 128, 128, 0, args, &cnt), 0);
	assert_int_equal(kiln_emu_read(e, c, dc, n * 4), 0);
	for (int i = 0; i < n; i++)
		assert_true(c[i] == a[i] + b[i]);
	assert_int_equal(cnt.blocks, 8);
	assert_int_equal(cnt.threads_per_block, 128);
	assert_true(cnt.thread_instructions > (uint64_t)n * 10);
	assert_int_equal(cnt.gst_requests, (n + 31) / 32);
	size_t nk;
	const char *const *names = kiln_emu_module_kernels(m, &nk);
	assert_int_equal(nk, 1);
	assert_string_equal(names[0], "vadd");
	size_t np;
	const kiln_emu_param *ps;
	assert_int_equal(kiln_emu_kernel_params(m, "vadd", &np, &ps), 0);
	assert_int_equal(np, 4);
	assert_int_equal(ps[0].size, 8);
	assert_int_equal(ps[3].size, 4);
	assert_int_equal(ps[3].offset, 24);
	free(a);
	free(b);
	free(c);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static const char *copy_src =
	"extern \"C\" __global__ void copy1(const float *a, float *b, int n) {\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) b[i] = a[i] * 2.0f; }\n"
	"extern \"C\" __global__ void copy4(const float4 *a, float4 *b, int n4) {\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
	"  if (i < n4) { float4 v = a[i]; v.x *= 2.0f; v.y *= 2.0f; v.z *= 2.0f; v.w *= 2.0f; b[i] = v; } }\n"
	"extern \"C\" __global__ void strided(const float *a, float *b, int n, int s) {\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) b[i] = a[(long long)i * s]; }\n"
	"extern \"C\" __global__ void gridstride(const float *a, float *b, int n) {\n"
	"  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)\n"
	"    b[i] = a[i] + 1.0f; }\n";

static void test_emu__float4_and_counters(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(copy_src);
	kiln_emu *e = device();
	int n = 4096, n4 = n / 4;
	float *a = malloc(n * 4), *b = malloc(n * 4);
	for (int i = 0; i < n; i++)
		a[i] = (float)i;
	uint64_t da = upload(e, a, n * 4), db = upload(e, NULL, n * 4);
	kiln_emu_counters c1 = {0}, c4 = {0};
	const void *args1[] = {&da, &db, &n};
	assert_int_equal(launch1(e, m, "copy1", n / 256, 256, 0, args1, &c1), 0);
	const void *args4[] = {&da, &db, &n4};
	assert_int_equal(launch1(e, m, "copy4", n4 / 256, 256, 0, args4, &c4), 0);
	assert_int_equal(kiln_emu_read(e, b, db, n * 4), 0);
	for (int i = 0; i < n; i++)
		assert_true(b[i] == 2.0f * (float)i);
	/* float4: 4x fewer load requests, the same sectors */
	assert_int_equal(c1.gld_requests, n / 32);
	assert_int_equal(c4.gld_requests, n / 32 / 4);
	assert_int_equal(c1.gld_sectors, c4.gld_sectors);
	assert_int_equal(c1.gld_sectors / c1.gld_requests, 4);
	assert_int_equal(c1.dram_sectors, (uint64_t)n * 4 * 2 / 32);
	free(a);
	free(b);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__strided_vs_contiguous(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(copy_src);
	kiln_emu *e = device();
	int n = 1024, s1 = 1, s8 = 8;
	float *a = malloc(n * 8 * 4);
	for (int i = 0; i < n * 8; i++)
		a[i] = (float)i;
	uint64_t da = upload(e, a, n * 8 * 4), db = upload(e, NULL, n * 4);
	kiln_emu_counters cc = {0}, cs = {0};
	const void *a1[] = {&da, &db, &n, &s1};
	const void *a8[] = {&da, &db, &n, &s8};
	assert_int_equal(launch1(e, m, "strided", n / 128, 128, 0, a1, &cc), 0);
	assert_int_equal(launch1(e, m, "strided", n / 128, 128, 0, a8, &cs), 0);
	float *b = malloc(n * 4);
	assert_int_equal(kiln_emu_read(e, b, db, n * 4), 0);
	for (int i = 0; i < n; i++)
		assert_true(b[i] == (float)(i * 8));
	assert_int_equal(cc.gld_sectors / cc.gld_requests, 4);
	assert_int_equal(cs.gld_sectors / cs.gld_requests, 32);
	/* grid-stride loop covering n with a small grid */
	const void *ag[] = {&da, &db, &n};
	kiln_emu_counters cg = {0};
	assert_int_equal(launch1(e, m, "gridstride", 2, 64, 0, ag, &cg), 0);
	assert_int_equal(kiln_emu_read(e, b, db, n * 4), 0);
	for (int i = 0; i < n; i++)
		assert_true(b[i] == (float)i + 1.0f);
	assert_true(cg.loop_iterations >= (uint64_t)(n / 128 - 1) * 4);
	free(a);
	free(b);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static const char *ctrl_src =
	"extern \"C\" __global__ void branchy(const int *a, int *out) {\n"
	"  int t = threadIdx.x; int v = a[t];\n"
	"  if (t & 1) { v = v * 3 + 1; } else { v = v / 2 - 7; }\n"
	"  int acc = 0;\n"
	"  for (int k = 0; k < 100; k++) { if (acc > v * 2) break; acc += t + k; }\n"
	"  out[t] = v + acc; }\n";

static void test_emu__divergence_and_loop_break(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(ctrl_src);
	kiln_emu *e = device();
	int a[64], out[64];
	for (int i = 0; i < 64; i++)
		a[i] = (i * 37) % 50 - 10;
	uint64_t da = upload(e, a, sizeof a), dout = upload(e, NULL, sizeof out);
	const void *args[] = {&da, &dout};
	kiln_emu_counters c = {0};
	assert_int_equal(launch1(e, m, "branchy", 1, 64, 0, args, &c), 0);
	assert_int_equal(kiln_emu_read(e, out, dout, sizeof out), 0);
	for (int t = 0; t < 64; t++) {
		int v = a[t];
		if (t & 1)
			v = v * 3 + 1;
		else
			v = v / 2 - 7;
		int acc = 0;
		for (int k = 0; k < 100; k++) {
			if (acc > v * 2)
				break;
			acc += t + k;
		}
		assert_int_equal(out[t], v + acc);
	}
	assert_true(c.divergent_branches > 0);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static const char *warp_src =
	"extern \"C\" __global__ void wsum(const float *a, float *out, unsigned *ballots) {\n"
	"  int t = threadIdx.x; float v = a[blockIdx.x * 32 + t];\n"
	"  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);\n"
	"  float w = a[blockIdx.x * 32 + t];\n"
	"  for (int o = 1; o < 32; o <<= 1) w = fmaxf(w, __shfl_xor_sync(0xffffffffu, w, o));\n"
	"  unsigned b = __ballot_sync(0xffffffffu, a[blockIdx.x * 32 + t] > 0.0f);\n"
	"  int any = __any_sync(0xffffffffu, t == 5), all = __all_sync(0xffffffffu, t < 31);\n"
	"  float up = __shfl_up_sync(0xffffffffu, (float)t, 3);\n"
	"  float part = 0.0f;\n"
	"  if (t < 16) { part = (float)t; for (int o = 8; o > 0; o >>= 1) part += __shfl_down_sync(0x0000ffffu, part, o, 16); }\n"
	"  if (t == 0) { out[blockIdx.x * 4 + 0] = v; out[blockIdx.x * 4 + 1] = w; out[blockIdx.x * 4 + 3] = part;"
	"    ballots[blockIdx.x * 2] = b; ballots[blockIdx.x * 2 + 1] = any * 2 + all; }\n"
	"  if (t == 7) out[blockIdx.x * 4 + 2] = up; }\n";

static void test_emu__shfl_vote(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(warp_src);
	kiln_emu *e = device();
	float a[64], out[8];
	unsigned bal[4];
	for (int i = 0; i < 64; i++)
		a[i] = (float)((i * 13) % 17) - 6.0f;
	uint64_t da = upload(e, a, sizeof a), dout = upload(e, NULL, sizeof out), db = upload(e, NULL, sizeof bal);
	const void *args[] = {&da, &dout, &db};
	assert_int_equal(launch1(e, m, "wsum", 2, 32, 0, args, NULL), 0);
	assert_int_equal(kiln_emu_read(e, out, dout, sizeof out), 0);
	assert_int_equal(kiln_emu_read(e, bal, db, sizeof bal), 0);
	for (int b = 0; b < 2; b++) {
		float s = 0, mx = -1e30f;
		unsigned ballot = 0;
		for (int t = 0; t < 32; t++) {
			s += a[b * 32 + t];
			mx = fmaxf(mx, a[b * 32 + t]);
			ballot |= (unsigned)(a[b * 32 + t] > 0) << t;
		}
		assert_true(fabsf(out[b * 4] - s) < 1e-4f);
		assert_true(out[b * 4 + 1] == mx);
		assert_true(out[b * 4 + 2] == 4.0f); /* lane 7 reads lane 4 */
		assert_true(out[b * 4 + 3] == 120.0f); /* 0+..+15 over a 16-lane segment */
		assert_int_equal(bal[b * 2], ballot);
		assert_int_equal(bal[b * 2 + 1], 2); /* any(t==5)=1, all(t<31)=0 */
	}
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static const char *shared_src =
	"extern \"C\" __global__ void bsum(const float *a, float *out) {\n"
	"  __shared__ float s[256]; int t = threadIdx.x;\n"
	"  s[t] = a[blockIdx.x * 256 + t]; __syncthreads();\n"
	"  for (int o = 128; o > 0; o >>= 1) { if (t < o) s[t] += s[t + o]; __syncthreads(); }\n"
	"  if (t == 0) out[blockIdx.x] = s[0]; }\n"
	"extern \"C\" __global__ void bsum_race(const float *a, float *out) {\n"
	"  __shared__ float s[256]; int t = threadIdx.x;\n"
	"  s[t] = a[blockIdx.x * 256 + t]; __syncthreads();\n"
	"  for (int o = 128; o > 0; o >>= 1) { if (t < o) s[t] += s[t + o]; }\n"
	"  if (t == 0) out[blockIdx.x] = s[0]; }\n"
	"extern \"C\" __global__ void uninit(float *out) {\n"
	"  __shared__ float s[128]; int t = threadIdx.x;\n"
	"  if (t < 64) s[t] = 1.0f; __syncthreads();\n"
	"  out[t] = s[127 - t]; }\n"
	"extern \"C\" __global__ void transpose(const float *a, float *b, int pad) {\n"
	"  __shared__ float tile[32][33]; int x = threadIdx.x, y = threadIdx.y;\n"
	"  if (pad) tile[y][x] = a[y * 32 + x]; else ((float*)tile)[y * 32 + x] = a[y * 32 + x];\n"
	"  __syncthreads();\n"
	"  b[y * 32 + x] = pad ? tile[x][y] : ((float*)tile)[x * 32 + y]; }\n";

static void test_emu__shared_reduction(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(shared_src);
	kiln_emu *e = device();
	float a[512], out[2];
	for (int i = 0; i < 512; i++)
		a[i] = (float)(i % 7);
	uint64_t da = upload(e, a, sizeof a), dout = upload(e, NULL, sizeof out);
	const void *args[] = {&da, &dout};
	kiln_emu_counters c = {0};
	assert_int_equal(launch1(e, m, "bsum", 2, 256, 0, args, &c), 0);
	assert_int_equal(kiln_emu_read(e, out, dout, sizeof out), 0);
	for (int b = 0; b < 2; b++) {
		float s = 0;
		for (int i = 0; i < 256; i++)
			s += a[b * 256 + i];
		assert_true(out[b] == s);
	}
	assert_int_equal(c.barriers, 2 * 8 * 9);
	assert_int_equal(c.static_shared, 1024);
	assert_int_equal(kiln_emu_kernel_static_shared(m, "bsum"), 1024);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__race_caught_with_both_lines(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(shared_src);
	kiln_emu *e = device();
	float a[256], out[1];
	for (int i = 0; i < 256; i++)
		a[i] = 1.0f;
	uint64_t da = upload(e, a, sizeof a), dout = upload(e, NULL, sizeof out);
	const void *args[] = {&da, &dout};
	assert_int_equal(launch1(e, m, "bsum_race", 1, 256, 0, args, NULL), KILN_EFAULT);
	const kiln_emu_fault *f = kiln_emu_last_fault(e);
	assert_int_equal(f->kind, KILN_EMU_FAULT_RACE);
	assert_true(f->line > 0 && f->other_line > 0);
	assert_int_equal(f->space, KILN_EMU_SPACE_SHARED);
	assert_non_null(strstr(kiln_error_last(), "race"));
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__uninit_shared_read(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(shared_src);
	kiln_emu *e = device();
	uint64_t dout = upload(e, NULL, 128 * 4);
	const void *args[] = {&dout};
	assert_int_equal(launch1(e, m, "uninit", 1, 128, 0, args, NULL), KILN_EFAULT);
	const kiln_emu_fault *f = kiln_emu_last_fault(e);
	assert_int_equal(f->kind, KILN_EMU_FAULT_UNINIT_READ);
	assert_int_equal(f->space, KILN_EMU_SPACE_SHARED);
	assert_true(f->addr >= 256); /* s[64..127] were never written */
	/* the same kernel with initcheck off runs and reads the NaN fill */
	kiln_emu_options o = KILN_EMU_OPTIONS_INIT;
	o.initcheck = false;
	kiln_emu *e2 = NULL;
	assert_int_equal(kiln_emu_new(&e2, &o), 0);
	uint64_t d2 = upload(e2, NULL, 128 * 4);
	const void *args2[] = {&d2};
	assert_int_equal(launch1(e2, m, "uninit", 1, 128, 0, args2, NULL), 0);
	float out[128];
	assert_int_equal(kiln_emu_read(e2, out, d2, sizeof out), 0);
	assert_true(isnan(out[0]));
	assert_true(out[127] == 1.0f);
	kiln_emu_free(e2);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__padded_transpose_fewer_wavefronts(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(shared_src);
	kiln_emu *e = device();
	float a[1024], b[1024];
	for (int i = 0; i < 1024; i++)
		a[i] = (float)i;
	uint64_t da = upload(e, a, sizeof a), db = upload(e, NULL, sizeof b);
	kiln_emu_counters cp = {0}, cu = {0};
	int pad = 1, nopad = 0;
	const void *ap[] = {&da, &db, &pad};
	const void *au[] = {&da, &db, &nopad};
	uint32_t grid[3] = {1, 1, 1}, block[3] = {32, 32, 1};
	assert_int_equal(kiln_emu_launch(e, m, "transpose", grid, block, 0, ap, &cp), 0);
	assert_int_equal(kiln_emu_read(e, b, db, sizeof b), 0);
	for (int y = 0; y < 32; y++)
		for (int x = 0; x < 32; x++)
			assert_true(b[y * 32 + x] == a[x * 32 + y]);
	assert_int_equal(kiln_emu_launch(e, m, "transpose", grid, block, 0, au, &cu), 0);
	assert_int_equal(kiln_emu_read(e, b, db, sizeof b), 0);
	for (int y = 0; y < 32; y++)
		for (int x = 0; x < 32; x++)
			assert_true(b[y * 32 + x] == a[x * 32 + y]);
	assert_int_equal(cp.shared_requests, cu.shared_requests);
	assert_int_equal(cp.shared_wavefronts, cp.shared_requests); /* conflict-free */
	assert_true(cu.shared_wavefronts >= cu.shared_requests + 31 * 32); /* 32-way on the column read */
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static const char *atom_src =
	"__device__ __noinline__ float twice(float x) { return x * 2.0f; }\n"
	"extern \"C\" __global__ void atoms(const float *a, float *sum, unsigned *cnt, float *mx, float *tw) {\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
	"  atomicAdd(sum, a[i]); atomicAdd(cnt, 1u);\n"
	"  unsigned *p = (unsigned *)mx; unsigned old = *p, assumed;\n"
	"  do { assumed = old; old = atomicCAS(p, assumed, __float_as_uint(fmaxf(__uint_as_float(assumed), a[i]))); } while (assumed != old);\n"
	"  tw[i] = twice(a[i]); }\n";

static void test_emu__atomics_and_calls(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(atom_src);
	kiln_emu *e = device();
	float a[256], zero = 0.0f, mx0 = -1e30f, tw[256];
	unsigned z = 0;
	for (int i = 0; i < 256; i++)
		a[i] = (float)((i * 7) % 31);
	uint64_t da = upload(e, a, sizeof a), ds = upload(e, &zero, 4), dc = upload(e, &z, 4),
		 dm = upload(e, &mx0, 4), dt = upload(e, NULL, sizeof tw);
	const void *args[] = {&da, &ds, &dc, &dm, &dt};
	kiln_emu_counters c = {0};
	assert_int_equal(launch1(e, m, "atoms", 2, 128, 0, args, &c), 0);
	float s, mx;
	unsigned cnt;
	kiln_emu_read(e, &s, ds, 4);
	kiln_emu_read(e, &cnt, dc, 4);
	kiln_emu_read(e, &mx, dm, 4);
	kiln_emu_read(e, tw, dt, sizeof tw);
	float ref = 0;
	for (int i = 0; i < 256; i++) {
		ref += a[i];
		assert_true(tw[i] == 2.0f * a[i]);
	}
	assert_true(s == ref);
	assert_int_equal(cnt, 256);
	assert_true(mx == 30.0f);
	assert_true(c.atomics > 0);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}


/* ---------------------------------------------------------------- semantics */
static const char *sem_src =
	"#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n"
	"extern \"C\" __global__ void sem(const float *a, const float *b, int *oi, float *of, unsigned *ou) {\n"
	"  int t = threadIdx.x; float x = a[t], y = b[t];\n"
	"  oi[t * 8 + 0] = __float2int_rn(x); oi[t * 8 + 1] = __float2int_rz(x);\n"
	"  oi[t * 8 + 2] = __float2int_rd(x); oi[t * 8 + 3] = __float2int_ru(x);\n"
	"  oi[t * 8 + 4] = (int)__float2uint_rz(x); oi[t * 8 + 5] = (int)(signed char)__float2int_rn(x * 0.01f);\n"
	"  oi[t * 8 + 6] = (int)__float2ll_rn(x); oi[t * 8 + 7] = __popc(__float_as_uint(x)) + 100 * __clz(t);\n"
	"  of[t * 8 + 0] = __fadd_rd(x, y); of[t * 8 + 1] = __fadd_ru(x, y);\n"
	"  of[t * 8 + 2] = __fmul_rz(x, y); of[t * 8 + 3] = __fmaf_rn(x, y, 1.0f);\n"
	"  of[t * 8 + 4] = __saturatef(x); of[t * 8 + 5] = fminf(x, y);\n"
	"  of[t * 8 + 6] = __half2float(__float2half_rn(x)); of[t * 8 + 7] = __bfloat162float(__float2bfloat16_rn(x));\n"
	"  __half2 h = __floats2half2_rn(x, y); __half2 h2 = __hfma2(h, h, h);\n"
	"  __nv_bfloat162 bb = __floats2bfloat162_rn(x, y);\n"
	"  ou[t * 4 + 0] = *(unsigned *)&h; ou[t * 4 + 1] = *(unsigned *)&h2; ou[t * 4 + 2] = *(unsigned *)&bb;\n"
	"  ou[t * 4 + 3] = __brev(t) ^ __byte_perm(t, 0x11223344u, 0x5140);\n"
	"}\n";

static float bits2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f2bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* IEEE binary16 round-to-nearest-even of a float (independent of the emulator's code) */
static uint16_t ref_f2h(float f)
{
	uint32_t u = f2bits(f), s = (u >> 16) & 0x8000;
	float a = fabsf(f);
	if (isnan(f))
		return 0x7FFF;
	if (a >= 65520.0f)
		return (uint16_t)(s | 0x7C00);
	if (a < 6.103515625e-05f) { /* subnormal: multiples of 2^-24 */
		float q = a * 16777216.0f;
		return (uint16_t)(s | (uint32_t)nearbyintf(q));
	}
	int e;
	frexpf(a, &e);
	float q = ldexpf(a, 11 - e); /* [1024, 2048) */
	uint32_t m = (uint32_t)nearbyintf(q);
	if (m == 2048) {
		m = 1024;
		e++;
	}
	return (uint16_t)(s | (uint32_t)(e - 1 + 15) << 10 | (m - 1024));
}
static float ref_h2f(uint16_t h)
{
	int e = (h >> 10) & 31, m = h & 1023;
	if (e == 31)
		return m ? NAN : (h & 0x8000) ? -INFINITY : INFINITY;
	float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(m + 1024), e - 25);
	return (h & 0x8000) ? -v : v;
}
static uint16_t ref_f2bf(float f)
{
	uint32_t u = f2bits(f);
	if (isnan(f))
		return 0x7FFF;
	u += 0x7FFF + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

static void test_emu__conversion_and_rounding_semantics(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(sem_src);
	kiln_emu *e = device();
	enum { N = 64 };
	float a[N], b[N];
	const float special[] = {2.5f, -2.5f, 3.5f, -0.5f, 1e10f, -1e10f, NAN, INFINITY, 0.1f, 1.0f / 3.0f,
				 65504.0f, 7e-6f, -0.0f, 1.00048828125f, 300.7f, -129.9f};
	for (int i = 0; i < N; i++) {
		a[i] = i < 16 ? special[i] : (float)((i * 7919) % 2001 - 1000) / 37.0f;
		b[i] = i < 16 ? 1e-8f * (float)(i - 8) : (float)((i * 104729) % 997) / 13.0f - 30.0f;
	}
	int oi[N * 8];
	float of[N * 8];
	unsigned ou[N * 4];
	uint64_t da = upload(e, a, sizeof a), db = upload(e, b, sizeof b), di = upload(e, NULL, sizeof oi),
		 df = upload(e, NULL, sizeof of), du = upload(e, NULL, sizeof ou);
	const void *args[] = {&da, &db, &di, &df, &du};
	assert_int_equal(launch1(e, m, "sem", 1, N, 0, args, NULL), 0);
	kiln_emu_read(e, oi, di, sizeof oi);
	kiln_emu_read(e, of, df, sizeof of);
	kiln_emu_read(e, ou, du, sizeof ou);
	for (int t = 0; t < N; t++) {
		float x = a[t], y = b[t];
		double xd = x;
		/* float -> int: saturating, NaN -> 0 */
		double r4[4] = {nearbyint(xd), trunc(xd), floor(xd), ceil(xd)};
		for (int k = 0; k < 4; k++) {
			int want = isnan(x) ? 0 : r4[k] >= 2147483647.0 ? INT32_MAX : r4[k] <= -2147483648.0 ? INT32_MIN : (int)r4[k];
			if (oi[t * 8 + k] != want)
				fail_msg("t=%d x=%g k=%d: got %d want %d", t, x, k, oi[t * 8 + k], want);
		}
		unsigned wu = isnan(x) || x <= 0 ? 0 : xd >= 4294967295.0 ? 0xFFFFFFFFu : (unsigned)trunc(xd);
		assert_int_equal((unsigned)oi[t * 8 + 4], wu);
		/* double-precision reference for directed rounding: exact sum / product */
		/* exact x + y as s + se (TwoSum); the product is exact in double */
		double s = (double)x + (double)y, bb = s - (double)x;
		double se = ((double)x - (s - bb)) + ((double)y - bb), p = (double)x * (double)y;
		if (!isnan(x) && !isinf(x)) {
			float rd = of[t * 8 + 0], ru = of[t * 8 + 1], rz = of[t * 8 + 2];
			double rdn = nextafterf(rd, INFINITY), rup = nextafterf(ru, -INFINITY);
			if (!((rd < s || (rd == s && se >= 0)) && (rdn > s || (rdn == s && se < 0))))
				fail_msg("t=%d x=%a y=%a rd=%a s=%a", t, x, y, rd, s);
			if (!((ru > s || (ru == s && se <= 0)) && (rup < s || (rup == s && se > 0))))
				fail_msg("t=%d x=%a y=%a ru=%a s=%a", t, x, y, ru, s);
			assert_true(fabs((double)rz) <= fabs(p) && fabs((double)nextafterf(rz, rz >= 0 ? INFINITY : -INFINITY)) > fabs(p));
			assert_true(of[t * 8 + 3] == fmaf(x, y, 1.0f));
		}
		float sat = isnan(x) ? 0.0f : x < 0 ? 0.0f : x > 1 ? 1.0f : x;
		assert_true(f2bits(of[t * 8 + 4]) == f2bits(sat));
		assert_true(of[t * 8 + 5] == fminf(x, y) || (isnan(of[t * 8 + 5]) && isnan(fminf(x, y))));
		float hw = ref_h2f(ref_f2h(x));
		if (!(isnan(x) ? isnan(of[t * 8 + 6]) : f2bits(of[t * 8 + 6]) == f2bits(hw))) fail_msg("t=%d x=%a got %a want %a", t, x, of[t * 8 + 6], hw);
		float bw = bits2f((uint32_t)ref_f2bf(x) << 16);
		assert_true(isnan(x) ? isnan(of[t * 8 + 7]) : f2bits(of[t * 8 + 7]) == f2bits(bw));
		/* packed halves: first element in the low half */
		uint32_t hp = (uint32_t)ref_f2h(y) << 16 | ref_f2h(x);
		assert_int_equal(ou[t * 4 + 0], hp);
		uint32_t bp = (uint32_t)ref_f2bf(y) << 16 | ref_f2bf(x);
		assert_int_equal(ou[t * 4 + 2], bp);
		if (!isnan(x) && fabsf(x) < 200 && fabsf(y) < 200) {
			double hx = ref_h2f(ref_f2h(x)), hy = ref_h2f(ref_f2h(y));
			uint32_t fm = (uint32_t)ref_f2h((float)fma(hy, hy, hy)) << 16 | ref_f2h((float)fma(hx, hx, hx));
			assert_int_equal(ou[t * 4 + 1], fm);
		}
		uint32_t rev = 0;
		for (int k = 0; k < 32; k++)
			rev |= (((uint32_t)t >> k) & 1u) << (31 - k);
		uint64_t xy = ((uint64_t)0x11223344u << 32) | (uint32_t)t;
		uint32_t perm = 0;
		for (int k = 0; k < 4; k++)
			perm |= (uint32_t)((xy >> (8 * ((0x5140 >> (4 * k)) & 7))) & 0xFF) << (8 * k);
		assert_int_equal(ou[t * 4 + 3], rev ^ perm);
		assert_int_equal(oi[t * 8 + 7], __builtin_popcount(f2bits(x)) + 100 * (t ? __builtin_clz((unsigned)t) : 32));
	}
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static const char *cub_src =
	"#include <cub/block/block_scan.cuh>\n"
	"extern \"C\" __global__ void cubscan(const int *in, int *out) {\n"
	"  typedef cub::BlockScan<int, 128> Scan; __shared__ typename Scan::TempStorage tmp;\n"
	"  int v = in[blockIdx.x * 128 + threadIdx.x];\n"
	"  Scan(tmp).InclusiveSum(v, v);\n"
	"  out[blockIdx.x * 128 + threadIdx.x] = v; }\n"
	"extern \"C\" __global__ void dynsh(const float *in, float *out) {\n"
	"  extern __shared__ float buf[]; int t = threadIdx.x;\n"
	"  buf[t] = in[t]; __syncthreads(); out[t] = buf[blockDim.x - 1 - t] + expf(in[t]) * rsqrtf(1.0f + in[t] * in[t]); }\n";

static void test_emu__cub_block_scan_and_dynamic_shared(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(cub_src);
	kiln_emu *e = device();
	int in[256], out[256];
	for (int i = 0; i < 256; i++)
		in[i] = (i * 31) % 17 - 8;
	uint64_t di = upload(e, in, sizeof in), dout = upload(e, NULL, sizeof out);
	const void *args[] = {&di, &dout};
	assert_int_equal(launch1(e, m, "cubscan", 2, 128, 0, args, NULL), 0);
	kiln_emu_read(e, out, dout, sizeof out);
	for (int b = 0; b < 2; b++) {
		int acc = 0;
		for (int i = 0; i < 128; i++) {
			acc += in[b * 128 + i];
			assert_int_equal(out[b * 128 + i], acc);
		}
	}
	float fin[64], fout[64];
	for (int i = 0; i < 64; i++)
		fin[i] = (float)i / 16.0f - 2.0f;
	uint64_t dfi = upload(e, fin, sizeof fin), dfo = upload(e, NULL, sizeof fout);
	const void *a2[] = {&dfi, &dfo};
	kiln_emu_counters c = {0};
	assert_int_equal(launch1(e, m, "dynsh", 1, 64, 256, a2, &c), 0);
	kiln_emu_read(e, fout, dfo, sizeof fout);
	for (int t = 0; t < 64; t++) {
		double want = fin[63 - t] + exp(fin[t]) / sqrt(1.0 + (double)fin[t] * fin[t]);
		assert_true(fabs(fout[t] - want) < 1e-5 * (1 + fabs(want)));
	}
	assert_int_equal(c.dyn_shared, 256);
	/* too little dynamic shared memory: the kernel reads past it */
	assert_int_equal(launch1(e, m, "dynsh", 1, 64, 128, a2, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_OOB);
	assert_int_equal(kiln_emu_last_fault(e)->space, KILN_EMU_SPACE_SHARED);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__uninit_global_read(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(vadd_src);
	kiln_emu *e = device();
	int n = 64;
	float a[64] = {0};
	uint64_t da = upload(e, a, sizeof a), db = upload(e, a, sizeof a), dc = upload(e, NULL, sizeof a);
	assert_int_equal(kiln_emu_poison(e, db + 40 * 4, 4, 0x7FC00000u), 0);
	const void *args[] = {&da, &db, &dc, &n};
	assert_int_equal(launch1(e, m, "vadd", 1, 64, 0, args, NULL), KILN_EFAULT);
	const kiln_emu_fault *f = kiln_emu_last_fault(e);
	assert_int_equal(f->kind, KILN_EMU_FAULT_UNINIT_READ);
	assert_int_equal(f->addr, db + 160);
	assert_int_equal(f->alloc_base, db);
	assert_int_equal(f->thread[0], 40);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}


static const char *many_src =
	"#include <cuda_fp16.h>\n#include <cuda_bf16.h>\n"
	"extern \"C\" __global__ void adam8(const float *g, unsigned char *q, float *absmax, float *p, int n) {\n"
	"  __shared__ float red[32]; int i = blockIdx.x * 256 + threadIdx.x; float v = i < n ? g[i] : 0.f;\n"
	"  float a = fabsf(v); for (int o = 16; o; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffff, a, o));\n"
	"  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = a; __syncthreads();\n"
	"  if (threadIdx.x < 8) { a = red[threadIdx.x]; for (int o = 4; o; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xff, a, o)); }\n"
	"  if (threadIdx.x == 0) { red[0] = a; absmax[blockIdx.x] = a; } __syncthreads(); a = red[0];\n"
	"  int qv = __float2int_rn(v / a * 127.f) + 128;\n"
	"  if (i < n) { q[i] = (unsigned char)min(max(qv, 0), 255);\n"
	"    p[i] = __powf(fabsf(v) + 1.f, 0.75f) * tanhf(v) + __expf(v) * __logf(a + 2.f) + sinf(v) * cosf(v); } }\n"
	"extern \"C\" __global__ void halfk(const __half2 *a, const __nv_bfloat162 *b, __half2 *c, __nv_bfloat162 *d, float *e, int n) {\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i >= n) return;\n"
	"  __half2 x = a[i]; __nv_bfloat162 y = b[i];\n"
	"  c[i] = __hmax2(__hmul2(x, x), __hadd2(x, __float2half2_rn(1.0f)));\n"
	"  d[i] = __hfma2(y, y, __float2bfloat162_rn(0.5f));\n"
	"  float s = __low2float(x) + __high2float(x) + __bfloat162float(y.x) * __bfloat162float(y.y);\n"
	"  e[i] = s / (float)(i + 1) + sqrtf((float)i) + rsqrtf((float)i + 1.f) + __fdividef(s, 3.f); }\n"
	"__device__ __noinline__ float pick(const float *arr, int k) { return arr[k]; }\n"
	"extern \"C\" __global__ void localarr(const int *idx, float *out, int n) {\n"
	"  float arr[16]; for (int k = 0; k < 16; k++) arr[k] = k * 1.5f + threadIdx.x;\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
	"  if (i < n) out[i] = pick(arr, idx[i] & 15) + (float)__ldg(idx + i); }\n"
	"extern \"C\" __global__ void misc(unsigned long long *o, const double *dd) {\n"
	"  int i = threadIdx.x; double x = dd[i];\n"
	"  unsigned long long a = (unsigned long long)i * 0x9E3779B97F4A7C15ull;\n"
	"  o[i * 4] = __umul64hi(a, a) ^ (a >> 17) ^ __funnelshift_l((unsigned)a, (unsigned)(a >> 32), i);\n"
	"  o[i * 4 + 1] = __double_as_longlong(x * x + 1.0 / (x + 3.0) + sqrt(fabs(x)) + fma(x, x, -2.0));\n"
	"  o[i * 4 + 2] = (unsigned long long)(long long)(x * 1000.0) + __ffs(i) + __clzll(a) + __popcll(a);\n"
	"  o[i * 4 + 3] = __match_any_sync(0xffffffff, i / 4) + __reduce_add_sync(0xffffffff, i) + __activemask()\n"
	"    + ((unsigned long long)(unsigned)__dp4a(i * 0x01FF0203, (int)0x80FF7F05, 7) << 32); }\n";

typedef struct many_out {
	unsigned char q[512];
	float absmax[2], p[512], e[256], loc[256];
	uint32_t c[256], d[256];
	unsigned long long o[128];
} many_out;

static void run_many(kiln_emu_module *m, many_out *r)
{
	kiln_emu *e = device();
	float g[512];
	uint32_t ha[256], hb[256];
	int idx[256];
	double dd[32];
	for (int i = 0; i < 512; i++)
		g[i] = (float)((i * 7919) % 1999 - 999) / 250.0f;
	for (int i = 0; i < 256; i++) {
		ha[i] = (uint32_t)(0x3C00 + (i * 37) % 2000) | (uint32_t)(0xBC00 + (i * 91) % 3000) << 16;
		hb[i] = (uint32_t)(0x3F80 + (i * 13) % 200) | (uint32_t)(0xC000 + (i * 17) % 300) << 16;
		idx[i] = (i * 5) % 23;
	}
	for (int i = 0; i < 32; i++)
		dd[i] = (double)(i * i) / 7.0 - 3.1;
	int n = 512, n2 = 256;
	uint64_t dg = upload(e, g, sizeof g), dq = upload(e, NULL, 512), dam = upload(e, NULL, 8),
		 dp = upload(e, NULL, 2048), dha = upload(e, ha, sizeof ha), dhb = upload(e, hb, sizeof hb),
		 dc = upload(e, NULL, 1024), dd2 = upload(e, NULL, 1024), de = upload(e, NULL, 1024),
		 didx = upload(e, idx, sizeof idx), dl = upload(e, NULL, 1024), ddd = upload(e, dd, sizeof dd),
		 dob = upload(e, NULL, 1024);
	const void *a1[] = {&dg, &dq, &dam, &dp, &n};
	const void *a2[] = {&dha, &dhb, &dc, &dd2, &de, &n2};
	const void *a3[] = {&didx, &dl, &n2};
	const void *a4[] = {&dob, &ddd};
	assert_int_equal(launch1(e, m, "adam8", 2, 256, 0, a1, NULL), 0);
	assert_int_equal(launch1(e, m, "halfk", 2, 128, 0, a2, NULL), 0);
	assert_int_equal(launch1(e, m, "localarr", 2, 128, 0, a3, NULL), 0);
	assert_int_equal(launch1(e, m, "misc", 1, 32, 0, a4, NULL), 0);
	kiln_emu_read(e, r->q, dq, 512);
	kiln_emu_read(e, r->absmax, dam, 8);
	kiln_emu_read(e, r->p, dp, 2048);
	kiln_emu_read(e, r->c, dc, 1024);
	kiln_emu_read(e, r->d, dd2, 1024);
	kiln_emu_read(e, r->e, de, 1024);
	kiln_emu_read(e, r->loc, dl, 1024);
	kiln_emu_read(e, r->o, dob, 1024);
	/* host checks that hold for every variant */
	for (int b = 0; b < 2; b++) {
		float mx = 0;
		for (int i = 0; i < 256; i++)
			mx = fmaxf(mx, fabsf(g[b * 256 + i]));
		assert_true(r->absmax[b] == mx);
		for (int i = 0; i < 256; i++) {
			int want = (int)nearbyint((double)g[b * 256 + i] / mx * 127.0) + 128;
			want = want < 0 ? 0 : want > 255 ? 255 : want;
			assert_true(abs((int)r->q[b * 256 + i] - want) <= 1);
			double v = g[b * 256 + i];
			double pw = pow(fabs(v) + 1, 0.75) * tanh(v) + exp(v) * log(mx + 2.0) + sin(v) * cos(v);
			assert_true(fabs(r->p[b * 256 + i] - pw) < 1e-4 * (1 + fabs(pw)));
		}
	}
	for (int i = 0; i < 256; i++) {
		int k = idx[i] & 15;
		assert_true(r->loc[i] == (float)k * 1.5f + (float)(i % 128) + (float)idx[i]);
	}
	for (int i = 0; i < 32; i++) {
		double x = dd[i];
		double want = x * x + 1.0 / (x + 3.0) + sqrt(fabs(x)) + fma(x, x, -2.0);
		double got;
		memcpy(&got, &r->o[i * 4 + 1], 8);
		assert_true(fabs(got - want) <= 1e-15 * fabs(want) * 4);
		unsigned long long a = (unsigned long long)i * 0x9E3779B97F4A7C15ull;
		unsigned long long m4 = 0;
		for (int j = 0; j < 32; j++)
			if (j / 4 == i / 4)
				m4 |= 1ull << j;
		int32_t dp = 7;
		for (int k = 0; k < 4; k++)
			dp += (int8_t)(((uint32_t)i * 0x01FF0203u) >> (8 * k)) * (int8_t)(0x80FF7F05u >> (8 * k));
		assert_int_equal(r->o[i * 4 + 3], (uint32_t)(m4 + 496 + 0xFFFFFFFFull) + ((uint64_t)(uint32_t)dp << 32));
		unsigned long long w2 = (unsigned long long)(long long)(x * 1000.0) + (unsigned long long)__builtin_ffs(i) +
				       (unsigned long long)(a ? __builtin_clzll(a) : 64) + (unsigned long long)__builtin_popcountll(a);
		assert_int_equal(r->o[i * 4 + 2], w2);
	}
	kiln_emu_free(e);
}

static void test_emu__variants_agree(void **state)
{
	(void)state;
	static many_out r90, r80, rg, rf;
	kiln_emu_module *m = compile_opt(many_src, "--gpu-architecture=compute_90", NULL);
	run_many(m, &r90);
	kiln_emu_module_free(m);
	m = compile_opt(many_src, "--gpu-architecture=compute_80", NULL);
	run_many(m, &r80);
	kiln_emu_module_free(m);
	m = compile_opt(many_src, "--gpu-architecture=compute_80", "-G");
	run_many(m, &rg);
	kiln_emu_module_free(m);
	m = compile_opt(many_src, "--gpu-architecture=compute_90", "-use_fast_math");
	run_many(m, &rf);
	kiln_emu_module_free(m);
	/* integer and exactly rounded results are identical across variants */
	assert_memory_equal(r90.c, r80.c, sizeof r90.c);
	assert_memory_equal(r90.d, r80.d, sizeof r90.d);
	assert_memory_equal(r90.c, rg.c, sizeof r90.c);
	assert_memory_equal(r90.d, rg.d, sizeof r90.d);
	assert_memory_equal(r90.o, r80.o, sizeof r90.o);
	for (int i = 0; i < 128; i++) /* [1] is float math that -G does not contract into fma */
		if (i % 4 != 1)
			assert_int_equal(r90.o[i], rg.o[i]);
	assert_memory_equal(r90.loc, rg.loc, sizeof r90.loc);
	for (int i = 0; i < 256; i++) {
		assert_true(fabsf(r90.e[i] - rf.e[i]) < 1e-4f * (1 + fabsf(r90.e[i])));
		assert_true(r90.e[i] == rg.e[i]);
	}
}


/* Mutated real PTX (deterministic seed): every input either parses or fails with a
 * message naming the file; none crashes (this runs under ASan/UBSan in CI). Parsed
 * mutants are launched too, with a small budget, and must not crash the interpreter. */
static void test_emu__parser_survives_mutations(void **state)
{
	(void)state;
	char *ptx = nvrtc_ptx_opt(many_src, "--gpu-architecture=compute_80", "-G");
	size_t len = strlen(ptx);
	char *buf = malloc(len + 64);
	kiln_rng rng;
	kiln_rng_seed(&rng, 12345);
	static const char *const frag[] = {"[", "]", "{", "}", ";", ",", "%r1", "%p1", "@%p1 ", "0f7F800000",
					   "-", "<", ">", ".v4", ".f32", "ret;", "bra $L__BB0_1;", "\n"};
	kiln_emu_options o = KILN_EMU_OPTIONS_INIT;
	o.instruction_budget = 20000;
	kiln_emu *e = NULL;
	assert_int_equal(kiln_emu_new(&e, &o), 0);
	uint64_t d = upload(e, NULL, 4096);
	const void *args[8] = {&d, &d, &d, &d, &d, &d, &d, &d};
	int parsed = 0;
	for (int it = 0; it < 300; it++) {
		memcpy(buf, ptx, len + 1);
		size_t n = len;
		int muts = 1 + (int)kiln_rng_below(&rng, 3);
		for (int k = 0; k < muts; k++) {
			size_t at = kiln_rng_below(&rng, n);
			switch (kiln_rng_below(&rng, 3)) {
			case 0: /* delete a span */ {
				size_t span = 1 + kiln_rng_below(&rng, 8);
				if (at + span > n)
					span = n - at;
				memmove(buf + at, buf + at + span, n - at - span + 1);
				n -= span;
				break;
			}
			case 1: /* flip a byte */
				buf[at] = (char)(32 + kiln_rng_below(&rng, 95));
				break;
			default: { /* insert a fragment */
				const char *f = frag[kiln_rng_below(&rng, sizeof frag / sizeof *frag)];
				size_t fl = strlen(f);
				if (n + fl >= len + 64)
					break;
				memmove(buf + at + fl, buf + at, n - at + 1);
				memcpy(buf + at, f, fl);
				n += fl;
				break;
			}
			}
		}
		kiln_emu_module *m = NULL;
		kiln_err err = kiln_emu_module_parse(&m, buf, n, "mut.ptx");
		if (err) {
			assert_true(err == KILN_EINVAL || err == KILN_EUNSUPPORTED);
			assert_true(strstr(kiln_error_last(), "mut.ptx") || strstr(kiln_error_last(), "not supported"));
			continue;
		}
		parsed++;
		size_t nk;
		const char *const *names = kiln_emu_module_kernels(m, &nk);
		for (size_t k = 0; k < nk; k++) {
			size_t np;
			const kiln_emu_param *ps;
			assert_int_equal(kiln_emu_kernel_params(m, names[k], &np, &ps), 0);
			bool ok = np <= 8;
			for (size_t i = 0; i < np && ok; i++)
				ok = ps[i].size <= 8;
			if (ok)
				(void)launch1(e, m, names[k], 1, 32, 0, args, NULL);
		}
		kiln_emu_module_free(m);
	}
	assert_true(parsed > 0);
	kiln_emu_free(e);
	free(buf);
	free(ptx);
}

/* ---------------------------------------------------------------- faults */
static const char *bad_src =
	"extern \"C\" __global__ void oob(float *b, int n) {\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x; if (i <= n) b[i] = 1.0f; }\n"
	"extern \"C\" __global__ void mis(char *b) {\n"
	"  *(float *)(b + 2 + threadIdx.x * 4) = 1.0f; }\n"
	"extern \"C\" __global__ void spin(int *flag) {\n"
	"  while (*(volatile int *)flag == 0) { } }\n"
	"extern \"C\" __global__ void loop(int *flag) {\n"
	"  volatile int s = 0; while (s == 0) { } flag[0] = 1; }\n"
	"extern \"C\" __global__ void trapper(int *x) { if (threadIdx.x == 3) __trap(); x[threadIdx.x] = 1; }\n";

static void test_emu__oob_write_with_line(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(bad_src);
	kiln_emu *e = device();
	int n = 100;
	uint64_t db = upload(e, NULL, n * 4);
	const void *args[] = {&db, &n};
	assert_int_equal(launch1(e, m, "oob", 1, 128, 0, args, NULL), KILN_EFAULT);
	const kiln_emu_fault *f = kiln_emu_last_fault(e);
	assert_int_equal(f->kind, KILN_EMU_FAULT_OOB);
	assert_int_equal(f->addr, db + 400);
	assert_int_equal(f->alloc_base, db);
	assert_int_equal(f->alloc_size, 400);
	assert_int_equal(f->thread[0], 100);
	assert_int_equal(f->line, ptx_line_of(bad_src, "st.global.", 0));
	assert_non_null(strstr(kiln_error_last(), "thread (100,0,0)"));
	/* memory written before the fault stays written */
	float v;
	assert_int_equal(kiln_emu_read(e, &v, db + 4 * 95, 4), 0);
	assert_true(v == 1.0f);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__misaligned_budget_trap(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(bad_src);
	kiln_emu_options o = KILN_EMU_OPTIONS_INIT;
	o.instruction_budget = 100000;
	o.budget_per_thread = 0;
	kiln_emu *e = NULL;
	assert_int_equal(kiln_emu_new(&e, &o), 0);
	uint64_t db = upload(e, NULL, 1024);
	const void *args[] = {&db};
	assert_int_equal(launch1(e, m, "mis", 1, 32, 0, args, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_MISALIGNED);
	int zero = 0;
	uint64_t dflag = upload(e, &zero, 4);
	const void *af[] = {&dflag};
	/* a flag nobody can change: found at once, not at the end of the budget */
	kiln_emu_counters c = {0};
	assert_int_equal(launch1(e, m, "spin", 1, 32, 0, af, &c), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_BUDGET);
	assert_non_null(strstr(kiln_error_last(), "spins on a flag"));
	assert_true(c.thread_instructions < 10000);
	assert_int_equal(launch1(e, m, "loop", 1, 32, 0, af, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_BUDGET);
	assert_non_null(strstr(kiln_error_last(), "did not finish within 100000"));
	assert_int_equal(launch1(e, m, "trapper", 1, 32, 0, args, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_TRAP);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__limits(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(vadd_src);
	kiln_emu *e = device();
	uint64_t d = upload(e, NULL, 16);
	int n = 0;
	const void *args[] = {&d, &d, &d, &n};
	assert_int_equal(launch1(e, m, "vadd", 1, 2048, 0, args, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_LIMIT);
	assert_int_equal(launch1(e, m, "vadd", 1, 32, 300 * 1024, args, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_LIMIT);
	assert_int_equal(launch1(e, m, "vadd", 1, 32, 100 * 1024, args, NULL), 0);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_NONE);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

/* ---------------------------------------------------------------- parser */
static kiln_err parse_str(const char *ptx)
{
	kiln_emu_module *m = NULL;
	kiln_err err = kiln_emu_module_parse(&m, ptx, strlen(ptx), "x.ptx");
	kiln_emu_module_free(m);
	return err;
}

static void test_emu__parser_errors(void **state)
{
	(void)state;
	/* a kernel body (after the header, on line 6), the error and a part of its message */
	static const struct { const char *body; kiln_err err; const char *msg; } cases[] = {
		{".reg .b32 %r<3>;\nadd.s32 %r1, %r2, %r9;\n", KILN_EINVAL, "x.ptx:7:"},
		{".reg .b32 %r<3>;\nbra $L_nowhere;\n", KILN_EINVAL, "unknown label"},
		{".reg .b32 %r<3>;\nmov.u32 %r1, 5\n", KILN_EINVAL, "x.ptx:8:"},
		{".reg .b64 %rd<3>;\nwgmma.fence.sync.aligned;\n", KILN_EUNSUPPORTED,
		 "not supported by the emulator: wgmma.fence.sync.aligned (line 7)"},
		{".reg .b64 %rd<3>;\nmbarrier.init.shared.b64 [%rd1], 1;\n", KILN_EUNSUPPORTED, "mbarrier.init"},
		{".reg .b32 %r<3>;\nfrobnicate.u32 %r1, %r2;\n", KILN_EUNSUPPORTED, "frobnicate.u32"},
		/* the opcode table's operand count (createpolicy read a missing destination before) */
		{"createpolicy.fractional.L2::evict_last.b64;\n", KILN_EINVAL,
		 "x.ptx:6: createpolicy.fractional.L2::evict_last.b64: expected 1 operand, found 0"},
		/* a row marked unsupported is refused before its operands are read */
		{"tex.2d.v4.f32.f32 {,, [[;\n", KILN_EUNSUPPORTED,
		 "not supported by the emulator: tex.2d.v4.f32.f32 (line 6)"},
	};
	const char *hdr = ".version 8.0\n.target sm_90\n.address_size 64\n";
	char buf[1024];
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		snprintf(buf, sizeof buf, "%s.visible .entry k()\n{\n%sret;\n}\n", hdr, cases[i].body);
		assert_int_equal(parse_str(buf), cases[i].err);
		if (!strstr(kiln_error_last(), cases[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, kiln_error_last(), cases[i].msg);
	}
	snprintf(buf, sizeof buf, "%s.visible .entry k(\n{\n", hdr);
	assert_int_equal(parse_str(buf), KILN_EINVAL);
	/* garbage never crashes */
	const char *junk[] = {"", "{", "}", ".entry", ".visible .entry k() { @", "0f12", "\"abc",
			      ".entry k() { .reg .b32 %r<99999999>; }", "/* x", ".global .f32 g[4] = {1,2,3,4,5};"};
	for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
		(void)parse_str(junk[i]);
}

static void test_emu__handwritten_ptx(void **state)
{
	(void)state;
	/* inline-asm scopes, vector pack/unpack, module .global with initializer, prmt, bfe */
	const char *ptx =
		".version 8.0\n.target sm_90\n.address_size 64\n"
		".global .align 4 .u32 table[4] = {10, 20, 30, 40};\n"
		".visible .entry k(.param .u64 out)\n{\n"
		"  .reg .b32 %r<12>; .reg .b64 %rd<6>; .reg .b16 %rs<4>; .reg .pred %p<3>;\n"
		"  ld.param.u64 %rd1, [out];\n"
		"  cvta.to.global.u64 %rd2, %rd1;\n"
		"  mov.u32 %r1, %tid.x;\n"
		"  mul.wide.u32 %rd3, %r1, 16;\n"
		"  add.s64 %rd4, %rd2, %rd3;\n"
		"  and.b32 %r2, %r1, 3;\n"
		"  mul.wide.u32 %rd5, %r2, 4;\n"
		"  ld.global.u32 %r3, [table];\n"
		"  mov.u64 %rd3, table;\n"
		"  add.s64 %rd5, %rd3, %rd5;\n"
		"  ld.global.u32 %r4, [%rd5];\n"
		"  { .reg .b16 lo, hi; mov.b32 {lo, hi}, %r1; mov.b32 %r5, {hi, lo}; }\n"
		"  prmt.b32 %r6, %r3, %r4, 0x3210;\n"
		"  bfe.u32 %r7, %r4, 3, 2;\n"
		"  setp.gt.u32 %p1, %r1, 1;\n"
		"  selp.b32 %r8, -1, 7, %p1;\n"
		"  @!%p1 add.s32 %r8, %r8, 0x10;\n"
		"  st.global.v4.u32 [%rd4], {%r4, %r5, %r7, %r8};\n"
		"  ret;\n}\n";
	kiln_emu_module *m = NULL;
	assert_int_equal(kiln_emu_module_parse(&m, ptx, strlen(ptx), "h.ptx"), 0);
	kiln_emu *e = device();
	uint64_t d = upload(e, NULL, 8 * 16);
	const void *args[] = {&d};
	assert_int_equal(launch1(e, m, "k", 1, 8, 0, args, NULL), 0);
	uint32_t out[32];
	assert_int_equal(kiln_emu_read(e, out, d, sizeof out), 0);
	for (uint32_t t = 0; t < 8; t++) {
		uint32_t tv = 10 * ((t & 3) + 1);
		assert_int_equal(out[t * 4 + 0], tv);
		assert_int_equal(out[t * 4 + 1], t << 16);
		assert_int_equal(out[t * 4 + 2], (tv >> 3) & 3);
		assert_int_equal(out[t * 4 + 3], t > 1 ? 0xFFFFFFFFu : 7u + 16u);
	}
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

/* Regression: lanes that wait at a shfl.sync must not run it before a lagging lane whose
 * code NVVM placed after the shuffle rejoins them (min-PC alone ran it first). Also
 * predicate immediates: mov.pred %p, -1 is true. */
static void test_emu__sync_waits_for_lagging_lanes(void **state)
{
	(void)state;
	const char *ptx =
		".version 8.0\n.target sm_90\n.address_size 64\n"
		".visible .entry k(.param .u64 out)\n{\n"
		"  .reg .b32 %r<8>; .reg .b64 %rd<4>; .reg .pred %p<5>;\n"
		"  ld.param.u64 %rd1, [out];\n"
		"  cvta.to.global.u64 %rd1, %rd1;\n"
		"  mov.u32 %r1, %laneid;\n"
		"  mov.u32 %r2, 0;\n"
		"  setp.eq.u32 %p1, %r1, 0;\n"
		"  @%p1 bra $L_lane0;\n"
		"$L_join:\n"
		"  shfl.sync.idx.b32 %r3, %r2, 0, 31, -1;\n"
		"  vote.sync.ballot.b32 %r5, %p1, -1;\n"
		"  mov.pred %p2, -1;\n"
		"  mov.pred %p3, 1;\n"
		"  mov.pred %p4, 0;\n"
		"  and.pred %p2, %p2, %p3;\n"
		"  or.pred %p2, %p2, %p4;\n"
		"  selp.b32 %r4, 1, 0, %p2;\n"
		"  add.s32 %r4, %r4, %r5;\n"
		"  mul.wide.u32 %rd2, %r1, 8;\n"
		"  add.s64 %rd3, %rd1, %rd2;\n"
		"  st.global.v2.u32 [%rd3], {%r3, %r4};\n"
		"  ret;\n"
		"$L_lane0:\n"
		"  mov.u32 %r2, 42;\n"
		"  bra.uni $L_join;\n"
		"}\n";
	kiln_emu_module *m = NULL;
	assert_int_equal(kiln_emu_module_parse(&m, ptx, strlen(ptx), "sync.ptx"), 0);
	kiln_emu *e = device();
	uint64_t d = upload(e, NULL, 32 * 8);
	const void *args[] = {&d};
	kiln_emu_counters c = {0};
	assert_int_equal(launch1(e, m, "k", 1, 32, 0, args, &c), 0);
	uint32_t out[64];
	assert_int_equal(kiln_emu_read(e, out, d, sizeof out), 0);
	for (int l = 0; l < 32; l++) {
		assert_int_equal(out[2 * l], 42);
		assert_int_equal(out[2 * l + 1], 1 + 1); /* true predicate + ballot of lane 0 */
	}
	assert_int_equal(c.divergent_branches, 1);
	kiln_emu_module_free(m);

	/* the same through NVRTC: powf in lane 0 only, then a broadcast */
	m = compile("extern \"C\" __global__ void bc(float *o, float b, int s) {\n"
		    "  float x = 0.0f;\n"
		    "  if ((threadIdx.x & 31) == 0) x = powf(b, (float)s);\n"
		    "  x = __shfl_sync(0xffffffffu, x, 0);\n"
		    "  o[threadIdx.x] = x;\n"
		    "}\n");
	uint64_t o = upload(e, NULL, 64 * 4);
	float b = 0.9f;
	int st = 7;
	const void *a2[] = {&o, &b, &st};
	assert_int_equal(launch1(e, m, "bc", 1, 64, 0, a2, NULL), 0);
	float f[64];
	assert_int_equal(kiln_emu_read(e, f, o, sizeof f), 0);
	for (int l = 0; l < 64; l++)
		assert_float_equal(f[l], powf(0.9f, 7.0f), 1e-6);

	/* shuffles in two branches with disjoint half-warp masks meet their own halves */
	kiln_emu_module_free(m);
	m = compile("extern \"C\" __global__ void hs(int *o) {\n"
		    "  int l = threadIdx.x & 31, v;\n"
		    "  if (l < 16) v = __shfl_sync(0x0000ffffu, l * 10, 3);\n"
		    "  else v = __shfl_sync(0xffff0000u, l * 100, 19);\n"
		    "  o[threadIdx.x] = v;\n"
		    "}\n");
	uint64_t oi = upload(e, NULL, 32 * 4);
	const void *a3[] = {&oi};
	assert_int_equal(launch1(e, m, "hs", 1, 32, 0, a3, NULL), 0);
	int iv[32];
	assert_int_equal(kiln_emu_read(e, iv, oi, sizeof iv), 0);
	for (int l = 0; l < 32; l++)
		assert_int_equal(iv[l], l < 16 ? 30 : 1900);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

/* racecheck keeps byte precision: warps writing different bytes of one word do not race;
 * the same byte, the same word, or a word write against a byte read between barriers do. */
static void test_emu__racecheck_bytes_and_words(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(
		"extern \"C\" __global__ void rb(int *o, int mode) {\n"
		"  __shared__ unsigned char f[64];\n"
		"  __shared__ int wd[64];\n"
		"  int w = threadIdx.x / 32, l = threadIdx.x & 31;\n"
		"  if (l == 0) { f[w] = (unsigned char)(w + 1); wd[w] = w; }\n"
		"  __syncthreads();\n"
		"  if (mode == 1 && l == 0) f[0] = 7;\n"
		"  if (mode == 2 && l == 0) wd[8] = w;\n"
		"  if (mode == 3 && l == 0 && w == 0) wd[9] = 5;\n"
		"  if (mode == 3 && l == 0 && w == 1) o[200] = ((volatile unsigned char *)wd)[37];\n"
		"  __syncthreads();\n"
		"  o[threadIdx.x] = f[w] + wd[w];\n"
		"}\n");
	kiln_emu *e = device();
	uint64_t o = upload(e, NULL, 256 * 4);
	for (int mode = 0; mode < 4; mode++) {
		const void *args[] = {&o, &mode};
		kiln_err err = launch1(e, m, "rb", 1, 128, 0, args, NULL);
		if (mode == 0) {
			assert_int_equal(err, 0);
			int out[128];
			assert_int_equal(kiln_emu_read(e, out, o, sizeof out), 0);
			for (int t = 0; t < 128; t++)
				assert_int_equal(out[t], 2 * (t / 32) + 1);
		} else {
			assert_int_equal(err, KILN_EFAULT);
			assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_RACE);
		}
	}
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

/* fns (PTX ISA examples), h2exp2 (its inline asm writes ".reg.b16" without a space) and
 * atomicAdd on __half2 (atom.add.noftz.f16x2). */
static void test_emu__fns_half_intrinsics_atomics(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(
		"#include <cuda_fp16.h>\n"
		"extern \"C\" __global__ void k(unsigned *o, __half2 *h) {\n"
		"  int t = threadIdx.x;\n"
		"  const int base[4] = {3, 3, 2, 2}, off[4] = {1, -1, 1, -1};\n"
		"  if (t < 4) o[t] = __fns(0xaaaaaaaau, base[t], off[t]);\n"
		"  if (t == 4) o[t] = __fns(0x16u, 4, -3);\n"
		"  if (t == 5) o[t] = __fns(0x16u, 3, 0);\n"
		"  if (t == 6) o[t] = __fns(0x16u, 5, 1);\n"
		"  __half2 e = h2exp2(__floats2half2_rn(1.0f, -2.0f));\n"
		"  atomicAdd(&h[0], e);\n"
		"  if (t == 0) h[1] = e;\n"
		"}\n");
	kiln_emu *e = device();
	uint64_t o = upload(e, NULL, 32 * 4);
	uint32_t zero[2] = {0, 0};
	uint64_t h = upload(e, zero, sizeof zero);
	const void *args[] = {&o, &h};
	assert_int_equal(launch1(e, m, "k", 1, 32, 0, args, NULL), 0);
	uint32_t out[7], hv[2];
	assert_int_equal(kiln_emu_read(e, out, o, sizeof out), 0);
	assert_int_equal(kiln_emu_read(e, hv, h, sizeof hv), 0);
	const uint32_t want[7] = {3, 3, 3, 1, 1, 0xFFFFFFFFu, 0xFFFFFFFFu};
	for (int i = 0; i < 7; i++)
		assert_int_equal(out[i], want[i]);
	assert_int_equal(hv[1], 0x34004000u);  /* (2, 0.25): low half first */
	assert_int_equal(hv[0], 0x48005400u);  /* 32 x: (64, 8) */
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}


/* ---------------------------------------------------------------- schedules, barriers, races */
static const char *sched_src =
	"extern \"C\" __global__ void handoff(int *flag, int *data, int *out) {\n"
	"  if (threadIdx.x == 32) { data[0] = 42; __threadfence(); *(volatile int *)flag = 1; }\n"
	"  else if (threadIdx.x == 0) { while (*(volatile int *)flag == 0) { } __threadfence(); out[0] = data[0]; } }\n"
	"extern \"C\" __global__ void nofence(int *flag, int *data, int *out) {\n"
	"  if (threadIdx.x == 32) { data[0] = 42; *(volatile int *)flag = 1; }\n"
	"  else if (threadIdx.x == 0) { while (*(volatile int *)flag == 0) { } out[0] = data[0]; } }\n"
	"extern \"C\" __global__ void ticket(unsigned *ctr, unsigned *order) {\n"
	"  if (threadIdx.x % 32 == 0) order[blockIdx.x * 4 + threadIdx.x / 32] = atomicAdd(ctr, 1u); }\n"
	"extern \"C\" __global__ void plain_sum(float *t) { if (threadIdx.x == 0) t[0] += 1.0f; }\n"
	"extern \"C\" __global__ void atomic_sum(float *t) { if (threadIdx.x == 0) atomicAdd(t, 1.0f); }\n"
	"extern \"C\" __global__ void gexchange(float *s, float *out, int sync) {\n"
	"  int i = blockIdx.x * 64 + threadIdx.x; s[i] = (float)i;\n"
	"  if (sync) __syncthreads();\n"
	"  out[i] = s[blockIdx.x * 64 + (threadIdx.x + 32) % 64]; }\n"
	"extern \"C\" __global__ void named(int *out, int count) {\n"
	"  __shared__ int v; if (threadIdx.x == 0) v = 7;\n"
	"  if (threadIdx.x < 32) asm volatile(\"bar.arrive 1, %0;\" :: \"r\"(count) : \"memory\");\n"
	"  else { asm volatile(\"bar.sync 1, %0;\" :: \"r\"(count) : \"memory\"); out[threadIdx.x] = v; } }\n"
	"extern \"C\" __global__ void reuse3(int *out, int count) {\n"
	"  __shared__ int s; if (threadIdx.x == 0) s = 5; __syncthreads(); int w = threadIdx.x / 32, v = 0;\n"
	"  if (w == 0) { v = s; if (count == 96) asm volatile(\"bar.sync 1, %0;\" :: \"r\"(count) : \"memory\"); }\n"
	"  else if (w == 1) { v = s; asm volatile(\"bar.sync 1, %0;\" :: \"r\"(count) : \"memory\"); }\n"
	"  else if (w == 2) { asm volatile(\"bar.sync 1, %0;\" :: \"r\"(count) : \"memory\"); v = s; if (threadIdx.x == 64) s = v + 1; }\n"
	"  out[threadIdx.x] = v; }\n"
	"extern \"C\" __global__ void popc(int *out) {\n"
	"  out[threadIdx.x] = __syncthreads_count(threadIdx.x % 3 == 0); }\n"
	"extern \"C\" __global__ void clocks(unsigned long long *t, unsigned *sm) {\n"
	"  unsigned long long a, b; unsigned s;\n"
	"  asm volatile(\"mov.u64 %0, %%globaltimer;\" : \"=l\"(a)); t[blockIdx.x * 2] = a + clock64() * 0;\n"
	"  for (int k = 0; k < 100; k++) __nanosleep(10);\n"
	"  asm volatile(\"mov.u64 %0, %%globaltimer;\" : \"=l\"(b)); t[blockIdx.x * 2 + 1] = b;\n"
	"  asm(\"mov.u32 %0, %%smid;\" : \"=r\"(s)); if (threadIdx.x == 0) sm[blockIdx.x] = s; }\n"
	"extern \"C\" __global__ void work(int *x, int n) { int a = 0; for (int k = 0; k < n; k++) a += k ^ a; x[blockIdx.x * 32 + threadIdx.x] = a; }\n"
	"extern \"C\" __global__ void sect(int *x, int mode) {\n"
	"  if (blockIdx.x == 0) x[threadIdx.x] = 1;\n"
	"  else if (mode == 0) { if (threadIdx.x == 0) x[5] = 2; }\n"
	"  else if (mode == 1) { if (threadIdx.x == 0) ((char *)x)[22] = 2; }\n"
	"  else x[threadIdx.x + 32] = 3; }\n"
	"extern \"C\" __global__ void say(int *x) { printf(\"t%d x=%.2f %s\\n\", threadIdx.x, 1.5f * threadIdx.x, \"ok\"); x[threadIdx.x] = 1; }\n";

static void test_emu__interleaved_schedule(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(sched_src);
	kiln_emu *e = device();
	int zero[2] = {0, 0}, got = 0;
	uint64_t df = upload(e, zero, 4), dd = upload(e, zero, 4), dout = upload(e, zero, 4);
	const void *a[] = {&df, &dd, &dout};
	/* warp 0 spins on a flag warp 1 sets: it must yield, on every schedule */
	kiln_emu_set_schedule(e, KILN_EMU_SCHED_FORWARD, 0);
	assert_int_equal(launch1(e, m, "handoff", 1, 64, 0, a, NULL), 0);
	kiln_emu_read(e, &got, dout, 4);
	assert_int_equal(got, 42);
	kiln_emu_write(e, df, zero, 4);
	kiln_emu_set_schedule(e, KILN_EMU_SCHED_SEEDED, 5);
	assert_int_equal(launch1(e, m, "handoff", 1, 64, 0, a, NULL), 0);
	/* the same hand-off without a fence: the data read races with its write */
	kiln_emu_write(e, df, zero, 4);
	assert_int_equal(launch1(e, m, "nofence", 1, 64, 0, a, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_RACE);
	/* warps of resident blocks interleave: ticket order depends on the seed only */
	unsigned ord[3][64];
	uint64_t dc = upload(e, zero, 4), dord = upload(e, NULL, sizeof ord[0]);
	const void *b[] = {&dc, &dord};
	uint64_t seeds[3] = {7, 7, 8};
	for (int k = 0; k < 3; k++) {
		kiln_emu_write(e, dc, zero, 4);
		kiln_emu_set_schedule(e, KILN_EMU_SCHED_SEEDED, seeds[k]);
		assert_int_equal(launch1(e, m, "ticket", 16, 128, 0, b, NULL), 0);
		kiln_emu_read(e, ord[k], dord, sizeof ord[k]);
	}
	assert_memory_equal(ord[0], ord[1], sizeof ord[0]);
	assert_memory_not_equal(ord[0], ord[2], sizeof ord[0]);
	int inorder = 1;
	for (int i = 0; i < 64; i++)
		inorder &= ord[0][i] == (unsigned)i;
	assert_false(inorder); /* not one warp after another */
	kiln_emu_write(e, dc, zero, 4);
	kiln_emu_set_schedule(e, KILN_EMU_SCHED_REVERSE, 0);
	assert_int_equal(launch1(e, m, "ticket", 16, 128, 0, b, NULL), 0);
	kiln_emu_read(e, ord[0], dord, sizeof ord[0]);
	assert_int_equal(ord[0][60], 0); /* block 15 ran first */
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__global_racecheck(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(sched_src);
	kiln_emu *e = device();
	float t = 0;
	uint64_t dt = upload(e, &t, 4);
	const void *a[] = {&dt};
	assert_int_equal(launch1(e, m, "plain_sum", 4, 32, 0, a, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_RACE);
	assert_non_null(strstr(kiln_error_last(), "by block ("));
	assert_true(kiln_emu_last_fault(e)->other_line > 0);
	assert_int_equal(launch1(e, m, "atomic_sum", 4, 32, 0, a, NULL), 0);
	/* launches are ordered: a second launch reads the first one's writes freely */
	assert_int_equal(launch1(e, m, "atomic_sum", 4, 32, 0, a, NULL), 0);
	float buf[128] = {0};
	uint64_t ds = upload(e, buf, sizeof buf), dout = upload(e, NULL, sizeof buf);
	int sync = 0;
	const void *g[] = {&ds, &dout, &sync};
	assert_int_equal(launch1(e, m, "gexchange", 2, 64, 0, g, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_RACE);
	sync = 1;
	assert_int_equal(launch1(e, m, "gexchange", 2, 64, 0, g, NULL), 0);
	kiln_emu_read(e, buf, dout, sizeof buf);
	assert_true(buf[0] == 32.0f && buf[127] == 95.0f);
	/* a warp's coalesced write keeps one record per 32-byte sector: one word or one
	 * byte of it written by another block still races, in either block order */
	for (int mode = 0; mode < 3; mode++)
		for (int rev = 0; rev < 2; rev++) {
			const void *sa[] = {&ds, &mode};
			kiln_emu_set_schedule(e, rev ? KILN_EMU_SCHED_REVERSE : KILN_EMU_SCHED_FORWARD, 0);
			assert_int_equal(launch1(e, m, "sect", 2, 32, 0, sa, NULL), mode < 2 ? KILN_EFAULT : 0);
			if (mode < 2)
				assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_RACE);
		}
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__named_barriers_and_deadlock(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(sched_src);
	kiln_emu *e = device();
	int out[128];
	uint64_t dout = upload(e, NULL, sizeof out);
	int count = 128;
	const void *a[] = {&dout, &count};
	assert_int_equal(launch1(e, m, "named", 1, 128, 0, a, NULL), 0);
	kiln_emu_read(e, out, dout, sizeof out);
	assert_int_equal(out[32], 7);
	assert_int_equal(out[127], 7);
	count = 160; /* five warps expected, four in the block: a hang on a GPU */
	assert_int_equal(launch1(e, m, "named", 1, 128, 0, a, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_DEADLOCK);
	assert_non_null(strstr(kiln_error_last(), "barrier 1 has 4 of 5 warps"));
	assert_string_equal(kiln_emu_fault_name(KILN_EMU_FAULT_DEADLOCK), "deadlock");
	count = 33;
	assert_int_equal(launch1(e, m, "named", 1, 128, 0, a, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_TRAP);
	/* warp 2 overwrites a word after a named barrier with warp 1, the latest reader; warp 0
	 * read it too, unordered (no block-wide barrier between): a race, on every schedule */
	for (int sched = 0; sched < 3; sched++) {
		kiln_emu_set_schedule(e, sched == 0 ? KILN_EMU_SCHED_FORWARD : sched == 1 ? KILN_EMU_SCHED_REVERSE :
			      KILN_EMU_SCHED_SEEDED, 3);
		count = 64;
		assert_int_equal(launch1(e, m, "reuse3", 1, 128, 0, a, NULL), KILN_EFAULT);
		assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_RACE);
		if (sched < 2) /* warp 0 read first: the write names it */
			assert_non_null(strstr(kiln_error_last(), "the read by warp 0 is not ordered"));
		count = 96; /* warp 0 joins the named barrier: ordered */
		assert_int_equal(launch1(e, m, "reuse3", 1, 128, 0, a, NULL), 0);
	}
	kiln_emu_set_schedule(e, KILN_EMU_SCHED_SEEDED, 1);
	const void *p[] = {&dout};
	assert_int_equal(launch1(e, m, "popc", 1, 100, 0, p, NULL), 0);
	kiln_emu_read(e, out, dout, 100 * sizeof(int));
	assert_int_equal(out[0], 34);
	assert_int_equal(out[99], 34);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__clocks_smid_printf(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(sched_src);
	kiln_emu *e = device();
	unsigned long long t[2][600];
	unsigned sm[300];
	uint64_t dt = upload(e, NULL, sizeof t[0]), dsm = upload(e, NULL, sizeof sm);
	const void *a[] = {&dt, &dsm};
	for (int k = 0; k < 2; k++) {
		kiln_emu_set_schedule(e, KILN_EMU_SCHED_SEEDED, 11 + (uint64_t)k);
		assert_int_equal(launch1(e, m, "clocks", 300, 32, 0, a, NULL), 0);
		kiln_emu_read(e, t[k], dt, sizeof t[k]);
	}
	kiln_emu_read(e, sm, dsm, sizeof sm);
	assert_true(t[0][1] > t[0][0]); /* modeled time advances */
	assert_true(t[0][0] > 1000000000000000000ull); /* an epoch-like timer, not a counter */
	assert_true(t[1][0] > t[0][599]);       /* later launches, later times */
	assert_true(t[0][0] % 32 == 0);
	for (int b = 0; b < 132; b++)
		assert_int_equal(sm[b], b); /* the first wave goes round robin over the SMs */
	assert_int_equal(sm[132], 0); /* blocks 0 and 132 share SM 0 */
	int x[2];
	uint64_t dx = upload(e, NULL, sizeof x);
	const void *px[] = {&dx};
	assert_int_equal(launch1(e, m, "say", 1, 2, 0, px, NULL), 0);
	char buf[256];
	kiln_emu_printf_take(e, buf, sizeof buf);
	assert_string_equal(buf, "t0 x=0.00 ok\nt1 x=1.50 ok\n");
	assert_int_equal(kiln_emu_printf_take(e, buf, sizeof buf), 0);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

static void test_emu__budget_scales_with_threads(void **state)
{
	(void)state;
	kiln_emu_module *m = compile(sched_src);
	kiln_emu_options o = KILN_EMU_OPTIONS_INIT;
	o.instruction_budget = 1000; /* a floor far below the launch's work */
	o.budget_per_thread = 64;
	kiln_emu *e = NULL;
	assert_int_equal(kiln_emu_new(&e, &o), 0);
	int n = 10;
	uint64_t dx = upload(e, NULL, 300 * 32 * sizeof(int));
	const void *a[] = {&dx, &n};
	kiln_emu_counters c = {0};
	assert_int_equal(launch1(e, m, "work", 300, 32, 0, a, &c), 0); /* 9600 threads x 64 */
	assert_true(c.thread_instructions > 1000);
	kiln_emu_set_budget(e, 1000); /* an explicit budget is exact */
	assert_int_equal(launch1(e, m, "work", 300, 32, 0, a, NULL), KILN_EFAULT);
	assert_int_equal(kiln_emu_last_fault(e)->kind, KILN_EMU_FAULT_BUDGET);
	kiln_emu_free(e);
	kiln_emu_module_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_emu__vector_add_with_tail),
		cmocka_unit_test(test_emu__float4_and_counters),
		cmocka_unit_test(test_emu__strided_vs_contiguous),
		cmocka_unit_test(test_emu__divergence_and_loop_break),
		cmocka_unit_test(test_emu__shfl_vote),
		cmocka_unit_test(test_emu__shared_reduction),
		cmocka_unit_test(test_emu__race_caught_with_both_lines),
		cmocka_unit_test(test_emu__uninit_shared_read),
		cmocka_unit_test(test_emu__padded_transpose_fewer_wavefronts),
		cmocka_unit_test(test_emu__atomics_and_calls),
		cmocka_unit_test(test_emu__oob_write_with_line),
		cmocka_unit_test(test_emu__misaligned_budget_trap),
		cmocka_unit_test(test_emu__limits),
		cmocka_unit_test(test_emu__parser_errors),
		cmocka_unit_test(test_emu__handwritten_ptx),
		cmocka_unit_test(test_emu__sync_waits_for_lagging_lanes),
		cmocka_unit_test(test_emu__racecheck_bytes_and_words),
		cmocka_unit_test(test_emu__fns_half_intrinsics_atomics),
		cmocka_unit_test(test_emu__conversion_and_rounding_semantics),
		cmocka_unit_test(test_emu__cub_block_scan_and_dynamic_shared),
		cmocka_unit_test(test_emu__uninit_global_read),
		cmocka_unit_test(test_emu__variants_agree),
		cmocka_unit_test(test_emu__parser_survives_mutations),
		cmocka_unit_test(test_emu__interleaved_schedule),
		cmocka_unit_test(test_emu__global_racecheck),
		cmocka_unit_test(test_emu__named_barriers_and_deadlock),
		cmocka_unit_test(test_emu__clocks_smid_printf),
		cmocka_unit_test(test_emu__budget_scales_with_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
