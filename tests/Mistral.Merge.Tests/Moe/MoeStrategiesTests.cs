using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

public class MoeStrategiesTests
{
    internal static ExpertWeights RandomExpert(Random rng, int h, int inter, float scale = 1f)
    {
        float R() => scale * (float)(rng.NextDouble() * 2 - 1);
        return new ExpertWeights(h, inter,
            Enumerable.Range(0, h * inter).Select(_ => R()).ToArray(),
            Enumerable.Range(0, h * inter).Select(_ => R()).ToArray(),
            Enumerable.Range(0, h * inter).Select(_ => R()).ToArray());
    }

    /// <summary>Reference SwiGLU forward of one token, float64.</summary>
    internal static double[] Forward(ExpertWeights x, float[] input)
    {
        int h = x.Hidden, n = x.Intermediate;
        var act = new double[n];
        for (int u = 0; u < n; u++)
        {
            double g = 0, up = 0;
            for (int t = 0; t < h; t++) { g += (double)x.W1[u * h + t] * input[t]; up += (double)x.W3[u * h + t] * input[t]; }
            act[u] = g / (1 + Math.Exp(-g)) * up;
        }
        var y = new double[h];
        for (int t = 0; t < h; t++) for (int u = 0; u < n; u++) y[t] += x.W2[t * n + u] * act[u];
        return y;
    }

    [Fact]
    public void MeanOfIdenticalExpertsIsBitExactAndFrequencyToo()
    {
        var rng = new Random(1);
        var e = RandomExpert(rng, 16, 24);
        var experts = new[] { e, e.Clone(), e.Clone(), e.Clone() };
        foreach (var r in new[] { MoeStrategies.Mean(experts), MoeStrategies.WeightedMean(experts, new[] { 0.42673, 0.39295, 0.034, 0.14633 }),
                                  MoeStrategies.AlignedMean(experts, 0), MoeStrategies.Expert(experts, 2) })
        {
            Assert.Equal(e.W1, r.W1); Assert.Equal(e.W3, r.W3); Assert.Equal(e.W2, r.W2);
        }
    }

    [Fact]
    public void WeightedMeanIsTheFloat64WeightedAverage()
    {
        var rng = new Random(2);
        var experts = Enumerable.Range(0, 3).Select(_ => RandomExpert(rng, 8, 12)).ToArray();
        double[] w = { 2, 1, 5 };
        var r = MoeStrategies.WeightedMean(experts, w);
        for (int i = 0; i < r.W2.Length; i++)
        {
            double acc = 0;
            for (int e = 0; e < 3; e++) acc += w[e] / 8.0 * experts[e].W2[i];
            Assert.Equal((float)acc, r.W2[i]);
        }
    }

    [Fact]
    public void ConcatComputesTheUniformAverageOfTheChosenExpertsOutputs()
    {
        var rng = new Random(3);
        var experts = Enumerable.Range(0, 4).Select(_ => RandomExpert(rng, 8, 6)).ToArray();
        var input = Enumerable.Range(0, 8).Select(_ => (float)rng.NextDouble()).ToArray();
        foreach (var chosen in new[] { new[] { 0, 1, 2, 3 }, new[] { 1, 3 }, new[] { 2 } })
        {
            var wide = MoeStrategies.Concat(experts, chosen);
            Assert.Equal(6 * chosen.Length, wide.Intermediate);
            var y = Forward(wide, input);
            var expect = new double[8];
            foreach (var c in chosen) { var yc = Forward(experts[c], input); for (int t = 0; t < 8; t++) expect[t] += yc[t] / chosen.Length; }
            for (int t = 0; t < 8; t++) Assert.True(Math.Abs(expect[t] - y[t]) < 1e-5, $"{expect[t]} vs {y[t]}");
        }
    }

    [Fact]
    public void ConcatOfFourIdenticalCopiesIsStackedAndQuartered()
    {
        var e = RandomExpert(new Random(4), 5, 7);
        var r = MoeStrategies.Concat(new[] { e, e, e, e }, new[] { 0, 1, 2, 3 });
        for (int s = 0; s < 4; s++)
            for (int i = 0; i < 35; i++) { Assert.Equal(e.W1[i], r.W1[s * 35 + i]); Assert.Equal(e.W3[i], r.W3[s * 35 + i]); }
        for (int row = 0; row < 5; row++)
            for (int s = 0; s < 4; s++)
                for (int u = 0; u < 7; u++) Assert.Equal(e.W2[row * 7 + u] * 0.25f, r.W2[row * 28 + s * 7 + u]);
    }

    [Fact]
    public void PermutationLeavesTheFunctionUnchangedAndAlignmentUndoesIt()
    {
        var rng = new Random(5);
        var e = RandomExpert(rng, 12, 40);
        var perm = Enumerable.Range(0, 40).OrderBy(_ => rng.Next()).ToArray();
        var p = MoeStrategies.Permute(e, perm);
        var input = Enumerable.Range(0, 12).Select(_ => (float)rng.NextDouble()).ToArray();
        var y0 = Forward(e, input); var y1 = Forward(p, input);
        for (int t = 0; t < 12; t++) Assert.Equal(y0[t], y1[t], 9);
        // Aligning the permuted copy back onto the original recovers it exactly, so aligned_mean of (e, p) = e.
        var back = new ExpertAlignment().Align(e, p);
        Assert.Equal(e.W1, MoeStrategies.Permute(p, back).W1);
        var m = MoeStrategies.AlignedMean(new[] { e, p }, 0);
        Assert.Equal(e.W1, m.W1); Assert.Equal(e.W2, m.W2); Assert.Equal(e.W3, m.W3);
        // whereas the plain mean mixes unrelated units
        Assert.NotEqual(e.W1, MoeStrategies.Mean(new[] { e, p }).W1);
    }

    [Fact]
    public void AlignedMeanOfNoisyPermutedCopiesBeatsThePlainMean()
    {
        var rng = new Random(6);
        var e = RandomExpert(rng, 16, 32);
        var copies = new List<ExpertWeights> { e };
        for (int c = 0; c < 3; c++)
        {
            var noisy = e.Clone();
            for (int i = 0; i < noisy.W1.Length; i++) { noisy.W1[i] += 0.05f * (float)(rng.NextDouble() - 0.5); noisy.W2[i] += 0.05f * (float)(rng.NextDouble() - 0.5); }
            copies.Add(MoeStrategies.Permute(noisy, Enumerable.Range(0, 32).OrderBy(_ => rng.Next()).ToArray()));
        }
        double Dist(ExpertWeights a) => a.W1.Zip(e.W1, (x, y) => (double)(x - y) * (x - y)).Sum();
        Assert.True(Dist(MoeStrategies.AlignedMean(copies, 0, new double[] { 1, 1, 1, 1 })) < 0.01 * Dist(MoeStrategies.Mean(copies)));
    }

    [Fact]
    public void TopByFrequencyBreaksTiesTowardsLowerIndexAndReturnsAscendingOrder()
    {
        Assert.Equal(new[] { 0, 3 }, MoeStrategies.TopByFrequency(new[] { 0.3, 0.2, 0.2, 0.3 }, 2));
        Assert.Equal(new[] { 0, 1, 3 }, MoeStrategies.TopByFrequency(new[] { 0.3, 0.2, 0.2, 0.3 }, 3));
        Assert.Throws<MergeException>(() => MoeStrategies.TopByFrequency(new[] { 1.0 }, 2));
    }

    [Fact]
    public void BadInputsAreClearErrors()
    {
        var rng = new Random(7);
        var a = RandomExpert(rng, 4, 6); var b = RandomExpert(rng, 4, 5);
        Assert.Contains("expert 1 has shape", Assert.Throws<MergeException>(() => MoeStrategies.Mean(new[] { a, b })).Message);
        Assert.Contains("expert 5 does not exist", Assert.Throws<MergeException>(() => MoeStrategies.Expert(new[] { a, a }, 5)).Message);
        Assert.Contains("weights sum to zero", Assert.Throws<MergeException>(() => MoeStrategies.WeightedMean(new[] { a, a }, new[] { 0.0, 0.0 })).Message);
        Assert.Contains("non-negative", Assert.Throws<MergeException>(() => MoeStrategies.WeightedMean(new[] { a, a }, new[] { -1.0, 2.0 })).Message);
        Assert.Contains("2 weights for 1 experts", Assert.Throws<MergeException>(() => MoeStrategies.WeightedMean(new[] { a }, new[] { 1.0, 1.0 })).Message);
        Assert.Contains("chosen twice", Assert.Throws<MergeException>(() => MoeStrategies.Concat(new[] { a, a }, new[] { 1, 1 })).Message);
    }
}
