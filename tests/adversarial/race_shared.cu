// Adversarial: a shared-memory race that passes on a lockstep schedule: warp w reads the
// bias corrections that warp 0 stored in shared memory, with no __syncthreads() between
// the store and the loads.
extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    __shared__ float consts[2];
    if (threadIdx.x == 0) {
        consts[0] = 1.0f - powf(beta1, (float)step);
        consts[1] = sqrtf(1.0f - powf(beta2, (float)step));
    }
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const float bc1 = consts[0], sqrt_bc2 = consts[1];
    const float gi = g[i];
    float pi = p[i];
    pi -= lr * weight_decay * pi;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    pi -= (lr / bc1) * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    p[i] = pi; m[i] = mi; v[i] = vi;
}
