using Mistral.Merge.Planning;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Tests.Recipes;

/// <summary>Every recipe error case, with the line and column it must name.</summary>
public sealed class RecipeErrorTests : IDisposable
{
    private readonly TempDir _d = new();

    public RecipeErrorTests()
    {
        TinyModels.Write(_d["a"], 1);
        TinyModels.Write(_d["b"], 2);
    }

    public void Dispose() => _d.Dispose();

    private const string TwoModels = "base_model: a\nmodels:\n  - model: a\n  - model: b\n";

    /// <summary>Plans the recipe and returns its problems with the path shortened to recipe.yml.</summary>
    private List<string> Problems(string yaml)
    {
        var path = TinyModels.Recipe(_d.Path, yaml);
        var e = Assert.Throws<RecipeException>(() => MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] }).Dispose());
        Assert.Equal(string.Join("\n", e.Problems), e.Message);
        return e.Problems.Select(p => p.Replace(path, "recipe.yml")).ToList();
    }

    private static void Has(List<string> problems, string start, string? contains = null)
        => Assert.True(problems.Any(p => p.StartsWith(start, StringComparison.Ordinal) && (contains == null || p.Contains(contains, StringComparison.Ordinal))),
            $"no problem starting '{start}'{(contains != null ? $" containing '{contains}'" : "")} in:\n{string.Join("\n", problems)}");

    [Fact]
    public void UnknownKeyWithSuggestion()
        => Has(Problems("merge_methd: slerp\n" + TwoModels + "parameters:\n  t: 0.5\n"),
            "recipe.yml:1:1: unknown top-level key 'merge_methd' (did you mean 'merge_method'?)");

    [Fact]
    public void UnknownNestedKeysWithSuggestion()
    {
        var p = Problems("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_rnage: [0, 2]\n    paramters: {}\n");
        Has(p, "recipe.yml:5:9: unknown key of a source 'layer_rnage' (did you mean 'layer_range'?)");
        Has(p, "recipe.yml:6:5: unknown key of a slice 'paramters' (did you mean 'parameters'?)");
    }

    [Fact]
    public void WrongType()
    {
        var p = Problems("merge_method: slerp\nbase_model: a\nmodels: a\nparameters:\n  t: 0.5\ndtype: [1]\n");
        Has(p, "recipe.yml:3:9: models must be a list of {model, parameters} entries, got a string ('a')");
        Has(p, "recipe.yml:6:8: dtype must be a string, got a list");
    }

    [Fact]
    public void WrongParameterValueType()
        => Has(Problems("merge_method: slerp\n" + TwoModels + "parameters:\n  t: abc\n"), "recipe.yml:7:6: parameter 't' must be a number, got 'abc'");

    [Fact]
    public void ALoneFilterMappingIsOneProblemNotAlsoAMissingParameter()
    {
        var p = Problems("merge_method: slerp\n" + TwoModels + "parameters:\n  t: {filter: mlp, value: 0.3}\n");
        Assert.Equal(["recipe.yml:7:6: parameter 't': a {filter, value} condition must be an entry of a list (write '- filter: ...')"], p);
    }

    [Fact]
    public void ModelStockCountsTheModelsBesideTheBase()
        => Has(Problems("merge_method: model_stock\nbase_model: a\nmodels:\n  - model: a\n  - model: b\n"),
            "recipe.yml:1:15: model_stock needs the base and at least two other models (got 1 besides the base)");

    [Fact]
    public void ATiedBaseWithAnUntiedPartnerWarnsThatThePartnersHeadIsUnused()
    {
        TinyModels.Write(_d["tied"], 3, tied: true);
        var path = TinyModels.Recipe(_d.Path, "merge_method: slerp\nbase_model: tied\nmodels:\n  - model: tied\n  - model: b\nparameters:\n  t: 0.5\n");
        using var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] });
        Assert.Contains("model 'b' has its own lm_head.weight, but 'tied' ties it to model.embed_tokens.weight; the output is tied too and that lm_head is not used", plan.Warnings);
        Assert.DoesNotContain(plan.Tasks, t => t.OutputName == "lm_head.weight");
    }

    [Fact]
    public void AMethodParameterUnderAModelIsIgnoredWithAWarning()
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n    parameters: {t: 0.9}\n  - model: b\nparameters:\n  t: 0.5\n");
        using var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] });
        Assert.Contains($"{path}:5:18: parameter 't' under a model is not used: slerp takes it under the recipe's or the slice's parameters (ignored, as mergekit does)", plan.Warnings);
    }

    [Fact]
    public void BothModelsAndSlices()
        => Has(Problems("merge_method: passthrough\nmodels:\n  - model: a\nslices:\n  - sources:\n      - model: a\n        layer_range: [0, 2]\n"),
            "recipe.yml:4:1: give either 'models' or 'slices', not both");

    [Fact]
    public void NeitherModelsNorSlices()
        => Has(Problems("merge_method: linear\n"), "recipe.yml:1:1: missing 'models' or 'slices'");

    [Fact]
    public void MissingRequiredMethodParameter()
        => Has(Problems("merge_method: slerp\n" + TwoModels), "recipe.yml:1:15: merge_method 'slerp' requires parameter 't'");

    [Fact]
    public void MissingRequiredModelParameter()
        => Has(Problems("merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: 1\n  - model: b\n"),
            "recipe.yml:6:5: model 'b' has no 'weight' parameter (required by linear)");

    [Fact]
    public void AParameterNoMethodTakesIsAnErrorWithASuggestion()
        => Has(Problems("merge_method: ties\nbase_model: a\nmodels:\n  - model: b\n    parameters:\n      weight: 1\n      densty: 0.5\n"),
            "recipe.yml:7:7: merge_method 'ties' does not take parameter 'densty' (did you mean 'density'?)");

    [Fact]
    public void AnotherMethodsParameterIsIgnoredWithOneWarningAndTheMergePlans()
    {
        // mergekit's own test recipes give weight under slerp and model_stock; mergekit ignores it.
        var path = TinyModels.Recipe(_d.Path, "merge_method: slerp\n" + TwoModels + "parameters:\n  t: 0.5\n  weight: 1\n");
        using var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] });
        Assert.Single(plan.Warnings, w => w.Contains("'weight'", StringComparison.Ordinal));
        Assert.Contains($"{path}:8:3: parameter 'weight' is not used by merge_method 'slerp' (ignored, as mergekit does; it takes t)", plan.Warnings);
        Assert.NotEmpty(plan.Tasks);
    }

    [Fact]
    public void LoneFilterMapping()
        => Has(Problems("merge_method: slerp\n" + TwoModels + "parameters:\n  t: {filter: mlp, value: 0.5}\n"),
            "recipe.yml:7:6: parameter 't': a {filter, value} condition must be an entry of a list");

    [Fact]
    public void FilterWithoutFallbackNamesTheUnmatchedTensor()
        => Has(Problems("merge_method: slerp\n" + TwoModels + "parameters:\n  t:\n    - filter: self_attn\n      value: 0.5\n"),
            "recipe.yml:7:3: parameter 't' has no value for tensor 'model.embed_tokens.weight'");

    [Fact]
    public void BadLayerRange()
    {
        var p = Problems("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [2, 1]\n  - sources:\n      - model: b\n        layer_range: [0]\n");
        Has(p, "recipe.yml:5:22: layer_range must be a list of two integers [start, end) with 0 <= start < end; got [2, 1]");
        Has(p, "recipe.yml:8:22: layer_range must be a list of two integers");
        Has(Problems("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n        layer_range: [0, 9]\n"),
            "recipe.yml:5:22: layer_range [0, 9) is beyond model 'a', which has 2 layers");
    }

    [Fact]
    public void MissingModelSaysWhereItLooked()
    {
        var p = Problems("merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: org/missing@v1\nparameters:\n  t: 0.5\n");
        Has(p, "recipe.yml:5:12: model 'org/missing@v1' not found: looked in local folder " + _d["org/missing@v1"],
            "Hugging Face cache " + _d["hub/models--org--missing/snapshots/v1"]);
    }

    [Fact]
    public void UnknownMethodWithSuggestion()
        => Has(Problems("merge_method: slerpp\n" + TwoModels), "recipe.yml:1:15: unknown merge_method 'slerpp' (did you mean 'slerp'?)");

    [Theory]
    [InlineData("\"\"")]
    [InlineData("'  '")]
    public void AnEmptyMethodNameIsOneProblemNotACrash(string value)
    {
        // merge_method: "" planned no method and no problem, and the merge command died on the null plan (found by
        // tests/reliability/fuzz.py).
        var problems = Problems($"merge_method: {value}\n" + TwoModels);
        Assert.Equal(["recipe.yml:1:15: merge_method is empty: name a merge method (see 'mistral-merge methods')"], problems);
        var recipe = TinyModels.Recipe(_d.Path, $"merge_method: {value}\n" + TwoModels);
        var r = CliRunner.Run("merge", recipe, _d["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal([$"{recipe}:1:15: merge_method is empty: name a merge method (see 'mistral-merge methods')", $"error: 1 problem in {recipe}; nothing was written"],
            r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(Directory.Exists(_d["out"]));
    }

    [Fact]
    public void SyntaxErrorHasPosition()
        => Has(Problems("merge_method: slerp\nmodels: [a\n"), "recipe.yml:", "YAML syntax error");

    [Theory]
    [InlineData("torch.float16", DType.F16)]
    [InlineData("torch.bfloat16", DType.BF16)]
    [InlineData("float32", DType.F32)]
    public void TorchDtypeSpellingsAreAccepted(string dtype, DType expected)
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: slerp\n" + TwoModels + "parameters:\n  t: 0.5\ndtype: " + dtype + "\n");
        using var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] });
        Assert.All(plan.Tasks, t => Assert.Equal(expected, t.OutDType));
    }

    [Fact]
    public void AllProblemsAtOnce()
    {
        var p = Problems("merge_method: ties\nbase_model: a\nmodels:\n  - model: b\n    parameters:\n      wieght: 1\n  - model: nothere\n    parameters: {weight: 1}\ndtype: bf17\n");
        Has(p, "recipe.yml:4:5: model 'b' has no 'weight' parameter");
        Has(p, "recipe.yml:6:7: merge_method 'ties' does not take parameter 'wieght' (did you mean 'weight'?)");
        Has(p, "recipe.yml:7:12: model 'nothere' not found");
        Has(p, "recipe.yml:9:8: dtype: unknown dtype 'bf17'");
        Assert.Equal(4, p.Count);
    }

    [Fact]
    public void TUnderAModelsParametersIsSilentlyIgnored()
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\n    parameters:\n      t: 0.9\nparameters:\n  t: 0.25\n");
        using var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] });
        Assert.All(plan.Tasks, t => Assert.Equal(0.25, t.MethodTask.Global.ValueOf(t.Method.Spec.Find("t")!)));
    }

    [Fact]
    public void CliPrintsEveryProblemOnItsOwnLineAndWritesNothing()
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: slerp\n" + TwoModels + "parameters:\n  t: abc\ndtyp: bfloat16\n");
        var r = CliRunner.Run("merge", path, _d["out"]);
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith(path + ":7:6: parameter 't' must be a number, got 'abc'", lines[0]);
        Assert.StartsWith(path + ":8:1: unknown top-level key 'dtyp' (did you mean 'dtype'?)", lines[1]);
        Assert.StartsWith("error: 2 problems in", lines[^1]);
        Assert.False(Directory.Exists(_d["out"]));
    }

    [Fact]
    public void CliRecipeProblemsComeBeforeTheOutputFolderCheckAndTheFolderIsUntouched()
    {
        Directory.CreateDirectory(_d["kept"]);
        File.WriteAllText(Path.Combine(_d["kept"], "mine.txt"), "mine");
        var path = TinyModels.Recipe(_d.Path, "merge_method: slerp\n" + TwoModels + "parameters:\n  t: abc\n");
        var r = CliRunner.Run("merge", path, _d["kept"]);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith(path + ":7:6: parameter 't' must be a number, got 'abc'", r.Stderr);
        var good = TinyModels.Recipe(_d.Path, "merge_method: slerp\n" + TwoModels + "parameters:\n  t: 0.5\n");
        var again = CliRunner.Run("merge", good, _d["kept"]);
        Assert.Equal(1, again.ExitCode);
        Assert.Equal($"error: {_d["kept"]}: folder exists and is not empty (use --force to replace it)", again.Stderr.TrimEnd('\n'));
        Assert.Equal(["mine.txt"], Directory.GetFiles(_d["kept"]).Select(Path.GetFileName));
    }

    private const string TiesB = "base_model: a\nmodels:\n  - model: a\n  - model: b\n    parameters:\n      weight: 1\n";

    [Theory]
    [InlineData("  t: 5\n", "recipe.yml:7:6: parameter 't' must be in [0, 1] (0 gives the base model, 1 the other one), got 5")]
    [InlineData("  t: -1\n", "recipe.yml:7:6: parameter 't' must be in [0, 1] (0 gives the base model, 1 the other one), got -1")]
    [InlineData("  t: [0, 0.5, 1.5]\n", "recipe.yml:7:15: parameter 't' must be in [0, 1] (0 gives the base model, 1 the other one), got 1.5")]
    [InlineData("  t:\n    - filter: mlp\n      value: [0, 2]\n    - value: 0.5\n", "recipe.yml:9:18: parameter 't' must be in [0, 1] (0 gives the base model, 1 the other one), got 2")]
    public void SlerpTOutOfRangeAtEveryAnchor(string parameter, string problem)
        => Assert.Equal([problem], Problems("merge_method: slerp\n" + TwoModels + "parameters:\n" + parameter));

    [Theory]
    [InlineData("ties", "      density: -0.5\n", "recipe.yml:8:16: parameter 'density' must be in (0, 1] (the fraction of each task vector kept; ties cannot keep nothing), got -0.5")]
    [InlineData("ties", "      density: 0\n", "recipe.yml:8:16: parameter 'density' must be in (0, 1] (the fraction of each task vector kept; ties cannot keep nothing), got 0")]
    [InlineData("dare_ties", "      density: 2\n", "recipe.yml:8:16: parameter 'density' must be in [0, 1] (the fraction of each task vector kept), got 2")]
    [InlineData("dare_linear", "      density: [0.5, -0.5]\n", "recipe.yml:8:22: parameter 'density' must be in [0, 1] (the fraction of each task vector kept), got -0.5")]
    [InlineData("breadcrumbs", "      gamma: -0.1\n", "recipe.yml:8:14: parameter 'gamma' must be in [0, 1] (the fraction of the largest differences removed), got -0.1")]
    [InlineData("della", "      density: 0.5\n      epsilon: -0.1\n", "recipe.yml:9:16: parameter 'epsilon' must be in [0, 1] (keep probabilities range over density ± epsilon), got -0.1")]
    [InlineData("della", "      density: 0.5\n      epsilon: 0.6\n", "recipe.yml:5:5: della: density ± epsilon must lie in (0, 1) (model 'b', tensor 'model.embed_tokens.weight': density 0.5, epsilon 0.6)")]
    public void TaskVectorParametersOutOfRange(string method, string parameters, string problem)
        => Assert.Equal([problem], Problems($"merge_method: {method}\n" + TiesB + parameters));

    [Fact]
    public void AcceptedButSuspiciousValuesAreWarnings()
    {
        var path = TinyModels.Recipe(_d.Path, "merge_method: dare_ties\n" + TiesB + "      density: 0\nparameters:\n  lambda: 0\n");
        using var plan = MergePlanner.PlanFile(path, new PlanOptions { HubCache = _d["hub"] });
        Assert.Equal([$"{path}:10:11: parameter 'lambda' is 0: the output is the base model", $"{path}:8:16: parameter 'density' is 0: the model's task vector is dropped entirely"],
            plan.Warnings.Where(w => w.Contains("parameter")));
    }
}
