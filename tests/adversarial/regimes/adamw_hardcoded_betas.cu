// WRONG (adamw): betas 0.9 / 0.999 baked in (the moments and the corrections).
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: hyper.
// Derived from targets/adamw/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
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
        const float mi = 0.9f * m[i] + (1.0f - 0.9f) * gi;
        const float vi = 0.999f * v[i] + (1.0f - 0.999f) * gi * gi;
        const float denom = sqrtf(vi) / sqrt_bc2 + eps;
        pi -= step_size * mi / denom;
        p[i] = pi;
        m[i] = mi;
        v[i] = vi;
    }
}
