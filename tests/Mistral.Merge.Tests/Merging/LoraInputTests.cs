using System.Text.Json.Nodes;
using Mistral.Merge.Models;
using Mistral.Merge.Tests.Models;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Merging;

/// <summary><c>model+adapter</c> recipe inputs: the PEFT update applied while streaming, checked against W + s·B·A computed here.</summary>
public sealed class LoraInputTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private const string Up = "model.layers.0.mlp.up_proj"; // [intermediate 12, hidden 8] in TinyModels

    private static readonly float[] A = [1, 0, -1, 0.5f, 0, 2, 0, 0.25f];                      // [r 1, in 8]
    private static readonly float[] B = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];                // [out 12, r 1]

    private static void WriteAdapter(string dir, params (string Tensor, long[] Shape, float[] Values)[] tensors)
        => PeftAdapter.Write(dir, new JsonObject { ["r"] = 1, ["lora_alpha"] = 2, ["target_modules"] = new JsonArray("up_proj") }, tensors);

    private (int Exit, string Stderr) Merge(string model)
    {
        var recipe = TinyModels.Recipe(_d.Path, $"merge_method: linear\nmodels:\n  - model: {model}\n    parameters: {{weight: 1}}\ndtype: float32\n");
        var r = CliRunner.Run("merge", recipe, _d["out"]);
        return (r.ExitCode, r.Stderr);
    }

    [Fact]
    public void TheAdaptedModelIsTheBasePlusScaleTimesBTimesAAndSavedModulesReplaceTheirTensors()
    {
        TinyModels.Write(_d["a"], 1);
        var lmHead = Enumerable.Range(0, 16 * 8).Select(i => (float)i).ToArray();
        WriteAdapter(_d["lora"], (Up + ".lora_A.weight", [1, 8], A), (Up + ".lora_B.weight", [12, 1], B), ("lm_head.weight", [16, 8], lmHead));
        var (exit, err) = Merge("a+lora");
        Assert.True(exit == 0, err);
        using var a = ModelFolder.Open(_d["a"]);
        using var o = ModelFolder.Open(_d["out"]);
        var w = a.ReadSingle(Up + ".weight");
        var expected = new float[w.Length];
        for (int r = 0; r < 12; r++)
            for (int c = 0; c < 8; c++) expected[r * 8 + c] = w[r * 8 + c] + 2f * (B[r] * A[c]); // s = lora_alpha / r = 2
        Assert.Equal(expected, o.ReadSingle(Up + ".weight"));
        Assert.Equal(lmHead, o.ReadSingle("lm_head.weight"));                                 // modules_to_save
        Assert.Equal(a.ReadSingle("model.layers.0.mlp.down_proj.weight"), o.ReadSingle("model.layers.0.mlp.down_proj.weight")); // untouched
    }

    [Fact]
    public void BadAdapterReferencesAreRecipeErrors()
    {
        TinyModels.Write(_d["a"], 1);
        Assert.Contains("adapter 'nowhere' not found", Merge("a+nowhere").Stderr);
        WriteAdapter(_d["wide"], (Up + ".lora_A.weight", [1, 9], [.. A, 0]), (Up + ".lora_B.weight", [12, 1], B));
        Assert.Contains($"the adapter's update of '{Up}.weight' is [12, 9], the base tensor is [12, 8]", Merge("a+wide").Stderr);
        Assert.Contains("a LoRA reference is MODEL+ADAPTER", Merge("a+b+c").Stderr);
        Assert.False(Directory.Exists(_d["out"]));
    }
}
