using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Planning;
using Mistral.Merge.Recipes;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Merging;

/// <summary>Merges of models the tests synthesize themselves (no shared fixtures needed).</summary>
public sealed class SynthesizedMergeTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private void Tiny(int layers = 3)
    {
        TinyModels.Write(_d["tiny-a"], 11, layers, dtype: DType.BF16);
        TinyModels.Write(_d["tiny-b"], 12, layers, dtype: DType.BF16);
        TinyModels.Write(_d["tiny-c"], 13, layers, dtype: DType.BF16);
    }

    private string CopyExample(string name)
    {
        var dst = _d[name];
        File.Copy(Path.Combine(SharedFixtures.RepoRoot, "examples", name), dst);
        return dst;
    }

    [Theory]
    [InlineData("quickstart-slerp.yml")]
    [InlineData("synthetic-della.yml")]
    [InlineData("synthetic-model-stock.yml")]
    public void SyntheticExamplesRun(string example)
    {
        Tiny();
        var r = CliRunner.Run("merge", CopyExample(example), _d["out"], "--seed", "3", "--threads", "0"); // 0 = the default thread count, as in perplexity
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var merged = ModelFolder.Open(_d["out"]);
        using var a = ModelFolder.Open(_d["tiny-a"]);
        Assert.Equal(a.TensorNames, merged.TensorNames);
        foreach (var f in new[] { "config.json", "README.md", OutputFiles.RecipeFileName }) Assert.True(File.Exists(Path.Combine(_d["out"], f)), f);
        Assert.Equal(File.ReadAllText(_d[example]), File.ReadAllText(Path.Combine(_d["out"], OutputFiles.RecipeFileName)));
        Assert.Contains(File.ReadAllText(_d[example]).Trim(), File.ReadAllText(Path.Combine(_d["out"], "README.md")));
    }

    [Fact]
    public void QuickstartSlerpMatchesReferenceWithOneBf16Rounding()
    {
        Tiny();
        var r = CliRunner.Run("merge", CopyExample("quickstart-slerp.yml"), _d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var merged = ModelFolder.Open(_d["out"]);
        using var a = ModelFolder.Open(_d["tiny-a"]);
        using var b = ModelFolder.Open(_d["tiny-b"]);
        foreach (var name in merged.TensorNames)
        {
            double t = TensorNames.TryParseLayer(name, out var layer, out _) ? layer / 2.0 : 0;
            double tv = name.Contains("self_attn") ? Reference.Gradient([0, 0.5, 1], t) : name.Contains("mlp") ? Reference.Gradient([1, 0.5, 0], t) : 0.5;
            var x = a.ReadSingle(name);
            var y = b.ReadSingle(name);
            var exp = Reference.Slerp(x, y, tv);
            var got = merged.ReadSingle(name);
            for (int i = 0; i < exp.Length; i++)
            {
                double ulp = Math.Pow(2, Math.Floor(Math.Log2(Math.Max(Math.Abs(exp[i]), 1e-30))) - 7);
                Assert.True(Math.Abs(got[i] - exp[i]) <= 0.5 * ulp + 5e-7 * (Math.Abs(x[i]) + Math.Abs(y[i])), $"{name}[{i}]: {got[i]} vs {exp[i]}");
            }
        }
    }

    [Fact]
    public void ChunkedExecutionIsBitIdenticalToWholeTensorExecution()
    {
        Tiny();
        foreach (var (method, extra) in new[] { ("slerp", "parameters: {t: 0.3}\n"), ("dare_ties", "parameters: {weight: 0.7, density: 0.4}\n"), ("della_linear", "parameters: {weight: 0.5, density: 0.5}\n"), ("model_stock", "") })
        {
            var models = method == "slerp" ? "  - model: tiny-a\n  - model: tiny-b\n" : "  - model: tiny-b\n  - model: tiny-c\n";
            var recipe = TinyModels.Recipe(_d.Path, $"merge_method: {method}\nbase_model: tiny-a\nmodels:\n{models}{extra}", $"{method}.yml");
            using var plan = MergePlanner.PlanFile(recipe, new PlanOptions { Seed = 5 });
            MergeExecutor.Run(plan, _d[$"{method}-whole"], new ExecuteOptions { Threads = 1 });
            // 4 KB budget → chunks of a few rows, so the reductions span many chunks
            MergeExecutor.Run(plan, _d[$"{method}-chunked"], new ExecuteOptions { Threads = 3, MemoryBudget = 4096 });
            Assert.Equal(File.ReadAllBytes(Path.Combine(_d[$"{method}-whole"], "model.safetensors")), File.ReadAllBytes(Path.Combine(_d[$"{method}-chunked"], "model.safetensors")));
        }
    }

    [Fact]
    public void DifferentVocabulariesAreCroppedWithAWarning()
    {
        TinyModels.Write(_d["v16"], 1, vocab: 16);
        TinyModels.Write(_d["v20"], 2, vocab: 20);
        var recipe = TinyModels.Recipe(_d.Path, "merge_method: linear\nmodels:\n  - model: v20\n    parameters: {weight: 1}\n  - model: v16\n    parameters: {weight: 3}\n");
        var r = CliRunner.Run("merge", recipe, _d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("warning: model.embed_tokens.weight: shapes differ", r.Stderr);
        using var m = ModelFolder.Open(_d["out"]);
        using var a = ModelFolder.Open(_d["v20"]);
        using var b = ModelFolder.Open(_d["v16"]);
        Assert.Equal([16L, 8], m.Info(TensorNames.Embed).Shape);
        Assert.Equal(16, m.Config!.VocabSize);
        var x = a.ReadSingle(TensorNames.Embed);
        var y = b.ReadSingle(TensorNames.Embed);
        var got = m.ReadSingle(TensorNames.Embed);
        for (int i = 0; i < 16 * 8; i++) Assert.Equal((x[i] * 1f + y[i] * 3f) / 4f, got[i]);
    }

    [Fact]
    public void OutputFolderMayNotBeAnInputAndFailuresLeaveNothing()
    {
        Tiny();
        var recipe = TinyModels.Recipe(_d.Path, "merge_method: linear\nmodels:\n  - model: tiny-a\n    parameters: {weight: 1}\n");
        var r = CliRunner.Run("merge", recipe, _d["tiny-a"], "--force");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("is the input model 'tiny-a'", r.Stderr);
        r = CliRunner.Run("merge", recipe, _d.Path, "--force");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("contains the input model", r.Stderr);
        Assert.True(File.Exists(Path.Combine(_d["tiny-a"], "model.safetensors")));
    }

    [Fact]
    public void DryRunPrintsEveryTensorWithInputsParametersAndBytes()
    {
        Tiny(2);
        var recipe = CopyExample("quickstart-slerp.yml");
        var r = CliRunner.Run("merge", recipe, "--dry-run");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("model.layers.1.self_attn.q_proj.weight [8, 8] BF16  t=1", r.Stdout);
        Assert.Contains("model.layers.1.mlp.up_proj.weight [12, 8] BF16  t=0", r.Stdout);
        Assert.Contains("<- tiny-a:model.layers.1.mlp.up_proj.weight (base)", r.Stdout);
        Assert.Matches(@"read:\s+\S+ \S+ \(\d[\d,]* bytes\)", r.Stdout);
        Assert.False(Directory.Exists(_d["out"]));
    }

    [Fact]
    public void ShardsAndTokenizerSourceAndNoCopyTokenizer()
    {
        Tiny();
        File.WriteAllText(Path.Combine(_d["tiny-b"], "tokenizer_config.json"), "{\"add_bos_token\": true}");
        File.WriteAllText(Path.Combine(_d["tiny-b"], "tokenizer.json"), "{\"model\": {\"vocab\": {" + string.Join(", ", Enumerable.Range(0, 16).Select(i => $"\"t{i}\": {i}")) + "}}}");
        File.WriteAllText(Path.Combine(_d["tiny-a"], "generation_config.json"), "{\"do_sample\": false}");
        var recipe = TinyModels.Recipe(_d.Path, "merge_method: slerp\nbase_model: tiny-a\nmodels:\n  - model: tiny-a\n  - model: tiny-b\nparameters: {t: 0.5}\ntokenizer_source: tiny-b\nchat_template: chatml\nname: tiny-slerp\n");
        var r = CliRunner.Run("merge", recipe, _d["out"], "--out-shard-size", "2KB");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(_d["out"], CheckpointWriter.IndexFileName)));
        // written readably: the template's special tokens as they are, not as \u003C escapes
        var tokConfig = File.ReadAllText(Path.Combine(_d["out"], "tokenizer_config.json"));
        Assert.Contains("<|im_start|>", tokConfig);
        Assert.DoesNotContain("\\u003C", tokConfig);
        Assert.True(File.Exists(Path.Combine(_d["out"], "generation_config.json")));
        Assert.StartsWith("---\nlibrary_name: transformers\n", File.ReadAllText(Path.Combine(_d["out"], "README.md"))); // local inputs: no base_model
        Assert.Contains("# tiny-slerp", File.ReadAllText(Path.Combine(_d["out"], "README.md")));
        // A tokenizer the recipe builds is written even so (its embedding rows were built for it), as mergekit does.
        r = CliRunner.Run("merge", recipe, _d["out2"], "--no-copy-tokenizer");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(Path.Combine(_d["out2"], "tokenizer_config.json")));
        r = CliRunner.Run("merge", TinyModels.Recipe(_d.Path, File.ReadAllText(recipe).Replace("tokenizer_source: tiny-b\n", ""), "plain.yml"), _d["out3"], "--no-copy-tokenizer");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.False(File.Exists(Path.Combine(_d["out3"], "tokenizer_config.json")));
    }

    [Fact]
    public void ChatTemplateFilesTravelUnlessTheRecipeSetsItsOwn()
    {
        Tiny();
        File.WriteAllText(Path.Combine(_d["tiny-a"], "chat_template.jinja"), "{{ messages }}");
        File.WriteAllText(Path.Combine(_d["tiny-a"], "added_tokens.json"), "{}");
        const string Slerp = "merge_method: slerp\nbase_model: tiny-a\nmodels:\n  - model: tiny-a\n  - model: tiny-b\nparameters: {t: 0.5}\n";
        Assert.Equal(0, CliRunner.Run("merge", TinyModels.Recipe(_d.Path, Slerp), _d["out"]).ExitCode);
        Assert.Equal("{{ messages }}", File.ReadAllText(Path.Combine(_d["out"], "chat_template.jinja")));
        Assert.True(File.Exists(Path.Combine(_d["out"], "added_tokens.json")));
        // With the recipe's own template, the source's template file would override it in transformers: left out.
        Assert.Equal(0, CliRunner.Run("merge", TinyModels.Recipe(_d.Path, Slerp + "chat_template: chatml\n"), _d["out2"]).ExitCode);
        Assert.False(File.Exists(Path.Combine(_d["out2"], "chat_template.jinja")));
        Assert.Contains("im_start", File.ReadAllText(Path.Combine(_d["out2"], "tokenizer_config.json")));
    }

    /// <summary>The recipes in merges/ parse and plan: against an empty cache they fail only on
    /// missing models (saying where they looked); against a cache of tiny stand-ins they plan.</summary>
    [Fact]
    public void ReadyRecipesParseAndPlan()
    {
        var merges = Directory.GetFiles(Path.Combine(SharedFixtures.RepoRoot, "merges"), "*.yml");
        Assert.True(merges.Length >= 3);
        foreach (var path in merges)
        {
            var e = Assert.Throws<RecipeException>(() => RecipePlanner.PlanFile(path, new PlanOptions { HubCache = _d["empty-hub"] }).Dispose());
            Assert.All(e.Problems, p => Assert.Matches(@":\d+:\d+: model '[^']+' not found: looked in local folder .* and Hugging Face cache .*models--", p));
        }
        foreach (var id in new[] { "mistralai/Mistral-7B-Instruct-v0.1", "mistralai/Mistral-7B-Instruct-v0.2", "mistralai/Mistral-7B-v0.1", "cognitivecomputations/dolphin-2.2.1-mistral-7b" })
        {
            var repo = _d["hub/models--" + id.Replace("/", "--")];
            TinyModels.Write(Path.Combine(repo, "snapshots", "0123abcd"), (ulong)id.Length, layers: 32);
            Directory.CreateDirectory(Path.Combine(repo, "refs"));
            File.WriteAllText(Path.Combine(repo, "refs", "main"), "0123abcd");
        }
        using (var slerp = MergePlanner.PlanFile(Path.Combine(SharedFixtures.RepoRoot, "merges", "mistral-instruct-slerp.yml"), new PlanOptions { HubCache = _d["hub"] }))
        {
            var q8 = slerp.Tasks.Single(t => t.OutputName == "model.layers.8.self_attn.q_proj.weight");
            Assert.Equal(0.49355, Math.Round((double)q8.MethodTask.Global.ValueOf(q8.Method.Spec.Find("t")!)!, 5));
            Assert.Equal("mistralai/Mistral-7B-Instruct-v0.2", q8.Inputs[q8.MethodTask.BaseIndex].Model.Text);
            Assert.Equal(0.5, slerp.Tasks.Single(t => t.OutputName == "model.layers.8.input_layernorm.weight").MethodTask.Global.ValueOf(slerp.Method.Spec.Find("t")!));
            Assert.All(slerp.Tasks, t => Assert.Equal(DType.BF16, t.OutDType));
        }
        using (var ties = MergePlanner.PlanFile(Path.Combine(SharedFixtures.RepoRoot, "merges", "dolphin-instruct-ties.yml"), new PlanOptions { HubCache = _d["hub"] }))
            Assert.All(ties.Tasks, t => Assert.Equal(3, t.Inputs.Count));
        using (var frank = MergePlanner.PlanFile(Path.Combine(SharedFixtures.RepoRoot, "merges", "mistral-instruct-frankenmerge.yml"), new PlanOptions { HubCache = _d["hub"] }))
        {
            Assert.Equal(48, frank.OutputLayers);
            Assert.Equal("model.layers.8.self_attn.q_proj.weight", frank.Tasks.Single(t => t.OutputName == "model.layers.24.self_attn.q_proj.weight").Inputs[0].TensorName);
            Assert.Equal(48, OutputFiles.BuildConfig(frank)["num_hidden_layers"]!.GetValue<int>());
        }
    }
}
