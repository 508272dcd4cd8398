using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Numerics;

/// <summary>A float64 matrix operand with arbitrary strides: element (i, p) at <c>P[i·RowStride + p·ColStride]</c>.</summary>
public readonly unsafe struct DoubleOperand(double* p, long rowStride, long colStride)
{
    public double* P { get; } = p;
    public long RowStride { get; } = rowStride;
    public long ColStride { get; } = colStride;
    public double this[long i, long p] => P[i * RowStride + p * ColStride];
}

/// <summary>
/// <c>C[i, j] −= Σ_p A(i, p) · B(j, p)</c> in float64 (i &lt; m, j &lt; n, p &lt; k; optionally only j ≤ i), the
/// matrix-matrix product behind the blocked <see cref="Cholesky"/> (trailing update, triangular solves). Both
/// operands are packed once into zero-padded panels (A as [m/6][k][6], B as [n/8][k][8]); a work item is a block of
/// 96 rows × 256 columns of C, in which the 6×8 register tile (12 <see cref="Vector256{T}"/> accumulators, one
/// broadcast per A element and two FMAs) runs over all k (k is a block width, ≤ a few hundred, so a B panel stays in
/// L1 and the item's A panels in L2). Every element is one fused-multiply-add chain over p in increasing order,
/// subtracted from C once, by one thread: results do not depend on the thread count or on the vector width (the
/// scalar fallback uses the same fused operations). AVX-512 would allow a 12×16 tile; the build box is AVX2, so the
/// 256-bit tile serves both.
/// </summary>
public static unsafe class DoubleGemm
{
    public const int MR = 6, NR = 8;
    public const int RowBlock = 96, ColBlock = 256;

    /// <param name="lowerOnly">update only the elements with j ≤ i (the lower triangle of a symmetric C)</param>
    public static void SubtractProduct(DoubleOperand a, DoubleOperand b, double* c, long ldc, int m, int n, int k, WorkerPool pool, bool lowerOnly = false)
    {
        if (m <= 0 || n <= 0 || k <= 0) return;
        int mp = (m + MR - 1) / MR, np = (n + NR - 1) / NR;
        double* pa = (double*)NativeMemory.AlignedAlloc((nuint)((long)mp * k * MR * sizeof(double)), 64);
        double* pb = (double*)NativeMemory.AlignedAlloc((nuint)((long)np * k * NR * sizeof(double)), 64);
        try
        {
            pool.Run(mp + np, (q, _) =>
            {
                if (q < mp) Pack(a, q * MR, Math.Min(MR, m - q * MR), k, MR, pa + (long)q * k * MR);
                else Pack(b, (q - mp) * NR, Math.Min(NR, n - (q - mp) * NR), k, NR, pb + (long)(q - mp) * k * NR);
            });
            int rbs = (m + RowBlock - 1) / RowBlock, cbs = (n + ColBlock - 1) / ColBlock;
            pool.Run(rbs * cbs, (item, _) =>
            {
                int i0 = item / cbs * RowBlock, j0 = item % cbs * ColBlock;
                if (lowerOnly && j0 > Math.Min(m, i0 + RowBlock) - 1) return;
                int i1 = Math.Min(m, i0 + RowBlock), j1 = Math.Min(n, j0 + ColBlock);
                double* tile = stackalloc double[MR * NR];
                for (int j = j0; j < j1; j += NR)
                    for (int i = i0; i < i1; i += MR)
                    {
                        int rows = Math.Min(MR, i1 - i);
                        if (lowerOnly && j > i + rows - 1) continue;
                        Kernel(pa + (long)(i / MR) * k * MR, pb + (long)(j / NR) * k * NR, k, tile);
                        int cols = Math.Min(NR, j1 - j);
                        for (int r = 0; r < rows; r++)
                        {
                            double* cr = c + (long)(i + r) * ldc + j;
                            int cEnd = lowerOnly ? Math.Min(cols, i + r - j + 1) : cols;
                            for (int s = 0; s < cEnd; s++) cr[s] -= tile[r * NR + s];
                        }
                    }
            });
        }
        finally
        {
            NativeMemory.AlignedFree(pa);
            NativeMemory.AlignedFree(pb);
        }
    }

    /// <summary>dst[p·w + r] = X(i0 + r, p) for r &lt; rows, zero for rows ≤ r &lt; w.</summary>
    private static void Pack(DoubleOperand x, int i0, int rows, int k, int w, double* dst)
    {
        if (rows < w) new Span<double>(dst, k * w).Clear();
        for (int r = 0; r < rows; r++)
        {
            double* src = x.P + (i0 + r) * x.RowStride;
            long cs = x.ColStride;
            for (int p = 0; p < k; p++) dst[(long)p * w + r] = src[p * cs];
        }
    }

    /// <summary>tile[r·8 + s] = Σ_p a[p·6 + r] · b[p·8 + s] (fused, p increasing).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel(double* a, double* b, int k, double* tile)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            for (int r = 0; r < MR; r++)
                for (int s = 0; s < NR; s++)
                {
                    double acc = 0;
                    for (int p = 0; p < k; p++) acc = Math.FusedMultiplyAdd(a[p * MR + r], b[p * NR + s], acc);
                    tile[r * NR + s] = acc;
                }
            return;
        }
        Vector256<double> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < k; p++)
        {
            var b0 = Vector256.LoadAligned(b);
            var b1 = Vector256.LoadAligned(b + 4);
            var x = Vector256.Create(a[0]);
            c00 = Vector256.FusedMultiplyAdd(x, b0, c00); c01 = Vector256.FusedMultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[1]);
            c10 = Vector256.FusedMultiplyAdd(x, b0, c10); c11 = Vector256.FusedMultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[2]);
            c20 = Vector256.FusedMultiplyAdd(x, b0, c20); c21 = Vector256.FusedMultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[3]);
            c30 = Vector256.FusedMultiplyAdd(x, b0, c30); c31 = Vector256.FusedMultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[4]);
            c40 = Vector256.FusedMultiplyAdd(x, b0, c40); c41 = Vector256.FusedMultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[5]);
            c50 = Vector256.FusedMultiplyAdd(x, b0, c50); c51 = Vector256.FusedMultiplyAdd(x, b1, c51);
            a += MR; b += NR;
        }
        c00.Store(tile); c01.Store(tile + 4); c10.Store(tile + 8); c11.Store(tile + 12);
        c20.Store(tile + 16); c21.Store(tile + 20); c30.Store(tile + 24); c31.Store(tile + 28);
        c40.Store(tile + 32); c41.Store(tile + 36); c50.Store(tile + 40); c51.Store(tile + 44);
    }
}
