using System.CommandLine;
using System.Globalization;
using Mistral.Merge.Cuda;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Cli.Commands;

/// <summary>Options and helpers shared by perplexity, generate and compare.</summary>
internal static class EvalCommon
{
    public static Option<string> Device() => new Option<string>("--device") { Description = DeviceSelector.OptionDescription, DefaultValueFactory = _ => "auto" }
        .OneOf(DeviceSelector.Values, v => CheckDevice(v));

    /// <summary>--max-tokens: the first N tokens (with BOS) of the text; 0 = all.</summary>
    public static Option<int> MaxTokens(string description) =>
        new Option<int>("--max-tokens") { Description = description, DefaultValueFactory = _ => 0 }.AtLeast(0);

    public const int DefaultCtx = 512;

    public static Option<int> Ctx() => new Option<int>("--ctx") { Description = "Tokens per window", DefaultValueFactory = _ => DefaultCtx }.AtLeast(2);

    /// <summary>--ctx ≥ 2 and 1 ≤ --stride ≤ --ctx, checked while parsing (a command validator sees only the options given).</summary>
    public static Command CheckWindows(this Command cmd, Option<int> ctx, Option<int?> stride) => cmd.Check(r =>
    {
        int c = r.GetResult(ctx) == null ? DefaultCtx : r.GetValue(ctx);
        Perplexity.Windows(2, c, r.GetValue(stride) ?? c);
    });

    /// <summary>--weights: auto (as stored) or q8_0 (the projections quantized to ggml's Q8_0 at load, CPU).</summary>
    public static Option<string> Weights(string description) => new Option<string>("--weights") { Description = description, DefaultValueFactory = _ => "auto" }
        .OneOf(WeightFormats.Names, v => WeightFormats.Parse(v));

    /// <summary>The --weights value; q8_0 runs on the CPU, so it is refused with --device cuda or --offload before any model is read.</summary>
    public static WeightFormat WeightsFor(string? weights, string device, bool offload)
    {
        var w = WeightFormats.Parse(weights ?? "auto");
        if (w == WeightFormat.Q8_0 && device is "cuda" or "gpu") throw new MergeException("--weights q8_0 runs on the CPU; use --device cpu or auto");
        if (w == WeightFormat.Q8_0 && offload) throw new MergeException("--offload streams layers to a GPU; --weights q8_0 runs on the CPU");
        return w;
    }

    public static Option<bool> Offload() => new("--offload")
    {
        Description = "With CUDA: keep two layers on the GPU and stream the others in, overlapped with compute (models larger than GPU memory)",
    };

    /// <summary>The --device value in lower case; an unknown one is a usage error (the option's validator).</summary>
    public static string CheckDevice(string? device)
    {
        string v = (device ?? "auto").Trim().ToLowerInvariant();
        if (v is not ("auto" or "cpu" or "cuda" or "gpu" or ""))
            throw new MergeException($"--device {device}: unknown device (expected one of: {string.Join(", ", DeviceSelector.Values)})");
        return v;
    }

    /// <summary>The backend for --device: the CPU one exactly as before, or CUDA (auto: when usable).</summary>
    public static IBackend Backend(TransformerModel model, string device, int threads, bool offload) =>
        Backends.Create(model, device, threads, offload);

    public static string F(double v, string format = "0.0000") => v.ToString(format, CultureInfo.InvariantCulture);
}
