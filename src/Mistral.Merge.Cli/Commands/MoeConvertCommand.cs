using System.CommandLine;
using Mistral.Merge.Cli.Terminal;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Moe.Surgery;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Cli.Commands;

/// <summary>
/// <c>moe-convert MIXTRAL OUT</c>: the MoE surgeries of a recipe (<c>merge_method: moe_to_dense | moe_prune</c>) on
/// the command line. Every surgery parameter is an option spelled after the recipe's name (<c>top_k</c> →
/// <c>--top-k</c>), read through the same declarations and checks, and run by the same executor as <c>merge</c>.
/// </summary>
public static class MoeConvertCommand
{
    public static Command Create()
    {
        var surgeries = MergeMethods.Surgeries;
        var model = new Argument<string>("MIXTRAL") { Description = "Mixtral model folder; or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var output = new Argument<string?>("OUT") { Description = "Output folder (not needed with --dry-run)", Arity = ArgumentArity.ZeroOrOne };
        string[] names = [.. surgeries.Select(s => s.Spec.Name)];
        var method = new Option<string?>("--method")
        {
            Description = "The surgery, as a recipe's merge_method: " + string.Join("; ", surgeries.Select(s => $"{s.Spec.Name}: {s.Spec.Summary}"))
                + $" (default {names[0]}, or {names[1]} when --num-experts is given)",
        }.OneOf(names);
        var declared = MoeOptions.FromDeclarations(surgeries);
        var numExperts = declared.First(d => d.Param.Name == "num_experts").Option;
        numExperts.Aliases.Add("--prune"); // the earlier spelling
        var ctxOption = (Option<int?>)declared.First(d => d.Param == RoutingParams.Ctx).Option;
        var strideOption = (Option<int?>)declared.First(d => d.Param == RoutingParams.Stride).Option;
        var outDtype = new Option<string?>("--dtype", "--out-dtype") { Description = "Output dtype of float tensors, as convert's --dtype and a recipe's dtype/out_dtype (default: as stored)" }
            .OneOf(CommonOptions.DTypes, v => { if (v != null) DTypes.ParseUser(v, "--dtype"); });
        var shard = new Option<string>("--out-shard-size") { Description = "Maximum shard size (e.g. 5GB, 500MB)", DefaultValueFactory = _ => "5GB" }.Check(v => ByteSize.Parse(v));
        var force = new Option<bool>("--force") { Description = "Replace a non-empty output folder" };
        var noTok = new Option<bool>("--no-copy-tokenizer") { Description = "Do not copy the tokenizer files" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan (source, output shape, routing source) and stop" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json("model, out, method and its facts, summary, parameters, layer_notes; with --dry-run the plan");
        var cmd = new Command("moe-convert", "Collapse a Mixtral's experts into a dense Mistral (moe_to_dense), or prune/group its experts (moe_prune): the recipe surgeries, with the recipe's parameter names as options")
        { model, output, method };
        foreach (var (_, o) in declared) cmd.Options.Add(o);
        foreach (var o in new Option[] { outDtype, shard, force, noTok, dryRun, threads, json }) cmd.Options.Add(o);
        ISurgery? Chosen(Func<Option, bool> given, string? value) => // null for an unknown --method (its own validator says so)
            MergeMethods.FindSurgery(value?.ToLowerInvariant() ?? (given(numExperts) ? names[1] : names[0]));
        cmd.Check(r => // usage errors: no OUT, a parameter the surgery does not take, a missing one, --stride beyond --ctx
        {
            if (!r.GetValue(dryRun) && string.IsNullOrEmpty(r.GetValue(output))) throw new MergeException("OUT is required (or use --dry-run)");
            bool Given(Option o) => r.GetResult(o) is { Implicit: false };
            if (Chosen(Given, r.GetValue(method)) is not { Spec: var spec }) return;
            foreach (var (param, _) in declared.Where(d => Given(d.Option) && spec.Find(d.Param.Name) == null))
                throw new MergeException($"{param.Option} is not a parameter of {spec.Name} (it takes {string.Join(", ", spec.Params.Select(x => x.Option))})");
            foreach (var (param, _) in declared.Where(d => d.Param.Required && !Given(d.Option) && spec.Find(d.Param.Name) != null))
                throw new MergeException($"{spec.Name} needs {param.Option}");
            if (r.GetValue(ctxOption) is { } c && r.GetValue(strideOption) is { } s && s > c) throw new MergeException($"--stride must be between 1 and --ctx ({c}), got {s}");
        });
        return cmd.WithAction((p, token) =>
        {
            string src = ModelArguments.Resolve(p, model);
            var dest = p.GetValue(output);
            bool dry = p.GetValue(dryRun);
            var given = MoeOptions.Given(p, declared);
            var surgery = Chosen(o => p.GetResult(o) is { Implicit: false }, p.GetValue(method))!;
            long shardSize = ByteSize.Parse(p.GetValue(shard)!);
            DType? dt = p.GetValue(outDtype) is { } s ? DTypes.ParseUser(s, "--dtype") : null;
            var folder = ModelFolder.Open(src);
            SurgeryPlan plan;
            try { plan = SurgeryPlan.Prepare(surgery, folder, src, report => SurgeryArgs.FromCommandLine(given, src, dt, report)); }
            catch { folder.Dispose(); throw; }
            using (plan)
            {
                if (dry) return PrintPlan(p, plan, p.GetValue(json), seed: null);
                var run = new SurgeryRunOptions
                {
                    Threads = p.GetValue(threads), ShardSize = shardSize, Force = p.GetValue(force), CopyTokenizer = !p.GetValue(noTok), Cancellation = token,
                };
                return Run(p, plan, dest!, run, p.GetValue(json));
            }
        });
    }

    /// <summary>Runs a surgery plan (from moe-convert or a recipe) and reports what it wrote.</summary>
    internal static int Run(ParseResult p, SurgeryPlan plan, string dest, SurgeryRunOptions run, bool json)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        SurgeryResult r;
        using (var progress = Progress.For(p, plan.Name, "layers"))
        {
            r = SurgeryExecutor.Run(plan, dest, run with { Progress = progress.Report, Log = line => p.InvocationConfiguration.Error.WriteLine(line) });
            progress.Complete();
        }
        var o = p.InvocationConfiguration.Output;
        if (json)
        {
            var doc = r.Facts.DeepClone().AsObject();
            if (plan.RecipePath != null) doc["recipe"] = plan.RecipePath;
            doc["model"] = plan.SourceLabel;
            doc["summary"] = r.Summary;
            doc["layer_notes"] = new JsonArray([.. r.LayerNotes.Select(n => (JsonNode)n)]);
            Cli.ReportWritten(o, dest, sw.Elapsed, doc);
            return Cli.Ok;
        }
        o.WriteLine(r.Summary);
        foreach (var line in r.LayerNotes) o.WriteLine("  " + line);
        return Cli.Ok;
    }

    /// <summary>The --dry-run plan of a surgery (merge --dry-run of a surgery recipe, moe-convert --dry-run).</summary>
    internal static int PrintPlan(ParseResult p, SurgeryPlan plan, bool json, ulong? seed)
    {
        var o = p.InvocationConfiguration.Output;
        if (json)
        {
            var doc = new JsonObject { ["version"] = CommonOptions.Version };
            if (plan.RecipePath != null) doc["recipe"] = plan.RecipePath;
            doc["method"] = plan.Name;
            if (seed != null) doc["seed"] = seed;
            doc["base_model"] = plan.SourceLabel;
            doc["surgery"] = new JsonArray([.. plan.Describe().Select(l => (JsonNode)l)]);
            o.WriteLine(JsonText.Write(doc));
            return Cli.Ok;
        }
        if (plan.RecipePath != null) o.WriteLine($"recipe:   {plan.RecipePath}");
        o.WriteLine($"method:   {plan.Name}{(seed != null ? $"   seed {seed}" : "")}");
        o.WriteLine($"base:     {plan.SourceLabel}");
        foreach (var line in plan.Describe()) o.WriteLine(line);
        return Cli.Ok;
    }
}
