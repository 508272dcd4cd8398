// silu.cu: SwiGLU gating of the fused gate/up projection gu [T, 2*I] (f32): act = silu(gate) * up,
// silu(g) = g * sigmoid(g) = g * (1 / (1 + exp(-g))) in f32 (torch's formula), stored in the GEMM input dtype.

template <typename TO>
__device__ void silu_mul_impl(const float* __restrict__ gu, TO* __restrict__ act, int T, int I)
{
    long long n = (long long)T * I;
    for (long long idx = blockIdx.x * (long long)blockDim.x + threadIdx.x; idx < n; idx += (long long)gridDim.x * blockDim.x)
    {
        long long t = idx / I, i = idx - t * I;
        float g = gu[t * 2 * I + i], u = gu[t * 2 * I + I + i];
        float sg = __fmul_rn(g, __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-g))));
        store_f(act, idx, __fmul_rn(sg, u));
    }
}

extern "C" __global__ void silu_mul_f32(const float* gu, float* act, int T, int I) { silu_mul_impl(gu, act, T, I); }
extern "C" __global__ void silu_mul_bf16(const float* gu, bf16_t* act, int T, int I) { silu_mul_impl(gu, act, T, I); }
