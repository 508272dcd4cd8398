using Mistral.Merge.Models;
using Mistral.Merge.Planning;
using Mistral.Merge.Recipes;
using Mistral.Merge.Tests.Merging;

namespace Mistral.Merge.Tests.Recipes;

/// <summary>
/// The methods of "More methods" through recipes: merged end to end by the CLI on tiny synthesized models and compared
/// tensor by tensor with <see cref="Reference"/>, and their recipe errors with the line and column they name.
/// </summary>
public sealed class MoreMethodsRecipeTests : IDisposable
{
    private readonly TempDir _d = new();

    public MoreMethodsRecipeTests()
    {
        TinyModels.Write(_d["a"], 21);
        TinyModels.Write(_d["b"], 22);
        TinyModels.Write(_d["c"], 23);
    }

    public void Dispose() => _d.Dispose();

    private const string Three = "base_model: a\nmodels:\n  - model: a\n  - model: b\n  - model: c\n";
    private const string Two = "base_model: a\nmodels:\n  - model: a\n  - model: b\n";

    private static readonly Dictionary<string, string> Recipes = new()
    {
        ["sce"] = "merge_method: sce\n" + Three + "parameters:\n  select_topk: 0.5\n",
        ["multislerp"] = "merge_method: multislerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\n    parameters: {weight: 0.4}\n  - model: c\n    parameters: {weight: 0.6}\n",
        ["karcher"] = "merge_method: karcher\nmodels:\n  - model: a\n  - model: b\n  - model: c\nparameters:\n  max_iter: 5\n",
        ["nearswap"] = "merge_method: nearswap\n" + Two + "parameters:\n  t: 0.01\n",
        ["arcee_fusion"] = "merge_method: arcee_fusion\n" + Two,
        ["ram"] = "merge_method: ram\n" + Three,
        ["ramplus_tl"] = "merge_method: ramplus_tl\n" + Three + "parameters:\n  r: 0.2\n  alpha: 0.5\n",
    };

    private static float[] Expected(string method, float[][] x, long[] shape) => method switch
    {
        "sce" => Reference.Sce(x[0], [x[1], x[2]], 0.5),
        "multislerp" => Reference.MultiSlerp(x[0], [x[1], x[2]], [0.4, 0.6], normalize: true),
        "karcher" => Reference.Karcher(x, 5, 1e-5),
        "nearswap" => Reference.NearSwap(x[0], x[1], 0.01),
        "arcee_fusion" => Reference.ArceeFusion(x[0], x[1], (int)(x[0].Length / shape[^1]), (int)shape[^1]),
        "ram" => Reference.Ram(x[0], [x[1], x[2]], 1e-5, plus: false),
        _ => Reference.Ram(x[0], [x[1], x[2]], 1e-5, plus: true, r: 0.2, alpha: 0.5),
    };

    [Theory]
    [InlineData("sce")]
    [InlineData("multislerp")]
    [InlineData("karcher")]
    [InlineData("nearswap")]
    [InlineData("arcee_fusion")]
    [InlineData("ram")]
    [InlineData("ramplus_tl")]
    public void EachNewMethodMergesTinyModelsThroughTheCliAsTheReferenceDoes(string method)
    {
        var recipe = TinyModels.Recipe(_d.Path, Recipes[method]);
        var r = CliRunner.Run("merge", recipe, _d["out"], "--threads", "2");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var merged = ModelFolder.Open(_d["out"]);
        var inputs = new[] { "a", "b", "c" }.Select(n => ModelFolder.Open(_d[n])).ToArray();
        try
        {
            Assert.Equal(inputs[0].TensorNames, merged.TensorNames);
            foreach (var name in merged.TensorNames)
            {
                var x = inputs.Select(m => m.ReadSingle(name)).ToArray();
                var expected = Expected(method, x, merged.Info(name).Shape);
                MethodHarness.Near(expected, merged.ReadSingle(name), 1e-6f);
            }
        }
        finally
        {
            foreach (var m in inputs) m.Dispose();
        }
    }

    private List<string> Problems(string yaml)
    {
        var path = TinyModels.Recipe(_d.Path, yaml);
        var e = Assert.Throws<RecipeException>(() => MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] }).Dispose());
        return e.Problems.Select(p => p.Replace(path, "recipe.yml")).ToList();
    }

    private static void Has(List<string> problems, string line)
        => Assert.True(problems.Contains(line), $"no problem '{line}' in:\n{string.Join("\n", problems)}");

    [Theory]
    [InlineData("sce")]
    [InlineData("nearswap")]
    [InlineData("arcee_fusion")]
    [InlineData("ram")]
    [InlineData("ramplus_tl")]
    public void MethodsThatNeedABaseRefuseARecipeWithoutOne(string method)
    {
        var extra = method == "nearswap" ? "parameters:\n  t: 0.5\n" : "";
        Has(Problems($"merge_method: {method}\nmodels:\n  - model: a\n  - model: b\n" + extra), $"recipe.yml:1:15: merge_method '{method}' needs a base_model");
    }

    [Fact]
    public void MultiSlerpAndKarcherNeedNoBase()
    {
        foreach (var yaml in new[] { "merge_method: karcher\nmodels:\n  - model: a\n  - model: b\n", "merge_method: multislerp\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\n" })
        {
            using var plan = MergePlanner.PlanFile(TinyModels.Recipe(_d.Path, yaml), new PlanOptions { HubCache = _d["hub"] });
            Assert.All(plan.Tasks, t => Assert.Equal(-1, t.MethodTask.BaseIndex));
        }
    }

    [Fact]
    public void NearSwapAndArceeFusionTakeExactlyOneModelBesidesTheBase()
    {
        Has(Problems("merge_method: nearswap\n" + Three + "parameters:\n  t: 0.5\n"), "recipe.yml:1:15: nearswap takes the base and exactly one other model (got 2 besides the base)");
        Has(Problems("merge_method: arcee_fusion\n" + Three), "recipe.yml:1:15: arcee_fusion takes the base and exactly one other model (got 2 besides the base)");
        Has(Problems("merge_method: nearswap\n" + Two), "recipe.yml:1:15: merge_method 'nearswap' requires parameter 't' (set it under parameters:)");
    }

    [Fact]
    public void ParameterRangesAndWholeIterationCounts()
    {
        Has(Problems("merge_method: karcher\n" + Three + "parameters:\n  max_iter: -1\n"), "recipe.yml:8:13: parameter 'max_iter' must be ≥ 0 (a whole number of iterations), got -1");
        Has(Problems("merge_method: karcher\n" + Three + "parameters:\n  tol: -0.1\n"), "recipe.yml:8:8: parameter 'tol' must be ≥ 0, got -0.1");
        Has(Problems("merge_method: karcher\n" + Three + "parameters:\n  max_iter: 2.5\n"), "recipe.yml:4:5: karcher: max_iter must be a whole number, got 2.5 (tensor 'model.embed_tokens.weight')");
        Has(Problems("merge_method: multislerp\n" + Two + "  - model: c\n    parameters: {weight: 1}\nparameters:\n  eps: -1\n"), "recipe.yml:9:8: parameter 'eps' must be ≥ 0, got -1");
        Has(Problems("merge_method: sce\n" + Three + "parameters:\n  select_topk: yes please\n"), "recipe.yml:8:16: parameter 'select_topk' must be a number, got 'yes please'");
    }

    [Fact]
    public void MultiSlerpNeedsWeightsThatDoNotSumToZero()
    {
        Has(Problems("merge_method: multislerp\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n"), "recipe.yml:5:5: model 'b' has no 'weight' parameter (required by multislerp)");
        var p = Problems("merge_method: multislerp\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: -1}\n");
        Assert.Contains(p, l => l.StartsWith("recipe.yml:3:5: multislerp: all-zero weight sum for tensor", StringComparison.Ordinal));
    }

    [Fact]
    public void NewMethodsRefuseEmbeddingsOfDifferentSizesButArceeFusionCropsThem()
    {
        TinyModels.Write(_d["big"], 24, vocab: 20);
        var p = Problems("merge_method: ram\nbase_model: a\nmodels:\n  - model: a\n  - model: big\n");
        Assert.Contains(p, l => l.StartsWith("recipe.yml:4:5: tensor 'model.embed_tokens.weight': shapes differ between models", StringComparison.Ordinal));
        using var plan = MergePlanner.PlanFile(TinyModels.Recipe(_d.Path, "merge_method: arcee_fusion\nbase_model: a\nmodels:\n  - model: a\n  - model: big\n"), new PlanOptions { HubCache = _d["hub"] });
        Assert.Equal([16L, 8L], plan.Tasks.Single(t => t.OutputName == "model.embed_tokens.weight").Shape);
    }

    [Fact]
    public void AParameterTheNewMethodDoesNotUseIsAWarning()
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: karcher\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n");
        using var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] });
        Assert.Contains($"{path}:4:18: parameter 'weight' is not used by merge_method 'karcher' (ignored, as mergekit does; it takes max_iter, tol)", plan.Warnings);
    }

    [Fact]
    public void MergekitsModelStockRecipeWithWeightsMergesWithOneWarningPerIgnoredKey()
    {
        // mergekit's own test recipes give model_stock a weight per model, which it ignores.
        var recipe = TinyModels.Recipe(_d.Path, "merge_method: model_stock\n" + Three.Replace("  - model: b\n", "  - model: b\n    parameters:\n      weight: 0.5\n", StringComparison.Ordinal));
        var r = CliRunner.Run("merge", recipe, _d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var warnings = r.Stderr.Split('\n').Where(l => l.Contains("parameter 'weight' is not used", StringComparison.Ordinal)).ToList();
        Assert.Equal($"{recipe}:7:7: parameter 'weight' is not used by merge_method 'model_stock' (ignored, as mergekit does; it takes filter_wise)", Assert.Single(warnings).Trim().Replace("warning: ", "", StringComparison.Ordinal));
        Assert.True(File.Exists(Path.Combine(_d["out"], "config.json")));
    }

    [Fact]
    public void AcceptedValuesThatGiveTheBaseAreWarnings()
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: nearswap\n" + Two + "parameters:\n  t: 0\n");
        using (var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] }))
            Assert.Contains($"{path}:7:6: parameter 't' is 0: the output is the base model", plan.Warnings);
        path = TinyModels.Recipe(_d.Path, "merge_method: sce\n" + Three + "parameters:\n  select_topk: -0.5\n");
        using (var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] }))
            Assert.Contains($"{path}:8:16: parameter 'select_topk' is -0.5: every task vector is zeroed: the output is the base model", plan.Warnings);
    }
}
