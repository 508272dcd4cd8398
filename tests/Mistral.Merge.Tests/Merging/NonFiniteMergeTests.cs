using System.Text.RegularExpressions;
using Mistral.Merge.Models;
using Mistral.Merge.Tests.IO;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Merging;

/// <summary>Merges that would write NaN or Inf fail with one line naming the tensor and the cause, and write nothing.</summary>
public sealed class NonFiniteMergeTests : IDisposable
{
    private const string Up = "model.layers.0.mlp.up_proj.weight";
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    public NonFiniteMergeTests()
    {
        TinyModels.Write(_d["a"], 1);
        TinyModels.Write(_d["b"], 2);
        TinyModels.Write(_d["c"], 3);
    }

    private CliRunner.Result Merge(string yaml, params string[] extra)
        => CliRunner.Run(["merge", TinyModels.Recipe(_d.Path, yaml), _d["out"], .. extra]);

    /// <summary>stderr without the progress lines ("[###...] n/m tensors ...").</summary>
    private static string[] Messages(CliRunner.Result r) => r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("merge: ", StringComparison.Ordinal)).ToArray();

    /// <summary>Exit 1, exactly <paramref name="line"/> on stderr, and no output folder (nor a leftover partial one).</summary>
    private void AssertFails(CliRunner.Result r, string line)
    {
        Assert.Equal(1, r.ExitCode);
        Assert.Equal([line], Messages(r));
        Assert.False(Directory.Exists(_d["out"]));
        Assert.DoesNotContain(Directory.GetDirectories(_d.Path), p => Path.GetFileName(p).StartsWith(".out.partial", StringComparison.Ordinal));
    }

    private static string NanInput(string model) => $"error: {Up}: non-finite value in input model '{model}' tensor {Up}; nothing was written (--allow-nonfinite writes it anyway)";

    [Fact]
    public void LinearZeroWeightsAreAnAllZeroWeightSumAtPlanning()
    {
        var yaml = "merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 0}\n  - model: b\n    parameters: {weight: 0}\n";
        var r = Merge(yaml);
        var path = _d["recipe.yml"];
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"{path}:3:5: linear: all-zero weight sum for tensor 'model.embed_tokens.weight' (a 0, b 0); normalize would divide by 0 (set normalize: false or change the weights)\n"
                     + $"error: 1 problem in {path}; nothing was written", r.Stderr.TrimEnd('\n'));
        Assert.False(Directory.Exists(_d["out"]));
    }

    [Fact]
    public void LinearOneAndMinusOneIsAnAllZeroWeightSumWhereverTheGradientCancels()
    {
        // Two layers: t = 0 (embeddings, layer 0) gives a weight of 2, t = 1 (layer 1, final norm) gives 1.
        var yaml = "merge_method: linear\nmodels:\n  - model: a\n    parameters:\n      weight: [2, 1]\n  - model: b\n    parameters:\n      weight: -1\n";
        var r = Merge(yaml);
        Assert.Equal(1, r.ExitCode);
        Assert.Matches($@"^{Regex.Escape(_d["recipe.yml"])}:3:5: linear: all-zero weight sum for tensor 'model\.layers\.1\.[a-z_.]+' \(a 1, b -1\); normalize would divide by 0", r.Stderr);
        Assert.False(Directory.Exists(_d["out"]));
        Assert.Equal(0, Merge(yaml.Replace("[2, 1]", "[2, 3]")).ExitCode);
    }

    [Fact]
    public void LinearOverflowIsNamed()
    {
        PlantedValues.Plant(_d["a"], Up, 5, 3e38f);
        PlantedValues.Plant(_d["b"], Up, 5, 3e38f);
        var r = Merge("merge_method: linear\nparameters: {normalize: false}\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\n");
        AssertFails(r, $"error: {Up}: result overflowed float32; nothing was written (--allow-nonfinite writes it anyway)");
    }

    [Fact]
    public void F16OutputOverflowIsNamed()
    {
        PlantedValues.Plant(_d["a"], Up, 7, 1e5f);
        var r = Merge("merge_method: linear\nout_dtype: float16\nmodels:\n  - model: a\n    parameters: {weight: 1}\n");
        AssertFails(r, $"error: {Up}: result overflowed float16 (finite in float32, beyond the output dtype's range); nothing was written (--allow-nonfinite writes it anyway)");
    }

    [Theory]
    [InlineData("merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\nparameters: {t: 0.5}\n")]
    [InlineData("merge_method: ties\nbase_model: a\nmodels:\n  - model: b\n    parameters: {weight: 1, density: 0.5}\n  - model: c\n    parameters: {weight: 1, density: 0.5}\n")]
    [InlineData("merge_method: dare_ties\nbase_model: a\nmodels:\n  - model: b\n    parameters: {weight: 1, density: 0.01}\n  - model: c\n    parameters: {weight: 1, density: 0.5}\n")]
    [InlineData("merge_method: model_stock\nbase_model: a\nmodels:\n  - model: b\n  - model: c\n")]
    [InlineData("merge_method: passthrough\nmodels:\n  - model: b\n")]
    public void NanInOneInputIsNamedEvenWhereTheMethodWouldDropIt(string yaml)
    {
        // A small value: ties and dare would drop it (magnitude / a density of 0.01) and write a finite model.
        PlantedValues.Plant(_d["b"], Up, 2, float.NaN);
        AssertFails(Merge(yaml), NanInput("b"));
    }

    [Fact]
    public void InfInTheBaseInputIsNamed()
    {
        PlantedValues.Plant(_d["a"], Up, 0, float.NegativeInfinity);
        AssertFails(Merge("merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\nparameters: {t: 0.5}\n"), NanInput("a"));
    }

    [Fact]
    public void AllowNonFiniteWritesWithOneWarningPerTensor()
    {
        PlantedValues.Plant(_d["b"], Up, 2, float.NaN);
        PlantedValues.Plant(_d["b"], Up, 3, float.NaN);
        var r = Merge("merge_method: slerp\nbase_model: a\nmodels:\n  - model: a\n  - model: b\nparameters: {t: 0.5}\n", "--allow-nonfinite", "--threads", "1");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal([$"warning: {Up}: non-finite value in input model 'b' tensor {Up} (written anyway: --allow-nonfinite)"],
            Messages(r));
        using var m = ModelFolder.Open(_d["out"]);
        Assert.All(m.ReadSingle(Up), v => Assert.True(float.IsNaN(v))); // slerp spreads one NaN over the whole tensor
        Assert.DoesNotContain(m.ReadSingle("model.layers.0.mlp.down_proj.weight"), float.IsNaN);
    }
}
