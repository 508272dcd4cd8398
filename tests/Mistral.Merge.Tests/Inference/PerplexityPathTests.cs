using Mistral.Merge.Inference;

namespace Mistral.Merge.Tests.Inference;

/// <summary>
/// The parallel perplexity path: the forward pass's element-wise steps on the worker pool (large enough batches
/// to leave the calling thread) and the parallel scoring of a window's logits, against the double reference and
/// the serial scoring loop.
/// </summary>
public class PerplexityPathTests
{
    // wide enough that RMSNorm, RoPE + cache store, SiLU·up and the residual add all run on the pool
    private static TinyModel Wide(int? window = null) => new TinyModel { Hidden = 256, Intermediate = 320, Heads = 8, KvHeads = 2, Vocab = 97, Window = window }.Init(11);

    private static int[] Text(int n, int vocab) => Enumerable.Range(0, n).Select(i => (i * 31 + 7) % vocab).ToArray();

    [Theory]
    [InlineData(null)]
    [InlineData(24)]
    public void ParallelStepsGiveTheDoubleReferenceLogitsAndTheSameBitsAtAnyThreadCount(int? window)
    {
        using var dir = new TempDir();
        var m = Wide(window);
        m.Write(dir["m"]);
        var tokens = Text(72, m.Vocab);
        var one = ForwardTests.RunAll(dir["m"], tokens, threads: 1);
        ForwardTests.AssertClose(ReferenceForward.Logits(m, tokens), one, m.Vocab, 2e-4);
        Assert.Equal(one, ForwardTests.RunAll(dir["m"], tokens, threads: 3));
        Assert.Equal(one, ForwardTests.RunAll(dir["m"], tokens, threads: 2, chunk: 40)); // rolling cache when windowed
    }

    [Theory]
    [InlineData(32, 32)]
    [InlineData(32, 10)]  // later windows ask for the logits of their last 11 rows only
    [InlineData(200, 200)]
    public void ParallelScoringSumsTheSerialLoopsNllBitForBit(int ctx, int stride)
    {
        using var dir = new TempDir();
        var m = Wide();
        m.Write(dir["m"]);
        var ids = Text(90, m.Vocab);
        using var model = TransformerModel.Load(dir["m"]);
        using var backend = new CpuBackend(model, threads: 3);

        // the serial loop: every window's logits, then −log softmax[target] position by position in text order
        double nll = 0;
        int scored = 0, v = m.Vocab;
        foreach (var w in Perplexity.Windows(ids.Length, ctx, stride))
        {
            using var cache = backend.CreateCache(ctx);
            var logits = new float[w.Length * v];
            backend.Forward(ids.AsSpan(w.Begin, w.Length), Enumerable.Range(0, w.Length).ToArray(), cache, logits);
            for (int t = w.ScoreFrom; t < w.End; t++) nll += LogMath.Nll(logits.AsSpan((t - 1 - w.Begin) * v, v), ids[t]);
            scored += w.Scored;
        }

        var r = Perplexity.Evaluate(backend, ids, ctx, stride);
        Assert.Equal(scored, r.Tokens);
        Assert.Equal(nll / scored, r.MeanNll);
        Assert.InRange(r.ScoringSeconds, 0, r.Seconds);
    }
}
