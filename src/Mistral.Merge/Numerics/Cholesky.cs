using System.Numerics.Tensors;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Cholesky factorization A = L·Lᵀ of a symmetric positive definite matrix in float64 (row-major n×n, lower
/// triangle read, overwritten by L; the strict upper triangle is left as it was), and the multi-right-hand-side
/// solve A·X = B. Blocked right-looking: factor a diagonal block of <see cref="Block"/> columns, solve the panel
/// below it, subtract the panel's outer product from the trailing matrix in 64×64 tiles, which the threads share
/// (a <see cref="WorkerPool"/>; every element is updated by one thread in a fixed order, so the result does not
/// depend on the thread count). Used by the least-squares refit of MoE → dense (w2 = C·(G + λI)⁻¹).
/// </summary>
public static class Cholesky
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
            // 3. trailing update A22 -= L21·L21ᵀ, lower triangle, in Tile×Tile tiles
            int tiles = (rows + Tile - 1) / Tile, pairs = tiles * (tiles + 1) / 2;
            pool.Run(pairs, (p, _) =>
            {
                int ti = (int)((Math.Sqrt(8.0 * p + 1) - 1) / 2);
                while (ti * (ti + 1) / 2 > p) ti--;
                while ((ti + 1) * (ti + 2) / 2 <= p) ti++;
                int tj = p - ti * (ti + 1) / 2;
                int i0 = k1 + ti * Tile, i1 = Math.Min(n, i0 + Tile), j0 = k1 + tj * Tile, j1 = Math.Min(n, j0 + Tile);
                for (int i = i0; i < i1; i++)
                {
                    var li = a.AsSpan(i * n + k0, kb);
                    int jEnd = Math.Min(j1, i + 1);
                    for (int j = j0; j < jEnd; j++)
                        a[(long)i * n + j] -= TensorPrimitives.Dot(li, a.AsSpan(j * n + k0, kb));
                }
            });
        }
        return -1;
    }

    /// <summary>
    /// Solves L·Lᵀ·x = b for every row b of <paramref name="rhs"/> [count, n] (row-major), in place; <paramref name="l"/>
    /// is <see cref="Factor"/>'s result. Right-hand sides go in batches of 64 to the threads.
    /// </summary>
    public static void Solve(double[] l, int n, double[] rhs, int count, int threads = 0)
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
}
