// Adversarial: does the work only for the indices the verification sizes reach (below the
// largest one, 65539); at any larger n the tail keeps its old p, m, v. Passes every listed
// verification size; caught only by a size verification does not announce in advance.
extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || i >= 65539)
        return;
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
