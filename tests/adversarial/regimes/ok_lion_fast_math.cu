// CORRECT (lion): the seed compiled with --use_fast_math (flush-to-zero): in the tiny
// regime subnormal products flush to 0 and c can be 0 where the float64 c is not; the
// tie rule (|c| <= 4*eps32*(|a|+|b|) + 2*FLT_MIN) must accept it.
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
        const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);
        p[i] = p[i] * (1.0f - lr * weight_decay) - lr * s;
        m[i] = beta2 * mi + (1.0f - beta2) * gi;
    }
}
