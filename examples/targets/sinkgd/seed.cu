// sinkgd seed: the plan runs three row passes and three column passes over a scratch copy
// X of the gradient, the last column pass also applying W -= lr*X.
// Row pass: one block per row, the sum of squares in a shared-memory tree.
// Column pass: one thread per column walking down the rows (neighbouring threads read
// neighbouring addresses), a serial fp64 sum. Knob: BLOCK threads per block (power of two).
#ifndef BLOCK
#define BLOCK 256
#endif

extern "C" __global__ void __launch_bounds__(BLOCK)
sinkgd_rows(const float *src, float *X, long long rows, long long cols)
{
    __shared__ float partial[BLOCK];
    const long long r = blockIdx.x;
    const int tid = threadIdx.x;
    if (r >= rows)
        return;
    const float *s = src + r * cols;
    float *x = X + r * cols;
    float ss = 0.0f;
    for (long long j = tid; j < cols; j += BLOCK)
        ss += s[j] * s[j];
    partial[tid] = ss;
    __syncthreads();
    for (int k = BLOCK / 2; k > 0; k >>= 1) {
        if (tid < k)
            partial[tid] += partial[tid + k];
        __syncthreads();
    }
    const float scale = sqrtf((float)cols) / fmaxf(sqrtf(partial[0]), 1e-12f);
    for (long long j = tid; j < cols; j += BLOCK)
        x[j] = s[j] * scale;
}

__device__ float col_scale(const float *X, long long c, long long rows, long long cols)
{
    double ss = 0.0;
    for (long long i = 0; i < rows; i++) {
        const double v = X[i * cols + c];
        ss += v * v;
    }
    return (float)(sqrt((double)rows) / fmax(sqrt(ss), 1e-12));
}

extern "C" __global__ void __launch_bounds__(BLOCK)
sinkgd_cols(float *X, long long rows, long long cols)
{
    const long long c = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (c >= cols)
        return;
    const float scale = col_scale(X, c, rows, cols);
    for (long long i = 0; i < rows; i++)
        X[i * cols + c] *= scale;
}

extern "C" __global__ void __launch_bounds__(BLOCK)
sinkgd_cols_update(const float *X, float *W, float lr, long long rows, long long cols)
{
    const long long c = (long long)blockIdx.x * BLOCK + threadIdx.x;
    if (c >= cols)
        return;
    const float scale = col_scale(X, c, rows, cols);
    for (long long i = 0; i < rows; i++)
        W[i * cols + c] -= lr * (X[i * cols + c] * scale);
}
