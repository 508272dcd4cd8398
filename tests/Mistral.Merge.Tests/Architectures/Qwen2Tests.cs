using System.Text.Json.Nodes;
using Mistral.Merge.Inference;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Tests.Inference;

namespace Mistral.Merge.Tests.Architectures;

/// <summary>Qwen2, the architecture added by declaration only: q/k/v biases in synth, the CPU forward pass and merges.</summary>
public sealed class Qwen2Tests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private static readonly int[] Tokens = ForwardTests.Tokens;

    [Theory]
    [InlineData(DType.F32, false)]
    [InlineData(DType.BF16, true)]
    public void ForwardWithQkvBiasesMatchesTheDoubleReference(DType dtype, bool tie)
    {
        var m = new TinyModel { Arch = "qwen2", DType = dtype, Tie = tie }.Init(17);
        m.Write(_d["m"]);
        m.RoundToDType();
        var logits = ForwardTests.RunAll(_d["m"], Tokens);
        ForwardTests.AssertClose(ReferenceForward.Logits(m, Tokens), logits, m.Vocab, 2e-4);
        // the biases matter: the same weights without them give other logits
        var plain = new TinyModel { Arch = "qwen2", DType = dtype, Tie = tie }.Init(17);
        foreach (var n in plain.Tensors.Keys.Where(n => n.EndsWith(".bias", StringComparison.Ordinal)).ToList()) plain.Tensors.Remove(n);
        plain.RoundToDType();
        var without = ReferenceForward.Logits(plain, Tokens);
        Assert.True(Math.Abs(without[^1][5] - logits[(Tokens.Length - 1) * m.Vocab + 5]) > 1e-2);
    }

    [Fact]
    public void CachedDecodeWithBiasesEqualsFullRecompute()
    {
        var m = new TinyModel { Arch = "qwen2" }.Init(19);
        m.Write(_d["m"]);
        var full = ForwardTests.RunAll(_d["m"], Tokens);
        ForwardTests.AssertClose(full, ForwardTests.RunDecode(_d["m"], Tokens, Tokens.Length, prefill: 5), 1e-4);
    }

    [Fact]
    public void ZeroBiasesGiveExactlyTheLlamaLogits()
    {
        var q = new TinyModel { Arch = "qwen2" }.Init(23);
        foreach (var n in q.Tensors.Keys.Where(n => n.EndsWith(".bias", StringComparison.Ordinal)).ToList()) Array.Clear(q.Tensors[n].Data);
        q.Write(_d["q"]);
        var llama = new TinyModel { Arch = "llama" };          // the same weights, without the bias tensors
        foreach (var (name, t) in q.Tensors.Where(t => !t.Key.EndsWith(".bias", StringComparison.Ordinal))) llama.Tensors[name] = t;
        llama.Write(_d["l"]);
        Assert.Equal(ForwardTests.RunAll(_d["l"], Tokens), ForwardTests.RunAll(_d["q"], Tokens));
    }

    [Fact]
    public void AMissingBiasIsOneLineNamingTheTensor()
    {
        var m = new TinyModel { Arch = "qwen2" }.Init(3);
        m.Tensors.Remove("model.layers.1.self_attn.k_proj.bias");
        m.Write(_d["m"]);
        var e = Assert.Throws<MergeException>(() => TransformerModel.Load(_d["m"]).Dispose());
        Assert.Contains("model has no tensor 'model.layers.1.self_attn.k_proj.bias'", e.Message);
    }

    [Fact]
    public void ASlidingWindowOnSomeLayersIsRefused()
    {
        var m = new TinyModel { Arch = "qwen2" }.Init(3);
        var cfg = m.Config();
        cfg["use_sliding_window"] = true;
        cfg["sliding_window"] = 8;
        m.Write(_d["m"], cfg);
        var e = Assert.Throws<MergeException>(() => TransformerModel.Load(_d["m"]).Dispose());
        Assert.EndsWith("config.json: 'use_sliding_window': true (a window on some layers only) is not supported by the built-in forward pass", e.Message);
        // switched off, the window key is ignored (HF Qwen2 semantics): the logits equal those of a config without it
        cfg["use_sliding_window"] = false;
        m.Write(_d["off"], cfg);
        m.Write(_d["none"]);
        Assert.Equal(ForwardTests.RunAll(_d["none"], Tokens), ForwardTests.RunAll(_d["off"], Tokens));
    }

    [Fact]
    public void SynthMakesAQwen2WithRandomBiasesThatRuns()
    {
        var r = CliRunner.Run("synth", _d["m"], "--arch", "qwen2", "--hidden", "32", "--layers", "2", "--heads", "4", "--kv-heads", "2",
            "--intermediate", "48", "--vocab", "448", "--tokenizer", "byte-level", "--seed", "5");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using (var f = ModelFolder.Open(_d["m"]))
        {
            Assert.Same(Architecture.Qwen2, f.Config!.Architecture);
            Assert.Equal(2 + 2 * 12 + 1, f.TensorNames.Count);
            Assert.Equal([32L], f.Info("model.layers.1.self_attn.q_proj.bias").Shape);
            Assert.Equal([16L], f.Info("model.layers.1.self_attn.k_proj.bias").Shape);
            Assert.Equal([16L], f.Info("model.layers.0.self_attn.v_proj.bias").Shape);
            Assert.Contains(f.ReadSingle("model.layers.0.self_attn.v_proj.bias"), v => v != 0);
            Assert.Equal(["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight"], f.TensorNames.Take(2));
            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(_d["m"], "config.json")))!.AsObject();
            Assert.Equal("Qwen2ForCausalLM", cfg["architectures"]![0]!.GetValue<string>());
            Assert.Equal("qwen2", cfg["model_type"]!.GetValue<string>());
            Assert.False(cfg["use_sliding_window"]!.GetValue<bool>());
        }
        File.WriteAllText(_d["t.txt"], string.Concat(Enumerable.Repeat("the cat sat on the mat. ", 8)));
        var p = CliRunner.Run("perplexity", _d["m"], "--text", _d["t.txt"], "--json");
        Assert.True(p.ExitCode == 0, p.Stderr);
    }

    [Fact]
    public void TheCudaBackendRefusesQwen2WithOneLineBeforeTouchingTheGpu()
    {
        var config = ModelConfig.FromJson(new TinyModel { Arch = "qwen2" }.Config());
        var e = Assert.Throws<MergeException>(() => Mistral.Merge.Cuda.CudaTransformer.Validate(config, "m"));
        Assert.Equal("m: Qwen2ForCausalLM has q/k/v biases, which the CUDA forward pass does not apply; use --device cpu", e.Message);
        Mistral.Merge.Cuda.CudaTransformer.Validate(ModelConfig.FromJson(new TinyModel { Arch = "llama" }.Config()), "m"); // the others pass
    }
}
