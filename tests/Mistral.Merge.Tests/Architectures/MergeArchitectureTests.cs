using Mistral.Merge.Inference;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Architectures;

/// <summary>Merging across architectures and shapes is refused at planning unless --allow-crimes; Qwen2 merges merge its biases.</summary>
public sealed class MergeArchitectureTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private string Synth(string name, string arch, int hidden = 32, ulong seed = 1, string dtype = "float32")
    {
        string[] args = ["synth", _d[name], "--arch", arch, "--hidden", hidden.ToString(), "--layers", "2", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "48", "--vocab", "64", "--seed", seed.ToString(), "--dtype", dtype];
        if (arch == "mixtral") args = [.. args, "--experts", "2", "--experts-per-token", "1"];
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return _d[name];
    }

    private string Linear(string a, string b)
    {
        var path = _d["recipe.yml"];
        File.WriteAllText(path, $"""
            merge_method: linear
            models:
              - model: {a}
                parameters:
                  weight: 0.5
              - model: {b}
                parameters:
                  weight: 0.5
            dtype: float32
            """);
        return path;
    }

    /// <summary>A planning refusal: exit 1, the problem on one line at the second model's recipe line, then the recipe summary.</summary>
    private static void AssertRefused(CliRunner.Result r, string fragment)
    {
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.EndsWith($"recipe.yml:6:12: {fragment}", lines[0]);
        Assert.StartsWith("error: 1 problem in ", lines[1]);
        Assert.EndsWith("recipe.yml; nothing was written", lines[1]);
    }

    [Theory]
    [InlineData("llama", "mistral", "have different architectures (LlamaForCausalLM vs MistralForCausalLM)")]
    [InlineData("qwen2", "mistral", "have different architectures (Qwen2ForCausalLM vs MistralForCausalLM)")]
    [InlineData("mistral", "mixtral", "have different architectures (MistralForCausalLM vs MixtralForCausalLM)")]
    public void DifferentArchitecturesAreRefusedInOneLine(string a, string b, string what)
    {
        Synth("a", a);
        Synth("b", b);
        var r = CliRunner.Run("merge", Linear("a", "b"), _d["out"]);
        AssertRefused(r, $"models 'a' and 'b' {what}; merging them is refused (pass --allow-crimes to merge anyway)");
        Assert.False(Directory.Exists(_d["out"]) && Directory.EnumerateFileSystemEntries(_d["out"]).Any());
    }

    [Fact]
    public void DifferentShapesAreRefusedInOneLine()
    {
        Synth("a", "mistral", hidden: 32);
        Synth("b", "mistral", hidden: 64);
        AssertRefused(CliRunner.Run("merge", Linear("a", "b"), _d["out"]),
            "models 'a' and 'b' differ in hidden_size (32 vs 64), head_dim (8 vs 16); merging them is refused (pass --allow-crimes to merge anyway)");
    }

    [Fact]
    public void AllowCrimesMergesLlamaAndMistralWithAWarning()
    {
        Synth("a", "llama", seed: 1);
        Synth("b", "mistral", seed: 2);
        var r = CliRunner.Run("merge", Linear("a", "b"), _d["out"], "--allow-crimes");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("models 'a' and 'b' have different architectures (LlamaForCausalLM vs MistralForCausalLM); merging anyway (--allow-crimes)", r.Stderr);
        using var m = ModelFolder.Open(_d["out"]);
        Assert.Same(Architecture.Llama, m.Config!.Architecture); // the config comes from the first model
    }

    [Fact]
    public void AllowCrimesDoesNotInventMissingTensors()
    {
        Synth("a", "qwen2");
        Synth("b", "mistral");
        var r = CliRunner.Run("merge", Linear("a", "b"), _d["out"], "--allow-crimes");
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("model 'b' has no tensor 'model.layers.0.self_attn.q_proj.bias'", r.Stderr);
    }

    [Fact]
    public void AConfigWithoutArchitecturesIsMatchedByModelType()
    {
        Synth("a", "mistral", seed: 1);
        Synth("b", "mistral", seed: 2);
        var cfg = Path.Combine(_d["b"], "config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(cfg))!.AsObject();
        json.Remove("architectures");
        File.WriteAllText(cfg, json.ToJsonString());
        Assert.True(CliRunner.Run("merge", Linear("a", "b"), _d["out"]).ExitCode == 0);
        json["model_type"] = "llama";
        File.WriteAllText(cfg, json.ToJsonString());
        AssertRefused(CliRunner.Run("merge", Linear("a", "b"), _d["out2"]),
            "models 'a' and 'b' have different architectures (MistralForCausalLM vs llama); merging them is refused (pass --allow-crimes to merge anyway)");
        json.Remove("model_type"); // neither key: nothing to compare, only the dimensions
        File.WriteAllText(cfg, json.ToJsonString());
        Assert.True(CliRunner.Run("merge", Linear("a", "b"), _d["out3"]).ExitCode == 0);
    }

    [Fact]
    public void TwoQwen2ModelsMergeTheirBiasesLikeAnyTensor()
    {
        Synth("a", "qwen2", seed: 1);
        Synth("b", "qwen2", seed: 2);
        var r = CliRunner.Run("merge", Linear("a", "b"), _d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var a = ModelFolder.Open(_d["a"]);
        using var b = ModelFolder.Open(_d["b"]);
        using var m = ModelFolder.Open(_d["out"]);
        Assert.Equal(a.TensorNames, m.TensorNames);
        foreach (var name in new[] { "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.k_proj.bias", "model.layers.1.self_attn.v_proj.bias" })
        {
            var x = a.ReadSingle(name);
            var y = b.ReadSingle(name);
            Assert.Equal(x.Zip(y, (p, q) => (float)(0.5 * p + 0.5 * q)).ToArray(), m.ReadSingle(name));
        }
        using var model = TransformerModel.Load(_d["out"]);
        Assert.NotNull(model.Layers[1].VBias);
        Assert.Equal(16, model.Layers[1].VBias!.Length);
    }
}
