using Mistral.Merge.Inference;

namespace Mistral.Merge.Tests.Inference;

/// <summary>The CPU forward pass on synthesized checkpoints against the independent double-precision reference.</summary>
public class ForwardTests
{
    internal static readonly int[] Tokens = [1, 17, 5, 33, 60, 2, 9, 9, 41, 12, 3, 28, 50, 7, 19, 44, 0, 22, 36, 11];

    internal static float[] RunAll(string folder, int[] tokens, int threads = 2, int chunk = CpuBackend.DefaultChunk)
    {
        using var model = TransformerModel.Load(folder);
        using var backend = new CpuBackend(model, threads, chunk);
        using var cache = backend.CreateCache(tokens.Length);
        var logits = new float[tokens.Length * model.Shape.Vocab];
        backend.Forward(tokens, Enumerable.Range(0, tokens.Length).ToArray(), cache, logits);
        return logits;
    }

    /// <summary>Token by token through the cache: the logits of every step.</summary>
    internal static float[] RunDecode(string folder, int[] tokens, int maxTokens, int prefill = 1, int threads = 2, int chunk = CpuBackend.DefaultChunk)
    {
        using var model = TransformerModel.Load(folder);
        using var backend = new CpuBackend(model, threads, chunk);
        using var cache = backend.CreateCache(maxTokens);
        int v = model.Shape.Vocab;
        var all = new float[tokens.Length * v];
        backend.Forward(tokens.AsSpan(0, prefill), Enumerable.Range(0, prefill).ToArray(), cache, all.AsSpan(0, prefill * v));
        for (int t = prefill; t < tokens.Length; t++)
            backend.Forward(tokens.AsSpan(t, 1), [t], cache, all.AsSpan(t * v, v));
        return all;
    }

    internal static void AssertClose(double[][] expected, float[] actual, int vocab, double tol)
    {
        double worst = 0;
        for (int t = 0; t < expected.Length; t++)
            for (int i = 0; i < vocab; i++)
                worst = Math.Max(worst, Math.Abs(expected[t][i] - actual[t * vocab + i]));
        Assert.True(worst < tol, $"max |Δlogit| = {worst:g4} ≥ {tol:g4}");
    }

    internal static void AssertClose(float[] expected, float[] actual, double tol)
    {
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int i = 0; i < expected.Length; i++) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(worst < tol, $"max |Δlogit| = {worst:g4} ≥ {tol:g4}");
    }

    public static TheoryData<string, DType, int?, bool> Variants => new()
    {
        { "mistral", DType.F32, null, true },
        { "mistral", DType.BF16, null, false },
        { "mistral", DType.F16, 4, false },
        { "llama", DType.F32, null, false },
        { "mixtral", DType.F32, null, true },
        { "mixtral", DType.BF16, 4, false },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void BatchedForwardMatchesTheDoubleReference(string arch, DType dtype, int? window, bool tie)
    {
        using var dir = new TempDir();
        var m = new TinyModel { Arch = arch, DType = dtype, Window = window, Tie = tie, Experts = arch == "mixtral" ? 4 : 0, TopK = 2 }.Init(7);
        m.Write(dir["m"]);
        m.RoundToDType();
        var expected = ReferenceForward.Logits(m, Tokens);
        AssertClose(expected, RunAll(dir["m"], Tokens), m.Vocab, 2e-4);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void CachedDecodeEqualsFullRecompute(string arch, DType dtype, int? window, bool tie)
    {
        using var dir = new TempDir();
        var m = new TinyModel { Arch = arch, DType = dtype, Window = window, Tie = tie, Experts = arch == "mixtral" ? 4 : 0, TopK = 2 }.Init(11);
        m.Write(dir["m"]);
        var full = RunAll(dir["m"], Tokens);
        AssertClose(full, RunDecode(dir["m"], Tokens, Tokens.Length), 1e-4);
        AssertClose(full, RunDecode(dir["m"], Tokens, Tokens.Length, prefill: 7), 1e-4);
    }

    [Fact]
    public void SlidingWindowRollingCacheEqualsMaskedFullSequence()
    {
        // window 4, a rolling cache of 4 + 3 − 1 slots fed in chunks of 3 and then one token at a time
        using var dir = new TempDir();
        var m = new TinyModel { Window = 4, Layers = 3 }.Init(5);
        m.Write(dir["m"]);
        var expected = ReferenceForward.Logits(m, Tokens);
        using var model = TransformerModel.Load(dir["m"]);
        using var backend = new CpuBackend(model, 2, chunk: 3);
        using var cache = backend.CreateCache(Tokens.Length);
        Assert.True(((KvCache)cache).Rolling);
        Assert.Equal(6, ((KvCache)cache).Capacity);
        int v = m.Vocab;
        var logits = new float[Tokens.Length * v];
        backend.Forward(Tokens.AsSpan(0, 8), Enumerable.Range(0, 8).ToArray(), cache, logits.AsSpan(0, 8 * v)); // 3 chunks
        for (int t = 8; t < Tokens.Length; t++) backend.Forward(Tokens.AsSpan(t, 1), [t], cache, logits.AsSpan(t * v, v));
        AssertClose(expected, logits, v, 2e-4);
        // the window matters: without it the logits differ
        var noWindow = new TinyModel { Layers = 3 }.Init(5);
        var unmasked = ReferenceForward.Logits(noWindow, Tokens);
        Assert.True(Math.Abs(unmasked[^1][3] - expected[^1][3]) > 1e-3);
    }

    [Fact]
    public void ResultsDoNotDependOnThreadCountOrChunking()
    {
        using var dir = new TempDir();
        var m = new TinyModel { Hidden = 64, Intermediate = 72, Heads = 8, KvHeads = 4 }.Init(3);
        m.Write(dir["m"]);
        var tokens = Enumerable.Range(0, 45).Select(i => (i * 7 + 3) % m.Vocab).ToArray();
        var one = RunAll(dir["m"], tokens, threads: 1);
        Assert.Equal(one, RunAll(dir["m"], tokens, threads: 3));
        Assert.Equal(one, RunAll(dir["m"], tokens, threads: 2, chunk: 45));
    }

    [Theory]
    [InlineData("mistral", 8)]              // 45 tokens in chunks of 8: the chunks before the last skip the last layer's rows
    [InlineData("mistral", CpuBackend.DefaultChunk)]
    [InlineData("mixtral", CpuBackend.DefaultChunk)]
    [InlineData("windowed", 8)]             // sliding window 16: a rolling cache, chunks of 8
    [InlineData("qwen2", 8)]                // q/k/v biases: the last layer's query bias on the output row only
    [InlineData("qwen2", CpuBackend.DefaultChunk)]
    public void LastTokenLogitsAndTheCacheEqualThoseOfAnAllTokenPrefill(string arch, int chunk)
    {
        using var dir = new TempDir();
        var m = (arch switch
        {
            "mixtral" => new TinyModel { Arch = arch, Experts = 4, TopK = 2 },
            "windowed" => new TinyModel { Hidden = 64, Intermediate = 72, Heads = 8, KvHeads = 4, Window = 16 },
            "qwen2" => new TinyModel { Arch = arch, Hidden = 64, Intermediate = 72, Heads = 8, KvHeads = 4 },
            _ => new TinyModel { Hidden = 64, Intermediate = 72, Heads = 8, KvHeads = 4 },
        }).Init(31);
        m.Write(dir["m"]);
        var tokens = Enumerable.Range(0, 45).Select(i => (i * 5 + 1) % m.Vocab).ToArray();
        var positions = Enumerable.Range(0, tokens.Length).ToArray();
        int v = m.Vocab;
        using var model = TransformerModel.Load(dir["m"]);
        using var backend = new CpuBackend(model, 2, chunk);

        using var full = backend.CreateCache(tokens.Length + 1);
        var all = new float[tokens.Length * v];
        backend.Forward(tokens, positions, full, all);
        var nextAfterAll = new float[v];
        backend.Forward([3], [tokens.Length], full, nextAfterAll);

        using var trimmed = backend.CreateCache(tokens.Length + 1);
        var last = new float[v];
        backend.Forward(tokens, positions, trimmed, last); // the last layer runs past k/v for the last row only
        var nextAfterLast = new float[v];
        backend.Forward([3], [tokens.Length], trimmed, nextAfterLast);

        AssertClose(all.AsSpan((tokens.Length - 1) * v).ToArray(), last, 1e-5); // GEMV vs GEMM: summation order only
        Assert.Equal(nextAfterAll, nextAfterLast); // every row's keys and values are in the cache, bit for bit
    }

    [Theory]
    [InlineData(7, 8)]   // the last 7 of 45 rows cross a chunk boundary (2 rows in one chunk, 5 in the next)
    [InlineData(12, 512)]
    [InlineData(45, 8)]
    [InlineData(7, 8, "qwen2")] // the kept rows' queries with their bias, across a chunk boundary
    public void LogitsOfTheLastRRowsAreThoseRowsOfTheAllTokenLogits(int r, int chunk, string arch = "mistral")
    {
        using var dir = new TempDir();
        var m = new TinyModel { Arch = arch, Hidden = 64, Intermediate = 72, Heads = 8, KvHeads = 4 }.Init(33);
        m.Write(dir["m"]);
        var tokens = Enumerable.Range(0, 45).Select(i => (i * 11 + 2) % m.Vocab).ToArray();
        var all = RunAll(dir["m"], tokens, chunk: chunk);
        using var model = TransformerModel.Load(dir["m"]);
        using var backend = new CpuBackend(model, 2, chunk);
        using var cache = backend.CreateCache(tokens.Length);
        var tail = new float[r * m.Vocab];
        backend.Forward(tokens, Enumerable.Range(0, tokens.Length).ToArray(), cache, tail);
        AssertClose(all.AsSpan((tokens.Length - r) * m.Vocab).ToArray(), tail, 1e-5);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]   // not a whole row
    [InlineData(-1)]  // more rows than tokens
    public void LogitsThatAreNotWholeRowsOfAtMostEveryTokenAreRejected(int kind)
    {
        using var dir = new TempDir();
        var m = new TinyModel().Init(4);
        m.Write(dir["m"]);
        using var model = TransformerModel.Load(dir["m"]);
        using var backend = new CpuBackend(model, 1);
        using var cache = backend.CreateCache(8);
        int length = kind switch { 0 => 0, 1 => m.Vocab + 1, _ => 5 * m.Vocab };
        var e = Assert.Throws<ArgumentException>(() => backend.Forward([1, 2, 3, 4], [0, 1, 2, 3], cache, new float[length]));
        Assert.Contains("1 ≤ r ≤ 4", e.Message);
    }

    [Fact]
    public void UntiedHeadEqualToTheEmbeddingGivesTheTiedLogits()
    {
        using var dir = new TempDir();
        var tied = new TinyModel { Tie = true }.Init(9);
        tied.Write(dir["tied"]);
        var untied = new TinyModel { Tie = false }.Init(9);
        untied.Tensors["lm_head.weight"] = tied.Tensors["model.embed_tokens.weight"];
        untied.Write(dir["untied"]);
        Assert.Equal(RunAll(dir["tied"], Tokens), RunAll(dir["untied"], Tokens));
        // and a different head changes them
        var other = new TinyModel { Tie = false }.Init(9);
        other.Write(dir["other"]);
        Assert.NotEqual(RunAll(dir["tied"], Tokens), RunAll(dir["other"], Tokens));
    }

    [Fact]
    public void MoeUpcycleWithIdenticalExpertsEqualsTheDenseModel()
    {
        using var dir = new TempDir();
        var dense = new TinyModel().Init(21);
        dense.Write(dir["dense"]);
        var moe = new TinyModel { Arch = "mixtral", Experts = 4, TopK = 2 }.Init(22);
        foreach (var (name, t) in dense.Tensors)
        {
            if (!name.Contains(".mlp.")) { moe.Tensors[name] = t; continue; }
        }
        for (int l = 0; l < dense.Layers; l++)
            for (int e = 0; e < 4; e++)
            {
                string p = $"model.layers.{l}.";
                moe.Tensors[p + $"block_sparse_moe.experts.{e}.w1.weight"] = dense.Tensors[p + "mlp.gate_proj.weight"];
                moe.Tensors[p + $"block_sparse_moe.experts.{e}.w3.weight"] = dense.Tensors[p + "mlp.up_proj.weight"];
                moe.Tensors[p + $"block_sparse_moe.experts.{e}.w2.weight"] = dense.Tensors[p + "mlp.down_proj.weight"];
            }
        moe.Tensors.Remove("lm_head.weight");
        moe.Tensors["lm_head.weight"] = dense.Tensors["lm_head.weight"];
        moe.Write(dir["moe"]);
        AssertClose(RunAll(dir["dense"], Tokens), RunAll(dir["moe"], Tokens), 2e-5);
    }

    [Fact]
    public void ExplicitHeadDimAndSingleKvHeadWork()
    {
        using var dir = new TempDir();
        var m = new TinyModel { Hidden = 24, Heads = 4, KvHeads = 1, HeadDim = 10 }.Init(4);
        m.Write(dir["m"]);
        AssertClose(ReferenceForward.Logits(m, Tokens), RunAll(dir["m"], Tokens), m.Vocab, 2e-4);
    }

    [Fact]
    public void DecodeStepsAllocateNothing()
    {
        using var dir = new TempDir();
        var m = new TinyModel { Arch = "mixtral", Experts = 4, TopK = 2, Hidden = 64, Intermediate = 96, Heads = 8, KvHeads = 2, Window = 8 }.Init(2);
        m.Write(dir["m"]);
        using var model = TransformerModel.Load(dir["m"]);
        using var backend = new CpuBackend(model, 2);
        using var cache = backend.CreateCache(64);
        var logits = new float[m.Vocab];
        int[] tok = [5], pos = [0];
        var sampler = new Sampler(new SamplingOptions { Temperature = 0.8f, TopK = 10, TopP = 0.9f, RepetitionPenalty = 1.2f, Seed = 1 }, m.Vocab);
        var history = new int[64];
        for (int t = 0; t < 8; t++) { pos[0] = t; backend.Forward(tok, pos, cache, logits); tok[0] = history[t] = sampler.Next(logits, history.AsSpan(0, t)); }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int t = 8; t < 40; t++) { pos[0] = t; backend.Forward(tok, pos, cache, logits); tok[0] = history[t] = sampler.Next(logits, history.AsSpan(0, t)); }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
