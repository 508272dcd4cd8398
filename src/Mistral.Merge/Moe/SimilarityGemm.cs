using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Moe;

/// <summary>How a <see cref="SimilarityGemm"/> operand with <c>rows</c> rows along k is stored.</summary>
public enum OperandLayout
{
    /// <summary>[rows, k], element (i, p) at i·k + p (the rows of w1/w3).</summary>
    RowMajor,
    /// <summary>[k, rows], element (i, p) at p·rows + i (the columns of w2).</summary>
    KMajor,
}

/// <summary>
/// <c>C[n, m] += Σ_p A(i, p) · B(j, p)</c> in float32, each operand in either <see cref="OperandLayout"/>.
/// A packed GEMM: both operands are copied once into zero-padded panels, A as [n/8][k][8] and B as
/// [m/32][k][32] (so the w2 columns need no separate transpose), then threads take 128×256 blocks of C.
/// Inside a block an 8×32 register tile (16 Vector512 accumulators, one broadcast and two FMAs per A
/// element) runs over k chunks of 256, the B chunk staying in L1 and the A chunks and the block's
/// accumulators in L2; each block is added to C once. Every product is a float32 sum over k in increasing
/// order, so results do not depend on the thread count.
/// </summary>
public static unsafe class SimilarityGemm
{
    public const int TileRows = 8, TileCols = 32;
    private const int BlockRows = 128, BlockCols = 256, KChunk = 256;

    /// <summary>Below this many rows on either side packing costs more than it saves (each packed element is used n or m times).</summary>
    public const int PackingMinRows = 64;

    /// <summary>
    /// C[n, m] += A[n, k] · B[m, k]ᵀ (both row-major along k). Products with fewer than
    /// <see cref="PackingMinRows"/> rows on a side (a few tokens against a weight, the router) go to the
    /// unpacked <see cref="DotProductGemm"/>; the rest to the packed kernel.
    /// </summary>
    public static void MultiplyAddNT(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int n, int m, int k, int maxThreads = -1)
    {
        if (Math.Min(n, m) < PackingMinRows) DotProductGemm.MultiplyAddNT(a, b, c, n, m, k, maxThreads);
        else MultiplyAdd(a, OperandLayout.RowMajor, b, OperandLayout.RowMajor, c, n, m, k, maxThreads);
    }

    /// <param name="workspace">packing buffers to reuse across calls (fresh pages cost a fault each); null: a temporary one.</param>
    public static void MultiplyAdd(ReadOnlySpan<float> a, OperandLayout aLayout, ReadOnlySpan<float> b, OperandLayout bLayout,
                                   Span<float> c, int n, int m, int k, int maxThreads = -1, Workspace? workspace = null)
    {
        if (n < 0 || m < 0 || k < 0) throw new ArgumentException("GEMM dimensions must not be negative");
        if ((long)n * k > a.Length || (long)m * k > b.Length || (long)n * m > c.Length)
            throw new ArgumentException("GEMM operand sizes do not match n, m, k");
        if (n == 0 || m == 0 || k == 0) return;
        int groups = (n + TileRows - 1) / TileRows, panels = (m + TileCols - 1) / TileCols;
        var opts = new ParallelOptions { MaxDegreeOfParallelism = maxThreads > 0 ? maxThreads : Environment.ProcessorCount };
        var ws = workspace ?? new Workspace();
        try
        {
            float* ap = ws.A((long)groups * TileRows * k), bp = ws.B((long)panels * TileCols * k);
            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            {
                Pack(pa, aLayout, n, k, TileRows, ap, opts);
                Pack(pb, bLayout, m, k, TileCols, bp, opts);
                nint iap = (nint)ap, ibp = (nint)bp, ic = (nint)pc;
                int rowBlocks = (n + BlockRows - 1) / BlockRows, colBlocks = (m + BlockCols - 1) / BlockCols;
                // Consecutive blocks share a B column slab (kept in L3 while both threads use it).
                Parallel.For(0, rowBlocks * colBlocks, opts,
                    () => (nint)NativeMemory.AlignedAlloc(BlockRows * BlockCols * sizeof(float), 64),
                    (blk, _, acc) =>
                    {
                        Block((float*)iap, (float*)ibp, (float*)ic, n, m, k, blk % rowBlocks, blk / rowBlocks, (float*)acc);
                        return acc;
                    },
                    acc => NativeMemory.AlignedFree((void*)acc));
            }
        }
        finally
        {
            if (workspace is null) ws.Dispose();
        }
    }

    /// <summary>The packed copies of both operands (native, 64-byte aligned), grown on demand.</summary>
    public sealed class Workspace : IDisposable
    {
        private float* _a, _b;
        private long _aCap, _bCap;

        internal float* A(long floats) => Ensure(ref _a, ref _aCap, floats);
        internal float* B(long floats) => Ensure(ref _b, ref _bCap, floats);

        private static float* Ensure(ref float* p, ref long cap, long floats)
        {
            if (floats > cap)
            {
                NativeMemory.AlignedFree(p);
                p = null; cap = 0;
                p = (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
                cap = floats;
            }
            return p;
        }

        public void Dispose()
        {
            NativeMemory.AlignedFree(_a); NativeMemory.AlignedFree(_b);
            _a = _b = null; _aCap = _bCap = 0;
        }
    }

    /// <summary>dst[q][p][r] = X(q·w + r, p) for every panel q of w rows (zero past <paramref name="rows"/>).</summary>
    private static void Pack(float* src, OperandLayout layout, int rows, int k, int w, float* dst, ParallelOptions opts)
    {
        nint isrc = (nint)src, idst = (nint)dst;
        int panels = (rows + w - 1) / w, perTask = PackWidth / w, tasks = (panels + perTask - 1) / perTask;
        Parallel.For(0, tasks, opts, t =>
        {
            int q0 = t * perTask, q1 = Math.Min(panels, q0 + perTask);
            if (layout == OperandLayout.KMajor) PackKMajor((float*)isrc, rows, k, w, q0, q1, (float*)idst);
            else PackRowMajor((float*)isrc, rows, k, w, q0, q1, (float*)idst);
        });
    }

    private const int PackWidth = 128, PackDepth = 64;

    // Each k step reads one contiguous run of up to 128 values and hands w of them to each panel.
    private static void PackKMajor(float* src, int rows, int k, int w, int q0, int q1, float* dst)
    {
        for (int p = 0; p < k; p++)
            for (int q = q0; q < q1; q++)
            {
                int valid = Math.Min(w, rows - q * w);
                float* to = dst + ((long)q * k + p) * w;
                new ReadOnlySpan<float>(src + (long)p * rows + q * w, valid).CopyTo(new Span<float>(to, valid));
                if (valid < w) new Span<float>(to + valid, w - valid).Clear();
            }
    }

    // A transpose of w rows, 64 k steps at a time so the destination piece (at most 8 KB) stays in L1.
    private static void PackRowMajor(float* src, int rows, int k, int w, int q0, int q1, float* dst)
    {
        for (int q = q0; q < q1; q++)
        {
            int valid = Math.Min(w, rows - q * w);
            float* panel = dst + (long)q * k * w;
            for (int p0 = 0; p0 < k; p0 += PackDepth)
            {
                int pc = Math.Min(PackDepth, k - p0);
                for (int r = 0; r < w; r++)
                {
                    float* to = panel + (long)p0 * w + r;
                    if (r < valid)
                    {
                        float* row = src + (long)(q * w + r) * k + p0;
                        for (int p = 0; p < pc; p++) to[p * w] = row[p];
                    }
                    else
                        for (int p = 0; p < pc; p++) to[p * w] = 0f;
                }
            }
        }
    }

    /// <summary>The 128×256 block (rb, cb) of C: accumulate over all k into <paramref name="acc"/>, then add to C.</summary>
    private static void Block(float* ap, float* bp, float* c, int n, int m, int k, int rb, int cb, float* acc)
    {
        int r0 = rb * BlockRows, rows = Math.Min(BlockRows, n - r0), g0 = r0 / TileRows, gs = (rows + TileRows - 1) / TileRows;
        int c0 = cb * BlockCols, cols = Math.Min(BlockCols, m - c0), p0 = c0 / TileCols, ps = (cols + TileCols - 1) / TileCols;
        const int tile = TileRows * TileCols;
        for (int k0 = 0; k0 < k; k0 += KChunk)
        {
            int kc = Math.Min(KChunk, k - k0);
            for (int p = 0; p < ps; p++)
            {
                float* bpanel = bp + ((long)(p0 + p) * k + k0) * TileCols;
                for (int g = 0; g < gs; g++)
                    Kernel(ap + ((long)(g0 + g) * k + k0) * TileRows, bpanel, kc, acc + (g * ps + p) * tile, k0 == 0);
            }
        }
        for (int g = 0; g < gs; g++)
            for (int r = 0; r < TileRows; r++)
            {
                int row = r0 + g * TileRows + r;
                if (row >= n) break;
                for (int p = 0; p < ps; p++)
                {
                    int col = c0 + p * TileCols, len = Math.Min(TileCols, m - col);
                    var dst = new Span<float>(c + (long)row * m + col, len);
                    TensorPrimitives.Add(dst, new ReadOnlySpan<float>(acc + (g * ps + p) * tile + r * TileCols, len), dst);
                }
            }
    }

    /// <summary>acc[8][32] (+)= Σ_p a[p][0..8] ⊗ b[p][0..32] over kc steps (a: [kc][8], b: [kc][32]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel(float* a, float* b, int kc, float* acc, bool first)
    {
        if (Vector512.IsHardwareAccelerated) { Kernel512(a, b, kc, acc, first); return; }
        if (Vector256.IsHardwareAccelerated) { Kernel256(a, b, kc, acc, first); Kernel256(a, b + 16, kc, acc + 16, first); return; }
        for (int r = 0; r < TileRows; r++)
            for (int j = 0; j < TileCols; j++)
            {
                float s = first ? 0f : acc[r * TileCols + j];
                for (int p = 0; p < kc; p++) s = MathF.FusedMultiplyAdd(a[p * TileRows + r], b[p * TileCols + j], s);
                acc[r * TileCols + j] = s;
            }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel512(float* a, float* b, int kc, float* acc, bool first)
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
        for (int p = 0; p < kc; p++, a += TileRows, b += TileCols)
        {
            var x0 = Vector512.Load(b);
            var x1 = Vector512.Load(b + 16);
            var s = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(x0, s, c00); c01 = Vector512.FusedMultiplyAdd(x1, s, c01);
            s = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x0, s, c10); c11 = Vector512.FusedMultiplyAdd(x1, s, c11);
            s = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x0, s, c20); c21 = Vector512.FusedMultiplyAdd(x1, s, c21);
            s = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x0, s, c30); c31 = Vector512.FusedMultiplyAdd(x1, s, c31);
            s = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x0, s, c40); c41 = Vector512.FusedMultiplyAdd(x1, s, c41);
            s = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x0, s, c50); c51 = Vector512.FusedMultiplyAdd(x1, s, c51);
            s = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x0, s, c60); c61 = Vector512.FusedMultiplyAdd(x1, s, c61);
            s = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x0, s, c70); c71 = Vector512.FusedMultiplyAdd(x1, s, c71);
        }
        c00.Store(acc + 0); c01.Store(acc + 16); c10.Store(acc + 32); c11.Store(acc + 48);
        c20.Store(acc + 64); c21.Store(acc + 80); c30.Store(acc + 96); c31.Store(acc + 112);
        c40.Store(acc + 128); c41.Store(acc + 144); c50.Store(acc + 160); c51.Store(acc + 176);
        c60.Store(acc + 192); c61.Store(acc + 208); c70.Store(acc + 224); c71.Store(acc + 240);
    }

    // Without AVX-512: 8 rows × 16 columns per call (b and acc keep their row stride of 32).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel256(float* a, float* b, int kc, float* acc, bool first)
    {
        const int S = TileCols;
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
        for (int p = 0; p < kc; p++, a += TileRows, b += S)
        {
            var x0 = Vector256.Load(b);
            var x1 = Vector256.Load(b + 8);
            var s = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(x0, s, c00); c01 = Vector256.FusedMultiplyAdd(x1, s, c01);
            s = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(x0, s, c10); c11 = Vector256.FusedMultiplyAdd(x1, s, c11);
            s = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(x0, s, c20); c21 = Vector256.FusedMultiplyAdd(x1, s, c21);
            s = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(x0, s, c30); c31 = Vector256.FusedMultiplyAdd(x1, s, c31);
            s = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(x0, s, c40); c41 = Vector256.FusedMultiplyAdd(x1, s, c41);
            s = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(x0, s, c50); c51 = Vector256.FusedMultiplyAdd(x1, s, c51);
            s = Vector256.Create(a[6]); c60 = Vector256.FusedMultiplyAdd(x0, s, c60); c61 = Vector256.FusedMultiplyAdd(x1, s, c61);
            s = Vector256.Create(a[7]); c70 = Vector256.FusedMultiplyAdd(x0, s, c70); c71 = Vector256.FusedMultiplyAdd(x1, s, c71);
        }
        c00.Store(acc); c01.Store(acc + 8); c10.Store(acc + S); c11.Store(acc + S + 8);
        c20.Store(acc + 2 * S); c21.Store(acc + 2 * S + 8); c30.Store(acc + 3 * S); c31.Store(acc + 3 * S + 8);
        c40.Store(acc + 4 * S); c41.Store(acc + 4 * S + 8); c50.Store(acc + 5 * S); c51.Store(acc + 5 * S + 8);
        c60.Store(acc + 6 * S); c61.Store(acc + 6 * S + 8); c70.Store(acc + 7 * S); c71.Store(acc + 7 * S + 8);
    }
}
