// CORRECT (ratio_cumulative): another scan than the seed's. One block per row; each thread
// owns CH consecutive tokens of a tile of BLOCK*CH: it sums its chunk serially, a
// Hillis-Steele scan over the BLOCK chunk totals gives each thread its offset, then the
// thread re-walks its chunk. Its fp32 error must fit the stated tree-scan slack.
#ifndef BLOCK
#define BLOCK 256
#endif
#define CH 16

static __device__ __forceinline__ float clamped(const float *a, const float *b, long long i)
{
    return fminf(fmaxf(a[i] - b[i], -20.0f), 20.0f);
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
    float carry_L = 0.0f;
    int carry_k = 0;
    for (long long tile = 0; tile < T; tile += (long long)BLOCK * CH) {
        const long long t0 = tile + (long long)tid * CH;
        float sum = 0.0f;
        int cnt = 0;
        for (int j = 0; j < CH; j++) {
            const long long t = t0 + j;
            if (t < T && mask[row + t]) {
                sum += clamped(logp_new, logp_old, row + t);
                cnt += 1;
            }
        }
        sL[tid] = sum;
        sk[tid] = cnt;
        __syncthreads();
        for (int off = 1; off < BLOCK; off <<= 1) {
            const float addL = tid >= off ? sL[tid - off] : 0.0f;
            const int addk = tid >= off ? sk[tid - off] : 0;
            __syncthreads();
            sL[tid] += addL;
            sk[tid] += addk;
            __syncthreads();
        }
        float L = carry_L + (tid > 0 ? sL[tid - 1] : 0.0f);
        int k = carry_k + (tid > 0 ? sk[tid - 1] : 0);
        for (int j = 0; j < CH; j++) {
            const long long t = t0 + j;
            if (t >= T)
                break;
            if (mask[row + t]) {
                L += clamped(logp_new, logp_old, row + t);
                k += 1;
                const float Lc = fminf(L, 10.0f);
                const float kp = powf((float)k, power);
                ratio[row + t] = expf(Lc);
                clipped[row + t] = expf(fminf(fmaxf(Lc, -c_lo * kp), c_hi * kp));
            } else {
                ratio[row + t] = 0.0f;
                clipped[row + t] = 0.0f;
            }
        }
        carry_L += sL[BLOCK - 1];
        carry_k += sk[BLOCK - 1];
        __syncthreads();
    }
}
