using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Models;

public class SynthesizerTests
{
    private static ModelConfig Tiny(string arch = "mistral") => arch == "mixtral"
        ? Synthesizer.MakeConfig("mixtral", 64, 2, 8, 4, 172, 512, experts: 4, expertsPerToken: 2)
        : Synthesizer.MakeConfig(arch, 64, 2, 8, 4, 172, 512);

    [Fact]
    public void DenseModelHasHfNamesShapesAndConfig()
    {
        using var tmp = new TempDir();
        Synthesizer.Write(tmp["m"], Tiny(), new SynthOptions { Seed = 7 });
        using var m = ModelFolder.Open(tmp["m"]);
        Assert.Equal(Architecture.Mistral, m.Config!.Architecture);
        Assert.Equal(2, m.Config.NumHiddenLayers);
        Assert.Equal("bfloat16", m.Config.TorchDtype);
        Assert.Equal(2 + 2 * 9 + 1, m.TensorNames.Count);
        Assert.Equal([512L, 64], m.Info(TensorNames.Embed).Shape);
        Assert.Equal([64L, 64], m.Info("model.layers.1.self_attn.q_proj.weight").Shape);
        Assert.Equal([32L, 64], m.Info("model.layers.1.self_attn.k_proj.weight").Shape);
        Assert.Equal([32L, 64], m.Info("model.layers.0.self_attn.v_proj.weight").Shape);
        Assert.Equal([64L, 64], m.Info("model.layers.0.self_attn.o_proj.weight").Shape);
        Assert.Equal([172L, 64], m.Info("model.layers.0.mlp.gate_proj.weight").Shape);
        Assert.Equal([172L, 64], m.Info("model.layers.0.mlp.up_proj.weight").Shape);
        Assert.Equal([64L, 172], m.Info("model.layers.0.mlp.down_proj.weight").Shape);
        Assert.Equal([64L], m.Info("model.layers.0.input_layernorm.weight").Shape);
        Assert.Equal([64L], m.Info("model.layers.0.post_attention_layernorm.weight").Shape);
        Assert.Equal([512L, 64], m.Info(TensorNames.LmHead).Shape);
        Assert.All(m.ReadSingle(TensorNames.FinalNorm), v => Assert.Equal(1f, v));
        Assert.All(m.ReadSingle("model.layers.1.input_layernorm.weight"), v => Assert.Equal(1f, v));
        Assert.All(m.TensorNames, n => Assert.Equal(DType.BF16, m.Info(n).DType));
    }

    [Fact]
    public void MixtralHasRouterAndExperts()
    {
        using var tmp = new TempDir();
        Synthesizer.Write(tmp["m"], Tiny("mixtral"), new SynthOptions { DType = DType.F32 });
        using var m = ModelFolder.Open(tmp["m"]);
        Assert.Equal(Architecture.Mixtral, m.Config!.Architecture);
        Assert.Equal(4, m.Config.NumLocalExperts);
        Assert.Equal(2, m.Config.NumExpertsPerTok);
        Assert.Equal([4L, 64], m.Info("model.layers.0.block_sparse_moe.gate.weight").Shape);
        Assert.Equal([172L, 64], m.Info("model.layers.1.block_sparse_moe.experts.3.w1.weight").Shape);
        Assert.Equal([64L, 172], m.Info("model.layers.1.block_sparse_moe.experts.3.w2.weight").Shape);
        Assert.Equal([172L, 64], m.Info("model.layers.1.block_sparse_moe.experts.3.w3.weight").Shape);
        Assert.False(m.Contains("model.layers.0.mlp.gate_proj.weight"));
        Assert.Equal(2 + 2 * (4 + 1 + 12 + 2) + 1, m.TensorNames.Count);
        Assert.Equal("float32", m.Config.TorchDtype);
    }

    [Fact]
    public void SameSeedSameBytesOtherSeedOtherBytes()
    {
        using var tmp = new TempDir();
        Synthesizer.Write(tmp["a"], Tiny(), new SynthOptions { Seed = 3 });
        Synthesizer.Write(tmp["b"], Tiny(), new SynthOptions { Seed = 3, Writer = new WriterOptions { ShardSize = 100_000 } });
        Synthesizer.Write(tmp["c"], Tiny(), new SynthOptions { Seed = 4 });
        using var a = ModelFolder.Open(tmp["a"]);
        using var b = ModelFolder.Open(tmp["b"]);
        using var c = ModelFolder.Open(tmp["c"]);
        Assert.True(b.Files.Count > 1);
        foreach (var n in a.TensorNames)
            Assert.True(a.GetBytes(n).SequenceEqual(b.GetBytes(n)), n);
        Assert.False(a.GetBytes(TensorNames.Embed).SequenceEqual(c.GetBytes(TensorNames.Embed)));
    }

    [Fact]
    public void ValuesAreNormalWithStd002AndChunkIndependent()
    {
        var key = Synthesizer.TensorKey(0, "x");
        var whole = new float[1 << 18];
        Synthesizer.Normal(key, 0, whole);
        double sum = 0, sq = 0;
        foreach (var v in whole) { sum += v; sq += (double)v * v; }
        double mean = sum / whole.Length, std = Math.Sqrt(sq / whole.Length - mean * mean);
        Assert.InRange(mean, -2e-4, 2e-4);
        Assert.InRange(std, 0.0198, 0.0202);
        var part = new float[1000];
        Synthesizer.Normal(key, 12345, part);
        Assert.Equal(whole.AsSpan(12345, 1000).ToArray(), part);
    }

    [Fact]
    public void SimdGeneratorEqualsTheScalarDefinition()
    {
        var key = Synthesizer.TensorKey(42, "model.layers.0.mlp.up_proj.weight");
        for (int n = 0; n < 70; n++)
        {
            var v = new float[n];
            Synthesizer.Normal(key, 1000 + n, v);
            for (int i = 0; i < n; i++)
                Assert.Equal(Synthesizer.NormalScalar(key + (ulong)(1000 + n + i + 1) * 0x9E3779B97F4A7C15), v[i]);
        }
        // Pinned bits (computed independently from the definition with Python integers): the generator is
        // part of the synth format (same seed, same bytes, on every machine and SIMD width).
        var first = new float[20];
        Synthesizer.Normal(Synthesizer.TensorKey(0, "x"), 0, first);
        Assert.Equal([0x397732C3u, 0xBA0E951Au, 0x3CE72582u], first[..3].Select(BitConverter.SingleToUInt32Bits));
    }

    [Fact]
    public void LayersOverrideAndTokenizerFiles()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["tokenizer.model"], "tok");
        File.WriteAllText(tmp["tokenizer_config.json"], "{}");
        Synthesizer.Write(tmp["m"], Tiny(), new SynthOptions { LayersOverride = 1, DType = DType.F16, TokenizerPath = tmp["tokenizer.model"] });
        using var m = ModelFolder.Open(tmp["m"]);
        Assert.Equal(1, m.Config!.NumHiddenLayers);
        Assert.Equal("float16", m.Config.TorchDtype);
        Assert.False(m.Contains("model.layers.1.input_layernorm.weight"));
        Assert.Equal("tok", File.ReadAllText(Path.Combine(tmp["m"], "tokenizer.model")));
        Assert.True(File.Exists(Path.Combine(tmp["m"], "tokenizer_config.json")));
        Assert.False(File.Exists(Path.Combine(tmp["m"], "special_tokens_map.json")));
    }

    [Theory]
    [InlineData("gpt2", 64, 8, 4, "--arch: unknown architecture 'gpt2'")]
    [InlineData("mistral", 65, 8, 4, "--hidden 65 is not divisible by --heads 8")]
    [InlineData("mistral", 64, 8, 3, "--heads 8 is not divisible by --kv-heads 3")]
    [InlineData("mistral", 0, 8, 4, "--hidden: must be a positive integer, got 0")]
    public void BadDimensionsAreRefused(string arch, int hidden, int heads, int kv, string message)
    {
        var e = Assert.Throws<MergeException>(() => Synthesizer.MakeConfig(arch, hidden, 2, heads, kv, 172, 512));
        Assert.StartsWith(message, e.Message);
    }

    [Fact]
    public void MixtralNeedsExperts()
    {
        Assert.Throws<MergeException>(() => Synthesizer.MakeConfig("mixtral", 64, 2, 8, 4, 172, 512));
        Assert.Throws<MergeException>(() => Synthesizer.MakeConfig("mixtral", 64, 2, 8, 4, 172, 512, 4, 5));
        Assert.Throws<MergeException>(() => Synthesizer.MakeConfig("mistral", 64, 2, 8, 4, 172, 512, 4, 2));
    }
}
