using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.IO.Pytorch;

/// <summary>Every command reads a .bin folder exactly as it reads the same tensors from safetensors.</summary>
public sealed class PytorchBinCommandTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private static void AssertSameTensors(string expectedFolder, string actualFolder)
    {
        using var a = ModelFolder.Open(expectedFolder);
        using var b = ModelFolder.Open(actualFolder);
        Assert.Equal(a.TensorNames, b.TensorNames);
        foreach (var n in a.TensorNames)
        {
            Assert.Equal(a.Info(n).DType, b.Info(n).DType);
            Assert.Equal(a.Info(n).ShapeText, b.Info(n).ShapeText);
            Assert.True(a.GetBytes(n).SequenceEqual(b.GetBytes(n)), $"tensor '{n}' differs");
        }
    }

    [Theory]
    [InlineData("llama-zip")]
    [InlineData("llama-legacy")]
    [InlineData("llama-sharded")]
    public void ConvertOfABinFolderGivesByteIdenticalTensors(string folder)
    {
        var r = CliRunner.Run("convert", PytorchFixtures.PathOf(folder), _d["out"], "--quiet");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.True(File.Exists(_d["out/model.safetensors"]));
        AssertSameTensors(PytorchFixtures.PathOf("llama-reference"), _d["out"]);
        Assert.Equal(File.ReadAllText(PytorchFixtures.PathOf("llama-reference", "config.json")), File.ReadAllText(_d["out/config.json"]));
    }

    [Fact]
    public void ConvertToFloat32OfABinFolderEqualsConvertingTheReference()
    {
        Assert.Equal(0, CliRunner.Run("convert", PytorchFixtures.PathOf("llama-legacy"), _d["bin"], "--dtype", "float32", "--quiet").ExitCode);
        Assert.Equal(0, CliRunner.Run("convert", PytorchFixtures.PathOf("llama-reference"), _d["ref"], "--dtype", "float32", "--quiet").ExitCode);
        AssertSameTensors(_d["ref"], _d["bin"]);
    }

    [Theory]
    [InlineData("llama-zip", "single file, PyTorch zip format")]
    [InlineData("llama-sharded", "sharded (2 files, index), PyTorch .bin")]
    public void InspectOfABinFolderMatchesTheReference(string folder, string layout)
    {
        var bin = CliRunner.Run("inspect", PytorchFixtures.PathOf(folder), "--json", "--check");
        var reference = CliRunner.Run("inspect", PytorchFixtures.PathOf("llama-reference"), "--json", "--check");
        Assert.True(bin.ExitCode == 0, bin.Stderr);
        var b = JsonNode.Parse(bin.Stdout)!.AsObject();
        var r = JsonNode.Parse(reference.Stdout)!.AsObject();
        Assert.Equal(layout, (string)b["layout"]!);
        foreach (var key in new[] { "architecture", "parameters", "total_bytes", "dtypes", "layers", "check" })
            Assert.Equal(r[key]!.ToJsonString(), b[key]!.ToJsonString());
        Assert.Equal(r["tensors"]!.AsArray().Select(t => (string)t!["name"]! + t["dtype"] + t["shape"]!.ToJsonString()),
                     b["tensors"]!.AsArray().Select(t => (string)t!["name"]! + t["dtype"] + t["shape"]!.ToJsonString()));
    }

    [Theory]
    [InlineData("llama-zip")]
    [InlineData("llama-legacy")]
    public void PerplexityAndGenerateOfABinFolderEqualTheReference(string folder)
    {
        var bin = PytorchFixtures.CopyFolder(folder, _d["bin"], tokenizer: true);
        var reference = PytorchFixtures.CopyFolder("llama-reference", _d["ref"], tokenizer: true);
        File.WriteAllText(_d["text.txt"], "The quick brown fox jumps over the lazy dog. Pickles are not weights.\n");
        string[] Ppl(string m) => ["perplexity", m, "--text", _d["text.txt"], "--ctx", "16", "--json", "--quiet"];
        var pb = CliRunner.Run(Ppl(bin));
        var pr = CliRunner.Run(Ppl(reference));
        Assert.True(pb.ExitCode == 0, pb.Stderr);
        var jb = JsonNode.Parse(pb.Stdout)!;
        var jr = JsonNode.Parse(pr.Stdout)!;
        Assert.Equal((double)jr["perplexity"]!, (double)jb["perplexity"]!);
        Assert.Equal((double)jr["nll"]!, (double)jb["nll"]!);
        Assert.True((int)jb["tokens"]! > 20);
        string[] Gen(string m) => ["generate", m, "--prompt", "Once", "--temperature", "0", "--max-new-tokens", "8", "--json"];
        var gb = CliRunner.Run(Gen(bin));
        Assert.True(gb.ExitCode == 0, gb.Stderr);
        Assert.Equal(JsonNode.Parse(CliRunner.Run(Gen(reference)).Stdout)!["ids"]!.ToJsonString(), JsonNode.Parse(gb.Stdout)!["ids"]!.ToJsonString());
    }

    [Fact]
    public void AMergeOfBinInputsEqualsTheSameMergeOfTheReference()
    {
        string Recipe(string name, string a, string b) => TinyModels.Recipe(_d.Path,
            $"merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {{weight: 0.3}}\n  - model: {b}\n    parameters: {{weight: 0.7}}\ndtype: float32\n", name);
        var reference = PytorchFixtures.PathOf("llama-reference");
        var rb = CliRunner.Run("merge", Recipe("bin.yml", PytorchFixtures.PathOf("llama-zip"), PytorchFixtures.PathOf("llama-sharded")), _d["bin-out"], "--quiet");
        Assert.True(rb.ExitCode == 0, rb.Stderr);
        var copy = PytorchFixtures.CopyFolder("llama-reference", _d["ref2"]); // a model may be listed once
        Assert.Equal(0, CliRunner.Run("merge", Recipe("ref.yml", reference, copy), _d["ref-out"], "--quiet").ExitCode);
        AssertSameTensors(_d["ref-out"], _d["bin-out"]);
    }
}
