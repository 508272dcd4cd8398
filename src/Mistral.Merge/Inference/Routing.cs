namespace Mistral.Merge.Inference;

/// <summary>Mixtral's router: softmax over all experts in float32, top-k, the k weights renormalized to sum to 1.</summary>
public static class Routing
{
    public static void TopK(ReadOnlySpan<float> routerLogits, int k, Span<int> experts, Span<float> weights)
    {
        int n = routerLogits.Length;
        Span<float> p = n <= 256 ? stackalloc float[n] : new float[n];
        float max = float.NegativeInfinity;
        foreach (var v in routerLogits) max = Math.Max(max, v);
        float sum = 0;
        for (int i = 0; i < n; i++) { p[i] = MathF.Exp(routerLogits[i] - max); sum += p[i]; }
        for (int i = 0; i < n; i++) p[i] /= sum;

        // top-k by repeated selection; strict '>' keeps the lower index on ties
        Span<bool> taken = n <= 256 ? stackalloc bool[n] : new bool[n];
        float total = 0;
        for (int j = 0; j < k; j++)
        {
            int best = -1;
            for (int i = 0; i < n; i++)
                if (!taken[i] && (best < 0 || p[i] > p[best])) best = i;
            taken[best] = true;
            experts[j] = best;
            weights[j] = p[best];
            total += p[best];
        }
        for (int j = 0; j < k; j++) weights[j] /= total;
    }
}
