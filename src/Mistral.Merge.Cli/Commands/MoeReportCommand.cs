using System.CommandLine;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Report;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>moe-report MIXTRAL --text FILE</c>: perplexity of each MoE-surgery strategy vs the original, cached on disk.</summary>
public static class MoeReportCommand
{
    public const string DefaultStrategies = "expert:0,mean,frequency,aligned_mean,concat";

    public static Command Create()
    {
        var model = new Argument<string>("MIXTRAL") { Description = "Mixtral model folder; or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var text = new Option<string>("--text") { Description = "text file the perplexity is measured on", Required = true };
        var calibration = new Option<string?>("--calibration") { Description = "text for routing frequencies / calibration inputs (default: --text)" };
        var strategies = new Option<string>("--strategies")
        {
            Description = "comma-separated: expert:N, mean, frequency, aligned_mean[:weighted], concat[:K], prune:N[:output_change] (the criterion as recipes and moe-convert name it), group:N",
            DefaultValueFactory = _ => DefaultStrategies,
        };
        var json = CommonOptions.Json("a row per strategy; instead of the markdown table");
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens of --text (BOS + text, cut)", DefaultValueFactory = _ => 20000 }.AtLeast(2);
        var calTokens = new Option<int>("--calibration-tokens") { Description = "tokens of --calibration", DefaultValueFactory = _ => 20000 }.AtLeast(2);
        var ctx = new Option<int>("--ctx") { Description = "Tokens per perplexity window", DefaultValueFactory = _ => MoeForwardPass.Window }.AtLeast(2);
        var stride = new Option<int?>("--stride") { Description = "Distance between window starts (default: --ctx, non-overlapping)" };
        var cacheDir = new Option<string?>("--cache") { Description = "cache folder (default: $XDG_CACHE_HOME or ~/.cache, /mistral-merge/moe-report)" };
        var threads = CommonOptions.Threads();
        var cmd = new Command("moe-report", "Collapse/prune a Mixtral with several strategies and compare their perplexity with the original (markdown table or JSON); results cached")
        { model, text, calibration, strategies, json, maxTokens, calTokens, ctx, stride, cacheDir, threads };
        cmd.CheckWindows(ctx, stride);
        return cmd.WithAction((p, token) =>
        {
            string m = ModelArguments.Resolve(p, model);
            int experts;
            using (var f = ModelFolder.Open(m)) experts = new MixtralLayout(f).Experts;
            int mt = p.GetValue(maxTokens), ct = p.GetValue(calTokens), th = p.GetValue(threads);
            var err = p.InvocationConfiguration.Error;
            var o = new ReportOptions
            {
                Model = m, Text = p.GetValue(text)!, Calibration = p.GetValue(calibration),
                Strategies = ReportStrategy.ParseList(p.GetValue(strategies)!, experts),
                MaxTokens = mt, CalibrationTokens = ct, Ctx = p.GetValue(ctx), Stride = p.GetValue(stride) ?? 0, Threads = th,
                CacheDir = p.GetValue(cacheDir) ?? ReportCache.DefaultRoot(), Log = CommonOptions.IsQuiet(p) ? _ => { } : s => err.WriteLine("moe-report: " + s),
            };
            var r = MoeReport.Run(o, token);
            var output = p.InvocationConfiguration.Output;
            if (p.GetValue(json))
            {
                var doc = MoeReport.Json(r, m, o.Text, o.Calibration);
                doc["version"] = CommonOptions.Version;
                output.WriteLine(IO.JsonText.Write(doc));
            }
            else output.Write(MoeReport.Markdown(r, m, o.Text));
            return Cli.Ok;
        });
    }
}
