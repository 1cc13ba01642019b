// WRONG (lion): caches 1 - lr*wd in a __device__ global on its first launch; later launches with another lr reuse it (whichever set runs after one with another lr reports it).
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: hyper, multi-step, zero_state, tiny.
// Derived from targets/lion/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

__device__ float g_decay;
__device__ int g_have;

extern "C" __global__ void __launch_bounds__(BLOCK)
lion_step(float *p, const float *g, float *m, float lr, float beta1, float beta2,
          float weight_decay, long long n)
{
    const long long base = (long long)blockIdx.x * (BLOCK * ITEMS) + threadIdx.x;
#pragma unroll
    for (int k = 0; k < ITEMS; k++) {
        const long long i = base + (long long)k * BLOCK;
        if (i >= n)
            return;
        const float gi = g[i], mi = m[i];
        const float c = beta1 * mi + (1.0f - beta1) * gi;
        const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);
        if (!g_have) {
            g_decay = 1.0f - lr * weight_decay;
            __threadfence();
            g_have = 1;
        }
        p[i] = p[i] * g_decay - lr * s;
        m[i] = beta2 * mi + (1.0f - beta2) * gi;
    }
}
