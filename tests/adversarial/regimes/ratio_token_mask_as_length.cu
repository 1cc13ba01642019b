// WRONG (ratio_token): reads the mask as a length: binary-searches the end of a prefix of ones and treats every token before it as valid.
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: holes.
// Derived from targets/ratio_token/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif

static __device__ long long prefix_len(const unsigned char *mask, long long row, long long T)
{
    long long lo = 0, hi = T; // assumes the mask is a prefix of ones: binary search its end
    while (lo < hi) {
        const long long mid = (lo + hi) / 2;
        if (mask[row + mid])
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

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
        const long long row = i / T * T;
        if (i - row < prefix_len(mask, row, T)) {
            const float d = fminf(fmaxf(logp_new[i] - logp_old[i], -20.0f), 20.0f);
            r = expf(d);
        }
        ratio[i] = r;
    }
}
