using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Moe.Surgery;
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
        var seed = new Option<ulong>("--seed", "--random-seed") { Description = "Seed of the random masks (dare_*, della*, arcee_fusion's samples)", DefaultValueFactory = _ => 0 };
        var shard = CommonOptions.OutShardSize();
        var force = CommonOptions.Force();
        var noTok = new Option<bool>("--no-copy-tokenizer") { Description = "Do not copy the tokenizer files (a tokenizer the recipe builds is still written)" };
        var copyTok = new Option<bool>("--copy-tokenizer") { Description = "Copy the tokenizer files (the default; mergekit's spelling)", Hidden = true };
        var noCard = new Option<bool>("--no-write-model-card") { Description = "Do not write README.md (the model card) and mergekit_config.yml (the recipe)" };
        var card = new Option<bool>("--write-model-card") { Description = "Write the model card and the recipe (the default)", Hidden = true };
        var noCrimes = new Option<bool>("--no-allow-crimes") { Hidden = true };
        var cache = new Option<string?>("--transformers-cache") { Description = "Hugging Face cache folder to find hub models in (default: $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)" };
        var verbose = new Option<bool>("-v", "--verbose") { Description = "Accepted for mergekit's command line (warnings and notes are always shown)", Hidden = true, Arity = ArgumentArity.Zero, AllowMultipleArgumentsPerToken = true };
        var allowCrimes = new Option<bool>("--allow-crimes") { Description = "Merge models whose architectures or dimensions differ (config.json); by default such a merge is refused" };
        var allowNonFinite = new Option<bool>("--allow-nonfinite") { Description = "Write tensors that come out NaN/Inf (or have NaN/Inf inputs) with a warning per tensor; by default such a merge fails and writes nothing" };
        var threads = CommonOptions.Threads();
        threads.Aliases.Add("--num-threads"); // mergekit-yaml's spellings
        threads.Aliases.Add("-j");
        var json = CommonOptions.Json("recipe, method, seed; with --dry-run the plan: models, tensors, read_bytes, write_bytes; else out, tensors, parameters, bytes, files, seconds");
        var cmd = new Command("merge", $"Merge models with a mergekit-compatible YAML recipe ({string.Join(", ", MergeMethods.Names)}; see 'mistral-merge methods')")
        {
            recipe, outDir, dryRun, seed, shard, force, noTok, copyTok, noCard, card, allowCrimes, noCrimes, allowNonFinite, threads, cache, verbose, json,
        };
        var intermediate = new Option<string?>("--intermediate-dir", "-I") { Description = "Multi-stage recipes (several YAML documents, as mergekit-multi): where named stages write (default: OUT_DIR.stages beside the output)" };
        cmd.Options.Add(intermediate);
        var noLazy = new Option<bool>("--no-lazy") { Description = "Multi-stage recipes: run every stage again, also those whose output is complete" };
        cmd.Options.Add(noLazy);
        cmd.Options.Add(new Option<bool>("--lazy") { Description = "Multi-stage recipes: skip stages whose output is complete (the default)", Hidden = true });
        var machinery = MergekitFlags.Add(cmd);
        return cmd.WithAction((p, token) =>
        {
            var err = p.InvocationConfiguration.Error;
            var output = p.InvocationConfiguration.Output;
            var recipePath = p.GetValue(recipe)!;
            var dest = p.GetValue(outDir);
            bool dry = p.GetValue(dryRun);
            long shardSize = ByteSize.Parse(p.GetValue(shard)!);
            int nThreads = CommonOptions.ThreadCount(p.GetValue(threads));

            if (!CommonOptions.IsQuiet(p)) foreach (var note in MergekitFlags.Notes(p, machinery)) err.WriteLine(note);
            using var downloads = new LazyProgress(p, "download"); // a hub model the cache lacks is downloaded while planning
            var planOptions = new PlanOptions
            {
                Seed = p.GetValue(seed), AllowCrimes = p.GetValue(allowCrimes) && !p.GetValue(noCrimes), HubCache = p.GetValue(cache),
                Hub = ModelArguments.Options(p, downloads, p.GetValue(cache)),
            };
            var text = File.Exists(recipePath) ? InputFile.ReadAllTextStrict(recipePath, InputFile.Limits.Recipe, "a recipe") : ""; // else PlanFile says why
            if (RecipeStages.IsMultiDocument(text))
                return RunStages(p, recipePath, text, dest, p.GetValue(intermediate), dry, lazy: !p.GetValue(noLazy),
                    // an intermediate left incomplete by an interrupted run is ours to replace
                    (stage, stageDest) => RunRecipe(() => RecipePlanner.PlanStage(stage, recipePath, planOptions), stageDest, stage.Name != null || p.GetValue(force)));
            if (!dry && string.IsNullOrEmpty(dest)) throw new MergeException("merge: OUT_DIR is required (or use --dry-run)");
            return RunRecipe(() => RecipePlanner.PlanFile(recipePath, planOptions), dest, p.GetValue(force));

            // Plans and runs one recipe (or one stage): its problems, then --dry-run's plan or the merge/surgery into destination.
            int RunRecipe(Func<RecipePlan> makePlan, string? destination, bool forceOut)
            {
                RecipePlan planned;
                try { planned = makePlan(); }
                catch (RecipeException e) { return ReportProblems(err, e.Problems, recipePath); }
                downloads.Complete();
                using (planned)
                {
                    foreach (var w in planned.Warnings) err.WriteLine($"warning: {w}");
                    bool asJson = p.GetValue(json);
                    if (planned.Surgery is { } surgery)
                    {
                        if (dry) return MoeConvertCommand.PrintPlan(p, surgery, asJson, p.GetValue(seed));
                        var run = new SurgeryRunOptions { Threads = nThreads, ShardSize = shardSize, Force = forceOut, CopyTokenizer = !p.GetValue(noTok), Cancellation = token };
                        return MoeConvertCommand.Run(p, surgery, destination!, run, asJson);
                    }
                    var plan = planned.Merge!;
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
                    CheckpointWriter.CheckDestination(destination!, forceOut); // after the recipe: its problems come first
                    using (var progress = Progress.For(p, "merge", "tensors"))
                    {
                        MergeExecutor.Run(plan, destination!, new ExecuteOptions
                        {
                            Threads = nThreads,
                            ShardSize = shardSize,
                            Force = forceOut,
                            CopyTokenizer = !p.GetValue(noTok),
                            WriteModelCard = !p.GetValue(noCard),
                            Progress = progress.IsQuiet ? null : m => Report(progress, m),
                            Cancellation = token,
                            AllowNonFinite = p.GetValue(allowNonFinite),
                            Warning = w => progress.WriteLine($"warning: {w}"),
                        });
                        progress.Complete(); // after the side files and the commit: the bar ends when the merge does
                    }
                    if (Summary() is { } written) Cli.ReportWritten(output, destination!, sw.Elapsed, written);
                    else output.WriteLine($"merged {plan.Tasks.Count} tensors ({ByteSize.Format(plan.WriteBytes)}) into {destination}");
                    return Cli.Ok;
                }
            }
        });
    }

    /// <summary>
    /// A multi-stage recipe (mergekit-multi): named stages write to the work folder (--intermediate-dir, default
    /// OUT_DIR.stages), the unnamed one to OUT_DIR; a named stage whose output is complete is not run again.
    /// </summary>
    private static int RunStages(ParseResult p, string recipePath, string text, string? dest, string? workDir, bool dry, bool lazy,
        Func<RecipeStage, string?, int> run)
    {
        var err = p.InvocationConfiguration.Error;
        var output = p.InvocationConfiguration.Output;
        workDir = Path.GetFullPath(workDir ?? (dest ?? Path.ChangeExtension(recipePath, null)).TrimEnd('/') + ".stages");
        var problems = new RecipeProblems(recipePath);
        var stages = RecipeStages.Split(text, workDir, problems);
        if (stages.Any(s => s.Name == null) && dest == null && !dry)
            problems.Add(new Mark(stages.First(s => s.Name == null).Line, 1), "the unnamed stage writes to OUT_DIR, which is missing (or use --dry-run)");
        if (problems.Any) return ReportProblems(err, problems.Lines, recipePath);
        foreach (var stage in stages)
        {
            var stageDest = stage.Name == null ? dest : Path.Combine(workDir, stage.Name);
            var label = $"stage {stage.Name ?? "(unnamed)"} → {stageDest ?? "-"}";
            if (!dry && stage.Name != null && lazy && IsComplete(stageDest!))
            {
                if (!CommonOptions.IsQuiet(p)) err.WriteLine($"{label}: complete, skipped");
                continue;
            }
            if (dry) output.WriteLine(label);
            else if (!CommonOptions.IsQuiet(p)) err.WriteLine(label);
            if (dry && stage.DependsOn.FirstOrDefault(d => !IsComplete(Path.Combine(workDir, d))) is { } unbuilt)
            {
                // its inputs do not exist yet: show the stage as it will run instead of a plan
                output.WriteLine($"  (needs stage {unbuilt}, not built yet; the stage as it will run:)");
                foreach (var line in stage.OwnText.TrimEnd('\n').Split('\n')) output.WriteLine("  " + line);
                continue;
            }
            if (!dry && stage.Name != null) Directory.CreateDirectory(workDir);
            int rc = run(stage, stageDest);
            if (rc != Cli.Ok) return rc;
        }
        return Cli.Ok;
    }

    /// <summary>A recipe's problems, one line each, then the one-line verdict; the exit code of a user error.</summary>
    private static int ReportProblems(TextWriter err, IReadOnlyList<string> problems, string recipePath)
    {
        foreach (var line in problems) err.WriteLine(line);
        err.WriteLine($"error: {problems.Count} problem{(problems.Count == 1 ? "" : "s")} in {recipePath}; nothing was written");
        return Cli.UserError;
    }

    /// <summary>As mergekit-multi's lazy mode: config.json and a model file or index are there.</summary>
    private static bool IsComplete(string folder) =>
        File.Exists(Path.Combine(folder, "config.json"))
        && (File.Exists(Path.Combine(folder, CheckpointWriter.SingleFileName)) || File.Exists(Path.Combine(folder, CheckpointWriter.IndexFileName)));

    public static void PrintPlan(MergePlan plan, TextWriter o)
    {
        var r = plan.Recipe;
        o.WriteLine($"recipe:   {r.Path}");
        o.WriteLine($"method:   {plan.Method.Spec.Name}   seed {plan.Seed}");
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

    /// <summary>The merge's progress: the fraction of the output bytes written, with the tensor count and the throughput.</summary>
    private static void Report(Progress progress, MergeProgress m)
    {
        double gbps = (m.BytesRead + m.BytesWritten) / Math.Max(m.Elapsed.TotalSeconds, 1e-3) / 1e9;
        var detail = string.Create(CultureInfo.InvariantCulture, $"{m.TensorsDone}/{m.TensorsTotal} tensors  {gbps:0.00} GB/s");
        if (m.BytesTotal > 0) progress.Report(m.BytesWritten, m.BytesTotal, detail);
        else progress.Report(m.TensorsDone, m.TensorsTotal, detail);
    }
}
