// WRONG (ratio_cumulative): reads the mask as a length: binary-searches the end of a prefix of ones; every token before it counts as valid.
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: holes.
// Derived from targets/ratio_cumulative/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
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
ratio_cumulative(const float *logp_new, const float *logp_old, const unsigned char *mask,
                 float *ratio, float *clipped, float c_lo, float c_hi, float power, long long B,
                 long long T)
{
    __shared__ float sL[BLOCK];
    __shared__ int sk[BLOCK];
    const long long b = blockIdx.x;
    const int tid = threadIdx.x;
    if (b >= B)
        return;
    const long long row = b * T;
    const long long len = prefix_len(mask, row, T);
    float carry_L = 0.0f;
    int carry_k = 0;
    for (long long base = 0; base < T; base += BLOCK) {
        const long long t = base + tid;
        const int valid = t < len;
        float d = 0.0f;
        if (valid)
            d = fminf(fmaxf(logp_new[row + t] - logp_old[row + t], -20.0f), 20.0f);
        sL[tid] = d;
        sk[tid] = valid != 0;
        __syncthreads();
        for (int off = 1; off < BLOCK; off <<= 1) {
            const float addL = tid >= off ? sL[tid - off] : 0.0f;
            const int addk = tid >= off ? sk[tid - off] : 0;
            __syncthreads();
            sL[tid] += addL;
            sk[tid] += addk;
            __syncthreads();
        }
        if (valid) {
            const float L = fminf(carry_L + sL[tid], 10.0f);
            const float kp = powf((float)(carry_k + sk[tid]), power);
            ratio[row + t] = expf(L);
            clipped[row + t] = expf(fminf(fmaxf(L, -c_lo * kp), c_hi * kp));
        } else if (t < T) {
            ratio[row + t] = 0.0f;
            clipped[row + t] = 0.0f;
        }
        carry_L += sL[BLOCK - 1];
        carry_k += sk[BLOCK - 1];
        __syncthreads();
    }
}
