// logits.cu: per-row log-softmax statistics over f32 logits [T, V].
// nll_rows: nll[t] = logsumexp(logits[t]) - logits[t][target[t]] (HF CrossEntropyLoss on f32 logits);
// target < 0 marks an unscored position (nll = 0). argmax_rows: greedy ids, first index on ties.
// grid: T; block: 256 (a multiple of 32).

extern "C" __global__ void nll_rows(const float* __restrict__ logits, const int* __restrict__ targets, float* __restrict__ nll, int V)
{
    __shared__ float red[32];
    const float* row = logits + (long long)blockIdx.x * V;
    float mx = NEG_INF;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, row[i]);
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(row[i] - mx);
    sum = block_sum(sum, red);
    if (threadIdx.x == 0)
    {
        int t = targets[blockIdx.x];
        nll[blockIdx.x] = t < 0 ? 0.0f : (mx + logf(sum)) - row[t];
    }
}

// In-place log-softmax (used by compare-style consumers that want log-probabilities).
extern "C" __global__ void log_softmax_rows(float* __restrict__ logits, int V)
{
    __shared__ float red[32];
    float* row = logits + (long long)blockIdx.x * V;
    float mx = NEG_INF;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, row[i]);
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(row[i] - mx);
    sum = block_sum(sum, red);
    const float lse = mx + logf(sum);
    for (int i = threadIdx.x; i < V; i += blockDim.x) row[i] = row[i] - lse;
}

extern "C" __global__ void argmax_rows(const float* __restrict__ logits, int* __restrict__ ids, int V)
{
    __shared__ float bestV[256];
    __shared__ int bestI[256];
    const float* row = logits + (long long)blockIdx.x * V;
    float bv = NEG_INF;
    int bi = 0x7fffffff;
    for (int i = threadIdx.x; i < V; i += blockDim.x)
        if (row[i] > bv) { bv = row[i]; bi = i; }   // strided scan: first maximum seen by this thread
    bestV[threadIdx.x] = bv;
    bestI[threadIdx.x] = bi;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1)
    {
        if ((int)threadIdx.x < s)
        {
            float ov = bestV[threadIdx.x + s];
            int oi = bestI[threadIdx.x + s];
            if (ov > bestV[threadIdx.x] || (ov == bestV[threadIdx.x] && oi < bestI[threadIdx.x])) { bestV[threadIdx.x] = ov; bestI[threadIdx.x] = oi; }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) ids[blockIdx.x] = bestI[0] == 0x7fffffff ? 0 : bestI[0];
}
