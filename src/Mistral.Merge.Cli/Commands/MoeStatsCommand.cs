using System.CommandLine;
using System.Globalization;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>moe-stats MODEL --text FILE</c>: per-layer routing statistics (table, --json, --plot SVG heatmap).</summary>
public static class MoeStatsCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Mixtral model folder; or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var text = new Option<string>("--text") { Description = "text file to route", Required = true };
        var maxTokens = new Option<int>("--max-tokens") { Description = "token limit (BOS + text, cut)", DefaultValueFactory = _ => 20000 }.AtLeast(2);
        var ctx = MoeOptions.Ctx();
        var stride = MoeOptions.Stride();
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json("model, text, max_tokens, ctx, stride, selection_frequency, mean_weight, co_selection, ...");
        var plot = new Option<string?>("--plot") { Description = "write an SVG heatmap (layers × experts) of the selection frequency" };
        var cmd = new Command("moe-stats", "Router statistics of a Mixtral model on a text: expert selection frequency, mean routing weight, co-selection")
        { model, text, maxTokens, ctx, stride, threads, json, plot };
        return cmd.CheckRoutingWindows(ctx, stride).WithAction((p, token) =>
        {
            string m = ModelArguments.Resolve(p, model);
            CommonOptions.CheckOutputFile(p.GetValue(plot), "--plot"); // before the routing pass, not after it
            int c;
            using (var f = ModelFolder.Open(m)) c = p.GetValue(ctx) ?? MoeForwardPass.DefaultContext(new MixtralLayout(f).Config); // one-line error for a non-Mixtral model
            if (p.GetValue(stride) is { } st && st > c) throw new MergeException($"--stride must be between 1 and --ctx ({c}, the model's context), got {st}");
            var ids = MoeForwardPass.Tokens(m, p.GetValue(text)!, p.GetValue(maxTokens));
            var w = new Windows(c, p.GetValue(stride) ?? c);
            RoutingStatistics stats;
            using (var progress = Progress.For(p, "routing", "tokens"))
            {
                stats = MoeForwardPass.Routing(m, ids, w.Ctx, w.Stride, p.GetValue(threads), progress.Report, token);
                progress.Complete();
            }
            Write(stats, m, p.GetValue(text)!, p.GetValue(maxTokens), p.GetValue(json), p.GetValue(plot), p.InvocationConfiguration.Output, w);
            return Cli.Ok;
        });
    }

    /// <summary>The forward pass's windows, as printed.</summary>
    internal readonly record struct Windows(int Ctx, int Stride);

    /// <summary>Prints the statistics and writes the heatmap (separate from routing so it can be tested on its own).</summary>
    internal static void Write(RoutingStatistics s, string model, string text, int maxTokens, bool json, string? plot, TextWriter o, Windows? windows = null)
    {
        var w = windows ?? new Windows(MoeForwardPass.Window, MoeForwardPass.Window);
        if (plot != null)
        {
            var svg = RoutingHeatmap.Render(s.SelectionFrequencyTable(), $"{Path.GetFileName(Path.GetFullPath(model).TrimEnd('/'))} on {Path.GetFileName(text)} ({s.Tokens(0):N0} tokens, top-{s.TopK})");
            try { File.WriteAllText(plot, svg); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or DirectoryNotFoundException) { throw new MergeException($"{plot}: cannot write ({e.Message})"); }
        }
        if (json)
        {
            var j = s.ToJson();
            j["version"] = CommonOptions.Version; j["model"] = model; j["text"] = text; j["max_tokens"] = maxTokens; j["ctx"] = w.Ctx; j["stride"] = w.Stride;
            o.WriteLine(IO.JsonText.Write(j));
            return;
        }
        var ci = CultureInfo.InvariantCulture;
        o.WriteLine($"routing of {model} on {text}: {s.Tokens(0).ToString("N0", ci)} tokens, top-{s.TopK} of {s.Experts} experts (ctx {w.Ctx}, stride {w.Stride})");
        o.WriteLine("selection frequency (share of top-k selections; uniform = " + (1.0 / s.Experts).ToString("0.###", ci) + ")");
        o.WriteLine("layer " + string.Concat(Enumerable.Range(0, s.Experts).Select(e => $"{"e" + e,8}")));
        for (int l = 0; l < s.Layers; l++)
            o.WriteLine($"{l,5} " + string.Concat(Enumerable.Range(0, s.Experts).Select(e => s.SelectionFrequency(l, e).ToString("0.0000", ci).PadLeft(8))));
        o.WriteLine("mean routing weight when selected");
        for (int l = 0; l < s.Layers; l++)
            o.WriteLine($"{l,5} " + string.Concat(Enumerable.Range(0, s.Experts).Select(e => s.MeanWeightWhenSelected(l, e).ToString("0.0000", ci).PadLeft(8))));
        o.WriteLine("most frequent pair per layer (tokens routed to both)");
        for (int l = 0; l < s.Layers; l++)
        {
            int ba = 0, bb = Math.Min(1, s.Experts - 1); long best = -1;
            for (int a = 0; a < s.Experts; a++) for (int b = a + 1; b < s.Experts; b++) if (s.CoSelected(l, a, b) > best) { best = s.CoSelected(l, a, b); ba = a; bb = b; }
            o.WriteLine($"{l,5}  e{ba}+e{bb}: {Math.Max(0, best).ToString("N0", ci)}");
        }
        if (plot != null) o.WriteLine($"heatmap: {plot}");
    }
}
