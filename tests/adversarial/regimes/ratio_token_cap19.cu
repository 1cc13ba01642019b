// WRONG (ratio_token): clamps the upper side at 19.9 (a 'safe' exp cap) instead of 20.
// Written for the regimes check (issue Trust I): caught in: exp_cap, clamp, default.
// Derived from targets/ratio_token/seed.cu; only the lines of this bug differ.
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
            const float d = fminf(fmaxf(logp_new[i] - logp_old[i], -20.0f), 19.9f);
            r = expf(d);
        }
        ratio[i] = r;
    }
}
