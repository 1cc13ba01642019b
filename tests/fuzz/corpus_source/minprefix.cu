// ratio_minprefix seed (MinPRO): one block per sequence walks the row in chunks of BLOCK
// tokens with an inclusive Hillis-Steele min-scan in shared memory of the clamped
// log-ratio (+inf where masked: selected, so garbage never enters) and a carry between
// chunks. The prefix min is taken before the token (inclusive = 0) or including it
// (inclusive = 1); an empty prefix counts as log 1 = 0. weight = clip(exp(min + d),
// 1 - eps_lo, 1 + eps_hi), 0 where masked. Knob: BLOCK threads per block (a power of two).
#ifndef BLOCK
#define BLOCK 256
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
ratio_minprefix(const float *logp_new, const float *logp_old, const unsigned char *mask,
                float *weight, int inclusive, float eps_lo, float eps_hi, long long B,
                long long T)
{
    __shared__ float smin[BLOCK];
    const long long b = blockIdx.x;
    const int tid = threadIdx.x;
    if (b >= B)
        return;
    const long long row = b * T;
    const float lo = 1.0f - eps_lo, hi = 1.0f + eps_hi;
    float carry = __int_as_float(0x7f800000); // +inf: nothing seen yet
    for (long long base = 0; base < T; base += BLOCK) {
        const long long t = base + tid;
        const int valid = t < T ? (int)mask[row + t] : 0;
        float d = 0.0f;
        if (valid)
            d = fminf(fmaxf(logp_new[row + t] - logp_old[row + t], -20.0f), 20.0f);
        smin[tid] = valid ? d : __int_as_float(0x7f800000);
        __syncthreads();
        for (int off = 1; off < BLOCK; off <<= 1) {
            const float other = tid >= off ? smin[tid - off] : __int_as_float(0x7f800000);
            __syncthreads();
            smin[tid] = fminf(smin[tid], other);
            __syncthreads();
        }
        const float incl = fminf(carry, smin[tid]);
        const float excl = fminf(carry, tid > 0 ? smin[tid - 1] : __int_as_float(0x7f800000));
        if (valid) {
            float m = inclusive ? incl : excl;
            if (isinf(m))
                m = 0.0f;
            weight[row + t] = fminf(fmaxf(expf(m + d), lo), hi);
        } else if (t < T) {
            weight[row + t] = 0.0f;
        }
        carry = fminf(carry, smin[BLOCK - 1]);
        __syncthreads();
    }
}
