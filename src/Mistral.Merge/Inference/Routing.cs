namespace Mistral.Merge.Inference;

/// <summary>
/// Mixtral (HF <c>MixtralSparseMoeBlock</c>) routing of one token, the one implementation used by the forward
/// pass and by MoE surgery: softmax over all router logits in float32, top-k of the probabilities (ties → lower
/// expert index), the k weights renormalized to sum to 1.
/// </summary>
public static class Routing
{
    /// <summary>Fills <paramref name="experts"/> (k, by descending weight) and <paramref name="weights"/> (k).</summary>
    public static void TopK(ReadOnlySpan<float> routerLogits, int k, Span<int> experts, Span<float> weights)
    {
        int n = routerLogits.Length;
        Span<float> probs = n <= 256 ? stackalloc float[n] : new float[n];
        Route(routerLogits, k, probs, experts, weights);
    }

    /// <summary>Fills <paramref name="probs"/> (E), <paramref name="chosen"/> (k, by descending weight) and <paramref name="weights"/> (k).</summary>
    public static void Route(ReadOnlySpan<float> logits, int k, Span<float> probs, Span<int> chosen, Span<float> weights)
    {
        int n = logits.Length;
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"top-{k} of {n} experts");
        float max = float.NegativeInfinity;
        foreach (var v in logits) max = Math.Max(max, v);
        float sum = 0;
        for (int i = 0; i < n; i++) { probs[i] = MathF.Exp(logits[i] - max); sum += probs[i]; }
        for (int i = 0; i < n; i++) probs[i] /= sum;

        // top-k by repeated selection; strict '>' keeps the lower index on ties
        float total = 0;
        for (int j = 0; j < k; j++)
        {
            int best = -1;
            for (int i = 0; i < n; i++)
            {
                if (chosen[..j].Contains(i)) continue;
                if (best < 0 || probs[i] > probs[best]) best = i;
            }
            chosen[j] = best;
            weights[j] = probs[best];
            total += probs[best];
        }
        for (int j = 0; j < k; j++) weights[j] /= total;
    }

    /// <summary>Router logits that MoE surgery can route (statistics and expert selection refuse NaN and infinities).</summary>
    public static void ThrowIfNotFinite(ReadOnlySpan<float> logits)
    {
        foreach (var v in logits)
            if (!float.IsFinite(v)) throw new MergeException("router logits hold NaN or infinity");
    }
}
