namespace Mistral.Merge.Moe.Refit;

/// <summary>How <c>strategy: refit</c> initializes the dense w1/w3 before w2 is solved.</summary>
public enum RefitInit { Mean, Frequency, AlignedMean, Select }

/// <summary>
/// <c>strategy: refit</c> of moe_to_dense: a dense SwiGLU MLP whose w2 (and, with <see cref="RefineSteps"/>, w1/w3) is
/// fitted by ridge least squares to the MoE block's output on calibration activations, layer by layer.
/// </summary>
public sealed record RefitOptions
{
    public RefitInit Init { get; init; } = RefitInit.Mean;
    /// <summary>Dense intermediate size (null: the experts'); other than the experts' needs <see cref="RefitInit.Select"/>.</summary>
    public int? IntermediateSize { get; init; }
    /// <summary>λ relative to trace(G)/N (the mean eigenvalue of the Gram matrix); null: <see cref="RidgeRule.AutoFactor"/>.</summary>
    public double? Ridge { get; init; }
    /// <summary>Refinement steps of w1/w3 (gradient steps on the reconstruction loss with line search, w2 re-solved after each).</summary>
    public int RefineSteps { get; init; }
    /// <summary>Calibration token ids ([BOS] + text of each calibration file, concatenated).</summary>
    public required int[] Calibration { get; init; }
    public int Ctx { get; init; } = MoeForwardPass.Window;
    public int Stride { get; init; }
    /// <summary>Tokens per streamed chunk (Gram / gradient accumulation).</summary>
    public int Chunk { get; init; } = 512;
    public Action<string>? Log { get; init; }

    public static string InitName(RefitInit i) => i switch
    {
        RefitInit.Mean => "mean",
        RefitInit.Frequency => "frequency",
        RefitInit.AlignedMean => "aligned_mean",
        _ => "select",
    };

    public static RefitInit ParseInit(string s) => s switch
    {
        "mean" => RefitInit.Mean,
        "frequency" => RefitInit.Frequency,
        "aligned_mean" => RefitInit.AlignedMean,
        "select" => RefitInit.Select,
        _ => throw new MergeException($"refit: unknown init '{s}' (expected mean, frequency, aligned_mean or select)"),
    };
}

/// <summary>
/// The ridge rule: λ = factor · trace(G)/N, G = Σ h hᵀ the N×N Gram matrix of the dense hidden activations, so the
/// regularization is the same fraction of the mean eigenvalue whatever the scale of the activations and the
/// token count. <c>ridge: auto</c> is factor <see cref="AutoFactor"/>.
/// </summary>
public static class RidgeRule
{
    public const double AutoFactor = 1e-3;

    public static double Lambda(double[] gram, int n, double factor)
    {
        double trace = 0;
        for (int i = 0; i < n; i++) trace += gram[(long)i * n + i];
        return factor * trace / n;
    }
}
