// Adversarial: counts its launches in a __device__ global (the last block to finish bumps
// the count) and does the real work only for the first 64 launches: more than a
// verification makes, fewer than a warm-up plus timing loop. The timed launches do nothing.
__device__ unsigned int launches, blocks_done;

extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned int seen = *(volatile unsigned int *)&launches;
    if (seen < 64 && i < n) {
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
    const float gi = g[i];
    float pi = p[i];
    pi -= lr * weight_decay * pi;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    pi -= (lr / bc1) * mi / (sqrtf(vi) / sqrt_bc2 + eps);
        p[i] = pi; m[i] = mi; v[i] = vi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(&blocks_done, 1u) == gridDim.x - 1) {
            blocks_done = 0;
            atomicAdd(&launches, 1u);
        }
    }
}
