using Mistral.Merge.Moe;
using Mistral.Merge.Numerics;

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

    [Theory]
    [InlineData(37, 53, 71, OperandLayout.RowMajor, OperandLayout.RowMajor)]
    [InlineData(37, 53, 71, OperandLayout.KMajor, OperandLayout.KMajor)]
    [InlineData(130, 257, 64, OperandLayout.RowMajor, OperandLayout.KMajor)] // crosses the 120×256 C blocks
    [InlineData(130, 257, 64, OperandLayout.KMajor, OperandLayout.RowMajor)]
    [InlineData(9, 33, 600, OperandLayout.KMajor, OperandLayout.KMajor)]     // several k chunks of 256
    public void EveryLayoutMatchesFloat64Reference(int n, int m, int k, OperandLayout la, OperandLayout lb)
    {
        var rng = new Random(n + 7 * m + 31 * k);
        var a = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var b = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var c = Enumerable.Range(0, n * m).Select(_ => (float)rng.Next(-3, 4)).ToArray();
        var start = (float[])c.Clone();
        SimilarityGemm.MultiplyAdd(a, la, b, lb, c, n, m, k);
        double A(int i, int p) => la == OperandLayout.RowMajor ? a[i * k + p] : a[p * n + i];
        double B(int j, int p) => lb == OperandLayout.RowMajor ? b[j * k + p] : b[p * m + j];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                double s = start[i * m + j], mag = Math.Abs(s);
                for (int p = 0; p < k; p++) { s += A(i, p) * B(j, p); mag += Math.Abs(A(i, p) * B(j, p)); }
                Assert.True(Math.Abs(c[i * m + j] - s) <= 1e-5 * mag, $"[{i},{j}] {c[i * m + j]} vs {s}");
            }
    }

    [Fact]
    public void ResultDoesNotDependOnThreadsAndWorkspaceIsReusedAcrossShapes()
    {
        var rng = new Random(11);
        var a = Enumerable.Range(0, 300 * 90).Select(_ => (float)rng.NextDouble()).ToArray();
        var b = Enumerable.Range(0, 270 * 90).Select(_ => (float)rng.NextDouble()).ToArray();
        const OperandLayout rm = OperandLayout.RowMajor;
        var one = new float[300 * 270];
        SimilarityGemm.MultiplyAdd(a, rm, b, rm, one, 300, 270, 90, maxThreads: 1);
        using var ws = new SimilarityGemm.Workspace();
        var small = new float[5 * 7];
        SimilarityGemm.MultiplyAdd(a, rm, b, rm, small, 5, 7, 90, 2, ws);
        var two = new float[300 * 270];
        SimilarityGemm.MultiplyAdd(a, rm, b, rm, two, 300, 270, 90, 2, ws);
        Assert.Equal(one, two); // bit for bit
        var again = new float[5 * 7];
        SimilarityGemm.MultiplyAdd(a, rm, b, rm, again, 5, 7, 90, 2, ws);
        Assert.Equal(small, again);
        for (int i = 0; i < 5; i++) for (int j = 0; j < 7; j++) Assert.Equal(one[i * 270 + j], small[i * 7 + j]);
        // MultiplyAddNT takes the packed path from 64 rows on both sides.
        var nt = new float[300 * 270];
        SimilarityGemm.MultiplyAddNT(a, b, nt, 300, 270, 90);
        Assert.Equal(one, nt);
    }

    [Theory]
    [InlineData(1, 5, OperandLayout.KMajor)]
    [InlineData(37, 71, OperandLayout.RowMajor)]
    [InlineData(300, 64, OperandLayout.KMajor)]   // crosses the 120×256 C blocks on both sides of the diagonal
    [InlineData(530, 300, OperandLayout.KMajor)]  // several k chunks, a ragged last block
    [InlineData(257, 33, OperandLayout.RowMajor)]
    public void GramComputesTheUpperTriangleAndMirrorsItToTheFullProductsBits(int n, int k, OperandLayout layout)
    {
        var rng = new Random(n * 13 + k);
        var a = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var start = new float[n * n]; // symmetric on entry
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) start[i * n + j] = start[j * n + i] = rng.Next(-3, 4);
        var full = (float[])start.Clone();
        SimilarityGemm.MultiplyAdd(a, layout, a, layout, full, n, n, k, maxThreads: 1);
        foreach (int threads in new[] { 1, 3 })
        {
            var gram = (float[])start.Clone();
            SimilarityGemm.MultiplyAddGram(a, layout, gram, n, k, threads);
            for (int i = 0; i < n * n; i++)
                Assert.True(BitConverter.SingleToInt32Bits(full[i]) == BitConverter.SingleToInt32Bits(gram[i]), $"C[{i / n},{i % n}] {gram[i]} vs {full[i]} ({threads} threads)");
        }
        Assert.Throws<ArgumentException>(() => SimilarityGemm.MultiplyAddGram(a.AsSpan(1), layout, new float[n * n], n, k));
        Assert.Throws<ArgumentException>(() => SimilarityGemm.MultiplyAddGram(a, layout, new float[n * n - 1], n, k));
    }

    [Fact]
    public void RejectsOperandsShorterThanTheShape()
    {
        Assert.Throws<ArgumentException>(() => SimilarityGemm.MultiplyAdd(new float[5], OperandLayout.KMajor, new float[6], OperandLayout.RowMajor, new float[6], 2, 2, 3));
        Assert.Throws<ArgumentException>(() => SimilarityGemm.MultiplyAddNT(new float[6], new float[6], new float[3], 2, 2, 3));
    }

    [Fact]
    public void AssignmentOfPermutedNoisyPairIsUnchangedFromTheDotProductKernel()
    {
        // The packed kernel sums in a different order than the first (dot-product) kernel; the optimal
        // assignment must not change, and it recovers the hidden permutation.
        var rng = new Random(8);
        int h = 48, inter = 200;
        var reference = MoeStrategiesTests.RandomExpert(rng, h, inter);
        var perm = Enumerable.Range(0, inter).OrderBy(_ => rng.Next()).ToArray();
        var expert = MoeStrategies.Permute(reference, perm);
        foreach (var w in new[] { expert.W1, expert.W3, expert.W2 })
            for (int i = 0; i < w.Length; i++) w[i] += 0.8f * (float)(rng.NextDouble() * 2 - 1);
        var got = new ExpertAlignment().Align(reference, expert);

        var s = new float[inter * inter];
        DotProductGemm.MultiplyAddNT(reference.W1, expert.W1, s, inter, inter, h);
        DotProductGemm.MultiplyAddNT(reference.W3, expert.W3, s, inter, inter, h);
        DotProductGemm.MultiplyAddNT(Transpose(reference.W2, h, inter), Transpose(expert.W2, h, inter), s, inter, inter, h);
        Assert.Equal(LinearAssignment.SolveMax(s, inter), got);
        for (int u = 0; u < inter; u++) Assert.Equal(u, perm[got[u]]);
    }

    private static float[] Transpose(float[] x, int rows, int cols)
    {
        var t = new float[x.Length];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
        return t;
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
