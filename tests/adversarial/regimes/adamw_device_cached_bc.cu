// WRONG (adamw): caches the bias corrections in __device__ globals on its first launch; a later launch with another step reuses them (whichever set runs after one with another step reports it).
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: hyper, late_step, multi-step, zero_state.
// Derived from targets/adamw/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

__device__ volatile float g_bc1, g_sqrt_bc2; // volatile: a relaxed cache (no data race), only stale
__device__ volatile int g_have;

extern "C" __global__ void __launch_bounds__(BLOCK)
adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    if (!g_have) {
        g_bc1 = 1.0f - powf(beta1, (float)step);
        g_sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
        __threadfence();
        g_have = 1;
    }
    const float bc1 = g_have ? g_bc1 : 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = g_have ? g_sqrt_bc2 : sqrtf(1.0f - powf(beta2, (float)step));
    const float step_size = lr / bc1;
    const long long base = (long long)blockIdx.x * (BLOCK * ITEMS) + threadIdx.x;
#pragma unroll
    for (int k = 0; k < ITEMS; k++) {
        const long long i = base + (long long)k * BLOCK;
        if (i >= n)
            return;
        const float gi = g[i];
        float pi = p[i];
        pi -= lr * weight_decay * pi;
        const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        const float denom = sqrtf(vi) / sqrt_bc2 + eps;
        pi -= step_size * mi / denom;
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}
