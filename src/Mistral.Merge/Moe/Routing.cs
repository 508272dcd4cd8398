namespace Mistral.Merge.Moe;

/// <summary>
/// Mixtral (HF <c>MixtralSparseMoeBlock</c>) routing of one token: softmax over all router logits in
/// float32, top-k of the probabilities (ties → lower expert index), weights renormalized to sum to 1.
/// </summary>
public static class Routing
{
    /// <summary>Fills <paramref name="probs"/> (E), <paramref name="chosen"/> (k, by descending weight) and <paramref name="weights"/> (k).</summary>
    public static void Route(ReadOnlySpan<float> logits, int k, Span<float> probs, Span<int> chosen, Span<float> weights)
    {
        int e = logits.Length;
        if (k < 1 || k > e) throw new ArgumentOutOfRangeException(nameof(k), $"top-{k} of {e} experts");
        float max = float.NegativeInfinity;
        for (int i = 0; i < e; i++)
        {
            if (!float.IsFinite(logits[i])) throw new MergeException("router logits hold NaN or infinity");
            if (logits[i] > max) max = logits[i];
        }
        float sum = 0;
        for (int i = 0; i < e; i++) { probs[i] = MathF.Exp(logits[i] - max); sum += probs[i]; }
        for (int i = 0; i < e; i++) probs[i] /= sum;
        // Partial selection sort: strict > keeps the lower index among equal probabilities.
        float top = 0;
        for (int s = 0; s < k; s++)
        {
            int best = -1;
            for (int i = 0; i < e; i++)
            {
                bool taken = false;
                for (int t = 0; t < s; t++) if (chosen[t] == i) { taken = true; break; }
                if (taken) continue;
                if (best < 0 || probs[i] > probs[best]) best = i;
            }
            chosen[s] = best;
            weights[s] = probs[best];
            top += probs[best];
        }
        for (int s = 0; s < k; s++) weights[s] /= top;
    }
}
