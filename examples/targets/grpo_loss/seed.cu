// grpo_loss seed: one block per sequence; each thread sums the clipped surrogate of
// the valid tokens of a strided slice of the row (selecting on the mask, so garbage
// never enters) and counts them, a shared-memory tree combines the slices and thread 0
// writes sum / max(count, 1). Knob: BLOCK threads per block (a power of two).
#ifndef BLOCK
#define BLOCK 256
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
grpo_loss(const float *logp_new, const float *logp_old, const unsigned char *mask, const float *adv,
          float *loss, float eps_lo, float eps_hi, long long B, long long T)
{
    __shared__ float ssum[BLOCK];
    __shared__ int scount[BLOCK];
    const long long b = blockIdx.x;
    const int tid = threadIdx.x;
    if (b >= B)
        return;
    const long long row = b * T;
    const float a = adv[b];
    float sum = 0.0f;
    int count = 0;
    for (long long t = tid; t < T; t += BLOCK) {
        if (mask[row + t]) {
            const float r = expf(logp_new[row + t] - logp_old[row + t]);
            const float rc = fminf(fmaxf(r, 1.0f - eps_lo), 1.0f + eps_hi);
            sum += -fminf(r * a, rc * a);
            count += 1;
        }
    }
    ssum[tid] = sum;
    scount[tid] = count;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (tid < s) {
            ssum[tid] += ssum[tid + s];
            scount[tid] += scount[tid + s];
        }
        __syncthreads();
    }
    if (tid == 0)
        loss[b] = ssum[0] / (float)max(scount[0], 1);
}
