using Mistral.Merge.Models;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Cli;

/// <summary>Multi-document recipes as mergekit-multi runs them: named stages into a work folder, the unnamed one to the output.</summary>
public sealed class MultiStageRecipeTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private const string TwoStages =
        "name: first\nmerge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\ndtype: float32\n"
        + "---\nmerge_method: slerp\nbase_model: first\nmodels:\n  - model: first\n  - model: b\nparameters: {t: 0.5}\ndtype: float32\n";

    private string Recipe(string yaml)
    {
        TinyModels.Write(_d["a"], 1);
        TinyModels.Write(_d["b"], 2);
        return TinyModels.Recipe(_d.Path, yaml);
    }

    [Fact]
    public void StagesRunInOrderIntoTheWorkFolderAndARerunSkipsCompleteStages()
    {
        var recipe = Recipe(TwoStages);
        var r = CliRunner.Run("merge", recipe, _d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var first = _d["out.stages/first"];
        // stage 1 = linear(a, b) normalized: (a + b) / 2; stage 2 = slerp(first, b, 0.5), checked against one-stage runs
        Assert.Equal(0, CliRunner.Run("merge", TinyModels.Recipe(_d.Path, "merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\ndtype: float32\n", "one.yml"), _d["one"]).ExitCode);
        Assert.Equal(0, CliRunner.Run("merge", TinyModels.Recipe(_d.Path, $"merge_method: slerp\nbase_model: one\nmodels:\n  - model: one\n  - model: b\nparameters: {{t: 0.5}}\ndtype: float32\n", "two.yml"), _d["two"]).ExitCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(_d["one"], "model.safetensors")), File.ReadAllBytes(Path.Combine(first, "model.safetensors")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(_d["two"], "model.safetensors")), File.ReadAllBytes(_d["out/model.safetensors"]));
        Assert.StartsWith("merge_method: slerp\nbase_model: \"" + first + "\"\n", File.ReadAllText(_d["out/mergekit_config.yml"]));

        var again = CliRunner.Run("merge", recipe, _d["out"], "--force");
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains($"stage first → {first}: complete, skipped", again.Stderr);
    }

    [Fact]
    public void DryRunShowsEveryStage()
    {
        var r = CliRunner.Run("merge", Recipe(TwoStages), _d["out"], "--dry-run");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var lines = r.Stdout.Split('\n');
        Assert.Equal($"stage first → {_d["out.stages/first"]}", lines[0]);
        Assert.Contains($"stage (unnamed) → {_d["out"]}", lines);
        Assert.Contains("  (needs stage first, not built yet; the stage as it will run:)", lines);
        Assert.Contains($"  base_model: \"{_d["out.stages/first"]}\"", lines);
    }

    [Theory]
    [InlineData("name: x\nmerge_method: linear\nmodels: [a]\n---\nname: x\nmerge_method: linear\nmodels: [b]\n", "recipe.yml:5:1: two stages are named 'x'")]
    [InlineData("merge_method: linear\nmodels: [a]\n---\nmerge_method: linear\nmodels: [b]\n", "recipe.yml:4:1: only one stage may be unnamed")]
    [InlineData("name: x\nmerge_method: linear\nmodels: [y]\n---\nname: y\nmerge_method: linear\nmodels: [x]\n", "recipe.yml:1:1: the stages 'x', 'y' depend on each other in a cycle")]
    public void BadStagesAreRecipeErrors(string yaml, string problem)
    {
        var recipe = Recipe(yaml);
        var r = CliRunner.Run("merge", recipe, _d["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith(problem.Replace("recipe.yml", recipe), r.Stderr);
        Assert.False(Directory.Exists(_d["out"]));
    }
}
