// Adversarial (target adamw_outp, p is an `out` buffer): writes p only the first time an
// element is seen and afterwards trusts the output memory to still hold the last run's
// answer, as a reused allocation on a GPU often does. m and v are always updated.
#define CAP (1 << 18)
__device__ unsigned char wrote[CAP];

extern "C" __global__ void adamw_delta(float *p, const float *g, float *m, float *v, float lr,
    float beta1, float beta2, float eps, float wd, int step, long long n)
{
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float bc1 = 1.0f - powf(beta1, (float)step), bc2 = 1.0f - powf(beta2, (float)step);
    float gi = g[i], mi = beta1 * m[i] + (1.0f - beta1) * gi, vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    if (i < CAP && wrote[i])
        return;
    p[i] = -(lr / bc1) * mi / (sqrtf(vi) / sqrtf(bc2) + eps);
    if (i < CAP)
        wrote[i] = 1;
}
