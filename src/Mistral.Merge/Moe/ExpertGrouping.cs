namespace Mistral.Merge.Moe;

/// <summary>
/// <c>group: true</c>: cluster a layer's experts by their mean output on calibration tokens and merge
/// each cluster. Clustering is agglomerative with average linkage on cosine distance between the mean
/// output vectors (deterministic; ties → the pair with the lower indices), until N clusters remain.
/// Each cluster's experts are averaged with their routing frequencies as weights (uniform when they are
/// all zero); its router row is the same frequency-weighted average of the members' router rows, so a
/// singleton keeps its row exactly and a merged expert is routed like its members' weighted consensus.
/// Clusters are ordered by their lowest member.
/// </summary>
public static class ExpertGrouping
{
    /// <summary>Mean output [hidden] of each expert over the tokens.</summary>
    public static double[][] MeanOutputs(float[][] expertOutputs, int tokens, int hidden)
    {
        var r = new double[expertOutputs.Length][];
        for (int e = 0; e < r.Length; e++)
        {
            r[e] = new double[hidden];
            for (int t = 0; t < tokens; t++)
                for (int i = 0; i < hidden; i++) r[e][i] += expertOutputs[e][t * hidden + i];
            for (int i = 0; i < hidden; i++) r[e][i] /= Math.Max(1, tokens);
        }
        return r;
    }

    public static List<int[]> Cluster(double[][] vectors, int clusters)
    {
        int n = vectors.Length;
        if (clusters < 1 || clusters > n) throw new MergeException($"cannot group {n} experts into {clusters}");
        var dist = new double[n, n];
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) dist[a, b] = CosineDistance(vectors[a], vectors[b]);
        var groups = Enumerable.Range(0, n).Select(i => new List<int> { i }).ToList();
        while (groups.Count > clusters)
        {
            int ba = -1, bb = -1; double best = double.PositiveInfinity;
            for (int a = 0; a < groups.Count; a++)
                for (int b = a + 1; b < groups.Count; b++)
                {
                    double s = 0;
                    foreach (var x in groups[a]) foreach (var y in groups[b]) s += dist[x, y];
                    s /= groups[a].Count * groups[b].Count;
                    if (s < best) { best = s; ba = a; bb = b; }
                }
            groups[ba].AddRange(groups[bb]);
            groups[ba].Sort();
            groups.RemoveAt(bb);
        }
        return groups.Select(g => g.ToArray()).OrderBy(g => g[0]).ToList();
    }

    private static double CosineDistance(double[] a, double[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
        if (na == 0 || nb == 0) return na == nb ? 0 : 1;
        return 1 - dot / Math.Sqrt(na * nb);
    }

    /// <summary>Frequency weights of the cluster members (uniform when all are zero).</summary>
    public static double[] MemberWeights(int[] members, ReadOnlySpan<double> frequency)
    {
        var w = new double[members.Length];
        double s = 0;
        for (int i = 0; i < w.Length; i++) { w[i] = frequency[members[i]]; s += w[i]; }
        if (!(s > 0)) Array.Fill(w, 1.0);
        return w;
    }

    public static ExpertWeights MergeCluster(IReadOnlyList<ExpertWeights> experts, int[] members, ReadOnlySpan<double> frequency)
    {
        if (members.Length == 1) return experts[members[0]];
        return MoeStrategies.WeightedMean(members.Select(m => experts[m]).ToArray(), MemberWeights(members, frequency), "group");
    }

    /// <summary>Router [E, hidden] → [clusters, hidden], each row the members' frequency-weighted mean (float64, rounded once).</summary>
    public static float[] MergeRouter(float[] router, int hidden, IReadOnlyList<int[]> clusters, ReadOnlySpan<double> frequency)
    {
        var r = new float[clusters.Count * hidden];
        for (int c = 0; c < clusters.Count; c++)
        {
            var w = WeightedSum.Normalize(MemberWeights(clusters[c], frequency), "group router");
            for (int i = 0; i < hidden; i++)
            {
                double acc = 0;
                for (int m = 0; m < clusters[c].Length; m++) acc += w[m] * router[clusters[c][m] * hidden + i];
                r[c * hidden + i] = (float)acc;
            }
        }
        return r;
    }
}
