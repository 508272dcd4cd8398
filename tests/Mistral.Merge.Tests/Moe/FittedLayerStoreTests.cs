using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Refit;

namespace Mistral.Merge.Tests.Moe;

/// <summary>The refit's spill of fitted dense layers to a mapped temporary file.</summary>
public class FittedLayerStoreTests
{
    [Fact]
    public void SpilledLayersReadBackBitExactAfterLaterLayersAreAdded()
    {
        using var tmp = new TempDir();
        var rng = new Random(3);
        ExpertWeights R(int h, int n)
        {
            float[] V() => Enumerable.Range(0, h * n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            return new ExpertWeights(h, n, V(), V(), V());
        }
        var a = R(5, 7);
        var b = R(5, 3);
        using var store = new FittedLayerStore(tmp.Path);
        store.Add(a);
        Assert.Equal(a.W2, store.Layer(0).W2.ToArray());
        store.Add(b);
        Assert.Equal(2, store.Count);
        Assert.Equal(3L * 4 * (35 + 15), store.Bytes);
        foreach (var (d, l) in new[] { (a, 0), (b, 1) })
        {
            var got = store.Layer(l);
            Assert.Equal((d.Hidden, d.Intermediate), (got.Hidden, got.Intermediate));
            Assert.Equal(d.W1, got.W1.ToArray());
            Assert.Equal(d.W3, got.W3.ToArray());
            Assert.Equal(d.W2, got.W2.ToArray());
        }
    }

    [Fact]
    public void TheSpillFileHasNoNameInTheOutputFolderWhileOpenOrAfterwards()
    {
        using var tmp = new TempDir();
        using (var store = new FittedLayerStore(tmp.Path))
        {
            store.Add(new ExpertWeights(2, 2, [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]));
            Assert.Equal(12f, store.Layer(0).W2[3]);
            if (!OperatingSystem.IsWindows()) Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
        }
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path));
    }
}
