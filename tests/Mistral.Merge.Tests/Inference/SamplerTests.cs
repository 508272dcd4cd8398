using Mistral.Merge.Inference;

namespace Mistral.Merge.Tests.Inference;

public class SamplerTests
{
    [Fact]
    public void GreedyTakesTheLowestIdAmongTies()
    {
        var s = new Sampler(new SamplingOptions { Temperature = 0 }, 5);
        Assert.Equal(1, s.Next(new float[] { 0f, 3f, 1f, 3f, -2f }, []));
    }

    [Fact]
    public void PaddedEmbeddingRowsBeyondTheTokenizerAreNeverSampled()
    {
        var logits = new float[] { 0f, 1f, 2f, 9f, 8f };
        Generator.MaskPaddedRows(logits, 3);
        Assert.Equal(new[] { 0f, 1f, 2f, float.NegativeInfinity, float.NegativeInfinity }, logits);
        Assert.Equal(2, new Sampler(new SamplingOptions { Temperature = 0 }, 5).Next(logits, []));
        for (int seed = 0; seed < 20; seed++)
            Assert.InRange(new Sampler(new SamplingOptions { Temperature = 1, Seed = (ulong)seed }, 5).Next((float[])logits.Clone(), []), 0, 2);
        var same = new float[] { 1f, 2f };
        Generator.MaskPaddedRows(same, 2);      // tokenizer covers every row: unchanged
        Assert.Equal(new[] { 1f, 2f }, same);
    }

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOncePerId()
    {
        var logits = new float[] { 2f, -2f, 1f, 4f };
        Sampler.ApplyRepetitionPenalty(logits, [0, 1, 1, 0], 2f);
        Assert.Equal(new float[] { 1f, -4f, 1f, 4f }, logits);
        // greedy with a penalty: id 3 (4.0) repeated falls to 2.0 and loses to id 0 (3.0)
        var s = new Sampler(new SamplingOptions { Temperature = 0, RepetitionPenalty = 2f }, 4);
        Assert.Equal(0, s.Next(new float[] { 3f, 0f, 1f, 4f }, [3]));
    }

    [Fact]
    public void TopKKeepsTheKLargestAndTheirTies()
    {
        var logits = new float[] { 1f, 5f, 3f, 3f, 0f };
        Sampler.ApplyTopK(logits, 2);
        Assert.Equal(new[] { float.NegativeInfinity, 5f, 3f, 3f, float.NegativeInfinity }, logits);
    }

    [Fact]
    public void TopPKeepsTheSmallestSetReachingP()
    {
        // probabilities 0.5, 0.25, 0.125, 0.125 (logits are their logs)
        float[] Make() => [MathF.Log(0.5f), MathF.Log(0.25f), MathF.Log(0.125f), MathF.Log(0.125f)];
        var a = Make();
        Sampler.ApplyTopP(a, 0.7f);   // 0.5 < 0.7 ≤ 0.75: two tokens
        Assert.Equal(2, a.Count(float.IsFinite));
        Assert.True(float.IsFinite(a[0]) && float.IsFinite(a[1]));
        var b = Make();
        Sampler.ApplyTopP(b, 0.3f);   // the top token alone
        Assert.Equal(1, b.Count(float.IsFinite));
        var c = Make();
        Sampler.ApplyTopP(c, 1e-6f);  // never empty
        Assert.True(float.IsFinite(c[0]));
    }

    [Fact]
    public void DrawFollowsTheCumulativeDistribution()
    {
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.25f), MathF.Log(0.25f)];
        var probs = new double[3];
        Assert.Equal(0, Sampler.Draw(logits, probs, 0.0));
        Assert.Equal(0, Sampler.Draw(logits, probs, 0.49));
        Assert.Equal(1, Sampler.Draw(logits, probs, 0.51));
        Assert.Equal(2, Sampler.Draw(logits, probs, 0.99));
        float[] masked = [float.NegativeInfinity, 0f, float.NegativeInfinity];
        Assert.Equal(1, Sampler.Draw(masked, probs, 0.999));
    }

    [Fact]
    public void SameSeedSameTokensAndFrequenciesFollowTheDistribution()
    {
        var rng = new Random(5);
        var rows = Enumerable.Range(0, 300).Select(_ => Enumerable.Range(0, 50).Select(_ => (float)rng.NextDouble() * 4).ToArray()).ToArray();
        int[] Run(ulong seed)
        {
            var s = new Sampler(new SamplingOptions { Temperature = 0.8f, TopK = 20, TopP = 0.9f, Seed = seed }, 50);
            return rows.Select(r => s.Next((float[])r.Clone(), [])).ToArray();
        }
        Assert.Equal(Run(42), Run(42));
        Assert.NotEqual(Run(42), Run(43));

        // a 3-way distribution sampled 20 000 times
        var sampler = new Sampler(new SamplingOptions { Temperature = 1f, Seed = 1 }, 3);
        var counts = new int[3];
        for (int i = 0; i < 20000; i++) counts[sampler.Next(new[] { MathF.Log(0.6f), MathF.Log(0.3f), MathF.Log(0.1f) }, [])]++;
        Assert.InRange(counts[0] / 20000.0, 0.58, 0.62);
        Assert.InRange(counts[2] / 20000.0, 0.09, 0.11);
    }

    [Theory]
    [InlineData(-1f, 0, 1f, 1f)]
    [InlineData(0.7f, -1, 1f, 1f)]
    [InlineData(0.7f, 0, 0f, 1f)]
    [InlineData(0.7f, 0, 1.5f, 1f)]
    [InlineData(0.7f, 0, 1f, 0f)]
    public void BadSettingsAreRejected(float t, int k, float p, float penalty)
    {
        Assert.Throws<MergeException>(() => new SamplingOptions { Temperature = t, TopK = k, TopP = p, RepetitionPenalty = penalty }.Validate());
    }

    [Fact]
    public void WindowsFollowTheHfPerplexityGuide()
    {
        // protocol of expected.json: 20000 tokens, ctx = stride = 256 → 19 921 scored
        var w = Perplexity.Windows(20000, 256, 256);
        Assert.Equal(79, w.Count);
        Assert.Equal(19921, w.Sum(x => x.Scored));
        Assert.Equal(new EvalWindow(19968, 20000, 19969), w[^1]);
        // overlapping: each later window scores only what the previous one did not reach
        var o = Perplexity.Windows(10, 4, 2);
        Assert.Equal([new(0, 4, 1), new(2, 6, 4), new(4, 8, 6), new(6, 10, 8)], o);
        Assert.Equal(9, o.Sum(x => x.Scored));
        Assert.Throws<MergeException>(() => Perplexity.Windows(10, 1, 1));
        Assert.Throws<MergeException>(() => Perplexity.Windows(10, 4, 5));
    }

    [Fact]
    public void RoutingSoftmaxTopKRenormalizedTiesToLowerIndex()
    {
        Span<int> e = stackalloc int[2];
        Span<float> w = stackalloc float[2];
        Routing.TopK([1f, 3f, 3f, 0f], 2, e, w);
        Assert.Equal([1, 2], e.ToArray());
        Assert.Equal(0.5f, w[0]);
        Routing.TopK([0f, MathF.Log(3f), 0f, MathF.Log(2f)], 2, e, w);
        Assert.Equal([1, 3], e.ToArray());
        Assert.Equal(0.6f, w[0], 6);
        Assert.Equal(0.4f, w[1], 6);
    }
}
