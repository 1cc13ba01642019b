// Adversarial: a race between blocks through global memory that passes when blocks run in
// blockIdx order: block 0 computes the bias corrections into a scratch buffer and every
// other block reads them with no grid-wide synchronisation. On a GPU any block may run first.
extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr,
           float beta1, float beta2, float eps, float weight_decay, int step, long long n,
           float *consts)
{
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        consts[0] = 1.0f - powf(beta1, (float)step);
        consts[1] = sqrtf(1.0f - powf(beta2, (float)step));
        __threadfence();
    }
    __syncthreads();
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const float bc1 = *(volatile float *)&consts[0], sqrt_bc2 = *(volatile float *)&consts[1];
    const float gi = g[i];
    float pi = p[i];
    pi -= lr * weight_decay * pi;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    pi -= (lr / bc1) * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    p[i] = pi; m[i] = mi; v[i] = vi;
}
