using Mistral.Merge.Planning;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Tests.Moe;

/// <summary><c>merge_method: moe_to_dense / moe_prune</c>: parameter errors with line:column, dry-run plans, and recipe == moe-convert bit for bit.</summary>
public sealed class MoeRecipeTests : IDisposable
{
    private readonly TempDir _d = new();
    private readonly string _mix, _text;

    public MoeRecipeTests()
    {
        _mix = SynthMixtral.Synth(_d.Path, "mix", seed: 11);
        _text = SynthMixtral.WriteText(_d.Path);
    }

    public void Dispose() => _d.Dispose();

    private string Recipe(string yaml, string name = "recipe.yml")
    {
        var p = _d[name];
        File.WriteAllText(p, yaml);
        return p;
    }

    private List<string> Problems(string yaml)
    {
        var path = Recipe(yaml);
        var e = Assert.Throws<RecipeException>(() => RecipePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] }).Dispose());
        return e.Problems.Select(p => p.Replace(path, "recipe.yml")).ToList();
    }

    private static void Has(List<string> problems, string expected)
        => Assert.True(problems.Contains(expected), $"'{expected}' not in:\n{string.Join("\n", problems)}");

    [Fact]
    public void ParameterErrorsNameLineAndColumn()
    {
        var p = Problems("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: avg\n  experts: 2\n");
        Has(p, "recipe.yml:4:13: parameter 'strategy': unknown value 'avg' (expected mean, expert, frequency, aligned_mean, concat, refit)");
        Has(p, "recipe.yml:5:3: merge_method 'moe_to_dense' does not take parameter 'experts' (did you mean 'expert'?) (it takes strategy, expert, reference, weighted, top_k, init, intermediate_size, ridge, refine_steps, calibration, calibration_tokens, frequencies, ctx, stride)");
        Has(Problems("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: expert\n"),
            "recipe.yml:1:15: strategy expert needs parameter 'expert' (an index, a per-layer list or a gradient)");
        Has(Problems("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: expert\n  expert: [0, 4]\n"),
            "recipe.yml:5:11: parameter 'expert': expert 4 for layer 1 does not exist (the model has 4 experts, 0..3)");
        Has(Problems("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: frequency\n"),
            "recipe.yml:1:15: strategy frequency needs routing frequencies: set 'calibration' (a text file, relative to the recipe) or 'frequencies' (a moe-stats --json file)");
        Has(Problems("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: frequency\n  calibration: nope.txt\n"),
            $"recipe.yml:5:16: parameter 'calibration': file 'nope.txt' not found (looked at {_d["nope.txt"]})");
        Has(Problems("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: mean\n  top_k: 2\n"),
            "recipe.yml:5:10: parameter 'top_k' is only used by strategy concat (this recipe uses mean)");
        Has(Problems("merge_method: moe_prune\nbase_model: mix\nparameters:\n  calibration: text.txt\n"),
            "recipe.yml:1:15: merge_method 'moe_prune' requires parameter 'num_experts' (set it under parameters:)");
        Has(Problems("merge_method: moe_prune\nbase_model: mix\nparameters:\n  num_experts: 5\n  calibration: text.txt\n"),
            "recipe.yml:4:16: parameter 'num_experts' must be an integer from 1 to 4 (experts kept per layer; the model has 4), got 5");
        Has(Problems("merge_method: moe_prune\nbase_model: mix\nparameters:\n  num_experts: 2\n  criterion: output_chnage\n"),
            "recipe.yml:5:14: parameter 'criterion': unknown value 'output_chnage' (did you mean 'output_change'?) (expected frequency, output_change)");
        Has(Problems("merge_method: moe_prune\nbase_model: mix\nparameters:\n  num_experts: 2\n  group: true\n"),
            "recipe.yml:1:15: moe_prune with group: true needs 'calibration' (a text file, relative to the recipe)");
        Has(Problems("merge_method: moe_prune\nbase_model: mix\nparameters:\n  num_experts: 2.5\n  calibration: text.txt\n"),
            "recipe.yml:4:16: parameter 'num_experts' must be an integer from 1 to 4 (experts kept per layer; the model has 4), got 2.5");
        Has(Problems("merge_method: moe_prune\nbase_model: mix\nmodels:\n  - model: mix\nparameters:\n  num_experts: 2\n"),
            "recipe.yml:4:3: merge_method 'moe_prune' rewrites one checkpoint: give only base_model (and parameters), not 'models'");
        Has(Problems("merge_method: moe_prune\nparameters:\n  num_experts: 2\n"),
            "recipe.yml:1:15: merge_method 'moe_prune' needs a base_model (the Mixtral checkpoint to convert)");
        SynthMixtral.Synth(_d.Path, "dense", arch: "mistral");
        Assert.Contains(Problems("merge_method: moe_to_dense\nbase_model: dense\n"), p => p.StartsWith("recipe.yml:2:13: base_model 'dense': ", StringComparison.Ordinal) && p.Contains("not a Mixtral model"));
    }

    [Fact]
    public void MergeCommandErrorsAreLineColumnAndNothingIsWritten()
    {
        var path = Recipe("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: avg\n");
        var r = CliRunner.Run("merge", path, _d["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains($"{path}:4:13: parameter 'strategy': unknown value 'avg'", r.Stderr);
        Assert.False(Directory.Exists(_d["out"]));
    }

    [Fact]
    public void DryRunPrintsTheSurgeryPlan()
    {
        var path = Recipe("merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  strategy: expert\n  expert: [0, 3]\ndtype: bfloat16\n");
        var r = CliRunner.Run("merge", path, "--dry-run");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("surgery:  moe_to_dense, strategy expert", r.Stdout);
        Assert.Contains("output:   MistralForCausalLM, intermediate_size 48", r.Stdout);
        Assert.Contains("dtype bfloat16", r.Stdout);
        Assert.Contains("experts:  layer 0: 0, layer 1: 3", r.Stdout);
        var prune = CliRunner.Run("merge", Recipe("merge_method: moe_prune\nbase_model: mix\nparameters:\n  num_experts: 3\n  calibration: text.txt\n  calibration_tokens: 300\n"), "--dry-run");
        Assert.True(prune.ExitCode == 0, prune.Stderr);
        Assert.Contains("surgery:  moe_prune to 3 experts per layer: the most frequently routed experts", prune.Stdout);
        Assert.Contains("num_local_experts 3, num_experts_per_tok 2", prune.Stdout);
        Assert.Contains($"on {_text} (first 300 tokens", prune.Stdout);
    }

    private static void SameWeights(string a, string b)
    {
        Assert.True(File.ReadAllBytes(Path.Combine(a, "model.safetensors")).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, "model.safetensors"))), $"{a} vs {b}");
        Assert.Equal(File.ReadAllText(Path.Combine(a, "config.json")), File.ReadAllText(Path.Combine(b, "config.json")));
    }

    [Fact]
    public void RecipeResultEqualsMoeConvertBitForBit()
    {
        var cases = new (string Yaml, string[] Convert)[]
        {
            ("strategy: expert\n  expert: [2, 1]", ["--strategy", "expert", "--expert", "2,1"]),
            ("strategy: aligned_mean\n  weighted: true\n  calibration: text.txt\n  calibration_tokens: 400", ["--strategy", "aligned_mean", "--weighted", "--calibration", _text, "--calibration-tokens", "400"]),
            ("strategy: concat\n  top_k: 3\n  calibration: text.txt", ["--strategy", "concat", "--top-k", "3", "--calibration", _text]),
        };
        int i = 0;
        foreach (var (yaml, convert) in cases)
        {
            i++;
            var recipe = Recipe($"merge_method: moe_to_dense\nbase_model: mix\nparameters:\n  {yaml}\ndtype: bfloat16\n", $"r{i}.yml");
            var r = CliRunner.Run("merge", recipe, _d[$"recipe{i}"]);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Contains("MistralForCausalLM", r.Stdout);
            var c = CliRunner.Run(["moe-convert", _mix, _d[$"convert{i}"], .. convert, "--out-dtype", "bfloat16"]);
            Assert.True(c.ExitCode == 0, c.Stderr);
            SameWeights(_d[$"recipe{i}"], _d[$"convert{i}"]);
            Assert.Equal(File.ReadAllText(recipe), File.ReadAllText(_d[$"recipe{i}/mergekit_config.yml"]));
            Assert.Contains("## Recipe", File.ReadAllText(_d[$"recipe{i}/README.md"]));
            Assert.True(File.Exists(_d[$"recipe{i}/tokenizer.model"]));
        }
        var prune = new (string Yaml, string[] Convert)[]
        {
            ("num_experts: 2\n  group: true\n  calibration: text.txt", ["--prune", "2", "--group", "--calibration", _text]),
            ("num_experts: 3\n  criterion: output_change\n  calibration: text.txt\n  calibration_tokens: 300", ["--num-experts", "3", "--criterion", "output_change", "--calibration", _text, "--calibration-tokens", "300"]),
        };
        foreach (var (yaml, convert) in prune)
        {
            i++;
            var r = CliRunner.Run("merge", Recipe($"merge_method: moe_prune\nbase_model: mix\nparameters:\n  {yaml}\n", $"r{i}.yml"), _d[$"recipe{i}"], "--out-shard-size", "100KB");
            Assert.True(r.ExitCode == 0, r.Stderr);
            var c = CliRunner.Run(["moe-convert", _mix, _d[$"convert{i}"], .. convert]);
            Assert.True(c.ExitCode == 0, c.Stderr);
            // The recipe run was sharded: compare tensor by tensor.
            using var a = Mistral.Merge.Models.ModelFolder.Open(_d[$"recipe{i}"]);
            using var b = Mistral.Merge.Models.ModelFolder.Open(_d[$"convert{i}"]);
            Assert.True(a.Files.Count > 1);
            Assert.Equal(b.TensorNames, a.TensorNames);
            foreach (var n in a.TensorNames) Assert.True(a.GetBytes(n).SequenceEqual(b.GetBytes(n)), n);
            Assert.Equal(File.ReadAllText(_d[$"convert{i}/config.json"]), File.ReadAllText(_d[$"recipe{i}/config.json"]));
        }
        // --force is needed to replace an output.
        var again = CliRunner.Run("merge", _d["r1.yml"], _d["recipe1"]);
        Assert.Equal(1, again.ExitCode);
        Assert.Equal(0, CliRunner.Run("merge", _d["r1.yml"], _d["recipe1"], "--force").ExitCode);
    }

    [FixtureFact]
    public void FixtureRecipeEqualsMoeConvert()
    {
        var fixture = SharedFixtures.PathOf("stories260k-moe4");
        var cal = SharedFixtures.PathOf("text", "tinystories-eval.txt");
        var recipe = Recipe($"merge_method: moe_to_dense\nbase_model: {fixture}\nparameters:\n  strategy: frequency\n  calibration: {cal}\n  calibration_tokens: 2000\n", "fixture.yml");
        Assert.Equal(0, CliRunner.Run("merge", recipe, _d["fr"]).ExitCode);
        Assert.Equal(0, CliRunner.Run("moe-convert", fixture, _d["fc"], "--strategy", "frequency", "--calibration", cal, "--calibration-tokens", "2000").ExitCode);
        SameWeights(_d["fr"], _d["fc"]);
    }
}
