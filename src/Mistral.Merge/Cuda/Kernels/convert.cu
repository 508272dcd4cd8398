// convert.cu: dtype conversions, embedding lookup, residual add, deterministic random fill (benchmarks).

extern "C" __global__ void f32_to_bf16_kernel(const float* __restrict__ src, bf16_t* __restrict__ dst, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        dst[i] = f32_to_bf16(src[i]);
}

extern "C" __global__ void bf16_to_f32_kernel(const bf16_t* __restrict__ src, float* __restrict__ dst, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        dst[i] = bf16_to_f32(src[i]);
}

// Embedding rows -> f32 residual stream. grid: tokens; tokens outside [0, vocab) were rejected on the host.
template <typename TW>
__device__ void embed_impl(const int* __restrict__ tokens, const TW* __restrict__ table, float* __restrict__ out, int hidden)
{
    long long row = tokens[blockIdx.x];
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
        out[(long long)blockIdx.x * hidden + i] = load_f(table, row * hidden + i);
}

extern "C" __global__ void embed_bf16(const int* tokens, const bf16_t* table, float* out, int hidden) { embed_impl(tokens, table, out, hidden); }
extern "C" __global__ void embed_f32(const int* tokens, const float* table, float* out, int hidden) { embed_impl(tokens, table, out, hidden); }

// x += y (f32), element-wise; used where a GEMM cannot accumulate into the residual itself.
extern "C" __global__ void add_inplace_f32(float* __restrict__ x, const float* __restrict__ y, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] = __fadd_rn(x[i], y[i]);
}

// Deterministic uniform(-scale, scale) bf16 fill from a counter hash (splitmix64); benchmark weights only.
extern "C" __global__ void fill_random_bf16(bf16_t* __restrict__ dst, long long n, unsigned long long seed, float scale)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        unsigned long long z = seed + 0x9e3779b97f4a7c15ull * (unsigned long long)(i + 1);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        float u = (float)(z >> 40) * (1.0f / 16777216.0f);   // [0, 1)
        dst[i] = f32_to_bf16((2.0f * u - 1.0f) * scale);
    }
}
