namespace Mistral.Merge.Moe;

/// <summary>
/// Weight matching of SwiGLU units: the similarity of reference unit u and expert unit v is
/// <c>w1ᵣ[u]·w1ₑ[v] + w3ᵣ[u]·w3ₑ[v] + w2ᵣ[:,u]·w2ₑ[:,v]</c> (one [I×I] float32 GEMM per tensor, see
/// <see cref="SimilarityGemm"/>); the permutation maximizing the summed similarity is a linear assignment
/// problem solved exactly by <see cref="LinearAssignment"/>. Memory: the I×I matrix plus two transposed w2.
/// </summary>
public sealed class ExpertAlignment
{
    public int MaxThreads { get; init; } = -1;

    /// <summary>Last timings (seconds) of similarity and assignment, for reporting.</summary>
    public double LastSimilaritySeconds { get; private set; }
    public double LastAssignmentSeconds { get; private set; }

    /// <summary>perm[u] = the unit of <paramref name="expert"/> that goes to position u (matching reference unit u).</summary>
    public int[] Align(ExpertWeights reference, ExpertWeights expert, CancellationToken token = default)
    {
        if (reference.Hidden != expert.Hidden || reference.Intermediate != expert.Intermediate)
            throw new MergeException("aligned_mean: experts of different shapes");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var s = Similarity(reference, expert, MaxThreads);
        LastSimilaritySeconds = sw.Elapsed.TotalSeconds;
        sw.Restart();
        for (int i = 0; i < s.Length; i++) s[i] = -s[i];
        var perm = LinearAssignment.SolveMin(s, reference.Intermediate, token);
        LastAssignmentSeconds = sw.Elapsed.TotalSeconds;
        return perm;
    }

    /// <summary>S[u, v] for reference unit u and expert unit v, row-major [I, I].</summary>
    public static float[] Similarity(ExpertWeights r, ExpertWeights e, int maxThreads = -1)
    {
        int h = r.Hidden, n = r.Intermediate;
        var s = new float[(long)n * n];
        SimilarityGemm.MultiplyAddNT(r.W1, e.W1, s, n, n, h, maxThreads);
        SimilarityGemm.MultiplyAddNT(r.W3, e.W3, s, n, n, h, maxThreads);
        SimilarityGemm.MultiplyAddNT(Transpose(r.W2, h, n), Transpose(e.W2, h, n), s, n, n, h, maxThreads);
        return s;
    }

    /// <summary>[rows, cols] → [cols, rows], in 32×32 blocks.</summary>
    public static float[] Transpose(float[] src, int rows, int cols)
    {
        var dst = new float[src.Length];
        const int B = 32;
        for (int r0 = 0; r0 < rows; r0 += B)
            for (int c0 = 0; c0 < cols; c0 += B)
            {
                int r1 = Math.Min(rows, r0 + B), c1 = Math.Min(cols, c0 + B);
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++)
                        dst[(long)c * rows + r] = src[(long)r * cols + c];
            }
        return dst;
    }
}
