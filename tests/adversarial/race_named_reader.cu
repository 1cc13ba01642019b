// Adversarial: warp 2 reuses a shared slot as scratch once warp 1, its partner on a named
// barrier (bar.sync 1, 64), has read it, forgetting that warp 0 reads the slot too; no
// block-wide barrier orders warp 0's read before the overwrite. On a GPU warp 0 can be
// late and read the scratch value. The overwrite is ordered after the latest reader
// (warp 1) only: the racecheck must keep warp 0's older read.
extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    __shared__ float sh[1];
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
    if (threadIdx.x == 0)
        sh[0] = bc1;
    __syncthreads();
    const unsigned wid = threadIdx.x / 32;
    float my_bc1 = bc1;
    if (wid == 0) {
        my_bc1 = sh[0];
    } else if (wid == 1) {
        my_bc1 = sh[0];
        asm volatile("bar.sync 1, 64;" ::: "memory");
    } else if (wid == 2) {
        asm volatile("bar.sync 1, 64;" ::: "memory");
        my_bc1 = sh[0];
        sh[0] = my_bc1 * 0.5f; // scratch: warp 1 is done with the slot, warp 0 may not be
    }
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const float gi = g[i];
    float pi = p[i];
    pi -= lr * weight_decay * pi;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    pi -= (lr / my_bc1) * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    p[i] = pi; m[i] = mi; v[i] = vi;
}
