namespace Mistral.Merge.Moe;

/// <summary>
/// The two hooks through which MoE surgery uses the CPU forward pass (branch <c>inference</c>). Until that
/// branch is integrated they are null: commands that need them (moe-stats, moe-report, calibration-based
/// strategies) fail with a one-line error, and the tests that need them are skipped with a reason.
/// Integration: set them once at start-up (e.g. in the Inference assembly's module initializer).
/// </summary>
public static class MoeForwardPass
{
    /// <summary>Opens a Mixtral model folder as a router-logits source.</summary>
    public static Func<string, IRouterLogitsSource>? RouterLogits { get; set; }

    /// <summary>Opens a Mixtral model folder as a source of MoE block inputs on the given calibration token ids.</summary>
    public static Func<string, int[], IMoeCalibrationSource>? Calibration { get; set; }

    /// <summary>Perplexity of a model folder on token ids (ctx 256, stride 256 protocol).</summary>
    public static PerplexityEvaluator? Perplexity { get; set; }

    public const string Missing = "this needs the CPU forward pass, which this build does not include yet";

    public static Func<string, IRouterLogitsSource> RequireRouterLogits() => RouterLogits ?? throw new MergeException($"router statistics: {Missing}");
    public static PerplexityEvaluator RequirePerplexity() => Perplexity ?? throw new MergeException($"perplexity: {Missing}");
}
