using System.Text.Json;
using Mistral.Merge.Models;
using Mistral.Merge.Tests.IO;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Cli;

/// <summary><c>inspect --check</c>: exact NaN/±Inf counts and all-zero flags of planted tensors, exit 1 on NaN/Inf.</summary>
public sealed class InspectCheckTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private const string Up = "model.layers.0.mlp.up_proj.weight", Down = "model.layers.1.mlp.down_proj.weight", Norm = "model.layers.1.input_layernorm.weight";

    private string Planted(DType dtype)
    {
        var m = TinyModels.Write(_d["m"], 4, dtype: dtype);
        PlantedValues.Plant(m, Up, 0, float.NaN);
        PlantedValues.Plant(m, Up, 50, float.NaN);
        PlantedValues.Plant(m, Up, 95, float.PositiveInfinity);
        PlantedValues.Plant(m, Down, 3, float.NegativeInfinity);
        PlantedValues.Fill(m, Norm, 0f);
        return m;
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    public void TextCountsExactlyAndExitsOne(DType dtype)
    {
        var m = Planted(dtype);
        var r = CliRunner.Run("inspect", m, "--check");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {m}: 2 tensors hold NaN or Inf values", r.Stderr.TrimEnd('\n'));
        string Row(string name) => r.Stdout.Split('\n').Single(l => l.StartsWith(name + " ", StringComparison.Ordinal));
        Assert.Matches(@"model\.safetensors\s+2\s+1\s+0\s+no$", Row(Up));
        Assert.Matches(@"model\.safetensors\s+0\s+0\s+1\s+no$", Row(Down));
        Assert.Matches(@"model\.safetensors\s+0\s+0\s+0\s+yes$", Row(Norm));
        Assert.Matches(@"model\.safetensors\s+0\s+0\s+0\s+no$", Row("model.embed_tokens.weight"));
        using var f = ModelFolder.Open(m);
        Assert.Contains($"check:        {f.TensorNames.Count} tensors scanned, 2 with NaN/Inf (NaN 2, +Inf 1, -Inf 1), 1 all-zero", r.Stdout);
    }

    [Fact]
    public void JsonHasCountsPerTensorAndASummary()
    {
        var m = Planted(DType.BF16);
        var r = CliRunner.Run("inspect", m, "--check", "--json");
        Assert.Equal(1, r.ExitCode);
        using var doc = JsonDocument.Parse(r.Stdout);
        var tensors = doc.RootElement.GetProperty("tensors").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
        Assert.Equal(2, tensors[Up].GetProperty("nan").GetInt64());
        Assert.Equal(1, tensors[Up].GetProperty("pos_inf").GetInt64());
        Assert.Equal(1, tensors[Down].GetProperty("neg_inf").GetInt64());
        Assert.True(tensors[Norm].GetProperty("all_zero").GetBoolean());
        Assert.False(tensors[Up].GetProperty("all_zero").GetBoolean());
        var check = doc.RootElement.GetProperty("check");
        Assert.Equal(2, check.GetProperty("tensors_with_nonfinite").GetInt32());
        Assert.Equal(2, check.GetProperty("nan").GetInt64());
        Assert.Equal(1, check.GetProperty("all_zero_tensors").GetInt32());
    }

    [Fact]
    public void CleanModelExitsZero()
    {
        var m = TinyModels.Write(_d["clean"], 5);
        var r = CliRunner.Run("inspect", m, "--check");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("tensors scanned, no NaN or Inf, 0 all-zero", r.Stdout);
        Assert.DoesNotContain("nan", CliRunner.Run("inspect", m).Stdout); // without --check: the plain table
    }
}
