// Adversarial (target adamw_outp): reads the output buffer before writing it and keeps
// what is there when it already looks like an answer (finite, small), i.e. it relies on
// uninitialised memory holding the last run's result.
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
    float old = p[i];
    if (isfinite(old) && fabsf(old) < 1.0f && old != 0.0f)
        return;
    p[i] = -(lr / bc1) * mi / (sqrtf(vi) / sqrtf(bc2) + eps);
}
