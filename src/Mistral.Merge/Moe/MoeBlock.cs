using Mistral.Merge.Inference;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Moe;

/// <summary>
/// The Mixtral sparse MoE block as MoE surgery evaluates it: every expert's output on every token (dense, so that
/// subsets of experts can be compared without re-running them), then the routed combination for a subset. The steps
/// are the forward pass's own: <see cref="Routing"/>, <see cref="Ops.SiluMul(Span{float}, ReadOnlySpan{float})"/>,
/// <see cref="Ops.AddScaled(Span{float}, ReadOnlySpan{float}, float)"/>, and the GEMM micro-kernel of <see cref="PackedGemmKernel"/>
/// (via <see cref="SimilarityGemm"/>, on float32 weights). Only the orchestration differs from
/// <see cref="CpuBackend"/>'s sparse block (tokens gathered per expert): its accumulation order (chosen experts by
/// descending weight) is part of the surgery's exact results.
/// </summary>
public static class MoeBlock
{
    /// <summary>Router logits [tokens, experts]; <paramref name="maxThreads"/> (≤ 0: all cores) does not change the result.</summary>
    public static float[] RouterLogits(float[] x, int tokens, float[] router, int experts, int hidden, int maxThreads = -1)
    {
        var r = new float[tokens * experts];
        SimilarityGemm.MultiplyAddNT(x, router, r, tokens, experts, hidden, maxThreads);
        return r;
    }

    /// <summary><c>silu(w1 x) ⊙ w3 x</c> for every token → [tokens, n], for w1/w3 [n, h] held anywhere (arrays or a mapped file).</summary>
    public static float[] Hidden(ReadOnlySpan<float> w1, ReadOnlySpan<float> w3, int h, int n, float[] x, int tokens, int maxThreads = -1)
    {
        var g = new float[(long)tokens * n];
        var u = new float[(long)tokens * n];
        SimilarityGemm.MultiplyAddNT(x, w1, g, tokens, n, h, maxThreads);
        SimilarityGemm.MultiplyAddNT(x, w3, u, tokens, n, h, maxThreads);
        Ops.SiluMul(g, u);
        return g;
    }

    /// <summary>SwiGLU expert output for every token: <c>w2 · (silu(w1 x) ⊙ w3 x)</c> → [tokens, hidden].</summary>
    public static float[] ExpertOutput(ExpertWeights e, float[] x, int tokens, int maxThreads = -1)
    {
        int h = e.Hidden, n = e.Intermediate;
        var g = Hidden(e.W1, e.W3, h, n, x, tokens, maxThreads);
        var y = new float[(long)tokens * h];
        SimilarityGemm.MultiplyAddNT(g, e.W2, y, tokens, h, n, maxThreads);
        return y;
    }

    /// <summary>
    /// Output of the block restricted to a subset of experts (router rows of the others dropped, softmax
    /// over the subset, top-min(k, |subset|), renormalized) from precomputed per-expert outputs.
    /// </summary>
    public static float[] Combine(float[][] expertOutputs, float[] logits, int tokens, int experts, int hidden, int topK, ReadOnlySpan<int> subset)
    {
        int m = subset.Length, k = Math.Min(topK, m);
        var y = new float[(long)tokens * hidden];
        Span<float> sub = stackalloc float[m]; Span<float> probs = stackalloc float[m];
        Span<int> chosen = stackalloc int[k]; Span<float> w = stackalloc float[k];
        for (int t = 0; t < tokens; t++)
        {
            for (int i = 0; i < m; i++) sub[i] = logits[t * experts + subset[i]];
            Routing.ThrowIfNotFinite(sub);
            Routing.Route(sub, k, probs, chosen, w);
            var dst = y.AsSpan(t * hidden, hidden);
            for (int s = 0; s < k; s++)
            {
                Ops.AddScaled(dst, expertOutputs[subset[chosen[s]]].AsSpan(t * hidden, hidden), w[s]);
            }
        }
        return y;
    }

    /// <summary>Σ‖a − b‖² in float64.</summary>
    public static double SquaredDistance(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) { double d = a[i] - b[i]; s += d * d; }
        return s;
    }
}
