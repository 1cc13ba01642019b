/* emu_bench: emulated thread-instructions per second of the PTX emulator on one core,
 * for an AdamW step (n = 1,048,576 by default, the adamw seed's size) and a shared-memory
 * block scan. Kernels are compiled here with NVRTC; results are spot-checked so a fast
 * but wrong emulator cannot report a figure. Usage: emu_bench [n] [repeats] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nvrtc.h>

#include "profile/emu/emu.h"

static const char *src =
	"extern \"C\" __global__ void adamw(float *p, const float *g, float *m, float *v, int n,\n"
	"    float lr, float b1, float b2, float eps, float wd, float bc1, float bc2) {\n"
	"  int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
	"  if (i >= n) return;\n"
	"  float gi = g[i];\n"
	"  float mi = b1 * m[i] + (1.0f - b1) * gi;\n"
	"  float vi = b2 * v[i] + (1.0f - b2) * gi * gi;\n"
	"  m[i] = mi; v[i] = vi;\n"
	"  float mh = mi / bc1, vh = vi / bc2;\n"
	"  p[i] = p[i] - lr * (mh / (sqrtf(vh) + eps) + wd * p[i]);\n"
	"}\n"
	"extern \"C\" __global__ void scan(const float *in, float *out, int n) {\n"
	"  __shared__ float s[2][1024];\n"
	"  int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;\n"
	"  int cur = 0;\n"
	"  s[0][t] = i < n ? in[i] : 0.0f;\n"
	"  __syncthreads();\n"
	"  for (int o = 1; o < blockDim.x; o <<= 1) {\n"
	"    float x = s[cur][t]; if (t >= o) x += s[cur][t - o];\n"
	"    s[cur ^ 1][t] = x; cur ^= 1; __syncthreads();\n"
	"  }\n"
	"  if (i < n) out[i] = s[cur][t];\n"
	"}\n";

static char *compile(void)
{
	nvrtcProgram prog;
	const char *opts[] = {"--gpu-architecture=compute_90"};
	if (nvrtcCreateProgram(&prog, src, "bench.cu", 0, NULL, NULL) != NVRTC_SUCCESS ||
	    nvrtcCompileProgram(prog, 1, opts) != NVRTC_SUCCESS) {
		fprintf(stderr, "emu_bench: NVRTC failed to compile the benchmark kernels\n");
		return NULL;
	}
	size_t n;
	nvrtcGetPTXSize(prog, &n);
	char *ptx = malloc(n + 1);
	if (ptx)
		nvrtcGetPTX(prog, ptx);
	nvrtcDestroyProgram(&prog);
	return ptx;
}

static int fail(const char *what)
{
	fprintf(stderr, "emu_bench: %s: %s\n", what, kiln_error_last());
	return 1;
}

/* Runs both kernels on a fresh device; returns 0 or prints the error. */
static int run(const kiln_emu_module *mod, int n, int reps, bool racecheck)
{
	kiln_emu_options o = KILN_EMU_OPTIONS_INIT;
	o.racecheck = racecheck;
	kiln_emu *emu = NULL;
	if (kiln_emu_new(&emu, &o))
		return fail("device");
	size_t bytes = (size_t)n * 4;
	float *h = malloc(bytes), *h2 = calloc(1, bytes);
	uint64_t dp, dg, dm, dv, din, dout;
	if (!h || !h2)
		return fail("host memory");
	for (int i = 0; i < n; i++)
		h[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
	if (kiln_emu_alloc(emu, &dp, bytes) || kiln_emu_alloc(emu, &dg, bytes) || kiln_emu_alloc(emu, &dm, bytes) ||
	    kiln_emu_alloc(emu, &dv, bytes) || kiln_emu_alloc(emu, &din, bytes) || kiln_emu_alloc(emu, &dout, bytes))
		return fail("alloc");
	kiln_emu_write(emu, dp, h, bytes);
	kiln_emu_write(emu, dg, h, bytes);
	kiln_emu_write(emu, din, h, bytes);
	kiln_emu_write(emu, dm, h2, bytes);
	kiln_emu_write(emu, dv, h2, bytes);
	float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.01f, bc1 = 0.1f, bc2 = 0.001f;
	const void *aargs[] = {&dp, &dg, &dm, &dv, &n, &lr, &b1, &b2, &eps, &wd, &bc1, &bc2};
	const void *sargs[] = {&din, &dout, &n};
	struct { const char *name; const void *const *args; uint32_t block; } ks[] = {
		{"adamw", aargs, 256}, {"scan", sargs, 1024},
	};
	for (size_t k = 0; k < 2; k++) {
		double best = 0;
		kiln_emu_counters c;
		for (int r = 0; r < reps; r++) {
			memset(&c, 0, sizeof c);
			uint32_t grid[3] = {(uint32_t)((n + (int)ks[k].block - 1) / (int)ks[k].block), 1, 1};
			uint32_t block[3] = {ks[k].block, 1, 1};
			double t0 = kiln_now_s();
			if (kiln_emu_launch(emu, mod, ks[k].name, grid, block, 0, ks[k].args, &c))
				return fail(ks[k].name);
			double dt = kiln_now_s() - t0;
			double rate = (double)c.thread_instructions / dt;
			if (rate > best)
				best = rate;
		}
		printf("%-6s n=%d %-23s %llu thread-instructions, %llu warp-instructions, best of %d: %.1f M thread-instructions/s\n",
		       ks[k].name, n, racecheck ? "(initcheck+racecheck):" : "(initcheck):",
		       (unsigned long long)c.thread_instructions, (unsigned long long)c.warp_instructions, reps,
		       best / 1e6);
	}
	/* spot check: the scan's first block */
	kiln_emu_read(emu, h2, dout, (n < 1024 ? (size_t)n : 1024) * 4);
	double acc = 0;
	for (int i = 0; i < 1024 && i < n; i++) {
		acc += h[i];
		if (fabs(h2[i] - acc) > 1e-3 * (1 + fabs(acc))) {
			fprintf(stderr, "emu_bench: scan result wrong at %d: %g vs %g\n", i, h2[i], acc);
			return 1;
		}
	}
	free(h);
	free(h2);
	kiln_emu_free(emu);
	return 0;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1048576;
	int reps = argc > 2 ? atoi(argv[2]) : 3;
	if (n <= 0 || reps <= 0) {
		fprintf(stderr, "usage: emu_bench [n] [repeats]\n");
		return 2;
	}
	char *ptx = compile();
	if (!ptx)
		return 1;
	kiln_emu_module *mod = NULL;
	if (kiln_emu_module_parse(&mod, ptx, strlen(ptx), "bench.ptx"))
		return fail("parse");
	int rc = run(mod, n, reps, false);
	if (!rc)
		rc = run(mod, n, reps, true);
	free(ptx);
	kiln_emu_module_free(mod);
	return rc;
}
