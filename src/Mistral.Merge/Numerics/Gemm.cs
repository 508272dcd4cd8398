using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Y[M, N] = X[M, K] · Wᵀ for a weight W [N, K] in its stored dtype (the batched projection of
/// prefill / perplexity). Blocked and packed: the activations are transposed once into panels of
/// 32 tokens ([k][32], see <see cref="PackedInput"/>), each worker widens 32 weight rows × 256
/// columns to float32 in L1, and an 8×32 register tile accumulates 8 weight rows against 32 tokens
/// with one broadcast + two FMAs per weight element. Every output is a float32 sum over k in
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
                    Kernel8x32(wbuf + g * TileRows * kc, kc, xt, kc, tiles + (g * panels + p) * (TileRows * PanelWidth), k0 == 0);
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
            byte* src = w.At(n0 + r, k0);
            var d = new Span<float>(dst + r * kc, kc);
            switch (w.Type)
            {
                case DType.BF16: Conversions.BFloat16ToSingle(new ReadOnlySpan<ushort>(src, kc), d); break;
                case DType.F16: TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src, kc), d); break;
                default: new ReadOnlySpan<float>(src, kc).CopyTo(d); break;
            }
        }
        if (paddedRows > rows) new Span<float>(dst + rows * kc, (paddedRows - rows) * kc).Clear();
    }

    /// <summary>acc[8][32] (+)= Σ_k w[r][k] · xt[k][0..32] for 8 weight rows (row stride ldw).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel8x32(float* w, int ldw, float* xt, int kc, float* acc, bool first)
    {
        if (Avx512F.IsSupported) { Kernel8x32Avx512(w, ldw, xt, kc, acc, first); return; }
        if (Fma.IsSupported && Avx.IsSupported)
        {
            Kernel8x16Avx2(w, ldw, xt, kc, acc, first);
            Kernel8x16Avx2(w, ldw, xt + 16, kc, acc + 16, first);
            return;
        }
        for (int r = 0; r < TileRows; r++)
            for (int j = 0; j < PanelWidth; j++)
            {
                float s = first ? 0f : acc[r * PanelWidth + j];
                for (int k = 0; k < kc; k++) s = MathF.FusedMultiplyAdd(w[r * ldw + k], xt[k * PanelWidth + j], s);
                acc[r * PanelWidth + j] = s;
            }
    }

    private static void Kernel8x32Avx512(float* w, int ldw, float* xt, int kc, float* acc, bool first)
    {
        Vector512<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (first)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector512<float>.Zero;
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = Vector512<float>.Zero;
        }
        else
        {
            c00 = Vector512.Load(acc + 0); c01 = Vector512.Load(acc + 16);
            c10 = Vector512.Load(acc + 32); c11 = Vector512.Load(acc + 48);
            c20 = Vector512.Load(acc + 64); c21 = Vector512.Load(acc + 80);
            c30 = Vector512.Load(acc + 96); c31 = Vector512.Load(acc + 112);
            c40 = Vector512.Load(acc + 128); c41 = Vector512.Load(acc + 144);
            c50 = Vector512.Load(acc + 160); c51 = Vector512.Load(acc + 176);
            c60 = Vector512.Load(acc + 192); c61 = Vector512.Load(acc + 208);
            c70 = Vector512.Load(acc + 224); c71 = Vector512.Load(acc + 240);
        }
        float* w0 = w, w1 = w + ldw, w2 = w + 2 * ldw, w3 = w + 3 * ldw;
        float* w4 = w + 4 * ldw, w5 = w + 5 * ldw, w6 = w + 6 * ldw, w7 = w + 7 * ldw;
        for (int k = 0; k < kc; k++, xt += PanelWidth)
        {
            var x0 = Vector512.Load(xt);
            var x1 = Vector512.Load(xt + 16);
            var b = Vector512.Create(w0[k]); c00 = Avx512F.FusedMultiplyAdd(x0, b, c00); c01 = Avx512F.FusedMultiplyAdd(x1, b, c01);
            b = Vector512.Create(w1[k]); c10 = Avx512F.FusedMultiplyAdd(x0, b, c10); c11 = Avx512F.FusedMultiplyAdd(x1, b, c11);
            b = Vector512.Create(w2[k]); c20 = Avx512F.FusedMultiplyAdd(x0, b, c20); c21 = Avx512F.FusedMultiplyAdd(x1, b, c21);
            b = Vector512.Create(w3[k]); c30 = Avx512F.FusedMultiplyAdd(x0, b, c30); c31 = Avx512F.FusedMultiplyAdd(x1, b, c31);
            b = Vector512.Create(w4[k]); c40 = Avx512F.FusedMultiplyAdd(x0, b, c40); c41 = Avx512F.FusedMultiplyAdd(x1, b, c41);
            b = Vector512.Create(w5[k]); c50 = Avx512F.FusedMultiplyAdd(x0, b, c50); c51 = Avx512F.FusedMultiplyAdd(x1, b, c51);
            b = Vector512.Create(w6[k]); c60 = Avx512F.FusedMultiplyAdd(x0, b, c60); c61 = Avx512F.FusedMultiplyAdd(x1, b, c61);
            b = Vector512.Create(w7[k]); c70 = Avx512F.FusedMultiplyAdd(x0, b, c70); c71 = Avx512F.FusedMultiplyAdd(x1, b, c71);
        }
        c00.Store(acc + 0); c01.Store(acc + 16); c10.Store(acc + 32); c11.Store(acc + 48);
        c20.Store(acc + 64); c21.Store(acc + 80); c30.Store(acc + 96); c31.Store(acc + 112);
        c40.Store(acc + 128); c41.Store(acc + 144); c50.Store(acc + 160); c51.Store(acc + 176);
        c60.Store(acc + 192); c61.Store(acc + 208); c70.Store(acc + 224); c71.Store(acc + 240);
    }

    // AVX2 fallback: 8 rows × 16 tokens per call (the tile row stride stays 32).
    private static void Kernel8x16Avx2(float* w, int ldw, float* xt, int kc, float* acc, bool first)
    {
        const int S = PanelWidth;
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (first)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = Vector256<float>.Zero;
            c40 = c41 = c50 = c51 = c60 = c61 = c70 = c71 = Vector256<float>.Zero;
        }
        else
        {
            c00 = Vector256.Load(acc); c01 = Vector256.Load(acc + 8);
            c10 = Vector256.Load(acc + S); c11 = Vector256.Load(acc + S + 8);
            c20 = Vector256.Load(acc + 2 * S); c21 = Vector256.Load(acc + 2 * S + 8);
            c30 = Vector256.Load(acc + 3 * S); c31 = Vector256.Load(acc + 3 * S + 8);
            c40 = Vector256.Load(acc + 4 * S); c41 = Vector256.Load(acc + 4 * S + 8);
            c50 = Vector256.Load(acc + 5 * S); c51 = Vector256.Load(acc + 5 * S + 8);
            c60 = Vector256.Load(acc + 6 * S); c61 = Vector256.Load(acc + 6 * S + 8);
            c70 = Vector256.Load(acc + 7 * S); c71 = Vector256.Load(acc + 7 * S + 8);
        }
        for (int k = 0; k < kc; k++, xt += S)
        {
            var x0 = Vector256.Load(xt);
            var x1 = Vector256.Load(xt + 8);
            var b = Vector256.Create(w[k]); c00 = Fma.MultiplyAdd(x0, b, c00); c01 = Fma.MultiplyAdd(x1, b, c01);
            b = Vector256.Create(w[ldw + k]); c10 = Fma.MultiplyAdd(x0, b, c10); c11 = Fma.MultiplyAdd(x1, b, c11);
            b = Vector256.Create(w[2 * ldw + k]); c20 = Fma.MultiplyAdd(x0, b, c20); c21 = Fma.MultiplyAdd(x1, b, c21);
            b = Vector256.Create(w[3 * ldw + k]); c30 = Fma.MultiplyAdd(x0, b, c30); c31 = Fma.MultiplyAdd(x1, b, c31);
            b = Vector256.Create(w[4 * ldw + k]); c40 = Fma.MultiplyAdd(x0, b, c40); c41 = Fma.MultiplyAdd(x1, b, c41);
            b = Vector256.Create(w[5 * ldw + k]); c50 = Fma.MultiplyAdd(x0, b, c50); c51 = Fma.MultiplyAdd(x1, b, c51);
            b = Vector256.Create(w[6 * ldw + k]); c60 = Fma.MultiplyAdd(x0, b, c60); c61 = Fma.MultiplyAdd(x1, b, c61);
            b = Vector256.Create(w[7 * ldw + k]); c70 = Fma.MultiplyAdd(x0, b, c70); c71 = Fma.MultiplyAdd(x1, b, c71);
        }
        c00.Store(acc); c01.Store(acc + 8); c10.Store(acc + S); c11.Store(acc + S + 8);
        c20.Store(acc + 2 * S); c21.Store(acc + 2 * S + 8); c30.Store(acc + 3 * S); c31.Store(acc + 3 * S + 8);
        c40.Store(acc + 4 * S); c41.Store(acc + 4 * S + 8); c50.Store(acc + 5 * S); c51.Store(acc + 5 * S + 8);
        c60.Store(acc + 6 * S); c61.Store(acc + 6 * S + 8); c70.Store(acc + 7 * S); c71.Store(acc + 7 * S + 8);
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
