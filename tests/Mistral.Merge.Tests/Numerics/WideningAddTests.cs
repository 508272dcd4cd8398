using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Numerics;

public class WideningAddTests
{
    [Fact]
    public void WideningAddEqualsTheScalarSumAcrossSlicesTailsAndThreadCounts()
    {
        int n = (1 << 20) + 13; // two slices, the second with a tail shorter than a vector
        var rng = new Random(2);
        var src = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var dst0 = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 1e3).ToArray();
        var expect = new double[n];
        for (int i = 0; i < n; i++) expect[i] = dst0[i] + src[i];
        foreach (int threads in new[] { 1, 2 })
        {
            var dst = (double[])dst0.Clone();
            WideningAdd.Run(dst, src, threads);
            Assert.Equal(expect, dst);
        }
    }
}
