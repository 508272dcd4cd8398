// attention.cu: causal self-attention over an f32 KV cache [maxSeq, KVH, D] with GQA (query head h reads KV head
// h / (H / KVH)) and an optional sliding window (HF semantics: query at position i sees keys j with
// j <= i and i - j < window; window <= 0 means none). Scores = (q . k) * scale in f32, softmax in f32 computed
// online (flash-attention style: running max m, running sum l, rescaled accumulator), output = sum p v / l.

#define ATT_WARPS 4
#define ATT_ROWS_PER_WARP 4
#define ATT_ROWS (ATT_WARPS * ATT_ROWS_PER_WARP)  // query rows per block
#define ATT_KT 32                                  // keys per tile: one per lane for the scores
#define ATT_NACC 8                                 // D <= 256: lane owns output dims lane, lane+32, ..., lane+224

// ---- prefill: T query rows at positions pos0 .. pos0+T-1 (their K/V already appended to the cache) ----
// grid: (ceil(T / ATT_ROWS), H); block: ATT_WARPS * 32 threads;
// dynamic shared memory: (ATT_ROWS * D + ATT_KT * (D + 1) + ATT_KT * D) floats (K rows padded: no bank conflicts).
template <typename TO>
__device__ void attn_prefill_impl(const float* __restrict__ q, const float* __restrict__ kc, const float* __restrict__ vc,
    TO* __restrict__ out, int T, int pos0, int H, int KVH, int D, int window, float scale)
{
    extern __shared__ float smem[];
    float* Qs = smem;
    float* Ks = Qs + ATT_ROWS * D;
    float* Vs = Ks + ATT_KT * (D + 1);
    const int h = blockIdx.y, kvh = h / (H / KVH);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int rowBase = blockIdx.x * ATT_ROWS;
    const int rowsHere = min(ATT_ROWS, T - rowBase);

    for (int idx = threadIdx.x; idx < ATT_ROWS * D; idx += blockDim.x)
    {
        int r = idx / D, d = idx - r * D;
        Qs[idx] = r < rowsHere ? q[((long long)(rowBase + r) * H + h) * D + d] : 0.0f;
    }

    float m[ATT_ROWS_PER_WARP], l[ATT_ROWS_PER_WARP], acc[ATT_ROWS_PER_WARP][ATT_NACC];
#pragma unroll
    for (int r = 0; r < ATT_ROWS_PER_WARP; r++)
    {
        m[r] = NEG_INF; l[r] = 0.0f;
#pragma unroll
        for (int c = 0; c < ATT_NACC; c++) acc[r][c] = 0.0f;
    }

    const int firstPos = pos0 + rowBase, lastPos = pos0 + rowBase + rowsHere - 1;
    const int kBegin = window > 0 ? max(0, firstPos - window + 1) : 0;
    const int kEnd = lastPos + 1;

    for (int ks = kBegin; ks < kEnd; ks += ATT_KT)   // block-uniform bounds: every thread reaches each barrier
    {
        __syncthreads();
        for (int idx = threadIdx.x; idx < ATT_KT * D; idx += blockDim.x)
        {
            int j = idx / D, d = idx - j * D, key = ks + j;
            bool ok = key < kEnd;
            long long off = ((long long)key * KVH + kvh) * D + d;
            Ks[j * (D + 1) + d] = ok ? kc[off] : 0.0f;
            Vs[j * D + d] = ok ? vc[off] : 0.0f;
        }
        __syncthreads();

        const int key = ks + lane;
        float s[ATT_ROWS_PER_WARP];
#pragma unroll
        for (int r = 0; r < ATT_ROWS_PER_WARP; r++) s[r] = 0.0f;
        for (int d = 0; d < D; d++)
        {
            float kv = Ks[lane * (D + 1) + d];
#pragma unroll
            for (int r = 0; r < ATT_ROWS_PER_WARP; r++) s[r] = fmaf(Qs[(warp * ATT_ROWS_PER_WARP + r) * D + d], kv, s[r]);
        }

#pragma unroll
        for (int r = 0; r < ATT_ROWS_PER_WARP; r++)
        {
            const int row = warp * ATT_ROWS_PER_WARP + r, qpos = firstPos + row;
            const bool valid = row < rowsHere && key < kEnd && key <= qpos && (window <= 0 || qpos - key < window);
            const float sr = valid ? s[r] * scale : NEG_INF;
            const float tmax = warp_max(sr);
            if (tmax == NEG_INF) continue;   // warp-uniform: the whole tile is masked for this row
            const float mNew = fmaxf(m[r], tmax);
            const float alpha = expf(m[r] - mNew);   // m = -inf gives 0
            const float p = valid ? expf(sr - mNew) : 0.0f;
            l[r] = l[r] * alpha + warp_sum(p);
#pragma unroll
            for (int c = 0; c < ATT_NACC; c++) acc[r][c] *= alpha;
            for (int jj = 0; jj < ATT_KT; jj++)
            {
                const float pj = __shfl_sync(0xffffffffu, p, jj);
                if (pj == 0.0f) continue;            // uniform after the shuffle
#pragma unroll
                for (int c = 0; c < ATT_NACC; c++)
                    if (c * 32 + lane < D) acc[r][c] = fmaf(pj, Vs[jj * D + c * 32 + lane], acc[r][c]);
            }
            m[r] = mNew;
        }
    }

#pragma unroll
    for (int r = 0; r < ATT_ROWS_PER_WARP; r++)
    {
        const int row = warp * ATT_ROWS_PER_WARP + r;
        if (row >= rowsHere) continue;
        const float inv = 1.0f / l[r];   // l >= 1 term: the diagonal key is always visible
#pragma unroll
        for (int c = 0; c < ATT_NACC; c++)
        {
            int d = c * 32 + lane;
            if (d < D) store_f(out, ((long long)(rowBase + row) * H + h) * D + d, acc[r][c] * inv);
        }
    }
}

extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) attn_prefill_f32(const float* q, const float* kc, const float* vc,
    float* out, int T, int pos0, int H, int KVH, int D, int window, float scale)
{ attn_prefill_impl(q, kc, vc, out, T, pos0, H, KVH, D, window, scale); }

extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) attn_prefill_bf16(const float* q, const float* kc, const float* vc,
    bf16_t* out, int T, int pos0, int H, int KVH, int D, int window, float scale)
{ attn_prefill_impl(q, kc, vc, out, T, pos0, H, KVH, D, window, scale); }

// ---- decode: one query token at position pos, keys split across blocks (flash-decoding) ----
// grid: (H, nsplit); block: ATT_WARPS * 32. Block s handles the visible keys [kFirst + s*keysPerSplit, ...).
// Partials: pm/pl [H * nsplit], pacc [H * nsplit * D]; attn_decode_combine_* merges them.
extern "C" __global__ void __launch_bounds__(ATT_WARPS * 32) attn_decode_partial(const float* __restrict__ q,
    const float* __restrict__ kc, const float* __restrict__ vc, float* __restrict__ pm, float* __restrict__ pl,
    float* __restrict__ pacc, int pos, int H, int KVH, int D, int window, float scale, int keysPerSplit)
{
    __shared__ float qs[ATT_NACC * 32];
    __shared__ float wm[ATT_WARPS], wl[ATT_WARPS];
    __shared__ float wacc[ATT_WARPS][ATT_NACC * 32];
    const int h = blockIdx.x, split = blockIdx.y, nsplit = gridDim.y, kvh = h / (H / KVH);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int kFirst = window > 0 ? max(0, pos - window + 1) : 0;
    const int kb = kFirst + split * keysPerSplit, ke = min(pos + 1, kb + keysPerSplit);

    for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = q[(long long)h * D + d];
    __syncthreads();

    float m = NEG_INF, l = 0.0f, acc[ATT_NACC];
#pragma unroll
    for (int c = 0; c < ATT_NACC; c++) acc[c] = 0.0f;

    for (int ts = kb + warp * 32; ts < ke; ts += ATT_WARPS * 32)   // lane 0's key is always valid here
    {
        const int key = ts + lane;
        const bool valid = key < ke;
        float s = 0.0f;
        if (valid)
        {
            const float* kr = kc + ((long long)key * KVH + kvh) * D;
            for (int d = 0; d < D; d++) s = fmaf(qs[d], kr[d], s);
        }
        s = valid ? s * scale : NEG_INF;
        const float mNew = fmaxf(m, warp_max(s));
        const float alpha = expf(m - mNew);
        const float p = valid ? expf(s - mNew) : 0.0f;
        l = l * alpha + warp_sum(p);
#pragma unroll
        for (int c = 0; c < ATT_NACC; c++) acc[c] *= alpha;
        const int nk = min(32, ke - ts);
        for (int jj = 0; jj < nk; jj++)
        {
            const float pj = __shfl_sync(0xffffffffu, p, jj);
            const float* vr = vc + ((long long)(ts + jj) * KVH + kvh) * D;
#pragma unroll
            for (int c = 0; c < ATT_NACC; c++)
                if (c * 32 + lane < D) acc[c] = fmaf(pj, vr[c * 32 + lane], acc[c]);
        }
        m = mNew;
    }

    if (lane == 0) { wm[warp] = m; wl[warp] = l; }
#pragma unroll
    for (int c = 0; c < ATT_NACC; c++) wacc[warp][c * 32 + lane] = acc[c];
    __syncthreads();
    if (warp == 0)
    {
        float M = NEG_INF;
        for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, wm[w]);
        float L = 0.0f;
        for (int w = 0; w < ATT_WARPS; w++) if (wm[w] != NEG_INF) L += wl[w] * expf(wm[w] - M);
        const long long slot = (long long)h * nsplit + split;
        if (lane == 0) { pm[slot] = M; pl[slot] = L; }
        for (int d = lane; d < D; d += 32)
        {
            float A = 0.0f;
            for (int w = 0; w < ATT_WARPS; w++) if (wm[w] != NEG_INF) A += wacc[w][d] * expf(wm[w] - M);
            pacc[slot * D + d] = A;
        }
    }
}

// grid: H; block: 128. out [H * D] in the GEMM input dtype.
template <typename TO>
__device__ void attn_decode_combine_impl(const float* __restrict__ pm, const float* __restrict__ pl,
    const float* __restrict__ pacc, TO* __restrict__ out, int D, int nsplit)
{
    const int h = blockIdx.x;
    float M = NEG_INF;
    for (int s = 0; s < nsplit; s++) M = fmaxf(M, pm[h * nsplit + s]);
    float L = 0.0f;
    for (int s = 0; s < nsplit; s++) { float ms = pm[h * nsplit + s]; if (ms != NEG_INF) L += pl[h * nsplit + s] * expf(ms - M); }
    for (int d = threadIdx.x; d < D; d += blockDim.x)
    {
        float A = 0.0f;
        for (int s = 0; s < nsplit; s++)
        {
            float ms = pm[h * nsplit + s];
            if (ms != NEG_INF) A += pacc[((long long)h * nsplit + s) * D + d] * expf(ms - M);
        }
        store_f(out, (long long)h * D + d, A / L);
    }
}

extern "C" __global__ void attn_decode_combine_f32(const float* pm, const float* pl, const float* pacc, float* out, int D, int nsplit)
{ attn_decode_combine_impl(pm, pl, pacc, out, D, nsplit); }
extern "C" __global__ void attn_decode_combine_bf16(const float* pm, const float* pl, const float* pacc, bf16_t* out, int D, int nsplit)
{ attn_decode_combine_impl(pm, pl, pacc, out, D, nsplit); }
