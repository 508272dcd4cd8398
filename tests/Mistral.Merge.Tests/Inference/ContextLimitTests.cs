using System.Text.Json.Nodes;
using Mistral.Merge.Inference;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Inference;

/// <summary>Sequence lengths checked against the model's context and against memory before anything is allocated.</summary>
public sealed class ContextLimitTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    /// <summary>A synthesized model whose config says max_position_embeddings = <paramref name="context"/>.</summary>
    private string Model(int context)
    {
        var r = CliRunner.Run("synth", _d["m"], "--arch", "llama", "--hidden", "32", "--layers", "2", "--heads", "4", "--intermediate", "48", "--vocab", "448", "--tokenizer", "byte-level");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var cfgPath = Path.Combine(_d["m"], "config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        cfg["max_position_embeddings"] = context;
        File.WriteAllText(cfgPath, cfg.ToJsonString());
        File.WriteAllText(_d["text.txt"], string.Concat(Enumerable.Repeat("abcdefgh ", 40)));
        return _d["m"];
    }

    [Fact]
    public void PerplexityAndCompareRefuseAWindowBeyondTheContext()
    {
        var m = Model(64);
        CliRunner.AssertOneLineError(CliRunner.Run("perplexity", m, "--text", _d["text.txt"], "--ctx", "1000000000"),
            $"--ctx 1000000000 is beyond {m}'s context of 64 tokens (max_position_embeddings in config.json); use --ctx 64 or less");
        CliRunner.AssertOneLineError(CliRunner.Run("compare", m, m, "--text", _d["text.txt"], "--ctx", "65"), "--ctx 65 is beyond");
        Assert.Equal(0, CliRunner.Run("perplexity", m, "--text", _d["text.txt"], "--ctx", "64").ExitCode);
    }

    [Fact]
    public void GenerateRefusesAPromptThatFillsTheContext()
    {
        var m = Model(16);
        CliRunner.AssertOneLineError(CliRunner.Run("generate", m, "--prompt", new string('x', 40), "--max-new-tokens", "4"),
            $"the prompt has 41 tokens but {m}'s context is 16 tokens (max_position_embeddings); shorten the prompt");
    }

    [Fact]
    public void GenerateStopsAtTheContextAndSaysSo()
    {
        var m = Model(16);
        var r = CliRunner.Run("generate", m, "--prompt", "abc", "--max-new-tokens", "2147483647", "--temperature", "0", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var j = JsonNode.Parse(r.Stdout)!;
        // 4 prompt tokens (BOS + 3 bytes) + 12 new = the context of 16, unless EOS came first
        if (!(bool)j["stopped_at_eos"]!)
        {
            Assert.Equal(12, j["ids"]!.AsArray().Count);
            Assert.True((bool)j["stopped_at_context"]!);
        }
        var text = CliRunner.Run("generate", m, "--prompt", "abc", "--max-new-tokens", "100", "--temperature", "0", "--seed", "1");
        Assert.True(text.ExitCode == 0, text.Stderr);
    }

    [Fact]
    public void AContextBeyondMemoryIsRefusedBeforeAllocating()
    {
        var m = Model(1 << 28);
        var r = CliRunner.Run("generate", m, "--prompt", "abc", "--max-new-tokens", "268435000");
        CliRunner.AssertOneLineError(r, "needs about");
        Assert.Contains("of memory for the KV cache, activations and logits, but only", r.Stderr);
    }

    [Fact]
    public void EstimateCountsCacheActivationsAndLogits()
    {
        var s = new TransformerShape(Architecture.Mistral, Hidden: 4096, Intermediate: 14336, Layers: 32, Heads: 32, KvHeads: 8, HeadDim: 128,
            Vocab: 32000, RopeTheta: 1e6, RmsNormEps: 1e-5, SlidingWindow: null, TiedEmbeddings: false, Experts: 0, ExpertsPerToken: 0);
        // 2 (K,V) × 32 layers × 1000 tokens × 1024 × 4 B + 1000 × (8192 + 4096 + 2048 + 43008) × 4 B + 1000 × 32000 × 4 B
        Assert.Equal(262_144_000L + 229_376_000L + 128_000_000L, ContextBudget.Bytes(s, 1000, 1000, allLogits: true));
    }
}
