using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Y[M, N] = X[M, K] · Wᵀ for a weight W [N, K] in its stored dtype (the batched projection of prefill /
/// perplexity), structured like BLIS / llamafile's sgemm. The activations are transposed once into panels of 32
/// tokens, each stored as contiguous micro-panels [k][width of the micro-kernel] per K slice
/// (<see cref="PackedInput"/>). A work item is a block of up to 96 weight rows × a chunk of up
/// to 256 tokens; its worker widens the block K-slice by K-slice (256 columns, ≤ 96 KB of float32, L2-resident;
/// the next slice is widened in between the kernel calls on the current one) and runs the register-blocked
/// micro-kernel of <see cref="PackedGemmKernel"/> over every (row group, token micro-panel) pair, the 16–32 KB
/// activation micro-panel staying in L1 while the row groups stream past it
/// (AVX-512: 12 rows × 32 tokens; AVX2 and NEON: 6 rows × 16 tokens). Items with the same weight block are
/// adjacent, so the threads share its reads from memory. Every output is one float32 FMA chain over k in
/// increasing order, so results do not depend on the vector width or the thread count.
/// </summary>
public sealed unsafe class Gemm : IParallelWork, IDisposable
{
    public const int PanelWidth = 32;   // tokens per activation panel (two Vector512<float>)
    public const int KBlock = 256;      // columns of W widened at a time
    public const int MaxBlockRows = 96; // weight rows per work item (a multiple of every micro-tile height)
    public const int ChunkPanels = 8;   // activation panels per work item (256 tokens)

    private readonly WorkerPool _pool;
    private readonly int _bits, _mr, _nr;
    private readonly float*[] _wbuf;    // per worker: 2 × MaxBlockRows × KBlock widened weights (row stride KBlock): this K slice and the next
    private readonly float*[] _tiles;   // per worker: MaxBlockRows × ChunkPanels × 32 accumulators

    // The current call (set by Multiply, read by Execute).
    private PackedInput? _x;
    private WeightMatrix _w;
    private float* _y;
    private int _ldy, _blockRows, _chunks, _chunkPanels;

    public Gemm(WorkerPool pool) : this(pool, PackedGemmKernel.NativeBits) { }

    /// <summary>A GEMM that runs the micro-kernel of one vector width (512, 256, 128 or 0 = scalar): for tests.</summary>
    internal Gemm(WorkerPool pool, int vectorBits)
    {
        if (vectorBits is not (512 or 256 or 128 or 0)) throw new ArgumentOutOfRangeException(nameof(vectorBits));
        _pool = pool;
        _bits = vectorBits;
        _mr = PackedGemmKernel.RowsFor(vectorBits);
        _nr = PackedGemmKernel.ColsFor(vectorBits);
        _wbuf = new float*[pool.Threads];
        _tiles = new float*[pool.Threads];
        for (int i = 0; i < pool.Threads; i++)
        {
            _wbuf[i] = (float*)NativeMemory.AlignedAlloc(2 * MaxBlockRows * KBlock * sizeof(float), 64);
            _tiles[i] = (float*)NativeMemory.AlignedAlloc(MaxBlockRows * ChunkPanels * PanelWidth * sizeof(float), 64);
        }
    }

    /// <summary>Y (row stride <paramref name="ldy"/> floats) = packed X · Wᵀ; X.K must equal W.Cols.</summary>
    public void Multiply(PackedInput x, WeightMatrix w, float* y, int ldy)
    {
        if (x.K != w.Cols) throw new ArgumentException($"GEMM inner dimensions differ: X has {x.K} columns, W has {w.Cols}");
        if (x.SubWidth != _nr) throw new ArgumentException($"X is packed for {x.SubWidth}-token micro-panels, this GEMM's kernel takes {_nr}");
        if (ldy < w.Rows) throw new ArgumentException("ldy < N");
        _x = x; _w = w; _y = y; _ldy = ldy;
        // Token chunks of equal size; then weight blocks halved (96 → 48 → 24 → 12 rows) until every thread has
        // about 8 items, so small N (k/v_proj) still keeps all threads busy with balanced work.
        _chunks = (x.Panels + ChunkPanels - 1) / ChunkPanels;
        _chunkPanels = (x.Panels + _chunks - 1) / _chunks;
        _blockRows = MaxBlockRows;
        while (_blockRows > 12 && (w.Rows + _blockRows - 1) / _blockRows * _chunks < 8 * _pool.Threads) _blockRows /= 2;
        int blocks = (w.Rows + _blockRows - 1) / _blockRows;
        _pool.Run(this, blocks * _chunks);
        _x = null;
    }

    /// <summary>Convenience overload for tests: packs <paramref name="x"/> [m, k] and multiplies.</summary>
    public void Multiply(ReadOnlySpan<float> x, int m, WeightMatrix w, Span<float> y)
    {
        using var packed = new PackedInput(_nr);
        packed.Pack(x, m, w.Cols);
        fixed (float* py = y) Multiply(packed, w, py, w.Rows);
    }

    void IParallelWork.Execute(int item, int worker)
    {
        var x = _x!;
        int n0 = item / _chunks * _blockRows;
        int rows = Math.Min(_blockRows, _w.Rows - n0);
        int groups = (rows + _mr - 1) / _mr;
        int p0 = item % _chunks * _chunkPanels;
        int panels = Math.Min(_chunkPanels, x.Panels - p0);
        int tile = _mr * PanelWidth;
        float* wbuf = _wbuf[worker];
        float* tiles = _tiles[worker];
        int K = x.K;

        // Double-buffered widening: the next K slice is widened a row or two after each kernel call on this one
        // (its rows fetched one call ahead), so the weights' memory reads overlap the FMA-bound kernel. Measured
        // ≈ 3 % faster than widening each slice up front; skipping the widening altogether (wrong results, as a
        // bound) was 11 % faster, so most of its cost is the conversion and the 96 KB it writes, not the wait.
        float* cur = wbuf, nxt = wbuf + MaxBlockRows * KBlock;
        int padded = groups * _mr;
        if (padded > rows) // rows past the end stay zero in both buffers
            for (int b = 0; b < 2; b++) new Span<float>(wbuf + b * MaxBlockRows * KBlock + rows * KBlock, (padded - rows) * KBlock).Clear();
        WidenRows(_w, n0, 0, rows, 0, Math.Min(KBlock, K), cur);
        int calls = panels * (PanelWidth / _nr) * groups;
        int perCall = (rows + calls - 1) / calls;
        for (int k0 = 0; k0 < K; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, K - k0);
            int k1 = k0 + kc, kc1 = Math.Min(KBlock, K - k1), done = k1 < K ? 0 : rows;
            if (done < rows) Prefetch(_w, n0, 0, Math.Min(perCall, rows), k1, kc1);
            for (int p = 0; p < panels; p++)
            {
                float* xt = x.Slice(p0 + p, k0);
                // Micro-panel h (tokens h..h+_nr) of this slice starts h·kc floats in.
                for (int h = 0; h < PanelWidth; h += _nr)
                    for (int g = 0; g < groups; g++)
                    {
                        PackedGemmKernel.Run(_bits, cur + g * _mr * KBlock, xt + (long)h * kc, kc, tiles + (g * panels + p) * tile + h, k0 == 0);
                        if (done < rows)
                        {
                            int n = Math.Min(perCall, rows - done);
                            Prefetch(_w, n0, done + n, Math.Min(perCall, rows - done - n), k1, kc1);
                            WidenRows(_w, n0, done, n, k1, kc1, nxt);
                            done += n;
                        }
                    }
            }
            if (done < rows) WidenRows(_w, n0, done, rows - done, k1, kc1, nxt);
            float* swap = cur; cur = nxt; nxt = swap;
        }
        // The transposed tiles into Y[m, n], token by token: each token's outputs of this block are one
        // contiguous run of Y's row (writing row by row instead touched a new page per element).
        for (int p = 0; p < panels; p++)
        {
            int m0 = (p0 + p) * PanelWidth;
            int mEnd = Math.Min(PanelWidth, x.M - m0);
            for (int j = 0; j < mEnd; j++)
            {
                float* yrow = _y + (long)(m0 + j) * _ldy + n0;
                for (int g = 0; g < groups; g++)
                {
                    float* t = tiles + (g * panels + p) * tile + j;
                    int rEnd = Math.Min(_mr, rows - g * _mr);
                    for (int r = 0; r < rEnd; r++) yrow[g * _mr + r] = t[r * PanelWidth];
                }
            }
        }
    }

    /// <summary>Asks for the cache lines of W[n0+first .. +count, k0..k0+kc) (rows about to be widened).</summary>
    private static void Prefetch(WeightMatrix w, int n0, int first, int count, int k0, int kc)
    {
        if (!Sse.IsSupported) return;
        for (int r = first; r < first + count; r++)
        {
            byte* start = w.At(n0 + r, k0), end = w.At(n0 + r, k0 + kc);
            for (byte* line = start; line < end; line += 64) Sse.Prefetch0(line);
        }
    }

    /// <summary>Widens rows first..first+count of W[n0.., k0..k0+kc) to float32 rows of stride <see cref="KBlock"/>
    /// (quantized: the block columns k0..k0+kc, KBlock being a multiple of 32).</summary>
    private static void WidenRows(WeightMatrix w, int n0, int first, int count, int k0, int kc, float* dst)
    {
        for (int r = first; r < first + count; r++) w.WidenRow(n0 + r, k0, kc, new Span<float>(dst + r * KBlock, kc));
    }

    public void Dispose()
    {
        for (int i = 0; i < _wbuf.Length; i++)
        {
            NativeMemory.AlignedFree(_wbuf[i]); _wbuf[i] = null;
            NativeMemory.AlignedFree(_tiles[i]); _tiles[i] = null;
        }
    }
}

/// <summary>
/// Activations X [M, K] transposed into panels of 32 tokens, laid out for the micro-kernel: K is cut into slices
/// of <see cref="Gemm.KBlock"/> columns (the last may be shorter, kc wide); slice by slice, every panel's part is
/// stored as 32 / <see cref="SubWidth"/> contiguous micro-panels [kc][SubWidth]. So the tokens one kernel call
/// reads are one contiguous run (no cache-set conflicts between rows of a wide panel), and the panels of one
/// slice are adjacent (a K that is a multiple of 512 no longer puts every panel in the same L2 sets).
/// Element X[p·32 + h·S + j, k0 + i] is at k0·Panels·32 + p·kc·32 + h·kc·S + i·S + j; zero past M.
/// Packed once and reused by every projection that reads the same input (q/k/v, gate/up).
/// </summary>
public sealed unsafe class PackedInput : IParallelWork, IDisposable
{
    /// <summary>The least M·K packed on the pool (smaller inputs: on the calling thread).</summary>
    private const long ParallelElements = 1 << 16;

    public float* Data { get; private set; }
    public int M { get; private set; }
    public int K { get; private set; }
    /// <summary>Tokens per micro-panel: the micro-kernel's width (<see cref="PackedGemmKernel.ColsFor"/>).</summary>
    public int SubWidth { get; }
    public int Panels => (M + Gemm.PanelWidth - 1) / Gemm.PanelWidth;
    private long _capacity;
    private float* _x; // the input of the current Pack
    private int _ldx;

    /// <summary>Packs for the micro-kernel of this machine's widest vector width.</summary>
    public PackedInput() : this(PackedGemmKernel.ColsFor(PackedGemmKernel.NativeBits)) { }

    public PackedInput(int subWidth)
    {
        if (subWidth is not (16 or 32)) throw new ArgumentOutOfRangeException(nameof(subWidth));
        SubWidth = subWidth;
    }

    /// <summary>The start of panel <paramref name="panel"/>'s part of the K slice beginning at <paramref name="k0"/>.</summary>
    public float* Slice(int panel, int k0) => Data + (long)k0 * Panels * Gemm.PanelWidth + (long)panel * Math.Min(Gemm.KBlock, K - k0) * Gemm.PanelWidth;

    public void Pack(ReadOnlySpan<float> x, int m, int k)
    {
        if (x.Length < (long)m * k) throw new ArgumentException("X is shorter than M·K");
        fixed (float* p = x) Pack(p, m, k, k);
    }

    /// <summary>Packs rows x[i·ldx .. i·ldx+k) for i &lt; m; with a pool, the (K slice, panel) parts are packed in parallel.</summary>
    public void Pack(float* x, int m, int k, int ldx, WorkerPool? pool = null)
    {
        M = m; K = k;
        const int W = Gemm.PanelWidth;
        long need = (long)Panels * k * W;
        if (need > _capacity)
        {
            NativeMemory.AlignedFree(Data);
            Data = (float*)NativeMemory.AlignedAlloc((nuint)need * sizeof(float), 64);
            _capacity = need;
        }
        _x = x; _ldx = ldx;
        int parts = (k + Gemm.KBlock - 1) / Gemm.KBlock * Panels;
        if (pool != null && (long)m * k >= ParallelElements) pool.Run(this, parts);
        else for (int i = 0; i < parts; i++) Execute(i, 0);
        _x = null;
    }

    /// <summary>Packs the part of panel <c>index % Panels</c> in K slice <c>index / Panels</c>.</summary>
    void IParallelWork.Execute(int index, int worker) => Execute(index, worker);

    private void Execute(int index, int worker)
    {
        const int W = Gemm.PanelWidth;
        int p = index % Panels, k0 = index / Panels * Gemm.KBlock;
        int kc = Math.Min(Gemm.KBlock, K - k0), s = SubWidth;
        int t0 = p * W, tEnd = Math.Min(M, t0 + W);
        float* part = Slice(p, k0);
        if (tEnd - t0 < W) new Span<float>(part, kc * W).Clear(); // tokens past M are zero
        for (int t = t0; t < tEnd; t++)
        {
            int h = (t - t0) / s, j = (t - t0) % s;
            float* src = _x + (long)t * _ldx + k0;
            float* dst = part + (long)h * kc * s + j;
            for (int i = 0; i < kc; i++) dst[(long)i * s] = src[i];
        }
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(Data);
        Data = null; _capacity = 0;
    }
}
