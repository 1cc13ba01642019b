// WRONG (ratio_seq): caps the mean log-ratio at 88 to avoid overflow: the answer is +Inf there.
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: overflow.
// Derived from targets/ratio_seq/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
ratio_seq(const float *logp_new, const float *logp_old, const unsigned char *mask, float *ratio,
          long long B, long long T)
{
    __shared__ float ssum[BLOCK];
    __shared__ int scount[BLOCK];
    const long long b = blockIdx.x;
    const int tid = threadIdx.x;
    if (b >= B)
        return;
    const long long row = b * T;
    float sum = 0.0f;
    int count = 0;
    for (long long t = tid; t < T; t += BLOCK) {
        if (mask[row + t]) {
            sum += logp_new[row + t] - logp_old[row + t];
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
        ratio[b] = expf(fminf(ssum[0] / (float)max(scount[0], 1), 88.0f));
}
