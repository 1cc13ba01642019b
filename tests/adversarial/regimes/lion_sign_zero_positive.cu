// WRONG (lion): sign(0) = +1 (c >= 0): moves p by lr where m = g = 0.
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: zero_state.
// Derived from targets/lion/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

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
        const float s = c >= 0.0f ? 1.0f : -1.0f;
        p[i] = p[i] * (1.0f - lr * weight_decay) - lr * s;
        m[i] = beta2 * mi + (1.0f - beta2) * gi;
    }
}
