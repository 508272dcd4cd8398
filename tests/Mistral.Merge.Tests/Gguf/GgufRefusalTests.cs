using System.Text.Json.Nodes;
using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>Bad inputs and existing outputs: one line, a non-zero exit, nothing half-written.</summary>
public sealed class GgufRefusalTests : IDisposable
{
    private readonly TempDir _d = new();

    [Fact]
    public void AnExistingFileIsRefusedWithoutForceAndReplacedWithIt()
    {
        var m = GgufExport.Synth(_d["m"], "mistral");
        File.WriteAllText(_d["out.gguf"], "mine");
        CliRunner.AssertOneLineError(CliRunner.Run("export-gguf", m, _d["out.gguf"]), "file exists (use --force to replace it)");
        Assert.Equal("mine", File.ReadAllText(_d["out.gguf"]));
        var g = GgufExport.Run(m, _d["out.gguf"], "--force");
        Assert.Equal("llama", GgufExport.Value(g, "general.architecture"));
        Assert.Equal(["m", "out.gguf"], Directory.EnumerateFileSystemEntries(_d.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void AnArchitectureWithoutADeclarationIsAOneLineError()
    {
        var m = GgufExport.Synth(_d["m"], "llama");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(m, "config.json")))!.AsObject();
        config["architectures"] = new JsonArray("GPT2LMHeadModel");
        File.WriteAllText(Path.Combine(m, "config.json"), config.ToJsonString());
        CliRunner.AssertOneLineError(CliRunner.Run("export-gguf", m, _d["o.gguf"]), "architecture 'GPT2LMHeadModel' cannot be exported to GGUF");
        Assert.False(File.Exists(_d["o.gguf"]));
    }

    [Fact]
    public void AnUnknownTypeIsAUsageError()
    {
        var r = CliRunner.Run("export-gguf", _d["m"], _d["o.gguf"], "--type", "q5_k");
        CliRunner.AssertUsageError(r, "export-gguf", "--type: expected f32, f16, bf16, q8_0 or q4_0, got 'q5_k'");
        CliRunner.AssertUsageError(CliRunner.Run("export-gguf", _d["m"], _d["o.gguf"], "--out-shard-size", "lots"), "export-gguf", "--out-shard-size: 'lots' is not a size");
        CliRunner.AssertUsageError(CliRunner.Run("export-gguf", _d["m"]), "export-gguf", "OUT");
    }

    [Fact]
    public void AnOutputThatIsNotAGgufFileNameOrIsAFolderIsRefused()
    {
        var m = GgufExport.Synth(_d["m"], "mistral");
        CliRunner.AssertOneLineError(CliRunner.Run("export-gguf", m, _d["o.bin"]), "the output must be a .gguf file name");
        Directory.CreateDirectory(_d["dir.gguf"]);
        CliRunner.AssertOneLineError(CliRunner.Run("export-gguf", m, _d["dir.gguf"], "--force"), "exists and is a folder");
    }

    [Fact]
    public void ATensorWithoutAGgufNameStopsTheExportBeforeAnythingIsWritten()
    {
        var m = GgufExport.Synth(_d["m"], "mistral", "--layers-override", "1");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(m, "config.json")))!.AsObject();
        config["num_hidden_layers"] = 0; // layer 0's tensors are now outside the declared layers
        File.WriteAllText(Path.Combine(m, "config.json"), config.ToJsonString());
        var r = CliRunner.Run("export-gguf", m, _d["o.gguf"]);
        CliRunner.AssertOneLineError(r, "has no GGUF name in the mistral declaration");
        Assert.Equal(["m"], Directory.EnumerateFileSystemEntries(_d.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void AModelWithoutATokenizerIsRefused()
    {
        var m = GgufExport.Synth(_d["m"], "mistral");
        File.Delete(Path.Combine(m, "tokenizer.model"));
        CliRunner.AssertOneLineError(CliRunner.Run("export-gguf", m, _d["o.gguf"]), "no tokenizer.model or tokenizer.json");
        Assert.False(File.Exists(_d["o.gguf"]));
    }

    [Fact]
    public void ANonGgufFileIsAOneLineReaderError()
    {
        File.WriteAllText(_d["x.gguf"], "GGML and more bytes here");
        var e = Assert.Throws<MergeException>(() => GgufReader.Open(_d["x.gguf"]));
        Assert.Equal($"{_d["x.gguf"]}: not a GGUF file (bad magic)", e.Message);
        File.WriteAllBytes(_d["t.gguf"], [0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0, 1]);
        Assert.Equal($"{_d["t.gguf"]}: truncated GGUF file", Assert.Throws<MergeException>(() => GgufReader.Open(_d["t.gguf"])).Message);
    }

    [Fact]
    public void TheHeaderIsLaidOutAsGgufVersion3()
    {
        var bytes = GgufHeader.Build([("general.architecture", GgufValue.Str("llama")), ("k", GgufValue.U32(7))],
            [new GgufTensorInfo("t", [32, 2], GgmlType.Q8_0)], 32, out var placed, out var dataLength);
        Assert.Equal(
            "47475546" + "03000000" + "0100000000000000" + "0200000000000000"                        // magic, version 3, 1 tensor, 2 keys
            + "1400000000000000" + Convert.ToHexString("general.architecture"u8) + "08000000" + "0500000000000000" + Convert.ToHexString("llama"u8)
            + "0100000000000000" + "6B" + "04000000" + "07000000"                                          // "k": u32 7
            + "0100000000000000" + "74" + "02000000" + "2000000000000000" + "0200000000000000" + "08000000" + "0000000000000000" // t: [32, 2] q8_0 at 0
            + "00", Convert.ToHexString(bytes));                                                            // 127 bytes, padded to 32 × 4
        Assert.Equal(128, bytes.Length);
        Assert.Equal(96, dataLength); // 2 blocks of 34 bytes, padded to 32
        Assert.Equal(0, placed[0].Offset);
    }

    public void Dispose() => _d.Dispose();
}
