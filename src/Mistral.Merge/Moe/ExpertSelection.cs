namespace Mistral.Merge.Moe;

/// <summary>Which experts a pruned or grouped layer keeps.</summary>
public static class ExpertSelection
{
    /// <summary>Keep the N most frequently selected experts (ties → lower index), ascending order.</summary>
    public static int[] ByFrequency(ReadOnlySpan<double> frequency, int keep) => MoeStrategies.TopByFrequency(frequency, keep);

    /// <summary>
    /// Keep the N experts whose restricted block output changes least (Σ over tokens of ‖y_all − y_subset‖²):
    /// exhaustive over all subsets when there are at most 5,000, else greedy backward elimination
    /// (drop the expert whose removal costs least, repeat). Ties → the lexicographically smaller subset.
    /// </summary>
    public static int[] ByOutputChange(float[][] expertOutputs, float[] logits, int tokens, int experts, int hidden, int topK, int keep)
    {
        if (keep < 1 || keep > experts) throw new MergeException($"cannot keep {keep} of {experts} experts");
        var all = Enumerable.Range(0, experts).ToArray();
        var full = MoeBlock.Combine(expertOutputs, logits, tokens, experts, hidden, topK, all);
        double Cost(int[] s) => MoeBlock.SquaredDistance(full, MoeBlock.Combine(expertOutputs, logits, tokens, experts, hidden, topK, s));
        if (Binomial(experts, keep) <= 5000)
        {
            int[]? best = null; double bestCost = double.PositiveInfinity;
            foreach (var s in Subsets(experts, keep))
            {
                double c = Cost(s);
                if (c < bestCost) { bestCost = c; best = s; }
            }
            return best!;
        }
        var current = all.ToList();
        while (current.Count > keep)
        {
            int drop = -1; double bestCost = double.PositiveInfinity;
            foreach (var e in current)
            {
                double c = Cost(current.Where(x => x != e).ToArray());
                if (c < bestCost) { bestCost = c; drop = e; }
            }
            current.Remove(drop);
        }
        return current.ToArray();
    }

    private static double Binomial(int n, int k)
    {
        double r = 1;
        for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
        return r;
    }

    /// <summary>k-subsets of 0..n-1 in lexicographic order.</summary>
    internal static IEnumerable<int[]> Subsets(int n, int k)
    {
        var idx = Enumerable.Range(0, k).ToArray();
        while (true)
        {
            yield return (int[])idx.Clone();
            int i = k - 1;
            while (i >= 0 && idx[i] == n - k + i) i--;
            if (i < 0) yield break;
            idx[i]++;
            for (int j = i + 1; j < k; j++) idx[j] = idx[j - 1] + 1;
        }
    }
}
