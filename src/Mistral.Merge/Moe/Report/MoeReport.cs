using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Mistral.Merge.Models;

namespace Mistral.Merge.Moe.Report;

public sealed record ReportOptions
{
    public required string Model { get; init; }
    public required string Text { get; init; }
    /// <summary>Routing frequencies / calibration inputs are measured on this text (default: <see cref="Text"/>); comma-separated files share the token limit (as a recipe's calibration).</summary>
    public string? Calibration { get; init; }
    public required IReadOnlyList<ReportStrategy> Strategies { get; init; }
    public int MaxTokens { get; init; } = 20000;
    public int CalibrationTokens { get; init; } = 20000;
    public int Ctx { get; init; } = MoeForwardPass.Window;
    /// <summary>Distance between perplexity windows (--stride); 0 = Ctx (non-overlapping).</summary>
    public int Stride { get; init; }
    public required string CacheDir { get; init; }
    public int Threads { get; init; }
    public Action<string>? Log { get; init; }
}

public sealed record ReportRow(string Strategy, string Parameters, long Size, double Perplexity, double MeanNll, int Tokens, bool Cached);

public sealed record ReportResult(ReportRow Original, IReadOnlyList<ReportRow> Rows, int Computed);

/// <summary>
/// <c>moe-report</c>: runs each strategy on a Mixtral, evaluates the perplexity of every result and of the
/// original MoE (ctx = stride windows, <see cref="MoeForwardPass"/>), caching each figure on disk so a rerun
/// only computes what is new. Converted checkpoints are written to a temp folder under the cache and
/// deleted as soon as they are measured.
/// </summary>
public static class MoeReport
{
    public static ReportResult Run(ReportOptions o, CancellationToken token = default)
    {
        int layers, experts, perTok;
        long size;
        using (var f = ModelFolder.Open(o.Model))
        {
            var m = new MixtralLayout(f);
            layers = m.Layers; experts = m.Experts; perTok = m.Config.NumExpertsPerTok; size = f.ParameterCount;
        }
        if (o.Ctx < 2) throw new MergeException($"--ctx must be at least 2, got {o.Ctx}");
        string calPath = o.Calibration ?? o.Text;
        var textKey = ReportCache.Hash("text", ReportCache.TextHash(RequireFile(o.Text)), o.MaxTokens.ToString(CultureInfo.InvariantCulture), o.Ctx.ToString(CultureInfo.InvariantCulture)
            + (o.Stride is 0 || o.Stride == o.Ctx ? "" : "/" + o.Stride.ToString(CultureInfo.InvariantCulture))); // non-overlapping: the key of earlier reports
        var calFiles = calPath.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var calKey = ReportCache.Hash("calibration", string.Join("+", calFiles.Select(f => ReportCache.TextHash(RequireFile(f)))), o.CalibrationTokens.ToString(CultureInfo.InvariantCulture), MoeForwardPass.Window.ToString(CultureInfo.InvariantCulture));
        var cache = new ReportCache(o.CacheDir, o.Model);
        int computed = 0;
        int[]? ids = null;
        int[] Ids() => ids ??= MoeForwardPass.Tokens(o.Model, o.Text, o.MaxTokens);

        // The original MoE (its evaluation pass also gives the routing of the text, reused when it is the calibration).
        var originalKey = ReportCache.Hash("original", textKey);
        double[][]? freq = null;
        var originalRow = Cached(cache, "ppl", originalKey, $"original (top-{perTok} of {experts})");
        if (originalRow == null)
        {
            o.Log?.Invoke("original MoE: evaluating");
            var ev = MoeForwardPass.Evaluate(o.Model, Ids(), o.Ctx, o.Stride is 0 ? o.Ctx : o.Stride, o.Threads, token);
            originalRow = Store(cache, "ppl", originalKey, $"original (top-{perTok} of {experts})", $"{experts} experts, top-{perTok} routing", size, ev.Perplexity);
            computed++;
            if (calPath == o.Text && o.CalibrationTokens == o.MaxTokens && o.Ctx == MoeForwardPass.Window && (o.Stride is 0 || o.Stride == o.Ctx) && cache.TryRead("routing", calKey) == null)
            {
                freq = ev.Routing!.SelectionFrequencyTable();
                StoreFrequencies(cache, calKey, freq);
            }
        }

        MoeCalibration? cal = null;
        double[][] Frequencies()
        {
            if (freq != null) return freq;
            if (cache.TryRead("routing", calKey) is { } j && j["selection_frequency"] is JsonArray rows)
                return freq = FrequencyTable.Parse(rows, layers, experts, cache.PathOf("routing", calKey));
            o.Log?.Invoke($"routing frequencies: measuring on {calPath}");
            freq = MoeForwardPass.Routing(o.Model, CalibrationIds(), threads: o.Threads, token: token).SelectionFrequencyTable();
            computed++;
            StoreFrequencies(cache, calKey, freq);
            return freq;
        }
        int[]? calIds = null;
        int[] CalibrationIds() => calIds ??= new Surgery.RoutingSource(calFiles, null, o.CalibrationTokens, MoeForwardPass.Window, MoeForwardPass.Window).Ids(o.Model);
        MoeCalibration Calibration() => cal ??= MoeForwardPass.Calibrate(o.Model, CalibrationIds(), threads: o.Threads, token: token);

        var rows = new List<ReportRow>();
        string? tmp = null;
        try
        {
            foreach (var s in o.Strategies)
            {
                token.ThrowIfCancellationRequested();
                var key = ReportCache.Hash("strategy", s.Text, textKey, s.NeedsFrequencies || s.NeedsCalibrationText ? calKey : "");
                var row = Cached(cache, "ppl", key, s.Text);
                if (row == null)
                {
                    o.Log?.Invoke($"{s.Text}: converting and evaluating");
                    tmp ??= cache.NewTempDir();
                    var dst = Path.Combine(tmp, $"s{rows.Count}");
                    var f = s.NeedsFrequencies ? Frequencies() : null;
                    var r = s.IsPrune ? MoePrune.Run(o.Model, dst, s.PruneOptions(f!, s.NeedsInputs ? Calibration() : null) with { CopyTokenizer = true }, token)
                        : MoeToDense.Convert(o.Model, dst, s.DenseOptions(layers, f) with
                        {
                            Threads = o.Threads,
                            Refit = s.NeedsCalibrationText ? new Refit.RefitOptions { Init = s.Init, RefineSteps = s.N, Calibration = CalibrationIds(), Log = o.Log } : null,
                        }, token);
                    var ppl = MoeForwardPass.Perplexity(dst, Ids(), o.Ctx, o.Stride is 0 ? o.Ctx : o.Stride, o.Threads, token);
                    Directory.Delete(dst, true);
                    row = Store(cache, "ppl", key, s.Text, s.Describe(experts), r.Parameters, ppl);
                    computed++;
                }
                rows.Add(row);
            }
        }
        finally
        {
            cal?.Dispose();
            if (tmp != null && Directory.Exists(tmp)) Directory.Delete(tmp, true);
        }
        return new ReportResult(originalRow, rows, computed);
    }

    private static string RequireFile(string path) => Path.Exists(path) ? path : throw new MergeException($"{path}: text file not found");

    private static void StoreFrequencies(ReportCache cache, string key, double[][] freq)
        => cache.Write("routing", key, new JsonObject { ["selection_frequency"] = new JsonArray(freq.Select(r => (JsonNode)new JsonArray(r.Select(v => (JsonNode)v).ToArray())).ToArray()) });

    private static ReportRow? Cached(ReportCache cache, string kind, string key, string strategy)
    {
        var j = cache.TryRead(kind, key);
        if (j == null) return null;
        try
        {
            return new ReportRow(strategy, j["parameters"]!.GetValue<string>(), j["size"]!.GetValue<long>(), j["perplexity"]!.GetValue<double>(),
                j["mean_nll"]!.GetValue<double>(), j["tokens"]!.GetValue<int>(), Cached: true);
        }
        catch (Exception e) when (e is InvalidOperationException or NullReferenceException or FormatException) { return null; }
    }

    private static ReportRow Store(ReportCache cache, string kind, string key, string strategy, string parameters, long size, Inference.PerplexityResult r)
    {
        cache.Write(kind, key, new JsonObject
        {
            ["strategy"] = strategy, ["parameters"] = parameters, ["size"] = size,
            ["perplexity"] = r.Perplexity, ["mean_nll"] = r.MeanNll, ["tokens"] = r.Tokens,
        });
        return new ReportRow(strategy, parameters, size, r.Perplexity, r.MeanNll, r.Tokens, Cached: false);
    }

    public static string Markdown(ReportResult r, string model, string text)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(ci, $"MoE report: {model} on {text} ({r.Original.Tokens.ToString("N0", ci)} scored tokens); {r.Computed} computed, {r.Rows.Count(x => x.Cached) + (r.Original.Cached ? 1 : 0)} cached\n\n");
        sb.Append("| strategy | parameters | size (params) | PPL | ΔPPL | |\n|---|---|---:|---:|---:|---|\n");
        void Row(ReportRow x, string delta) =>
            sb.Append(ci, $"| {x.Strategy} | {x.Parameters} | {x.Size.ToString("N0", ci)} | {x.Perplexity.ToString("0.0000", ci)} | {delta} | {(x.Cached ? "cached" : "computed")} |\n");
        Row(r.Original, "—");
        foreach (var x in r.Rows) Row(x, (x.Perplexity - r.Original.Perplexity).ToString("+0.0000;-0.0000;0.0000", ci));
        return sb.ToString();
    }

    public static JsonObject Json(ReportResult r, string model, string text, string? calibration)
    {
        JsonObject Row(ReportRow x) => new()
        {
            ["strategy"] = x.Strategy, ["parameters"] = x.Parameters, ["size"] = x.Size, ["perplexity"] = x.Perplexity,
            ["mean_nll"] = x.MeanNll, ["delta_perplexity"] = x.Perplexity - r.Original.Perplexity, ["tokens"] = x.Tokens, ["cached"] = x.Cached,
        };
        return new JsonObject
        {
            ["model"] = model, ["text"] = text, ["calibration"] = calibration ?? text, ["computed"] = r.Computed,
            ["original"] = Row(r.Original), ["strategies"] = new JsonArray(r.Rows.Select(x => (JsonNode)Row(x)).ToArray()),
        };
    }
}
