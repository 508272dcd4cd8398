using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Cli.Commands;

/// <summary>
/// <c>moe-convert MIXTRAL OUT</c>: Mixtral → dense Mistral (<c>--strategy</c>) or, with <c>--prune N</c>,
/// Mixtral with N experts per layer. Routing frequencies come from <c>--frequencies FILE</c> (moe-stats --json)
/// or are measured on <c>--calibration TEXT</c> (measured with the built-in forward pass).
/// </summary>
public static class MoeConvertCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MIXTRAL") { Description = "Mixtral model folder" };
        var output = new Argument<string>("OUT") { Description = "Output folder" };
        var strategy = new Option<string>("--strategy") { Description = "How the experts become one MLP", DefaultValueFactory = _ => "mean" }
            .OneOf(["expert", "mean", "frequency", "aligned_mean", "concat"], v => MoeToDense.ParseStrategy(v, "--strategy"));
        var expert = new Option<string?>("--expert") { Description = "expert strategy: one index, or one per layer separated by commas" };
        var frequencies = new Option<string?>("--frequencies") { Description = "JSON with selection_frequency [layer][expert] (the output of moe-stats --json)" };
        var calibration = new Option<string?>("--calibration") { Description = "text file to measure routing frequencies on (measured with the built-in forward pass)" };
        var calTokens = new Option<int>("--calibration-tokens") { Description = "token limit for --calibration", DefaultValueFactory = _ => 20000 }.AtLeast(2);
        var topK = new Option<int?>("--top-k") { Description = "concat: keep the K most frequent experts (default all)" };
        var weighted = new Option<bool>("--weighted") { Description = "aligned_mean: weight by routing frequency" };
        var reference = new Option<int?>("--reference") { Description = "aligned_mean: reference expert (default the most frequent, else 0)" };
        var prune = new Option<int?>("--prune") { Description = "keep N experts per layer (Mixtral output) instead of converting to dense" };
        var select = new Option<string>("--select") { Description = "--prune: choose experts by 'frequency' or 'output' (least change of the block output; needs --calibration)", DefaultValueFactory = _ => "frequency" }
            .OneOf("frequency", "output");
        var group = new Option<bool>("--group") { Description = "--prune: merge clusters of similar experts instead of dropping (needs --calibration)" };
        var outDtype = new Option<string?>("--out-dtype") { Description = "Output dtype (default: as stored)" }
            .OneOf(CommonOptions.DTypes, v => { if (v != null) DTypes.ParseUser(v, "--out-dtype"); });
        var force = new Option<bool>("--force") { Description = "replace a non-empty output folder" };
        var json = CommonOptions.Json("model, out, strategy or prune, parameters, layer_notes");
        var cmd = new Command("moe-convert", "Collapse a Mixtral's experts into a dense Mistral, or prune/group its experts")
        { model, output, strategy, expert, frequencies, calibration, calTokens, topK, weighted, reference, prune, select, group, outDtype, force, json };
        return cmd.WithAction((p, token) =>
        {
            string src = p.GetValue(model)!, dst = p.GetValue(output)!;
            DType? dt = p.GetValue(outDtype) is { } s ? DTypes.ParseUser(s, "--out-dtype") : null;
            var writer = new WriterOptions { Force = p.GetValue(force) };
            int layers, experts;
            using (var f = ModelFolder.Open(src)) { var m = new MixtralLayout(f); layers = m.Layers; experts = m.Experts; }
            double[][]? freq = null;
            if (p.GetValue(frequencies) is { } ff) freq = FrequencyTable.Load(ff, layers, experts);
            else if (p.GetValue(calibration) is { } cal && p.GetValue(prune) == null) freq = MeasureFrequencies(p, src, cal, p.GetValue(calTokens), token);
            var o = p.InvocationConfiguration.Output;
            bool Json(string summary, long parameters, IEnumerable<string> notes, JsonObject how)
            {
                if (!p.GetValue(json)) return false;
                how["version"] = CommonOptions.Version;
                how["model"] = src;
                how["out"] = dst;
                how["summary"] = summary;
                how["parameters"] = parameters;
                how["layer_notes"] = new JsonArray([.. notes.Select(n => (JsonNode)n)]);
                CommonOptions.Print(p, how);
                return true;
            }
            if (p.GetValue(prune) is { } n)
            {
                MoeCalibration? calSource = null;
                string sel = p.GetValue(select)!.ToLowerInvariant();
                if (p.GetValue(group) || sel == "output")
                {
                    var cal = p.GetValue(calibration) ?? throw new MergeException("--group and --select output need --calibration TEXT");
                    MoeCalibration calibrated;
                    using (var progress = Progress.For(p, "calibration", "tokens"))
                    {
                        calibrated = MoeForwardPass.Calibrate(src, MoeForwardPass.Tokens(src, cal, p.GetValue(calTokens)), progress: progress.Report, token: token);
                        progress.Complete();
                    }
                    calSource = calibrated;
                    freq ??= calibrated.Routing.SelectionFrequencyTable();
                }
                else if (freq == null && p.GetValue(calibration) is { } cal2) freq = MeasureFrequencies(p, src, cal2, p.GetValue(calTokens), token);
                MoeSurgeryResult r;
                using (calSource)
                using (var progress = Progress.For(p, "moe-convert", "layers"))
                {
                    r = MoePrune.Run(src, dst, new MoePruneOptions
                    {
                        Progress = progress.Report,
                        NumExperts = n, Group = p.GetValue(group), Selection = sel == "output" ? PruneSelection.OutputChange : PruneSelection.Frequency,
                        Frequencies = freq, Calibration = calSource, OutDType = dt, Writer = writer,
                    }, token);
                    progress.Complete();
                }
                var pruned = $"wrote {dst}: Mixtral with {n} experts per layer, {r.Parameters.ToString("N0", CultureInfo.InvariantCulture)} parameters";
                if (Json(pruned, r.Parameters, r.LayerNotes, new JsonObject { ["prune"] = n, ["select"] = sel, ["group"] = p.GetValue(group) })) return Cli.Ok;
                o.WriteLine(pruned);
                foreach (var line in r.LayerNotes) o.WriteLine("  " + line);
                return Cli.Ok;
            }
            var strat = MoeToDense.ParseStrategy(p.GetValue(strategy)!, "--strategy");
            int[]? perLayer = null;
            if (p.GetValue(expert) is { } es)
            {
                var parts = es.Split(',', StringSplitOptions.TrimEntries);
                var vals = parts.Select(x => int.TryParse(x, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new MergeException($"--expert: '{x}' is not an integer")).ToArray();
                perLayer = vals.Length == 1 ? Enumerable.Repeat(vals[0], layers).ToArray() : vals;
            }
            MoeSurgeryResult res;
            using (var progress = Progress.For(p, "moe-convert", "layers"))
            {
                res = MoeToDense.Convert(src, dst, new MoeToDenseOptions
                {
                    Progress = progress.Report,
                    Strategy = strat, ExpertPerLayer = perLayer, Frequencies = freq, ConcatTopK = p.GetValue(topK),
                    AlignedFrequencyWeighted = p.GetValue(weighted), ReferenceExpert = p.GetValue(reference), OutDType = dt, Writer = writer,
                }, token);
                progress.Complete();
            }
            var dense = $"wrote {dst}: MistralForCausalLM, intermediate {res.Intermediate}, {res.Parameters.ToString("N0", CultureInfo.InvariantCulture)} parameters ({MoeToDense.StrategyName(strat)})";
            if (Json(dense, res.Parameters, res.LayerNotes, new JsonObject { ["strategy"] = MoeToDense.StrategyName(strat), ["intermediate"] = res.Intermediate })) return Cli.Ok;
            o.WriteLine(dense);
            foreach (var line in res.LayerNotes) o.WriteLine("  " + line);
            return Cli.Ok;
        });
    }

    private static double[][] MeasureFrequencies(ParseResult p, string model, string text, int maxTokens, CancellationToken token)
    {
        using var progress = Progress.For(p, "routing", "tokens");
        var table = MoeForwardPass.Routing(model, MoeForwardPass.Tokens(model, text, maxTokens), progress: progress.Report, token: token).SelectionFrequencyTable();
        progress.Complete();
        return table;
    }
}
