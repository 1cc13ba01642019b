/* Kernels for the lion target shared by tests/test_time.c (emulator) and
 * tests/test_gpu_cuda.c (GPU): the Lion step written as targets/lion/seed.cu writes it,
 * so results match the reference, plus a strided variant. String macros only. */
#ifndef KILN_TESTS_GPU_LION_KERNELS_H
#define KILN_TESTS_GPU_LION_KERNELS_H

#define LION_BODY                                                                          \
	"#define LION(i) { const float gi = g[i], mi = m[i];"                              \
	" const float c = beta1 * mi + (1.0f - beta1) * gi;"                               \
	" const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);"                   \
	" p[i] = p[i] * (1.0f - lr * weight_decay) - lr * s;"                             \
	" m[i] = beta2 * mi + (1.0f - beta2) * gi; }\n"
#define LION_PARAMS "(float *p, const float *g, float *m, float lr, float beta1, float beta2, float weight_decay, long long n)"
#define LION_ARGS "\"args\": [\"p\", \"g\", \"m\", \"lr\", \"beta1\", \"beta2\", \"weight_decay\", \"n\"]"

/* each thread owns 16 consecutive elements: a warp's request spans 32 sectors */
#define LION_STRIDED_CU LION_BODY                                                          \
	"extern \"C\" __global__ void k" LION_PARAMS                                       \
	"{ long long b = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 16;\n"         \
	"#pragma unroll\n"                                                                  \
	"  for (int k = 0; k < 16; k++) { long long i = b + k; if (i < n) LION(i) } }\n"
#define LION_STRIDED_JSON "{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"ceil_div(n, 4096)\"], \"block\": [256], " LION_ARGS "}]}"

/* the same elements in two dependent launches: [0, n/2) then [n/2, n); GRAPH is "" or
 * "\"graph\": true, " (the launches as one CUDA graph) */
#define LION_SPLIT_CU LION_BODY                                                            \
	"extern \"C\" __global__ void lo" LION_PARAMS                                      \
	"{ long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; if (i < n / 2) LION(i) }\n" \
	"extern \"C\" __global__ void hi" LION_PARAMS                                      \
	"{ long long i = n / 2 + (long long)blockIdx.x * blockDim.x + threadIdx.x; if (i < n) LION(i) }\n"
#define LION_SPLIT_JSON(GRAPH) "{" GRAPH "\"launches\": ["                                  \
	"{\"kernel\": \"lo\", \"grid\": [\"ceil_div(n, 512) + 1\"], \"block\": [256], " LION_ARGS "}," \
	"{\"kernel\": \"hi\", \"grid\": [\"ceil_div(n, 512) + 1\"], \"block\": [256], " LION_ARGS "}]}"

#endif
