namespace Mistral.Merge.Moe;

/// <summary>
/// What MoE surgery needs from the forward pass (branch <c>inference</c>): for a token sequence, the
/// router logits of every layer, float32 [tokens, experts] — exactly <c>hidden · gateᵀ</c> where
/// <c>hidden</c> is the post-attention RMSNorm output feeding the MoE block.
/// </summary>
public interface IRouterLogitsSource
{
    int Layers { get; }
    int Experts { get; }
    /// <summary>One window of token ids (with BOS where the protocol puts it) → per-layer logits [tokens × experts].</summary>
    float[][] RouterLogits(ReadOnlySpan<int> window);
}

/// <summary>
/// The MoE block inputs (post-attention RMSNorm output) of every layer for calibration tokens,
/// float32 [tokens, hidden] — needed by <c>group</c> and by pruning on output change.
/// </summary>
public interface IMoeCalibrationSource
{
    int Layers { get; }
    int Hidden { get; }
    float[] MoeInputs(int layer, out int tokens);
}

/// <summary>Perplexity of a model folder on token ids with the fixtures' protocol (ctx/stride windows).</summary>
public delegate double PerplexityEvaluator(string modelFolder, int[] tokenIds, CancellationToken token);

/// <summary>Router statistics over a token stream: non-overlapping windows, every position counted (the fixtures' protocol).</summary>
public static class RouterStatisticsRunner
{
    public static RoutingStatistics Measure(IRouterLogitsSource source, int topK, int[] tokenIds, int window = 256, CancellationToken token = default)
    {
        if (window < 1) throw new MergeException("routing statistics: window must be at least 1 token");
        var stats = new RoutingStatistics(source.Layers, source.Experts, topK);
        for (int start = 0; start < tokenIds.Length; start += window)
        {
            token.ThrowIfCancellationRequested();
            var w = tokenIds.AsSpan(start, Math.Min(window, tokenIds.Length - start));
            var logits = source.RouterLogits(w);
            if (logits.Length != source.Layers) throw new MergeException($"routing statistics: source gave {logits.Length} layers, expected {source.Layers}");
            for (int l = 0; l < logits.Length; l++)
            {
                if (logits[l].Length != w.Length * source.Experts)
                    throw new MergeException($"routing statistics: layer {l} gave {logits[l].Length} logits for {w.Length} tokens × {source.Experts} experts");
                stats.Add(l, logits[l]);
            }
        }
        return stats;
    }

    /// <summary>Routing statistics from calibration MoE inputs and the routers (logits = inputs · routerᵀ).</summary>
    public static RoutingStatistics FromInputs(IMoeCalibrationSource source, MixtralLayout model)
    {
        var stats = new RoutingStatistics(model.Layers, model.Experts, model.Config.NumExpertsPerTok);
        for (int l = 0; l < model.Layers; l++)
        {
            var x = source.MoeInputs(l, out int t);
            stats.Add(l, MoeBlock.RouterLogits(x, t, model.ReadRouter(l), model.Experts, model.Hidden));
        }
        return stats;
    }
}
