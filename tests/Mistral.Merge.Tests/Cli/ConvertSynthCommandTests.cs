using System.Text.Json;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Cli;

public class ConvertSynthCommandTests
{
    private static string[] Tiny(string outDir, params string[] extra) =>
        ["synth", outDir, "--arch", "mistral", "--hidden", "64", "--layers", "2", "--heads", "8", "--kv-heads", "4", "--intermediate", "172", "--vocab", "512", .. extra];

    private static void AssertOneLineError(CliRunner.Result r, string expected)
    {
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: " + expected, r.Stderr.TrimEnd('\n', '\r'));
        Assert.DoesNotContain(" at ", r.Stderr); // no stack trace
    }

    [Fact]
    public void SynthThenInspectAndConvertRoundTrip()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run(Tiny(tmp["m"], "--dtype", "float32", "--seed", "42"));
        Assert.Equal(0, r.ExitCode);
        Assert.StartsWith($"wrote {tmp["m"]}: 21 tensors, 156,480 parameters", r.Stdout);

        var i = CliRunner.Run("inspect", tmp["m"], "--json");
        Assert.Equal(0, i.ExitCode);
        using (var doc = JsonDocument.Parse(i.Stdout))
        {
            var root = doc.RootElement;
            Assert.Equal("MistralForCausalLM", root.GetProperty("architecture").GetString());
            Assert.Equal(156_480, root.GetProperty("parameters").GetInt64());
            Assert.Equal(2, root.GetProperty("layers").GetInt32());
            Assert.Equal(21, root.GetProperty("tensors").GetArrayLength());
            Assert.Equal(156_480, root.GetProperty("dtypes").GetProperty("F32").GetInt64());
            Assert.Equal("model.safetensors", root.GetProperty("shards")[0].GetProperty("file").GetString());
        }

        // F32 → BF16 (sharded) → F32: every value is the RNE rounding of the original.
        Assert.Equal(0, CliRunner.Run("convert", tmp["m"], tmp["b"], "--dtype", "bfloat16", "--out-shard-size", "100KB").ExitCode);
        Assert.Equal(0, CliRunner.Run("convert", tmp["b"], tmp["f"], "--dtype", "float32").ExitCode);
        using var m = ModelFolder.Open(tmp["m"]);
        using var b = ModelFolder.Open(tmp["b"]);
        using var f = ModelFolder.Open(tmp["f"]);
        Assert.True(b.Files.Count > 1);
        Assert.True(File.Exists(Path.Combine(tmp["b"], CheckpointWriter.IndexFileName)));
        Assert.Equal("bfloat16", b.Config!.TorchDtype);
        Assert.Equal("float32", f.Config!.TorchDtype);
        Assert.Single(f.Files);
        foreach (var n in m.TensorNames)
        {
            var orig = m.ReadSingle(n);
            var back = f.ReadSingle(n);
            for (int k = 0; k < orig.Length; k++)
                Assert.Equal((uint)BFloat16.RoundToBits(orig[k]) << 16, BitConverter.SingleToUInt32Bits(back[k]));
            Assert.Equal(DType.BF16, b.Info(n).DType);
        }
    }

    [Fact]
    public void SynthWithTheBuiltinTokenizerGivesAModelThatTokenizesAndGenerates()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run(["synth", tmp["m"], "--arch", "mistral", "--hidden", "64", "--layers", "2", "--heads", "8", "--kv-heads", "4",
            "--intermediate", "172", "--vocab", "448", "--tokenizer", "byte-level"]).ExitCode);
        Assert.True(File.Exists(Path.Combine(tmp["m"], "tokenizer.model")));
        var t = CliRunner.Run("tokenize", tmp["m"], "hi", "--json");
        Assert.Equal(0, t.ExitCode);
        using (var doc = JsonDocument.Parse(t.Stdout))
            Assert.Equal(1, doc.RootElement.GetProperty("ids")[0].GetInt32()); // BOS from tokenizer_config.json
        var g = CliRunner.Run("generate", tmp["m"], "--prompt", "hi", "--max-new-tokens", "4", "--temperature", "0");
        Assert.True(g.ExitCode == 0, g.Stderr);

        AssertOneLineError(CliRunner.Run(["synth", tmp["small"], "--arch", "mistral", "--hidden", "64", "--layers", "2", "--heads", "8",
                "--intermediate", "172", "--vocab", "256", "--tokenizer", "byte-level"]),
            "--tokenizer byte-level: the built-in tokenizer has 448 pieces, more than the model's vocabulary of 256; use --vocab 448 or more");
        Assert.False(Directory.Exists(tmp["small"]));
    }

    [Fact]
    public void ConvertCopiesNonFloatTensorsAndSideFilesAndReshardsWithoutDType()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["in"]);
        File.WriteAllBytes(tmp["in/model.safetensors"], IO.RawSafetensors.Valid()); // F32, BF16, I8
        File.WriteAllText(tmp["in/tokenizer.json"], "{\"tok\":1}");
        File.WriteAllText(tmp["in/generation_config.json"], "{}");
        File.WriteAllText(tmp["in/notes.txt"], "not copied");
        var r = CliRunner.Run("convert", tmp["in"], tmp["out"], "--dtype", "fp16", "--out-shard-size", "10");
        Assert.Equal(0, r.ExitCode);
        using var o = ModelFolder.Open(tmp["out"]);
        Assert.Equal(3, o.Files.Count);
        Assert.Equal(DType.F16, o.Info("a").DType);
        Assert.Equal(DType.F16, o.Info("b").DType);
        Assert.Equal(DType.I8, o.Info("c").DType);
        var raw = IO.RawSafetensors.Parse(IO.RawSafetensors.Valid());
        Assert.Equal(raw["c"].Bytes, o.GetBytes("c").ToArray());
        var a = o.ReadSingle("a");
        for (int k = 0; k < 6; k++) Assert.Equal((float)(Half)BitConverter.ToSingle(raw["a"].Bytes, 4 * k), a[k]);
        Assert.Equal("{\"tok\":1}", File.ReadAllText(Path.Combine(tmp["out"], "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(tmp["out"], "generation_config.json")));
        Assert.False(File.Exists(Path.Combine(tmp["out"], "notes.txt")));
        Assert.False(File.Exists(Path.Combine(tmp["out"], "config.json"))); // none in the input

        // No --dtype: bytes unchanged, one shard.
        Assert.Equal(0, CliRunner.Run("convert", tmp["in"], tmp["same"]).ExitCode);
        using var s = ModelFolder.Open(tmp["same"]);
        Assert.Equal(36, s.TotalBytes);
        foreach (var n in new[] { "a", "b", "c" }) Assert.Equal(raw[n].Bytes, s.GetBytes(n).ToArray());
    }

    [FixtureFact]
    public void ConvertingTheF32FixtureReproducesTheBf16FixtureByteForByte()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("convert", SharedFixtures.PathOf("stories260k"), tmp["out"], "--dtype", "bfloat16");
        Assert.Equal(0, r.ExitCode);
        using var ours = ModelFolder.Open(tmp["out"]);
        var theirs = IO.RawSafetensors.Parse(File.ReadAllBytes(SharedFixtures.PathOf("stories260k-bf16", "model.safetensors")));
        Assert.Equal(47, ours.TensorNames.Count);
        foreach (var n in ours.TensorNames) Assert.Equal(theirs[n].Bytes, ours.GetBytes(n).ToArray());
        Assert.Equal(File.ReadAllText(SharedFixtures.PathOf("stories260k-bf16", "config.json")), File.ReadAllText(Path.Combine(tmp["out"], "config.json")));
        Assert.Equal(File.ReadAllBytes(SharedFixtures.PathOf("stories260k", "tokenizer.model")), File.ReadAllBytes(Path.Combine(tmp["out"], "tokenizer.model")));
        Assert.True(File.Exists(Path.Combine(tmp["out"], "tokenizer_config.json")));
    }

    [Fact]
    public void ConvertRefusesItsOwnInputAndItsParents()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run(Tiny(tmp["m"])).ExitCode);
        var before = File.ReadAllBytes(Path.Combine(tmp["m"], "model.safetensors"));
        AssertOneLineError(CliRunner.Run("convert", tmp["m"], tmp["m"], "--force"),
            $"{tmp["m"]}: the output folder would overwrite the input model {tmp["m"]}; choose another folder");
        AssertOneLineError(CliRunner.Run("convert", tmp["m"], tmp.Path + "/", "--force"),
            $"{tmp.Path}/: the output folder would overwrite the input model {tmp["m"]}; choose another folder");
        File.CreateSymbolicLink(tmp["link"], tmp["m"]);
        AssertOneLineError(CliRunner.Run("convert", tmp["m"], tmp["link"], "--force"),
            $"{tmp["link"]}: the output folder would overwrite the input model {tmp["m"]}; choose another folder");
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(tmp["m"], "model.safetensors")));
    }

    [Fact]
    public void ConvertAndSynthErrorsAreOneLine()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run(Tiny(tmp["m"])).ExitCode);
        CliRunner.AssertUsageError(CliRunner.Run("convert", tmp["m"], tmp["o"], "--dtype", "int8"), "convert", "--dtype: unknown dtype 'int8' (expected bfloat16, float16 or float32)");
        CliRunner.AssertUsageError(CliRunner.Run("convert", tmp["m"], tmp["o"], "--out-shard-size", "lots"), "convert", "--out-shard-size: 'lots' is not a size (examples: 5000000000, 500MB, 2GB)");
        AssertOneLineError(CliRunner.Run("convert", tmp["nope"], tmp["o"]), $"{tmp["nope"]}: model folder not found");
        Directory.CreateDirectory(tmp["o"]);
        File.WriteAllText(tmp["o/x"], "x");
        AssertOneLineError(CliRunner.Run("convert", tmp["m"], tmp["o"]), $"{tmp["o"]}: folder exists and is not empty (use --force to replace it)");
        AssertOneLineError(CliRunner.Run(Tiny(tmp["o"])), $"{tmp["o"]}: folder exists and is not empty (use --force to replace it)");
        Assert.Equal(0, CliRunner.Run("convert", tmp["m"], tmp["o"], "--force").ExitCode);
        Assert.False(File.Exists(tmp["o/x"]));

        AssertOneLineError(CliRunner.Run("synth", tmp["s"]), "synth: give --config FILE or --arch mistral|mixtral|llama|qwen2 with --hidden, --layers, --heads, --kv-heads, --intermediate and --vocab");
        AssertOneLineError(CliRunner.Run("synth", tmp["s"], "--arch", "mistral", "--hidden", "64"), "synth --arch mistral: --layers is required");
        CliRunner.AssertUsageError(CliRunner.Run(Tiny(tmp["s"], "--dtype", "int8")), "synth", "--dtype: unknown dtype 'int8' (expected bfloat16, float16 or float32)");
        AssertOneLineError(CliRunner.Run("synth", tmp["s"], "--config", tmp["none.json"]), $"--config: {tmp["none.json"]} not found");
        AssertOneLineError(CliRunner.Run("synth", tmp["s"], "--config", Path.Combine(tmp["m"], "config.json"), "--hidden", "8"),
            "synth: give either --config or --arch with dimensions, not both (use --layers-override to change the layer count)");
        AssertOneLineError(CliRunner.Run(Tiny(tmp["s"], "--tokenizer", tmp["none.model"])), $"--tokenizer: {tmp["none.model"]} not found");
        Assert.False(Directory.Exists(tmp["s"]));
        Assert.Empty(Directory.GetDirectories(tmp.Path, ".*partial*"));
        var bad = CliRunner.Run("synth", tmp["s"], "--hidden", "abc");
        Assert.NotEqual(0, bad.ExitCode); // a parse error: usage message, no stack trace
        Assert.DoesNotContain(" at ", bad.Stderr);
    }

    [FixtureFact]
    public void SynthFromTheMistral7BConfig()
    {
        using var tmp = new TempDir();
        // The real 7B config with a small vocabulary and no layers keeps this test at a few MB; the full
        // 7B shapes are checked on the plan below without writing them.
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(SharedFixtures.PathOf("mistral-7b-v0.1", "config.json")))!.AsObject();
        json["vocab_size"] = 1000;
        File.WriteAllText(tmp["config.json"], json.ToJsonString());
        var r = CliRunner.Run("synth", tmp["m"], "--config", tmp["config.json"], "--layers-override", "0",
            "--tokenizer", SharedFixtures.PathOf("mistral-7b-v0.1", "tokenizer.model"), "--out-shard-size", "10MB", "--dtype", "float32");
        Assert.Equal(0, r.ExitCode);
        using var m = ModelFolder.Open(tmp["m"]);
        Assert.Equal(0, m.Config!.NumHiddenLayers);
        Assert.Equal("float32", m.Config.TorchDtype);
        Assert.Equal(4096, m.Config.SlidingWindow);
        Assert.Equal([1000L, 4096], m.Info("model.embed_tokens.weight").Shape);
        Assert.Equal([1000L, 4096], m.Info("lm_head.weight").Shape);
        Assert.Equal(3, m.Files.Count); // 16.4 MB tensors never share a 10 MB shard
        foreach (var f in new[] { "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json" })
            Assert.Equal(File.ReadAllBytes(SharedFixtures.PathOf("mistral-7b-v0.1", f)), File.ReadAllBytes(Path.Combine(tmp["m"], f)));

        var seven = Mistral.Merge.Models.ModelConfig.Load(SharedFixtures.PathOf("mistral-7b-v0.1", "config.json"));
        var plan = Mistral.Merge.Models.Synthesizer.Plan(seven, 4, DType.BF16).ToDictionary(t => t.Name);
        Assert.Equal(39, plan.Count);
        Assert.Equal([4096L, 4096], plan["model.layers.3.self_attn.q_proj.weight"].Shape);
        Assert.Equal([1024L, 4096], plan["model.layers.3.self_attn.k_proj.weight"].Shape);
        Assert.Equal([14336L, 4096], plan["model.layers.0.mlp.up_proj.weight"].Shape);
        Assert.Equal([4096L, 14336], plan["model.layers.0.mlp.down_proj.weight"].Shape);
        Assert.Equal(1_134_596_096L, plan.Values.Sum(t => t.ElementCount));
    }

    [Fact]
    public void InspectTextShowsLayersExpertsAndShards()
    {
        using var tmp = new TempDir();
        Assert.Equal(0, CliRunner.Run("synth", tmp["m"], "--arch", "mixtral", "--hidden", "32", "--layers", "3", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "40", "--vocab", "64", "--experts", "4", "--experts-per-token", "2", "--out-shard-size", "20KB").ExitCode);
        var r = CliRunner.Run("inspect", tmp["m"]);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("architecture: MixtralForCausalLM (mixtral)", r.Stdout);
        Assert.Contains("layers:       3", r.Stdout);
        Assert.Contains("experts:      4 per layer, 2 per token", r.Stdout);
        Assert.Contains("model-00001-of-", r.Stdout);
        Assert.Contains("model.layers.2.block_sparse_moe.experts.3.w2.weight", r.Stdout);
        Assert.Contains("[32, 40]", r.Stdout);
    }

    [Fact]
    public void InspectOfACorruptFileIsOneLine()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["m"]);
        File.WriteAllBytes(tmp["m/model.safetensors"], IO.RawSafetensors.Build("{\"w\":1}", []));
        AssertOneLineError(CliRunner.Run("inspect", tmp["m"]), $"{tmp["m/model.safetensors"]}: tensor 'w': entry is not an object");
    }

    [Fact]
    public void EveryCommandHasHelp()
    {
        foreach (var c in new[] { "inspect", "convert", "synth" })
        {
            var r = CliRunner.Run(c, "--help");
            Assert.Equal(0, r.ExitCode);
            Assert.Contains("Usage:", r.Stdout);
        }
        Assert.Contains("--out-shard-size", CliRunner.Run("convert", "--help").Stdout);
        Assert.Contains("--layers-override", CliRunner.Run("synth", "--help").Stdout);
    }
}
