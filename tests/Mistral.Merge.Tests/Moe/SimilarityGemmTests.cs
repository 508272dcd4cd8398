using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

public class SimilarityGemmTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(5, 7, 3)]
    [InlineData(67, 259, 37)]
    [InlineData(130, 70, 1100)] // several k chunks, ragged tiles
    public void MatchesFloat64ReferenceAndAccumulates(int n, int m, int k)
    {
        var rng = new Random(n * 1000 + m);
        var a = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var b = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var c = Enumerable.Range(0, n * m).Select(_ => (float)rng.Next(-3, 4)).ToArray();
        var start = (float[])c.Clone();
        SimilarityGemm.MultiplyAddNT(a, b, c, n, m, k, maxThreads: 2);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                double s = start[i * m + j], mag = Math.Abs(start[i * m + j]);
                for (int p = 0; p < k; p++) { s += (double)a[i * k + p] * b[j * k + p]; mag += Math.Abs((double)a[i * k + p] * b[j * k + p]); }
                Assert.True(Math.Abs(c[i * m + j] - s) <= 1e-6 * mag + 1e-7, $"[{i},{j}] {c[i * m + j]} vs {s}");
            }
    }

    [Fact]
    public void SimilarityIsTheSumOfTheThreeUnitProducts()
    {
        var rng = new Random(5);
        int h = 9, inter = 13;
        ExpertWeights Rand() => new(h, inter,
            Enumerable.Range(0, h * inter).Select(_ => (float)rng.NextDouble()).ToArray(),
            Enumerable.Range(0, h * inter).Select(_ => (float)rng.NextDouble()).ToArray(),
            Enumerable.Range(0, h * inter).Select(_ => (float)rng.NextDouble()).ToArray());
        var r = Rand(); var e = Rand();
        var s = ExpertAlignment.Similarity(r, e);
        for (int u = 0; u < inter; u++)
            for (int v = 0; v < inter; v++)
            {
                double x = 0;
                for (int t = 0; t < h; t++)
                    x += (double)r.W1[u * h + t] * e.W1[v * h + t] + (double)r.W3[u * h + t] * e.W3[v * h + t] + (double)r.W2[t * inter + u] * e.W2[t * inter + v];
                Assert.True(Math.Abs(x - s[u * inter + v]) <= 1e-5 * Math.Abs(x), $"[{u},{v}] {s[u * inter + v]} vs {x}");
            }
    }
}
