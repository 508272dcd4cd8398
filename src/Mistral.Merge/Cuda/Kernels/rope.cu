// rope.cu: rotary embedding with HF "rotate_half" semantics, fused with the KV-cache append.
// Input: the fused QKV projection qkv [T, (H + 2*KVH) * D] (f32, GEMM output). For i < D/2:
//   out[i]       = x[i] * cos - x[i + D/2] * sin
//   out[i + D/2] = x[i + D/2] * cos + x[i] * sin
// with cos/sin tables [maxPos, D/2] computed on the host exactly as HF does (inv_freq = 1/theta^(2i/D) in f32,
// angle = pos * inv_freq in f32). Q goes to q [T, H, D]; rotated K and plain V go to the caches [maxSeq, KVH, D]
// at positions pos0 .. pos0+T-1. Products and sums are rounded separately (no FMA contraction) as in torch.
// grid: T; block: 128 threads.

extern "C" __global__ void rope_qkv_store(const float* __restrict__ qkv, float* __restrict__ q, float* __restrict__ kcache,
    float* __restrict__ vcache, const float* __restrict__ cosT, const float* __restrict__ sinT,
    int H, int KVH, int D, int pos0)
{
    int t = blockIdx.x, pos = pos0 + t, half = D / 2;
    long long rowStride = (long long)(H + 2 * KVH) * D;
    const float* row = qkv + (long long)t * rowStride;
    const float* c = cosT + (long long)pos * half;
    const float* s = sinT + (long long)pos * half;
    // Q and K heads: rotate.
    for (int idx = threadIdx.x; idx < (H + KVH) * half; idx += blockDim.x)
    {
        int h = idx / half, i = idx - h * half;
        const float* src = row + (long long)h * D;
        float a = src[i], b = src[i + half];
        float lo = __fsub_rn(__fmul_rn(a, c[i]), __fmul_rn(b, s[i]));
        float hi = __fadd_rn(__fmul_rn(b, c[i]), __fmul_rn(a, s[i]));
        float* dst = h < H ? q + ((long long)t * H + h) * D
                           : kcache + ((long long)pos * KVH + (h - H)) * D;
        dst[i] = lo;
        dst[i + half] = hi;
    }
    // V heads: copy.
    for (int idx = threadIdx.x; idx < KVH * D; idx += blockDim.x)
        vcache[(long long)pos * KVH * D + idx] = row[(long long)(H + KVH) * D + idx];
}
