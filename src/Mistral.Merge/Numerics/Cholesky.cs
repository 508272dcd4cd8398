using System.Numerics.Tensors;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Cholesky factorization A = L·Lᵀ of a symmetric positive definite matrix in float64 (row-major n×n, lower
/// triangle read, overwritten by L; the strict upper triangle is left as it was), and the multi-right-hand-side
/// solve A·X = B. Blocked right-looking: factor a diagonal block of <see cref="Block"/> columns, solve the panel
/// below it, subtract the panel's outer product from the trailing matrix with the float64 GEMM
/// (<see cref="DoubleGemm"/>, both threads; every element is updated by one thread in a fixed order, so the result does
/// not depend on the thread count). The solve is blocked the same way: triangular solves within column blocks of
/// <see cref="Block"/>, the rest of each substitution as GEMM updates. Used by the least-squares refit of MoE → dense (w2 = C·(G + λI)⁻¹).
/// </summary>
public static unsafe class Cholesky
{
    public const int Block = 128;
    private const int Tile = 64;

    /// <summary>Factorizes in place; returns −1, or the first column whose pivot is not positive and finite (not SPD / NaN).</summary>
    public static int Factor(double[] a, int n, int threads = 0)
    {
        if ((long)n * n > a.LongLength) throw new ArgumentException("matrix smaller than n×n");
        using var pool = new WorkerPool(WorkerPool.Resolve(threads));
        for (int k0 = 0; k0 < n; k0 += Block)
        {
            int kb = Math.Min(Block, n - k0), k1 = k0 + kb;
            // 1. the diagonal block, unblocked (its left columns were already subtracted by earlier trailing updates)
            for (int j = k0; j < k1; j++)
            {
                var rj = a.AsSpan(j * n + k0, j - k0);
                double d = a[(long)j * n + j] - TensorPrimitives.Dot(rj, rj);
                if (!(d > 0) || !double.IsFinite(d)) return j;
                d = Math.Sqrt(d);
                a[(long)j * n + j] = d;
                for (int i = j + 1; i < k1; i++)
                    a[(long)i * n + j] = (a[(long)i * n + j] - TensorPrimitives.Dot(a.AsSpan(i * n + k0, j - k0), rj)) / d;
            }
            if (k1 == n) break;
            // 2. the panel below: rows i ≥ k1, columns k0..k1, L21 = A21 · L11⁻ᵀ (rows independent)
            int rows = n - k1;
            pool.Run((rows + Tile - 1) / Tile, (t, _) =>
            {
                int i0 = k1 + t * Tile, i1 = Math.Min(n, i0 + Tile);
                for (int i = i0; i < i1; i++)
                    for (int j = k0; j < k1; j++)
                        a[(long)i * n + j] = (a[(long)i * n + j] - TensorPrimitives.Dot(a.AsSpan(i * n + k0, j - k0), a.AsSpan(j * n + k0, j - k0))) / a[(long)j * n + j];
            });
            // 3. trailing update A22 -= L21·L21ᵀ, lower triangle, on the float64 GEMM
            fixed (double* pa = a)
            {
                var l21 = new DoubleOperand(pa + (long)k1 * n + k0, n, 1);
                DoubleGemm.SubtractProduct(l21, l21, pa + (long)k1 * n + k1, n, rows, rows, kb, pool, lowerOnly: true);
            }
        }
        return -1;
    }

    /// <summary>
    /// <see cref="Solve"/> by plain forward/backward substitution (64 right-hand sides at a time as axpys): the
    /// reference the blocked solve is tested against.
    /// </summary>
    internal static void SolveUnblocked(double[] l, int n, double[] rhs, int count, int threads = 0)
    {
        const int batch = 64;
        int batches = (count + batch - 1) / batch;
        WorkerPool.For(threads, batches, (bi, _) =>
        {
            int r0 = bi * batch, r = Math.Min(batch, count - r0);
            // z [n, r]: the batch transposed, so each step is an axpy over the right-hand sides
            var z = new double[(long)n * r];
            for (int s = 0; s < r; s++)
                for (int i = 0; i < n; i++) z[(long)i * r + s] = rhs[(long)(r0 + s) * n + i];
            // forward: L·y = b
            for (int i = 0; i < n; i++)
            {
                var zi = z.AsSpan(i * r, r);
                for (int j = 0; j < i; j++)
                {
                    double lij = l[(long)i * n + j];
                    if (lij != 0) TensorPrimitives.MultiplyAdd(z.AsSpan(j * r, r), -lij, zi, zi);
                }
                TensorPrimitives.Multiply(zi, 1.0 / l[(long)i * n + i], zi);
            }
            // backward: Lᵀ·x = y (row i of L holds column i of Lᵀ)
            for (int i = n - 1; i >= 0; i--)
            {
                var zi = z.AsSpan(i * r, r);
                TensorPrimitives.Multiply(zi, 1.0 / l[(long)i * n + i], zi);
                for (int j = 0; j < i; j++)
                {
                    double lij = l[(long)i * n + j];
                    if (lij != 0) TensorPrimitives.MultiplyAdd(zi, -lij, z.AsSpan(j * r, r), z.AsSpan(j * r, r));
                }
            }
            for (int s = 0; s < r; s++)
                for (int i = 0; i < n; i++) rhs[(long)(r0 + s) * n + i] = z[(long)i * r + s];
        });
    }

    /// <summary>
    /// Solves L·Lᵀ·x = b for every row b of <paramref name="rhs"/> [count, n] (row-major), in place; <paramref name="l"/>
    /// is <see cref="Factor"/>'s result. As matrices X·L·Lᵀ = B: first Y·Lᵀ = B, column block by column block left to
    /// right (each block's triangle solved row by row, then B's columns to its right −= Y_J·L[right, J]ᵀ on the GEMM),
    /// then X·L = Y right to left (X_J solved, then Y's columns to its left −= X_J·L[J, left]). Rows of the right-hand
    /// sides are independent, so the threads split them in the triangle steps and the GEMM splits C: the result does not
    /// depend on the thread count.
    /// </summary>
    public static void Solve(double[] l, int n, double[] rhs, int count, int threads = 0)
    {
        if ((long)n * n > l.LongLength || (long)count * n > rhs.LongLength) throw new ArgumentException("matrix smaller than n×n or right-hand sides shorter than count×n");
        using var pool = new WorkerPool(WorkerPool.Resolve(threads));
        const int rowBatch = 64;
        int batches = (count + rowBatch - 1) / rowBatch;
        var lt = new double[Block * Block];
        fixed (double* pl = l, px = rhs)
        {
            double* L = pl, X = px;
            // Y·Lᵀ = B: y[r, j] = (b[r, j] − Σ_{J0 ≤ p < j} y[r, p]·L[j, p]) / L[j, j] within the block
            for (int j0 = 0; j0 < n; j0 += Block)
            {
                int j1 = Math.Min(n, j0 + Block), nb = j1 - j0;
                pool.Run(batches, (bi, _) =>
                {
                    for (int r = bi * rowBatch, rEnd = Math.Min(count, r + rowBatch); r < rEnd; r++)
                    {
                        double* y = X + (long)r * n;
                        for (int j = j0; j < j1; j++)
                            y[j] = (y[j] - Dot(y + j0, L + (long)j * n + j0, j - j0)) / L[(long)j * n + j];
                    }
                });
                if (j1 < n)
                    DoubleGemm.SubtractProduct(new DoubleOperand(X + j0, n, 1), new DoubleOperand(L + (long)j1 * n + j0, n, 1),
                        X + j1, n, count, n - j1, nb, pool);
            }
            // X·L = Y: x[r, j] = (y[r, j] − Σ_{j < p < J1} x[r, p]·L[p, j]) / L[j, j], with the block's L transposed
            for (int j0 = (n - 1) / Block * Block; j0 >= 0; j0 -= Block)
            {
                int j1 = Math.Min(n, j0 + Block), nb = j1 - j0;
                for (int p = 0; p < nb; p++)
                    for (int j = 0; j < nb; j++) lt[j * Block + p] = L[(long)(j0 + p) * n + j0 + j];
                fixed (double* pt = lt)
                {
                    double* T = pt;
                    pool.Run(batches, (bi, _) =>
                    {
                        for (int r = bi * rowBatch, rEnd = Math.Min(count, r + rowBatch); r < rEnd; r++)
                        {
                            double* y = X + (long)r * n;
                            for (int j = j1 - 1; j >= j0; j--)
                                y[j] = (y[j] - Dot(y + j + 1, T + (j - j0) * Block + (j - j0) + 1, j1 - j - 1)) / L[(long)j * n + j];
                        }
                    });
                }
                if (j0 > 0)
                    DoubleGemm.SubtractProduct(new DoubleOperand(X + j0, n, 1), new DoubleOperand(L + (long)j0 * n, 1, n),
                        X, n, count, j0, nb, pool);
            }
        }
    }

    private static double Dot(double* a, double* b, int len) =>
        TensorPrimitives.Dot(new ReadOnlySpan<double>(a, len), new ReadOnlySpan<double>(b, len));
}
