// ratio_token seed: one token per thread (ITEMS per thread strided by BLOCK),
// r = exp(clamp(logp_new - logp_old, -20, 20)) where the mask is set, else 0. The
// log-probs are read only under the mask, so NaN/Inf garbage never enters.
// Knobs: BLOCK threads per block, ITEMS tokens per thread.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
ratio_token(const float *logp_new, const float *logp_old, const unsigned char *mask, float *ratio,
            long long B, long long T)
{
    const long long n = B * T;
    const long long base = (long long)blockIdx.x * (BLOCK * ITEMS) + threadIdx.x;
#pragma unroll
    for (int k = 0; k < ITEMS; k++) {
        const long long i = base + (long long)k * BLOCK;
        if (i >= n)
            return;
        float r = 0.0f;
        if (mask[i]) {
            const float d = fminf(fmaxf(logp_new[i] - logp_old[i], -20.0f), 20.0f);
            r = expf(d);
        }
        ratio[i] = r;
    }
}
