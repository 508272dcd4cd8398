using Mistral.Merge.Merging;

namespace Mistral.Merge.Tests.Merging;

public class MagnitudeSelectionTests
{
    [Fact]
    public void DensityCountIsTruncatedDoubleProduct()
    {
        // 0.29 · 100 = 28.999999999999996 → 28 kept
        var x = Enumerable.Range(1, 100).Select(i => (float)i).ToArray();
        MagnitudeSelection.KeepTopK(x, (long)(0.29 * 100));
        Assert.Equal(28, x.Count(v => v != 0));
        Assert.Equal(73f, x.Where(v => v != 0).Min());
    }

    [Fact]
    public void TopKMatchesStableDescendingSortOnManyTies()
    {
        var rnd = new Random(9);
        for (int trial = 0; trial < 50; trial++)
        {
            int n = rnd.Next(1, 60);
            var x = Enumerable.Range(0, n).Select(_ => (float)(rnd.Next(-4, 5) * 0.5)).ToArray();
            int k = rnd.Next(0, n + 1);
            var order = Enumerable.Range(0, n).OrderByDescending(i => Math.Abs(x[i])).ThenBy(i => i).Take(k).ToHashSet();
            var expected = x.Select((v, i) => order.Contains(i) ? v : 0).ToArray();
            var got = (float[])x.Clone();
            MagnitudeSelection.KeepTopK(got, k);
            Assert.Equal(expected, got);
        }
    }

    [Fact]
    public void AscendingRangeMatchesStableAscendingSortOnManyTies()
    {
        var rnd = new Random(10);
        for (int trial = 0; trial < 50; trial++)
        {
            int n = rnd.Next(1, 60);
            var x = Enumerable.Range(0, n).Select(_ => (float)(rnd.Next(-3, 4) * 0.25)).ToArray();
            int lo = rnd.Next(0, n + 1), hi = rnd.Next(lo, n + 1);
            var keep = Enumerable.Range(0, n).OrderBy(i => Math.Abs(x[i])).ThenBy(i => i).Skip(lo).Take(hi - lo).ToHashSet();
            var expected = x.Select((v, i) => keep.Contains(i) ? v : 0).ToArray();
            var got = (float[])x.Clone();
            MagnitudeSelection.KeepAscendingRange(got, lo, hi);
            Assert.Equal(expected, got);
        }
    }
}
