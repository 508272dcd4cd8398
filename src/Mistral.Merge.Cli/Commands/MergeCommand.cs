using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Planning;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>merge RECIPE.yml OUT_DIR</c>: mergekit-compatible merges, planned then streamed.</summary>
public static class MergeCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("RECIPE") { Description = "mergekit-style YAML recipe" };
        var outDir = new Argument<string?>("OUT_DIR") { Description = "Output model folder (not needed with --dry-run)", Arity = ArgumentArity.ZeroOrOne };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the plan (every output tensor, inputs, resolved parameters, bytes) and stop" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the random masks (dare_*, della*)", DefaultValueFactory = _ => 0 };
        var shard = CommonOptions.OutShardSize();
        var force = CommonOptions.Force();
        var noTok = new Option<bool>("--no-copy-tokenizer") { Description = "Do not copy the tokenizer files" };
        var allowCrimes = new Option<bool>("--allow-crimes") { Description = "Merge models whose architectures or dimensions differ (config.json); by default such a merge is refused" };
        var allowNonFinite = new Option<bool>("--allow-nonfinite") { Description = "Write tensors that come out NaN/Inf (or have NaN/Inf inputs) with a warning per tensor; by default such a merge fails and writes nothing" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json("recipe, method, seed; with --dry-run the plan: models, tensors, read_bytes, write_bytes; else out, tensors, parameters, bytes, files, seconds");
        var cmd = new Command("merge", "Merge models with a mergekit-compatible YAML recipe (linear, slerp, nuslerp, task_arithmetic, ties, dare_*, breadcrumbs*, della*, model_stock, passthrough; MoE surgery: moe_to_dense, moe_prune)")
        {
            recipe, outDir, dryRun, seed, shard, force, noTok, allowCrimes, allowNonFinite, threads, json,
        };
        return cmd.WithAction((p, token) =>
        {
            var err = p.InvocationConfiguration.Error;
            var output = p.InvocationConfiguration.Output;
            var recipePath = p.GetValue(recipe)!;
            var dest = p.GetValue(outDir);
            bool dry = p.GetValue(dryRun);
            if (!dry && string.IsNullOrEmpty(dest)) throw new MergeException("merge: OUT_DIR is required (or use --dry-run)");
            long shardSize = ByteSize.Parse(p.GetValue(shard)!);
            int nThreads = CommonOptions.ThreadCount(p.GetValue(threads));

            MergePlan plan;
            try { plan = MergePlanner.PlanFile(recipePath, new PlanOptions { Seed = p.GetValue(seed), AllowCrimes = p.GetValue(allowCrimes) }); }
            catch (RecipeException e)
            {
                foreach (var line in e.Problems) err.WriteLine(line);
                err.WriteLine($"error: {e.Problems.Count} problem{(e.Problems.Count == 1 ? "" : "s")} in {recipePath}; nothing was written");
                return Cli.UserError;
            }
            using (plan)
            {
                foreach (var w in plan.Warnings) err.WriteLine($"warning: {w}");
                bool asJson = p.GetValue(json);
                if (dry)
                {
                    if (asJson) output.WriteLine(JsonText.Write(PlanJson(plan)));
                    else PrintPlan(plan, output);
                    return Cli.Ok;
                }
                var sw = System.Diagnostics.Stopwatch.StartNew();
                JsonObject? Summary() => asJson
                    ? new JsonObject { ["recipe"] = plan.Recipe.Path, ["method"] = plan.Method.Spec.Name, ["seed"] = plan.Seed }
                    : null;
                CheckpointWriter.CheckDestination(dest!, p.GetValue(force)); // after the recipe: its problems come first
                if (plan.Surgery != null)
                {
                    var options = new ExecuteOptions
                    {
                        Threads = nThreads, ShardSize = shardSize, Force = p.GetValue(force), CopyTokenizer = !p.GetValue(noTok), Cancellation = token,
                        AllowNonFinite = p.GetValue(allowNonFinite), Warning = w => err.WriteLine($"warning: {w}"),
                    };
                    var summary = MergeExecutor.RunAndDescribe(plan, dest!, options); // checks that the output is not the input, then runs the surgery
                    if (Summary() is { } doc) { doc["summary"] = summary; Cli.ReportWritten(output, dest!, sw.Elapsed, doc); }
                    else output.WriteLine(summary);
                    return Cli.Ok;
                }
                var progress = new ProgressPrinter(err, ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected);
                MergeExecutor.Run(plan, dest!, new ExecuteOptions
                {
                    Threads = nThreads,
                    ShardSize = shardSize,
                    Force = p.GetValue(force),
                    CopyTokenizer = !p.GetValue(noTok),
                    Progress = CommonOptions.IsQuiet(p) ? null : progress.Report,
                    Cancellation = token,
                    AllowNonFinite = p.GetValue(allowNonFinite),
                    Warning = w => err.WriteLine($"warning: {w}"),
                });
                if (!CommonOptions.IsQuiet(p)) progress.Finish();
                if (Summary() is { } written) Cli.ReportWritten(output, dest!, sw.Elapsed, written);
                else output.WriteLine($"merged {plan.Tasks.Count} tensors ({ByteSize.Format(plan.WriteBytes)}) into {dest}");
                return Cli.Ok;
            }
        });
    }

    public static void PrintPlan(MergePlan plan, TextWriter o)
    {
        var r = plan.Recipe;
        o.WriteLine($"recipe:   {r.Path}");
        o.WriteLine($"method:   {plan.Method.Spec.Name}   seed {plan.Seed}");
        if (plan.Surgery != null)
        {
            o.WriteLine($"base:     {r.BaseModel?.Text}");
            foreach (var line in plan.Surgery.Describe()) o.WriteLine(line);
            return;
        }
        o.WriteLine("models:");
        foreach (var m in plan.Models)
            o.WriteLine($"  {m.Text}{(m.Text == r.BaseModel?.Text ? " (base)" : "")}: {m.Folder.Path} ({m.Layers} layers)");
        o.WriteLine($"output:   {plan.Tasks.Count} tensors, {plan.OutputLayers} layers, config from {plan.ConfigModel.Text}, tokenizer from {plan.TokenizerModel?.Text ?? "-"}");
        if (plan.Tokenizer is { } tok)
            o.WriteLine($"tokenizer: {tok.Spec.Mode.ToString().ToLowerInvariant()} on {tok.Donor.Text}'s files: {tok.VocabCount} tokens ({tok.Added.Count} added), {tok.Rows} embedding rows");
        o.WriteLine($"read:     {ByteSize.Format(plan.ReadBytes)} ({plan.ReadBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes)");
        o.WriteLine($"write:    {ByteSize.Format(plan.WriteBytes)} ({plan.WriteBytes.ToString("N0", CultureInfo.InvariantCulture)} bytes)");
        o.WriteLine("tensors:");
        foreach (var t in plan.Tasks) o.WriteLine("  " + t.Describe().Replace("\n", "\n  "));
    }

    /// <summary>The --dry-run plan as JSON: the same facts as <see cref="PrintPlan"/>.</summary>
    private static JsonObject PlanJson(MergePlan plan)
    {
        var r = plan.Recipe;
        var doc = new JsonObject
        {
            ["version"] = CommonOptions.Version,
            ["recipe"] = r.Path,
            ["method"] = plan.Method.Spec.Name,
            ["seed"] = plan.Seed,
            ["base_model"] = r.BaseModel?.Text,
        };
        if (plan.Surgery != null)
        {
            doc["surgery"] = new JsonArray([.. plan.Surgery.Describe().Select(l => (JsonNode)l)]);
            return doc;
        }
        doc["models"] = new JsonArray([.. plan.Models.Select(m => (JsonNode)new JsonObject
        {
            ["name"] = m.Text, ["path"] = m.Folder.Path, ["layers"] = m.Layers, ["base"] = m.Text == r.BaseModel?.Text,
        })]);
        doc["output_layers"] = plan.OutputLayers;
        doc["config_from"] = plan.ConfigModel.Text;
        doc["tokenizer_from"] = plan.TokenizerModel?.Text;
        doc["read_bytes"] = plan.ReadBytes;
        doc["write_bytes"] = plan.WriteBytes;
        doc["tensors"] = new JsonArray([.. plan.Tasks.Select(t => (JsonNode)t.Describe())]);
        return doc;
    }

    /// <summary>A bar on a terminal (tensors, GB/s, ETA); plain lines at most every 5 s when redirected.</summary>
    private sealed class ProgressPrinter(TextWriter err, bool terminal)
    {
        private TimeSpan _last = TimeSpan.FromSeconds(-10);
        private MergeProgress? _latest;

        public void Report(MergeProgress p)
        {
            _latest = p;
            var every = terminal ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromSeconds(5);
            if (p.Elapsed - _last < every && p.TensorsDone < p.TensorsTotal) return;
            _last = p.Elapsed;
            var line = Line(p);
            if (terminal) err.Write("\r" + line + "   ");
            else err.WriteLine(line);
        }

        public void Finish()
        {
            if (terminal && _latest != null) err.WriteLine();
        }

        private static string Line(MergeProgress p)
        {
            double secs = Math.Max(p.Elapsed.TotalSeconds, 1e-3);
            double gbps = (p.BytesRead + p.BytesWritten) / secs / 1e9;
            double frac = p.BytesTotal > 0 ? (double)p.BytesWritten / p.BytesTotal : (double)p.TensorsDone / Math.Max(1, p.TensorsTotal);
            var eta = frac > 0 ? TimeSpan.FromSeconds(secs * (1 - frac) / frac) : TimeSpan.Zero;
            const int width = 30;
            int filled = (int)Math.Round(frac * width);
            var bar = new string('#', filled) + new string('.', width - filled);
            return string.Create(CultureInfo.InvariantCulture,
                $"[{bar}] {p.TensorsDone}/{p.TensorsTotal} tensors  {gbps:0.00} GB/s  ETA {(int)eta.TotalMinutes}:{eta.Seconds:00}");
        }
    }
}
