using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Mistral.Merge.Numerics;

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
/// A packed GEMM on the forward pass's micro-kernel (<see cref="PackedGemmKernel"/>, MR × NR = 6 × 16 on AVX2 and
/// NEON, 12 × 32 on AVX-512): both operands are copied once into zero-padded panels, A as [n/MR][k][MR] (the
/// broadcast side) and B as [m/NR][k][NR] (the vector side; so the w2 columns need no separate transpose), then the
/// <see cref="WorkerPool"/>'s threads take 120×256 blocks of C. Inside a block the kernel runs over k chunks of 256,
/// each B micro-panel chunk staying in L1 while the A chunks stream past it from L2, the block's accumulators in L2;
/// each block is added to C once. Every product is a float32 FMA chain over k in increasing order from zero, so
/// results do not depend on the thread count or the vector width.
/// </summary>
public static unsafe class SimilarityGemm
{
    private static readonly int Bits = PackedGemmKernel.NativeBits;
    private static readonly int TileRows = PackedGemmKernel.TokensFor(Bits), TileCols = PackedGemmKernel.WeightsFor(Bits);
    private const int BlockRows = 120, BlockCols = 256, KChunk = 256; // 120: a multiple of every MR (6, 12)

    /// <summary>Below this many rows on either side packing costs more than it saves (each packed element is used n or m times).</summary>
    public const int PackingMinRows = 64;

    /// <summary>
    /// C[n, m] += A[n, k] · B[m, k]ᵀ (both row-major along k). Products with fewer than
    /// <see cref="PackingMinRows"/> rows on a side (a few tokens against a weight, the router) go to the
    /// unpacked <see cref="DotProductGemm"/>; the rest to the packed kernel.
    /// </summary>
    /// <param name="maxThreads">threads (a command's <c>--threads</c>): 0 or less = all logical processors.</param>
    public static void MultiplyAddNT(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int n, int m, int k, int maxThreads = -1)
    {
        if (Math.Min(n, m) < PackingMinRows) DotProductGemm.MultiplyAddNT(a, b, c, n, m, k, maxThreads);
        else MultiplyAdd(a, OperandLayout.RowMajor, b, OperandLayout.RowMajor, c, n, m, k, maxThreads);
    }

    /// <param name="workspace">packing buffers to reuse across calls (fresh pages cost a fault each); null: a temporary one.</param>
    public static void MultiplyAdd(ReadOnlySpan<float> a, OperandLayout aLayout, ReadOnlySpan<float> b, OperandLayout bLayout,
                                   Span<float> c, int n, int m, int k, int maxThreads = -1, Workspace? workspace = null) =>
        MultiplyAdd(a, aLayout, b, bLayout, c, n, m, k, maxThreads, workspace, upperOnly: false);

    /// <summary>
    /// C[n, n] += A · Aᵀ for a symmetric C (a Gram matrix; zero on entry, say): only the blocks that reach the upper
    /// triangle are computed, about half of <see cref="MultiplyAdd(ReadOnlySpan{float}, OperandLayout, ReadOnlySpan{float}, OperandLayout, Span{float}, int, int, int, int, Workspace?)"/>'s
    /// work, and the lower triangle is then copied from the upper. C[i, j] and C[j, i] are the same float32 chain (the
    /// same products in the same k order), so the result equals that product with A on both sides bit for bit.
    /// </summary>
    public static void MultiplyAddGram(ReadOnlySpan<float> a, OperandLayout layout, Span<float> c, int n, int k, int maxThreads = -1)
    {
        MultiplyAdd(a, layout, a, layout, c, n, n, k, maxThreads, null, upperOnly: true);
        if (n == 0 || k == 0) return;
        // lower ← upper, in 64×64 tiles so both the reads and the writes stay within a few pages
        const int T = 64;
        fixed (float* pc = c)
        {
            nint ic = (nint)pc;
            WorkerPool.For(maxThreads, (n + T - 1) / T, (ti, _) =>
            {
                float* cc = (float*)ic;
                int i0 = ti * T, i1 = Math.Min(n, i0 + T);
                for (int j0 = 0; j0 < i1; j0 += T)
                    for (int i = i0; i < i1; i++)
                        for (int j = j0, j1 = Math.Min(i, j0 + T); j < j1; j++)
                            cc[(long)i * n + j] = cc[(long)j * n + i];
            });
        }
    }

    /// <summary>The packed product; with <paramref name="upperOnly"/> only the 120×256 blocks of C that reach its upper triangle.</summary>
    private static void MultiplyAdd(ReadOnlySpan<float> a, OperandLayout aLayout, ReadOnlySpan<float> b, OperandLayout bLayout,
                                    Span<float> c, int n, int m, int k, int maxThreads, Workspace? workspace, bool upperOnly)
    {
        if (n < 0 || m < 0 || k < 0) throw new ArgumentException("GEMM dimensions must not be negative");
        if ((long)n * k > a.Length || (long)m * k > b.Length || (long)n * m > c.Length)
            throw new ArgumentException("GEMM operand sizes do not match n, m, k");
        if (n == 0 || m == 0 || k == 0) return;
        int groups = (n + TileRows - 1) / TileRows, panels = (m + TileCols - 1) / TileCols;
        var ws = workspace ?? new Workspace();
        try
        {
            float* ap = ws.A((long)groups * TileRows * k), bp = ws.B((long)panels * TileCols * k);
            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            {
                Pack(pa, aLayout, n, k, TileRows, ap, maxThreads);
                Pack(pb, bLayout, m, k, TileCols, bp, maxThreads);
                nint iap = (nint)ap, ibp = (nint)bp, ic = (nint)pc;
                int rowBlocks = (n + BlockRows - 1) / BlockRows, colBlocks = (m + BlockCols - 1) / BlockCols;
                // Consecutive blocks share a B column slab (kept in L3 while both threads use it); upper: some column ≥ some row.
                var blocks = Enumerable.Range(0, rowBlocks * colBlocks)
                    .Where(blk => !upperOnly || Math.Min(m, (blk / rowBlocks + 1) * BlockCols) > blk % rowBlocks * BlockRows).ToArray();
                var accs = new nint[WorkerPool.ThreadsFor(maxThreads, blocks.Length)]; // per worker: one block's accumulators
                try
                {
                    WorkerPool.For(maxThreads, blocks.Length, (i, worker) =>
                    {
                        if (accs[worker] == 0) accs[worker] = (nint)NativeMemory.AlignedAlloc(BlockRows * BlockCols * sizeof(float), 64);
                        int blk = blocks[i];
                        Block((float*)iap, (float*)ibp, (float*)ic, n, m, k, blk % rowBlocks, blk / rowBlocks, (float*)accs[worker]);
                    });
                }
                finally
                {
                    foreach (var acc in accs) NativeMemory.AlignedFree((void*)acc);
                }
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
    private static void Pack(float* src, OperandLayout layout, int rows, int k, int w, float* dst, int threads)
    {
        nint isrc = (nint)src, idst = (nint)dst;
        int panels = (rows + w - 1) / w, perTask = PackWidth / w, tasks = (panels + perTask - 1) / perTask;
        WorkerPool.For(threads, tasks, (t, _) =>
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

    /// <summary>The 120×256 block (rb, cb) of C: accumulate over all k into <paramref name="acc"/>, then add to C.</summary>
    private static void Block(float* ap, float* bp, float* c, int n, int m, int k, int rb, int cb, float* acc)
    {
        int r0 = rb * BlockRows, rows = Math.Min(BlockRows, n - r0), g0 = r0 / TileRows, gs = (rows + TileRows - 1) / TileRows;
        int c0 = cb * BlockCols, cols = Math.Min(BlockCols, m - c0), p0 = c0 / TileCols, ps = (cols + TileCols - 1) / TileCols;
        int tile = TileRows * TileCols;
        for (int k0 = 0; k0 < k; k0 += KChunk)
        {
            int kc = Math.Min(KChunk, k - k0);
            for (int p = 0; p < ps; p++)
            {
                float* bpanel = bp + ((long)(p0 + p) * k + k0) * TileCols;
                for (int g = 0; g < gs; g++)
                    PackedGemmKernel.Run(Bits, ap + ((long)(g0 + g) * k + k0) * TileRows, bpanel, kc, acc + (g * ps + p) * tile, k0 == 0);
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
}
