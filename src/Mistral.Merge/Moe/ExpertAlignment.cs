using Mistral.Merge.Numerics;

namespace Mistral.Merge.Moe;

/// <summary>
/// Weight matching of SwiGLU units: the similarity of reference unit u and expert unit v is
/// <c>w1ᵣ[u]·w1ₑ[v] + w3ᵣ[u]·w3ₑ[v] + w2ᵣ[:,u]·w2ₑ[:,v]</c> (one [I×I] float32 GEMM per tensor, see
/// <see cref="SimilarityGemm"/>); the permutation maximizing the summed similarity is a linear assignment
/// problem solved exactly by <see cref="LinearAssignment"/>. Memory: the I×I matrix plus the GEMM's packed
/// copies of one pair of operands (2 × I×H float32).
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
        using var ws = new SimilarityGemm.Workspace();
        const OperandLayout rowMajor = OperandLayout.RowMajor, kMajor = OperandLayout.KMajor;
        SimilarityGemm.MultiplyAdd(r.W1, rowMajor, e.W1, rowMajor, s, n, n, h, maxThreads, ws);
        SimilarityGemm.MultiplyAdd(r.W3, rowMajor, e.W3, rowMajor, s, n, n, h, maxThreads, ws);
        // w2 is [H, I]: its unit columns are read k-major, packed straight into the kernel's panels.
        SimilarityGemm.MultiplyAdd(r.W2, kMajor, e.W2, kMajor, s, n, n, h, maxThreads, ws);
        return s;
    }
}
