using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Y[M, N] = X[M, K] · Wᵀ for a weight W [N, K] in its stored dtype (the batched projection of
/// prefill / perplexity). Blocked and packed: the activations are transposed once into panels of
/// 32 tokens ([k][32], see <see cref="PackedInput"/>), each worker widens 32 weight rows × 256
/// columns to float32 in L1, and an 8×32 register tile (<see cref="GemmKernel"/>, shared with the MoE
/// similarity GEMM) accumulates 8 weight rows against 32 tokens with one broadcast + two FMAs per weight element. Every output is a float32 sum over k in
/// increasing order, so results do not depend on the thread count.
/// </summary>
public sealed unsafe class Gemm : IParallelWork, IDisposable
{
    public const int PanelWidth = 32;   // tokens per activation panel (two Vector512<float>)
    public const int TileRows = 8;      // weight rows per register tile
    public const int KBlock = 256;      // columns of W widened at a time (32 × 256 floats = 32 KB)

    private readonly WorkerPool _pool;
    private readonly float*[] _wbuf;    // per worker: BlockRows × KBlock widened weights
    private readonly float*[] _tiles;   // per worker: BlockRows × mPanels × 32 accumulators
    private readonly int[] _tileCapacity;

    // The current call (set by Multiply, read by Execute).
    private PackedInput? _x;
    private WeightMatrix _w;
    private float* _y;
    private int _ldy, _blockRows;

    public Gemm(WorkerPool pool)
    {
        _pool = pool;
        _wbuf = new float*[pool.Threads];
        _tiles = new float*[pool.Threads];
        _tileCapacity = new int[pool.Threads];
        for (int i = 0; i < pool.Threads; i++)
            _wbuf[i] = (float*)NativeMemory.AlignedAlloc(32 * KBlock * sizeof(float), 64);
    }

    /// <summary>Y (row stride <paramref name="ldy"/> floats) = packed X · Wᵀ; X.K must equal W.Cols.</summary>
    public void Multiply(PackedInput x, WeightMatrix w, float* y, int ldy)
    {
        if (x.K != w.Cols) throw new ArgumentException($"GEMM inner dimensions differ: X has {x.K} columns, W has {w.Cols}");
        if (ldy < w.Rows) throw new ArgumentException("ldy < N");
        _x = x; _w = w; _y = y; _ldy = ldy;
        // Big blocks reuse each activation panel across 4 register tiles; small N keeps all threads busy.
        _blockRows = w.Rows >= 32 * 4 * _pool.Threads ? 32 : TileRows;
        int tileFloats = _blockRows * x.Panels * PanelWidth;
        for (int i = 0; i < _pool.Threads; i++)
            if (_tileCapacity[i] < tileFloats)
            {
                NativeMemory.AlignedFree(_tiles[i]);
                _tiles[i] = (float*)NativeMemory.AlignedAlloc((nuint)tileFloats * sizeof(float), 64);
                _tileCapacity[i] = tileFloats;
            }
        int blocks = (w.Rows + _blockRows - 1) / _blockRows;
        _pool.Run(this, blocks);
        _x = null;
    }

    /// <summary>Convenience overload for tests: packs <paramref name="x"/> [m, k] and multiplies.</summary>
    public void Multiply(ReadOnlySpan<float> x, int m, WeightMatrix w, Span<float> y)
    {
        using var packed = new PackedInput();
        packed.Pack(x, m, w.Cols);
        fixed (float* py = y) Multiply(packed, w, py, w.Rows);
    }

    void IParallelWork.Execute(int block, int worker)
    {
        var x = _x!;
        int n0 = block * _blockRows;
        int rows = Math.Min(_blockRows, _w.Rows - n0);
        int groups = (rows + TileRows - 1) / TileRows;
        float* wbuf = _wbuf[worker];
        float* tiles = _tiles[worker];
        int K = x.K, panels = x.Panels;

        for (int k0 = 0; k0 < K; k0 += KBlock)
        {
            int kc = Math.Min(KBlock, K - k0);
            WidenBlock(_w, n0, rows, groups * TileRows, k0, kc, wbuf);
            for (int p = 0; p < panels; p++)
            {
                float* xt = x.Data + ((long)p * K + k0) * PanelWidth;
                for (int g = 0; g < groups; g++)
                    GemmKernel.Tile8x32(wbuf + g * TileRows * kc, rowStride: kc, stepStride: 1, xt, kc, tiles + (g * panels + p) * (TileRows * PanelWidth), k0 == 0);
            }
        }
        // Scatter the transposed tiles into Y[m, n].
        for (int g = 0; g < groups; g++)
            for (int p = 0; p < panels; p++)
            {
                float* t = tiles + (g * panels + p) * (TileRows * PanelWidth);
                int mEnd = Math.Min(PanelWidth, x.M - p * PanelWidth);
                for (int r = 0; r < TileRows; r++)
                {
                    int n = n0 + g * TileRows + r;
                    if (n >= n0 + rows) break;
                    float* yc = _y + (long)p * PanelWidth * _ldy + n;
                    for (int j = 0; j < mEnd; j++) yc[(long)j * _ldy] = t[r * PanelWidth + j];
                }
            }
    }

    /// <summary>Widens W[n0.., k0..k0+kc) to float32 rows of length kc; rows past the end are zero.</summary>
    private static void WidenBlock(WeightMatrix w, int n0, int rows, int paddedRows, int k0, int kc, float* dst)
    {
        for (int r = 0; r < rows; r++)
        {
            var d = new Span<float>(dst + r * kc, kc);
            // Q8_0/Q4_0: the block columns k0..k0+kc (KBlock is a multiple of 32) dequantized into the tile buffer.
            if (w.IsQuantized) { w.WidenRow(n0 + r, k0, kc, d); continue; }
            byte* src = w.At(n0 + r, k0);
            switch (w.Type)
            {
                case DType.BF16: Conversions.BFloat16ToSingle(new ReadOnlySpan<ushort>(src, kc), d); break;
                case DType.F16: TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src, kc), d); break;
                default: new ReadOnlySpan<float>(src, kc).CopyTo(d); break;
            }
        }
        if (paddedRows > rows) new Span<float>(dst + rows * kc, (paddedRows - rows) * kc).Clear();
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
/// Activations X [M, K] transposed into panels of 32 tokens: Data[(p·K + k)·32 + j] = X[p·32 + j, k]
/// (zero past M). Packed once and reused by every projection that reads the same input (q/k/v, gate/up).
/// </summary>
public sealed unsafe class PackedInput : IDisposable
{
    public float* Data { get; private set; }
    public int M { get; private set; }
    public int K { get; private set; }
    public int Panels => (M + Gemm.PanelWidth - 1) / Gemm.PanelWidth;
    private long _capacity;

    public void Pack(ReadOnlySpan<float> x, int m, int k)
    {
        if (x.Length < (long)m * k) throw new ArgumentException("X is shorter than M·K");
        fixed (float* p = x) Pack(p, m, k, k);
    }

    /// <summary>Packs rows x[i·ldx .. i·ldx+k) for i &lt; m.</summary>
    public void Pack(float* x, int m, int k, int ldx)
    {
        M = m; K = k;
        long need = (long)Panels * k * Gemm.PanelWidth;
        if (need > _capacity)
        {
            NativeMemory.AlignedFree(Data);
            Data = (float*)NativeMemory.AlignedAlloc((nuint)need * sizeof(float), 64);
            _capacity = need;
        }
        const int W = Gemm.PanelWidth;
        for (int p = 0; p < Panels; p++)
        {
            float* panel = Data + (long)p * k * W;
            int rows = Math.Min(W, m - p * W);
            if (rows < W) new Span<float>(panel, k * W).Clear();
            for (int j = 0; j < rows; j++)
            {
                float* src = x + (long)(p * W + j) * ldx;
                float* dst = panel + j;
                for (int c = 0; c < k; c++) dst[(long)c * W] = src[c];
            }
        }
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(Data);
        Data = null; _capacity = 0;
    }
}
