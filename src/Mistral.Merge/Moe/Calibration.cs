namespace Mistral.Merge.Moe;

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

/// <summary>Routing statistics from calibration MoE inputs and the routers (logits = inputs · routerᵀ).</summary>
public static class RouterStatisticsRunner
{
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
