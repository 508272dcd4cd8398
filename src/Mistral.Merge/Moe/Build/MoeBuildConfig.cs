using Mistral.Merge.Recipes;

namespace Mistral.Merge.Moe.Build;

/// <summary>How the router rows are made (mergekit-moe's <c>gate_mode</c>).</summary>
public enum GateMode
{
    /// <summary><c>hidden</c> / <c>hidden_last</c>: each layer's input hidden state at the prompt's last token.</summary>
    Hidden,
    /// <summary><c>hidden_avg</c>: each layer's input hidden state averaged over the prompt's tokens.</summary>
    HiddenAverage,
    /// <summary><c>cheap_embed</c>: the normalised sum of the prompts' token embeddings, the same row for every layer.</summary>
    CheapEmbed,
    /// <summary><c>random</c>: standard normal values.</summary>
    Random,
    /// <summary><c>uniform_random</c>: U(−1/√hidden, 1/√hidden), torch.nn.Linear's default initialisation.</summary>
    UniformRandom,
}

/// <summary>One <c>experts:</c> entry: the dense model whose MLP becomes the expert, and the prompts that route to it.</summary>
public sealed record MoeBuildExpert
{
    public required string SourceModel { get; init; }
    public required Mark SourceMark { get; init; }
    public Mark Mark { get; init; }
    public IReadOnlyList<string> PositivePrompts { get; init; } = [];
    public IReadOnlyList<string> NegativePrompts { get; init; } = [];
    /// <summary>Standard deviation of the normal noise added to the expert's MLP weights (mergekit's <c>noise_scale</c>).</summary>
    public double? NoiseScale { get; init; }
    /// <summary>Factor of the expert's down projection w2 (mergekit's <c>residual_scale</c>).</summary>
    public double? ResidualScale { get; init; }
}

/// <summary>A mergekit-moe YAML config (mergekit/moe/config.py <c>MoEMergeConfig</c>), with the position of every value for errors.</summary>
public sealed class MoeBuildConfig
{
    public string Path { get; init; } = "";
    public string Text { get; init; } = "";
    public string BaseModel { get; set; } = "";
    public Mark BaseMark { get; set; }
    public List<MoeBuildExpert> Experts { get; } = [];
    public Mark ExpertsMark { get; set; }
    public GateMode GateMode { get; set; } = GateMode.Hidden;
    public string GateModeName { get; set; } = "hidden";
    public Mark GateModeMark { get; set; }
    /// <summary>Output dtype (<c>dtype</c>; null: the base model's torch_dtype, else as stored).</summary>
    public DType? DType { get; set; }
    public int ExpertsPerToken { get; set; } = 2;
    public Mark ExpertsPerTokenMark { get; set; }

    public static string ModeName(GateMode m) => m switch
    {
        GateMode.Hidden => "hidden",
        GateMode.HiddenAverage => "hidden_avg",
        GateMode.CheapEmbed => "cheap_embed",
        GateMode.Random => "random",
        _ => "uniform_random",
    };

    /// <summary>Modes whose gates come from prompts.</summary>
    public bool NeedsPrompts => GateMode is GateMode.Hidden or GateMode.HiddenAverage or GateMode.CheapEmbed;
}
