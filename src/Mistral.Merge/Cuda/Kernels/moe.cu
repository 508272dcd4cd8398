// moe.cu: Mixtral sparse-MoE routing (HF MixtralSparseMoeBlock semantics).
//   probs = softmax(router_logits) in f32; (w, e) = topk(probs, k); w /= sum(w); (w rounded to bf16 when the
//   model computes in bf16, as HF casts routing weights to the hidden dtype). Ties in top-k: lower expert first.
// Tokens are then grouped per expert (deterministically: by expert, then by token), gathered, run through that
// expert's MLP with cuBLAS on the host side, and combined back: out[t] += sum over the token's experts in
// ascending expert order of w * y (HF accumulates expert by expert with index_add_).

#define MOE_MAX_K 8

// grid: ceil(T / 128); block: 128. logits [T, E] f32 -> ids [T, k], weights [T, k].
extern "C" __global__ void moe_route_topk(const float* __restrict__ logits, int* __restrict__ ids, float* __restrict__ weights,
    int T, int E, int k, int roundBf16)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    const float* row = logits + (long long)t * E;
    float mx = NEG_INF;
    for (int e = 0; e < E; e++) mx = fmaxf(mx, row[e]);
    float sum = 0.0f;
    for (int e = 0; e < E; e++) sum += expf(row[e] - mx);
    int sel[MOE_MAX_K];
    float w[MOE_MAX_K];
    float wsum = 0.0f;
    for (int s = 0; s < k; s++)
    {
        int best = -1;
        float bv = NEG_INF;
        for (int e = 0; e < E; e++)
        {
            bool taken = false;
            for (int p = 0; p < s; p++) taken |= sel[p] == e;
            float pe = expf(row[e] - mx) / sum;
            if (!taken && (best < 0 || pe > bv)) { best = e; bv = pe; }
        }
        sel[s] = best;
        w[s] = bv;
        wsum += bv;
    }
    for (int s = 0; s < k; s++)
    {
        float ws = w[s] / wsum;
        if (roundBf16) ws = bf16_to_f32(f32_to_bf16(ws));
        ids[t * k + s] = sel[s];
        weights[t * k + s] = ws;
    }
}

// One block of >= E threads (E <= 1024). counts [E], offsets [E + 1], order [T*k] (slot t*k+s listed by expert,
// then token), inverse [T*k] (slot -> its row in the grouped order).
extern "C" __global__ void moe_group(const int* __restrict__ ids, int* __restrict__ counts, int* __restrict__ offsets,
    int* __restrict__ order, int* __restrict__ inverse, int T, int E, int k)
{
    int e = threadIdx.x;
    int n = 0;
    if (e < E) for (int i = 0; i < T * k; i++) n += ids[i] == e;
    if (e < E) counts[e] = n;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        int acc = 0;
        for (int x = 0; x < E; x++) { offsets[x] = acc; acc += counts[x]; }
        offsets[E] = acc;
    }
    __syncthreads();
    if (e < E)
    {
        int w = offsets[e];
        for (int i = 0; i < T * k; i++)
            if (ids[i] == e) { order[w] = i; inverse[i] = w; w++; }
    }
}

// grid: rows (= T*k); gathered[r] = x[order[r] / k]; x and gathered in the GEMM input dtype.
template <typename TX>
__device__ void moe_gather_impl(const TX* __restrict__ x, const int* __restrict__ order, TX* __restrict__ gathered, int hidden, int k)
{
    long long src = (long long)(order[blockIdx.x] / k) * hidden, dst = (long long)blockIdx.x * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) gathered[dst + i] = x[src + i];
}
extern "C" __global__ void moe_gather_f32(const float* x, const int* order, float* g, int hidden, int k) { moe_gather_impl(x, order, g, hidden, k); }
extern "C" __global__ void moe_gather_bf16(const bf16_t* x, const int* order, bf16_t* g, int hidden, int k) { moe_gather_impl(x, order, g, hidden, k); }

// grid: T. residual[t] += sum_{slots of t, ascending expert} w * y[inverse[slot]]; y [T*k, hidden] f32.
extern "C" __global__ void moe_combine(float* __restrict__ residual, const float* __restrict__ y, const int* __restrict__ ids,
    const float* __restrict__ weights, const int* __restrict__ inverse, int hidden, int k)
{
    const int t = blockIdx.x;
    int slot[MOE_MAX_K];
    for (int s = 0; s < k; s++) slot[s] = t * k + s;
    for (int a = 1; a < k; a++)   // insertion sort of the k slots by expert id
        for (int b = a; b > 0 && ids[slot[b - 1]] > ids[slot[b]]; b--) { int tmp = slot[b]; slot[b] = slot[b - 1]; slot[b - 1] = tmp; }
    for (int i = threadIdx.x; i < hidden; i += blockDim.x)
    {
        float acc = 0.0f;
        for (int s = 0; s < k; s++)
            acc = __fadd_rn(acc, __fmul_rn(y[(long long)inverse[slot[s]] * hidden + i], weights[slot[s]]));
        residual[(long long)t * hidden + i] = __fadd_rn(residual[(long long)t * hidden + i], acc);
    }
}
