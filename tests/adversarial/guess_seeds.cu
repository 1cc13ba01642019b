// Adversarial: never reads its gradient; it regenerates one from a guessed seed (its own
// splitmix64 stream seeded with 1, scaled like normal(0, 0.01)), hoping the verifier's
// inputs come from a predictable seed. kiln draws fresh seeds from the OS every time.
__device__ unsigned long long splitmix(unsigned long long x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
    const unsigned long long r = splitmix(1ull + (unsigned long long)(n + i));
    const float gi = 0.01f * ((float)(r >> 40) / 16777216.0f * 2.0f - 1.0f) * 1.7f;
    float pi = p[i];
    pi -= lr * weight_decay * pi;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    pi -= (lr / bc1) * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    p[i] = pi; m[i] = mi; v[i] = vi;
}
