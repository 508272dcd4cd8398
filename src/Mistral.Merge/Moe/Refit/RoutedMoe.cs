using Mistral.Merge.Inference;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Moe.Refit;

/// <summary>
/// The Mixtral block's output on block inputs x [tokens, hidden] (HF routing: <see cref="Routing.TopK"/>, each
/// expert run on the tokens routed to it, outputs summed with the renormalized weights), the refit's target; on the
/// way it can record each expert's routing share and the <c>select</c> init's neuron scores.
/// </summary>
public sealed class RoutedMoe(ExpertWeights[] experts, float[] router, int topK, int threads)
{
    public int Experts => experts.Length;

    /// <summary>Selection counts per expert over every <see cref="Output"/> call.</summary>
    public long[] Selected { get; } = new long[experts.Length];

    /// <summary>When set, Σ over tokens of routing weight · |h| per expert unit [expert·I + u] (the select score before ‖w2 column‖).</summary>
    public double[]? UnitScore { get; set; }

    public float[] Output(float[] x, int tokens)
    {
        int h = experts[0].Hidden, e = experts.Length;
        var logits = MoeBlock.RouterLogits(x, tokens, router, e, h, threads);
        var chosen = new int[tokens * topK];
        var weight = new float[tokens * topK];
        for (int t = 0; t < tokens; t++)
        {
            Routing.ThrowIfNotFinite(logits.AsSpan(t * e, e));
            Routing.TopK(logits.AsSpan(t * e, e), topK, chosen.AsSpan(t * topK, topK), weight.AsSpan(t * topK, topK));
        }
        var y = new float[(long)tokens * h];
        for (int ex = 0; ex < e; ex++)
        {
            var rows = new List<(int Token, float Weight)>();
            for (int t = 0; t < tokens; t++)
                for (int j = 0; j < topK; j++)
                    if (chosen[t * topK + j] == ex) rows.Add((t, weight[t * topK + j]));
            Selected[ex] += rows.Count;
            if (rows.Count == 0) continue;
            var xe = new float[(long)rows.Count * h];
            for (int r = 0; r < rows.Count; r++) x.AsSpan(rows[r].Token * h, h).CopyTo(xe.AsSpan(r * h, h));
            var hid = Hidden(experts[ex], xe, rows.Count, threads);
            int inter = experts[ex].Intermediate;
            if (UnitScore != null)
                for (int r = 0; r < rows.Count; r++)
                {
                    var hr = hid.AsSpan(r * inter, inter);
                    for (int u = 0; u < inter; u++) UnitScore[(long)ex * inter + u] += rows[r].Weight * Math.Abs(hr[u]);
                }
            var ye = new float[(long)rows.Count * h];
            SimilarityGemm.MultiplyAddNT(hid, experts[ex].W2, ye, rows.Count, h, inter, threads);
            for (int r = 0; r < rows.Count; r++) Ops.AddScaled(y.AsSpan(rows[r].Token * h, h), ye.AsSpan(r * h, h), rows[r].Weight);
        }
        return y;
    }

    /// <summary>silu(w1 x) ⊙ w3 x for every token → [tokens, intermediate].</summary>
    public static float[] Hidden(ExpertWeights w, float[] x, int tokens, int threads) =>
        Hidden(w.W1, w.W3, w.Hidden, w.Intermediate, x, tokens, threads);

    /// <summary><see cref="MoeBlock.Hidden"/> on w1/w3 [n, h] held anywhere (a mapped <see cref="FittedLayer"/>).</summary>
    public static float[] Hidden(ReadOnlySpan<float> w1, ReadOnlySpan<float> w3, int h, int n, float[] x, int tokens, int threads) =>
        MoeBlock.Hidden(w1, w3, h, n, x, tokens, threads);
}
