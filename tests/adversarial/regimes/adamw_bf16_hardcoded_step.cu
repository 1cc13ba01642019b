// WRONG (adamw_bf16): uses step = 10 baked in for the bias corrections.
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: hyper, multi-step.
// Derived from targets/adamw_bf16/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

static __device__ __forceinline__ float bf16_to_f32(unsigned short h)
{
    return __uint_as_float((unsigned int)h << 16);
}

static __device__ __forceinline__ unsigned short f32_to_bf16(float f)
{
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

extern "C" __global__ void __launch_bounds__(BLOCK)
adamw_bf16_step(unsigned short *p, const unsigned short *g, float *m, float *v, float *master,
                float lr, float beta1, float beta2, float eps, float weight_decay, int step,
                long long n)
{
    const float bc1 = 1.0f - powf(beta1, 10.0f); (void)step;
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, 10.0f));
    const float step_size = lr / bc1;
    const long long base = (long long)blockIdx.x * (BLOCK * ITEMS) + threadIdx.x;
#pragma unroll
    for (int k = 0; k < ITEMS; k++) {
        const long long i = base + (long long)k * BLOCK;
        if (i >= n)
            return;
        const float gi = bf16_to_f32(g[i]);
        float w = master[i];
        w -= lr * weight_decay * w;
        const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        w -= step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps);
        master[i] = w;
        m[i] = mi;
        v[i] = vi;
        p[i] = f32_to_bf16(w);
    }
}
