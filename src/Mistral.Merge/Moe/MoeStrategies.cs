namespace Mistral.Merge.Moe;

/// <summary>
/// Collapsing one layer's experts into one dense SwiGLU MLP (pure functions, float32 in and out,
/// float64 accumulation). Frequencies are per-expert routing selection shares (any non-negative scale).
/// </summary>
public static class MoeStrategies
{
    /// <summary><c>expert</c>: a copy of one expert.</summary>
    public static ExpertWeights Expert(IReadOnlyList<ExpertWeights> experts, int index)
    {
        ExpertWeights.CheckSameShape(experts);
        if (index < 0 || index >= experts.Count) throw new MergeException($"expert {index} does not exist (the layer has {experts.Count} experts)");
        return experts[index].Clone();
    }

    /// <summary><c>mean</c>: uniform average of w1, w3, w2.</summary>
    public static ExpertWeights Mean(IReadOnlyList<ExpertWeights> experts)
    {
        var w = new double[experts.Count];
        Array.Fill(w, 1.0);
        return WeightedMean(experts, w, "mean");
    }

    /// <summary><c>frequency</c> (and any weighted mean): <c>Σ f_e W_e / Σ f_e</c> per tensor.</summary>
    public static ExpertWeights WeightedMean(IReadOnlyList<ExpertWeights> experts, ReadOnlySpan<double> weights, string what = "frequency")
    {
        var (h, i) = ExpertWeights.CheckSameShape(experts);
        if (weights.Length != experts.Count) throw new MergeException($"{what}: {weights.Length} weights for {experts.Count} experts");
        var wn = WeightedSum.Normalize(weights, what);
        var r = ExpertWeights.Zeros(h, i);
        var src = new float[experts.Count][];
        for (int e = 0; e < src.Length; e++) src[e] = experts[e].W1;
        WeightedSum.Compute(src, wn, r.W1);
        for (int e = 0; e < src.Length; e++) src[e] = experts[e].W3;
        WeightedSum.Compute(src, wn, r.W3);
        for (int e = 0; e < src.Length; e++) src[e] = experts[e].W2;
        WeightedSum.Compute(src, wn, r.W2);
        return r;
    }

    /// <summary>
    /// <c>aligned_mean</c>: permute every expert's hidden units onto <paramref name="reference"/>
    /// (<see cref="ExpertAlignment"/>), then take the weighted mean (uniform when <paramref name="weights"/> is null).
    /// </summary>
    public static ExpertWeights AlignedMean(IReadOnlyList<ExpertWeights> experts, int reference, ReadOnlySpan<double> weights = default, ExpertAlignment? alignment = null)
    {
        ExpertWeights.CheckSameShape(experts);
        if (reference < 0 || reference >= experts.Count) throw new MergeException($"aligned_mean: reference expert {reference} does not exist (the layer has {experts.Count} experts)");
        alignment ??= new ExpertAlignment();
        var aligned = new ExpertWeights[experts.Count];
        for (int e = 0; e < experts.Count; e++)
            aligned[e] = e == reference ? experts[e] : Permute(experts[e], alignment.Align(experts[reference], experts[e]));
        if (weights.IsEmpty) return Mean(aligned);
        return WeightedMean(aligned, weights, "aligned_mean");
    }

    /// <summary>
    /// <c>concat</c>: the chosen experts side by side (intermediate K·I): w1/w3 rows stacked, w2 columns
    /// stacked and scaled by 1/K, so the wide MLP computes exactly the uniform average of their outputs.
    /// </summary>
    public static ExpertWeights Concat(IReadOnlyList<ExpertWeights> experts, IReadOnlyList<int> chosen)
    {
        var (h, inter) = ExpertWeights.CheckSameShape(experts);
        int k = chosen.Count;
        if (k == 0) throw new MergeException("concat: no experts chosen");
        var seen = new HashSet<int>();
        foreach (var c in chosen)
        {
            if (c < 0 || c >= experts.Count) throw new MergeException($"concat: expert {c} does not exist (the layer has {experts.Count} experts)");
            if (!seen.Add(c)) throw new MergeException($"concat: expert {c} chosen twice");
        }
        long wide = (long)k * inter;
        if (wide * h > Array.MaxLength) throw new MergeException($"concat: {k}×{inter} hidden units × {h} is too large for one tensor");
        var r = ExpertWeights.Zeros(h, k * inter);
        double scale = 1.0 / k;
        for (int s = 0; s < k; s++)
        {
            var x = experts[chosen[s]];
            Array.Copy(x.W1, 0, r.W1, (long)s * inter * h, (long)inter * h);
            Array.Copy(x.W3, 0, r.W3, (long)s * inter * h, (long)inter * h);
            for (int row = 0; row < h; row++)
            {
                var src = x.W2.AsSpan(row * inter, inter);
                var dst = r.W2.AsSpan((int)((long)row * k * inter + (long)s * inter), inter);
                for (int u = 0; u < inter; u++) dst[u] = (float)(src[u] * scale);
            }
        }
        return r;
    }

    /// <summary>Top-K experts by frequency (ties → lower index), returned in ascending expert order.</summary>
    public static int[] TopByFrequency(ReadOnlySpan<double> frequency, int k)
    {
        if (k < 1 || k > frequency.Length) throw new MergeException($"cannot keep {k} of {frequency.Length} experts");
        var order = new int[frequency.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var f = frequency.ToArray();
        Array.Sort(order, (a, b) => f[a] != f[b] ? f[b].CompareTo(f[a]) : a.CompareTo(b));
        var top = order[..k];
        Array.Sort(top);
        return top;
    }

    /// <summary>New unit u = old unit perm[u]: rows of w1/w3 and columns of w2 move together (the function is unchanged).</summary>
    public static ExpertWeights Permute(ExpertWeights x, ReadOnlySpan<int> perm)
    {
        int h = x.Hidden, inter = x.Intermediate;
        if (perm.Length != inter) throw new ArgumentException($"permutation of {perm.Length} for {inter} units");
        var seen = new bool[inter];
        foreach (var p in perm)
        {
            if ((uint)p >= (uint)inter || seen[p]) throw new ArgumentException("not a permutation");
            seen[p] = true;
        }
        var r = ExpertWeights.Zeros(h, inter);
        for (int u = 0; u < inter; u++)
        {
            x.W1.AsSpan(perm[u] * h, h).CopyTo(r.W1.AsSpan(u * h, h));
            x.W3.AsSpan(perm[u] * h, h).CopyTo(r.W3.AsSpan(u * h, h));
        }
        for (int row = 0; row < h; row++)
        {
            var src = x.W2.AsSpan(row * inter, inter);
            var dst = r.W2.AsSpan(row * inter, inter);
            for (int u = 0; u < inter; u++) dst[u] = src[perm[u]];
        }
        return r;
    }
}
