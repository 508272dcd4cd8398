using Mistral.Merge.Moe;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Moe;

public class LinearAssignmentTests
{
    /// <summary>Independent O(n³) Hungarian algorithm (potentials form) in float64.</summary>
    internal static double HungarianOptimum(float[] cost, int n)
    {
        var u = new double[n + 1]; var v = new double[n + 1];
        var p = new int[n + 1]; var way = new int[n + 1];
        for (int i = 1; i <= n; i++)
        {
            p[0] = i; int j0 = 0;
            var minv = new double[n + 1]; Array.Fill(minv, double.PositiveInfinity);
            var used = new bool[n + 1];
            do
            {
                used[j0] = true; int i0 = p[j0], j1 = 0; double delta = double.PositiveInfinity;
                for (int j = 1; j <= n; j++)
                {
                    if (used[j]) continue;
                    double cur = cost[(i0 - 1) * n + j - 1] - u[i0] - v[j];
                    if (cur < minv[j]) { minv[j] = cur; way[j] = j0; }
                    if (minv[j] < delta) { delta = minv[j]; j1 = j; }
                }
                for (int j = 0; j <= n; j++)
                    if (used[j]) { u[p[j]] += delta; v[j] -= delta; } else minv[j] -= delta;
                j0 = j1;
            } while (p[j0] != 0);
            do { int j1 = way[j0]; p[j0] = p[j1]; j0 = j1; } while (j0 != 0);
        }
        double total = 0;
        for (int j = 1; j <= n; j++) total += cost[(p[j] - 1) * n + j - 1];
        return total;
    }

    private static double BruteForce(float[] cost, int n)
    {
        var perm = Enumerable.Range(0, n).ToArray();
        double best = double.PositiveInfinity;
        void Rec(int k)
        {
            if (k == n) { best = Math.Min(best, LinearAssignment.Total(cost, n, perm)); return; }
            for (int i = k; i < n; i++)
            {
                (perm[k], perm[i]) = (perm[i], perm[k]);
                Rec(k + 1);
                (perm[k], perm[i]) = (perm[i], perm[k]);
            }
        }
        Rec(0);
        return best;
    }

    private static void AssertPermutation(int[] x, int n)
    {
        Assert.Equal(n, x.Length);
        Assert.Equal(Enumerable.Range(0, n), x.OrderBy(t => t));
    }

    [Fact]
    public void MatchesBruteForceOnSmallMatricesIncludingTies()
    {
        var rng = new Random(7);
        for (int trial = 0; trial < 300; trial++)
        {
            int n = 1 + trial % 7;
            var c = new float[n * n];
            bool ties = trial % 2 == 0; // small integer costs: many ties and degenerate duals
            for (int i = 0; i < c.Length; i++) c[i] = ties ? rng.Next(0, 4) : (float)rng.NextDouble();
            var x = LinearAssignment.SolveMin(c, n);
            AssertPermutation(x, n);
            Assert.Equal(BruteForce(c, n), LinearAssignment.Total(c, n, x), 9);
        }
    }

    [Theory]
    [InlineData(50, 1)]
    [InlineData(200, 2)]
    [InlineData(300, 3)]
    public void MatchesHungarianOnMediumMatrices(int n, int seed)
    {
        var rng = new Random(seed);
        foreach (var kind in new[] { "uniform", "integer", "rank1" })
        {
            var c = new float[n * n];
            var a = Enumerable.Range(0, n).Select(_ => rng.NextDouble()).ToArray();
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                    c[i * n + j] = kind switch
                    {
                        "uniform" => (float)rng.NextDouble(),
                        "integer" => rng.Next(0, 10),
                        _ => (float)(a[i] * a[j]),
                    };
            var x = LinearAssignment.SolveMin(c, n);
            AssertPermutation(x, n);
            double opt = HungarianOptimum(c, n);
            Assert.True(Math.Abs(opt - LinearAssignment.Total(c, n, x)) <= 1e-6 * Math.Max(1, Math.Abs(opt)), $"{kind}: {LinearAssignment.Total(c, n, x)} vs {opt}");
        }
    }

    [Fact]
    public void MaximizationRecoversAHiddenPermutationOfANoisyCopy()
    {
        int n = 400, d = 96;
        var rng = new Random(3);
        var a = new float[n * d];
        for (int i = 0; i < a.Length; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        var perm = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray();
        var b = new float[n * d];
        for (int u = 0; u < n; u++)
            for (int k = 0; k < d; k++) b[perm[u] * d + k] = a[u * d + k] + 0.3f * (float)(rng.NextDouble() * 2 - 1);
        var s = new float[n * n];
        SimilarityGemm.MultiplyAddNT(a, b, s, n, n, d);
        var x = LinearAssignment.SolveMax(s, n);
        Assert.Equal(perm, x);
    }

    [Fact]
    public void RejectsNaNAndBadSizes()
    {
        Assert.Throws<MergeException>(() => LinearAssignment.SolveMin(new[] { 1f, float.NaN, 0f, 1f }, 2));
        Assert.Throws<ArgumentException>(() => LinearAssignment.SolveMin(new float[5], 2));
        Assert.Empty(LinearAssignment.SolveMin(Array.Empty<float>(), 0));
    }
}
