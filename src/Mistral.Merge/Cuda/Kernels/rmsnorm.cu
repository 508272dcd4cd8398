// rmsnorm.cu: HF MistralRMSNorm. y = weight * (x * rsqrt(mean(x^2) + eps)), all in f32 (the weight is kept in
// f32 on the device, exact for F32 and BF16 checkpoints); the result is stored in the GEMM input dtype.
// grid: rows; block: 256 threads.

template <typename TO>
__device__ void rmsnorm_impl(const float* __restrict__ x, const float* __restrict__ w, TO* __restrict__ y, int n, float eps)
{
    __shared__ float red[32];
    const float* xr = x + (long long)blockIdx.x * n;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
    ss = block_sum(ss, red);
    // 1/sqrtf (IEEE-rounded under NVRTC's default -prec-div/-prec-sqrt) rather than the approximate rsqrtf.
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        store_f(y, (long long)blockIdx.x * n + i, __fmul_rn(w[i], __fmul_rn(xr[i], inv)));
}

extern "C" __global__ void rmsnorm_f32(const float* x, const float* w, float* y, int n, float eps) { rmsnorm_impl(x, w, y, n, eps); }
extern "C" __global__ void rmsnorm_bf16(const float* x, const float* w, bf16_t* y, int n, float eps) { rmsnorm_impl(x, w, y, n, eps); }
