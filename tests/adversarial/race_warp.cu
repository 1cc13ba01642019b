// Adversarial: a warp-synchronous exchange through shared memory with no __syncwarp():
// each lane stores its neighbour's gradient and reads its own from the neighbour, relying on the 32 lanes of a
// warp running in lockstep (not guaranteed since Volta's independent thread scheduling).
extern "C" __global__ void adamw_step(float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
           float eps, float weight_decay, int step, long long n)
{
    __shared__ float sg[256];
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    // each lane stores its neighbour's gradient into its own slot's partner and reads back
    // the one its neighbour stored for it: right only if the neighbour has already stored
    const long long j = i ^ 1;
    sg[threadIdx.x ^ 1] = j < n ? g[j] : 0.0f;
    const long long self = i;
    const float gi_swapped = sg[threadIdx.x];   // = g[i ^ 1 ^ 1] = g[i], written by lane ^ 1
    const float gi = self < n ? gi_swapped : 0.0f;
    if (i >= n)
        return;
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
    float pi = p[i];
    pi -= lr * weight_decay * pi;
    const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    pi -= (lr / bc1) * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    p[i] = pi; m[i] = mi; v[i] = vi;
}
