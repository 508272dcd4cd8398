using Mistral.Merge.Inference;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Build;
using Mistral.Merge.Tests.Inference;
using Mistral.Merge.Tests.Inference.Tokenization;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Moe;

/// <summary>moe-build on synthesized dense models (no ../shared): copying, gate vectors against independent computations, bad configs.</summary>
public class MoeBuildTests
{
    private const string Tokenizer = "synthetic:sp-metaspace-first"; // 306 pieces: the models get a 320-row vocabulary

    /// <summary>base (seed 1) and experts a (seed 2), b (seed 3): 2 layers, hidden 8, intermediate 12, with the synthetic tokenizer.</summary>
    private static void Models(TempDir d)
    {
        foreach (var (name, seed) in new[] { ("base", 1UL), ("a", 2UL), ("b", 3UL) })
        {
            TinyModels.Write(d[name], seed, vocab: 320);
            HfJsonFixtures.WriteFolder(Tokenizer, d[name]);
        }
    }

    private static string Config(TempDir d, string body) => TinyModels.Recipe(d.Path, body, "moe.yml");

    private const string TwoExperts = """
        base_model: base
        experts:
          - source_model: a
            positive_prompts: ["hello world", "a b c"]
          - source_model: b
            positive_prompts: ["the end", "x"]
        """;

    private static float[] Read(string folder, string name)
    {
        using var f = ModelFolder.Open(folder);
        return f.ReadSingle(name);
    }

    private static byte[] Bytes(string folder, string name)
    {
        using var f = ModelFolder.Open(folder);
        return f.GetBytes(name).ToArray();
    }

    [Fact]
    public void UniformRandomBuildCopiesEveryTensorFromItsSourceAndDrawsRoutersFromTheSeed()
    {
        using var d = new TempDir();
        Models(d);
        Config(d, "gate_mode: uniform_random\nexperts_per_token: 1\n" + TwoExperts);
        var r = CliRunner.Run("moe-build", d["moe.yml"], d["out"], "--seed", "7");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var o = ModelFolder.Open(d["out"]);
        Assert.Equal("MixtralForCausalLM", o.Config!.ArchitectureName);
        Assert.Equal("mixtral", o.Config.ModelType);
        Assert.Equal(2, o.Config.NumLocalExperts);
        Assert.Equal(1, o.Config.NumExpertsPerTok);
        Assert.Null(o.Config.SlidingWindow);
        Assert.True(File.Exists(d["out/mergekit_moe_config.yml"]) && File.Exists(d["out/tokenizer.json"]));
        Assert.Contains("`a`", File.ReadAllText(d["out/README.md"]));
        var a = Architecture.Mistral;
        Assert.Equal(Bytes(d["base"], a.Embed), Bytes(d["out"], a.Embed));
        for (int l = 0; l < 2; l++)
        {
            foreach (var s in new[] { a.Q, a.K, a.V, a.O, a.InputNorm, a.PostAttentionNorm })
                Assert.Equal(Bytes(d["base"], a.Layer(l, s)), Bytes(d["out"], a.Layer(l, s)));
            foreach (var (e, src) in new[] { (0, "a"), (1, "b") })
                foreach (var (w, s) in new[] { ("w1", a.Gate!), ("w3", a.Up!), ("w2", a.Down!) })
                    Assert.Equal(Bytes(d[src], a.Layer(l, s)), Bytes(d["out"], MixtralLayout.ExpertTensor(l, e, w)));
            // U(−1/√8, 1/√8) from the portable generator: draw i of the stream keyed by (seed, router name)
            var router = Read(d["out"], MixtralLayout.Router(l));
            ulong key = MaskGenerator.Key(7, MixtralLayout.Router(l), 0);
            double s8 = Math.Sqrt(1.0 / 8);
            for (int i = 0; i < router.Length; i++)
                Assert.Equal((float)(MaskGenerator.Draw24(key, i) / 16777216.0 * 2 * s8 - s8), router[i]);
        }
        Assert.Equal(0, CliRunner.Run("moe-build", d["moe.yml"], d["out2"], "--seed", "7").ExitCode);
        Assert.Equal(Bytes(d["out"], MixtralLayout.Router(1)), Bytes(d["out2"], MixtralLayout.Router(1)));
        Assert.Equal(0, CliRunner.Run("moe-build", d["moe.yml"], d["out3"], "--seed", "8").ExitCode);
        Assert.NotEqual(Bytes(d["out"], MixtralLayout.Router(1)), Bytes(d["out3"], MixtralLayout.Router(1)));
    }

    [Fact]
    public void HiddenGatesAreTheNormalisedLastTokenLayerInputsOfTheReferenceForwardPass()
    {
        using var d = new TempDir();
        Models(d);
        Config(d, "gate_mode: hidden\n" + TwoExperts);
        Assert.Equal(0, CliRunner.Run("moe-build", d["moe.yml"], d["out"]).ExitCode);
        var tok = TokenizerLoader.Load(d["base"]);
        using var b = ModelFolder.Open(d["base"]);
        var reference = new ReferenceForward(b.Config!, b.ReadSingle, b.Contains);
        var prompts = new[] { new[] { "hello world", "a b c" }, new[] { "the end", "x" } };
        for (int e = 0; e < 2; e++)
        {
            var mean = new double[2][] { new double[8], new double[8] };
            foreach (var p in prompts[e])
            {
                reference.LayerInput = (l, x) => { for (int j = 0; j < 8; j++) mean[l][j] += x[^1][j] / prompts[e].Length; };
                reference.Logits(tok.Encode(p, addBos: true));
            }
            for (int l = 0; l < 2; l++)
            {
                double n = Math.Sqrt(mean[l].Sum(v => v * v));
                var router = Read(d["out"], MixtralLayout.Router(l));
                for (int j = 0; j < 8; j++) Assert.Equal(mean[l][j] / n, router[e * 8 + j], 5e-6);
            }
        }
    }

    [Fact]
    public void CheapEmbedGatesAreTheNormalisedSumOfThePromptEmbeddingsMinusTheNegativesInEveryLayer()
    {
        using var d = new TempDir();
        Models(d);
        Config(d, """
            base_model: base
            gate_mode: cheap_embed
            experts:
              - source_model: a
                positive_prompts: ["hello world", "a b c"]
                negative_prompts: ["x"]
              - source_model: b
                positive_prompts: ["the end"]
            """);
        Assert.Equal(0, CliRunner.Run("moe-build", d["moe.yml"], d["out"]).ExitCode);
        var tok = TokenizerLoader.Load(d["base"]);
        var embed = Read(d["base"], Architecture.Mistral.Embed);
        double[] Sum(params string[] ps)
        {
            var s = new double[8];
            foreach (var p in ps) foreach (var id in tok.Encode(p, addBos: true)) for (int j = 0; j < 8; j++) s[j] += embed[id * 8 + j];
            double n = Math.Sqrt(s.Sum(v => v * v));
            return [.. s.Select(v => v / n)];
        }
        var pos = Sum("hello world", "a b c");
        var neg = Sum("x");
        var e0 = pos.Zip(neg, (p, q) => p - q).ToArray();
        double n0 = Math.Sqrt(e0.Sum(v => v * v));
        var e1 = Sum("the end");
        for (int l = 0; l < 2; l++)
        {
            var router = Read(d["out"], MixtralLayout.Router(l));
            for (int j = 0; j < 8; j++)
            {
                Assert.Equal(e0[j] / n0, router[j], 5e-7);
                Assert.Equal(e1[j], router[8 + j], 5e-7);
            }
        }
    }

    [Fact]
    public void ResidualScaleMultipliesTheDownProjectionAndDtypeConvertsEveryTensor()
    {
        using var d = new TempDir();
        Models(d);
        Config(d, """
            base_model: base
            gate_mode: random
            dtype: bfloat16
            experts:
              - source_model: a
                residual_scale: 0.5
              - source_model: b
            """);
        Assert.Equal(0, CliRunner.Run("moe-build", d["moe.yml"], d["out"]).ExitCode);
        using var o = ModelFolder.Open(d["out"]);
        Assert.All(o.TensorNames, n => Assert.Equal(DType.BF16, o.Info(n).DType));
        Assert.Equal("bfloat16", o.Config!.TorchDtype);
        var a = Architecture.Mistral;
        static float Bf(float v) => BFloat16.BitsToSingle(BFloat16.RoundToBits(v));
        var down = Read(d["a"], a.Layer(1, a.Down!));
        Assert.Equal(down.Select(v => Bf(v * 0.5f)), o.ReadSingle(MixtralLayout.ExpertTensor(1, 0, "w2")));
        var gate = Read(d["a"], a.Layer(1, a.Gate!));
        Assert.Equal(gate.Select(Bf), o.ReadSingle(MixtralLayout.ExpertTensor(1, 0, "w1")));
        Assert.Equal(Read(d["b"], a.Layer(0, a.Down!)).Select(Bf), o.ReadSingle(MixtralLayout.ExpertTensor(0, 1, "w2")));
    }

    [Fact]
    public void AnExistingOutputFolderIsReplacedOnlyWithForce()
    {
        using var d = new TempDir();
        Models(d);
        Config(d, "gate_mode: random\n" + TwoExperts);
        Directory.CreateDirectory(d["out"]);
        File.WriteAllText(d["out/keep.txt"], "x");
        CliRunner.AssertOneLineError(CliRunner.Run("moe-build", d["moe.yml"], d["out"]), "not empty (use --force");
        Assert.True(File.Exists(d["out/keep.txt"]));
        Assert.Equal(0, CliRunner.Run("moe-build", d["moe.yml"], d["out"], "--force").ExitCode);
        Assert.False(File.Exists(d["out/keep.txt"]));
    }

    public static TheoryData<string, string> BadConfigs => new()
    {
        { "base_model: base\ngate_mode: hiden\nexperts:\n  - source_model: a\n    positive_prompts: [x]\n", "moe.yml:2:12: unknown gate_mode 'hiden' (did you mean 'hidden'?)" },
        { "base_model: base\nexperts:\n  - source_model: a\n  - source_model: b\n    positive_prompts: [x]\n", "moe.yml:3:5: expert 0 (a) has no positive_prompts; gate_mode hidden needs them" },
        { "base_model: base\ngate_mode: cheap_embed\nexperts:\n  - source_model: a\n    positive_prompts: [x]\n  - source_model: b\n    positive_prompts: [x]\n", "moe.yml:3:1: the positive and negative prompts are identical for all experts" },
        { "base_model: base\nexperts_per_token: 3\ngate_mode: random\nexperts:\n  - source_model: a\n  - source_model: b\n", "moe.yml:2:20: experts_per_token 3 is more than the 2 expert(s) given" },
        { "base_model: base\ngate_mode: random\nexperts:\n  - source_model: a\n  - source_model: nowhere\n", "moe.yml:5:19: expert 1 'nowhere' not found" },
        { "base_model: missing\ngate_mode: random\nexperts:\n  - source_model: a\n  - source_model: b\n", "moe.yml:1:13: base_model 'missing' not found" },
        { "base_model: base\ngate_mode: random\nexperts:\n  - source_model: a\n", "moe.yml:3:1: experts_per_token 2 (the default) is more than the 1 expert(s) given" },
        { "base_model: base\ngate_mode: random\nexperts:\n  - source_model: wide\n  - source_model: a\n", "moe.yml:4:19: expert 0 (wide): intermediate_size 16 differs from the base's 12" },
        { "base_model: base\ngate_mode: random\nexperts:\n  - source_model: llama\n  - source_model: a\n", "moe.yml:4:19: expert 0 (llama): model_type 'llama' differs from the base's 'mistral'" },
        { "base_model: base\ngate_mode: random\nshared_experts:\n  - source_model: a\nexperts:\n  - source_model: a\n  - source_model: b\n", "moe.yml:3:1: shared_experts: Mixtral output has no shared experts" },
        { "base_model: base\ngate_mode: random\narchitecture: qwen\nexperts:\n  - source_model: a\n  - source_model: b\n", "moe.yml:3:15: architecture 'qwen': moe-build writes only Mixtral" },
        { "base_model: base\ngate_mode: random\ndtype: float8\nexperts:\n  - source_model: a\n  - source_model: b\n", "moe.yml:3:8: dtype: unknown dtype 'float8'" },
        { "base_model: base\ngate_mode: random\nexpert:\n  - source_model: a\n", "moe.yml:3:1: unknown top-level key 'expert' (did you mean 'experts'?)" },
        { "base_model: base\ngate_mode: random\nexperts:\n  - source_model: a\n  - source_model: a\n", "moe.yml:3:1: all experts are the same model" },
        { "base_model: base\ngate_mode: random\nexperts:\n  - source_model: a\n    noise_scale: -1\n  - source_model: b\n", "moe.yml:5:18: noise_scale must be a number of at least 0, got '-1'" },
        { "base_model: base\nexperts: [\n", "moe.yml:3:1: YAML syntax error" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void ABadConfigIsOneLineNamingItsLineAndColumnAndWritesNothing(string yaml, string expected)
    {
        using var d = new TempDir();
        Models(d);
        Synthesizer.Write(d["wide"], Synthesizer.MakeConfig("mistral", hidden: 8, layers: 2, heads: 2, kvHeads: 1, intermediate: 16, vocab: 320), new SynthOptions { Seed = 4 });
        Synthesizer.Write(d["llama"], Synthesizer.MakeConfig("llama", hidden: 8, layers: 2, heads: 2, kvHeads: 1, intermediate: 12, vocab: 320), new SynthOptions { Seed = 5 });
        Config(d, yaml);
        var r = CliRunner.Run("moe-build", d["moe.yml"], d["out"]);
        CliRunner.AssertOneLineError(r, expected);
        Assert.False(Directory.Exists(d["out"]));
    }

    [Fact]
    public void AllExpertsTheSameModelIsBuiltWithMergekitsFlag()
    {
        using var d = new TempDir();
        Models(d);
        Config(d, "base_model: base\ngate_mode: random\nexperts:\n  - source_model: a\n  - source_model: a\n");
        Assert.Equal(0, CliRunner.Run("moe-build", d["moe.yml"], d["out"], "--i-understand-this-is-not-useful-without-training").ExitCode);
        Assert.Equal(Bytes(d["out"], MixtralLayout.ExpertTensor(0, 0, "w1")), Bytes(d["out"], MixtralLayout.ExpertTensor(0, 1, "w1")));
    }

    [Fact]
    public void LlamaBaseAndExpertsBuildAMixtralWhoseForwardPassMatchesTheReference()
    {
        using var d = new TempDir();
        foreach (var (name, seed) in new[] { ("base", 1UL), ("a", 2UL), ("b", 3UL) })
            Synthesizer.Write(d[name], Synthesizer.MakeConfig("llama", hidden: 8, layers: 2, heads: 2, kvHeads: 1, intermediate: 12, vocab: 16), new SynthOptions { Seed = seed });
        Config(d, "gate_mode: random\n" + TwoExperts);
        Assert.Equal(0, CliRunner.Run("moe-build", d["moe.yml"], d["out"]).ExitCode);
        using (var f = ModelFolder.Open(d["out"]))
        {
            var m = new MixtralLayout(f);
            Assert.Equal((2, 2, 12), (m.Layers, m.Experts, m.Intermediate));
            Assert.Equal("mixtral", f.Config!.ModelType);
        }
        using var model = TransformerModel.Load(d["out"]);
        Assert.True(model.Shape.IsMoe);
        using var cpu = new CpuBackend(model, 1);
        using var cache = cpu.CreateCache(3);
        var logits = new float[16];
        cpu.Forward([1, 5, 7], [0, 1, 2], cache, logits);
        using var o = ModelFolder.Open(d["out"]);
        var expected = new ReferenceForward(o.Config!, o.ReadSingle, o.Contains).Logits([1, 5, 7])[^1];
        for (int v = 0; v < 16; v++) Assert.Equal(expected[v], logits[v], 1e-4);
    }
}
