using System.Text.Json;
using Mistral.Merge.Models;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Cli;

/// <summary>--json on the commands that write models: stdout is exactly one JSON document with the inputs and the version.</summary>
public sealed class JsonOutputTests
{
    private static JsonElement One(CliRunner.Result r)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout); // throws on anything after the document
        Assert.Equal(Mistral.Merge.Cli.CommonOptions.Version, doc.RootElement.GetProperty("version").GetString());
        return doc.RootElement.Clone();
    }

    [Fact]
    public void SynthConvertAndMergePrintOneSelfDescribingDocument()
    {
        using var tmp = new TempDir();
        var s = One(CliRunner.Run("synth", tmp["tiny-a"], "--arch", "mistral", "--hidden", "64", "--layers", "2", "--heads", "8", "--kv-heads", "4",
            "--intermediate", "172", "--vocab", "512", "--seed", "5", "--json"));
        Assert.Equal(5UL, s.GetProperty("seed").GetUInt64());
        Assert.Equal(Path.GetFullPath(tmp["tiny-a"]).TrimEnd('/'), s.GetProperty("out").GetString()!.TrimEnd('/'));
        Assert.True(s.GetProperty("parameters").GetInt64() > 0);

        var c = One(CliRunner.Run("convert", tmp["tiny-a"], tmp["tiny-b"], "--dtype", "float32", "--json"));
        Assert.Equal(tmp["tiny-a"], c.GetProperty("model").GetString());
        Assert.Equal("float32", c.GetProperty("dtype").GetString());
        Assert.Equal(s.GetProperty("tensors").GetInt32(), c.GetProperty("tensors").GetInt32());

        File.Copy(Path.Combine(SharedFixtures.RepoRoot, "examples", "quickstart-slerp.yml"), tmp["r.yml"]);
        var plan = One(CliRunner.Run("merge", tmp["r.yml"], "--dry-run", "--json"));
        Assert.Equal("slerp", plan.GetProperty("method").GetString());
        Assert.Equal(2, plan.GetProperty("models").GetArrayLength());
        Assert.Equal(s.GetProperty("tensors").GetInt32(), plan.GetProperty("tensors").GetArrayLength());

        var m = One(CliRunner.Run("merge", tmp["r.yml"], tmp["out"], "--json"));
        Assert.Equal(tmp["r.yml"], m.GetProperty("recipe").GetString());
        using var merged = ModelFolder.Open(tmp["out"]);
        Assert.Equal(merged.TensorNames.Count, m.GetProperty("tensors").GetInt32());
    }

    [Fact]
    public void MethodsPrintsEveryMethodWithTypedScopedParameters()
    {
        var doc = One(CliRunner.Run("methods", "--json"));
        var methods = doc.GetProperty("methods").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Equal(Mistral.Merge.Planning.MergeMethods.Names.Order(), methods.Keys.Order());
        var density = methods["ties"].GetProperty("parameters").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "density");
        Assert.Equal("per_model", density.GetProperty("scope").GetString());
        Assert.Equal("number", density.GetProperty("type").GetString());
        Assert.Equal(1.0, density.GetProperty("default").GetDouble());
        Assert.Equal("in (0, 1]", density.GetProperty("range").GetString());
        Assert.True(methods["dare_ties"].GetProperty("random_masks").GetBoolean());
    }
}
