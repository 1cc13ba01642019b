// Adversarial: caches its results across launches in __device__ globals, tagged by n, and
// replays them whenever the same n comes again without reading the inputs: correct for the
// first input set of each size, and "fast" for every repetition of a timing loop.
#define CAP (1 << 18)
__device__ float cache_p[CAP], cache_m[CAP], cache_v[CAP];
__device__ long long cache_n[CAP];

extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    if (i < CAP && cache_n[i] == n) {
        p[i] = cache_p[i]; m[i] = cache_m[i]; v[i] = cache_v[i];
        return;
    }
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
    const float gi = g[i];
    float pi = p[i];
    pi -= lr * weight_decay * pi;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    pi -= (lr / bc1) * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    p[i] = pi; m[i] = mi; v[i] = vi;
    if (i < CAP) {
        cache_p[i] = pi; cache_m[i] = mi; cache_v[i] = vi; cache_n[i] = n;
    }
}
