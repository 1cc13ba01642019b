// WRONG (scale_rownorm): weight decay 0.1 baked in.
// Written for the regimes check (issue Trust I): passes the default inputs, caught in: hyper.
// Derived from targets/scale_rownorm/seed.cu; only the lines of this bug differ.
#ifndef BLOCK
#define BLOCK 256
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
scale_rownorm_step(float *W, const float *G, float lr, float weight_decay, long long rows,
                   long long cols)
{
    __shared__ float partial[BLOCK];
    const long long r = blockIdx.x;
    const int tid = threadIdx.x;
    if (r >= rows)
        return;
    const float *g = G + r * cols;
    float *w = W + r * cols;

    float ss = 0.0f;
    for (long long j = tid; j < cols; j += BLOCK)
        ss += g[j] * g[j];
    partial[tid] = ss;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if (tid < s)
            partial[tid] += partial[tid + s];
        __syncthreads();
    }
    const float rms = sqrtf(partial[0] / (float)cols);
    const float inv = 1.0f / fmaxf(rms, 1e-8f);
    const float decay = 1.0f - lr * 0.1f; (void)weight_decay;
    for (long long j = tid; j < cols; j += BLOCK)
        w[j] = w[j] * decay - lr * (g[j] * inv);
}
