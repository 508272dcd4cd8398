using System.Globalization;

namespace Mistral.Merge.Moe.Surgery;

/// <summary>Where a surgery's routing frequencies (and MoE block inputs) come from: the parameters both surgeries share.</summary>
public static class RoutingParams
{
    public static readonly FileParam Calibration = new("calibration", "Text file(s) to measure routing on with the built-in forward pass (and to capture the MoE block inputs); several, comma-separated, share the token limit equally");
    public static readonly IntParam CalibrationTokens = new("calibration_tokens", "Token limit of the calibration text (BOS + text, cut)", Min: 2, Default: 20000);
    public static readonly FileParam Frequencies = new("frequencies", "JSON with selection_frequency [layer][expert] (the output of moe-stats --json)");
    public static readonly IntParam Ctx = new("ctx", "Calibration: tokens per window of the forward pass (as perplexity's --ctx; default the model's max_position_embeddings, at most 2048)", Min: 2);
    public static readonly IntParam Stride = new("stride", "Calibration: distance between window starts (default: ctx, non-overlapping; a token is routed once, in the first window that holds it)", Min: 1);

    public static readonly SurgeryParam[] All = [Calibration, CalibrationTokens, Frequencies, Ctx, Stride];

    /// <summary>Reads and checks the shared parameters (files exist, limits in range, no contradictions).</summary>
    public static RoutingSource Read(SurgeryArgs a, MixtralLayout m)
    {
        if (a.Has(Calibration) && a.Has(Frequencies))
            a.Add(Frequencies, $"give either {a.Named(Calibration)} (a text to measure routing on) or {a.Named(Frequencies)} (a moe-stats --json file), not both");
        int tokens = a.Get(CalibrationTokens, int.MaxValue, "tokens of calibration text, with BOS") ?? CalibrationTokens.Default!.Value;
        int ctx = a.Get(Ctx, int.MaxValue, "tokens per calibration window") ?? MoeForwardPass.DefaultContext(m.Config);
        int stride = a.Get(Stride, ctx, "at most ctx") ?? ctx;
        foreach (var p in new[] { CalibrationTokens, Ctx, Stride })
            if (a.Has(p) && !a.Has(Calibration)) a.Add(p, $"{a.Param(p)} needs {a.Named(Calibration)}");
        return new RoutingSource(a.GetFiles(Calibration), a.Get(Frequencies), tokens, ctx, stride);
    }
}

/// <summary>The routing source of one surgery run: a calibration text (with its token limit and windows) or a frequency file.</summary>
public sealed record RoutingSource(string[]? Texts, string? FrequencyFile, int Tokens, int Ctx, int Stride)
{
    public bool Given => Texts != null || FrequencyFile != null;
    private string? Text => Texts == null ? null : string.Join(" + ", Texts);

    /// <summary>For the dry-run plan.</summary>
    public string Describe() =>
        FrequencyFile != null ? $"frequencies from {FrequencyFile}"
        : Text != null ? $"measured at run time by the forward pass on {Text} (first {Tokens} tokens with BOS, windows of {Ctx}{(Stride != Ctx ? $", stride {Stride}" : "")})"
        : "none";

    /// <summary>The frequency table: from the file, else measured on the calibration text, else null.</summary>
    public double[][]? Frequencies(MixtralLayout m, string model, SurgeryRunOptions o) =>
        FrequencyFile != null ? FrequencyTable.Load(FrequencyFile, m.Layers, m.Experts)
        : Text != null ? MoeForwardPass.Routing(model, Ids(model), Ctx, Stride, o.Threads, token: o.Cancellation).SelectionFrequencyTable()
        : null;

    /// <summary>The MoE block inputs on the calibration text (with the same pass's routing).</summary>
    public MoeCalibration Calibrate(string model, SurgeryRunOptions o) =>
        MoeForwardPass.Calibrate(model, Ids(model), Ctx, Stride, o.Threads, token: o.Cancellation);

    /// <summary>
    /// The calibration token ids: [BOS] + text of each file, the limit shared equally (the first file takes the
    /// remainder), concatenated in the order given (one file: exactly <see cref="MoeForwardPass.Tokens"/>).
    /// </summary>
    public int[] Ids(string model)
    {
        var files = Texts!;
        var ids = new List<int>();
        for (int i = 0; i < files.Length; i++)
            ids.AddRange(MoeForwardPass.Tokens(model, files[i], Tokens / files.Length + (i == 0 ? Tokens % files.Length : 0)));
        return [.. ids];
    }
}

/// <summary>Lines both surgeries' dry-run plans share.</summary>
internal static class SurgeryText
{
    public static string Source(MixtralLayout m) =>
        $"{m.Folder.Path} (MixtralForCausalLM, {m.Layers} layers, {m.Experts} experts × intermediate {m.Intermediate}, top-{m.Config.NumExpertsPerTok}, hidden {m.Hidden}, {m.ExpertDType})";

    public static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
}
