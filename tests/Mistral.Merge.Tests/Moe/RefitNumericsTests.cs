using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Refit;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Moe;

/// <summary>The refit's numerics: Cholesky, the ridge rule, the w2 least-squares solve, and an exact case.</summary>
public class RefitNumericsTests
{
    [Fact]
    public void CholeskyFactorsTheTextbookMatrixExactly()
    {
        // A = L·Lᵀ with L = [[2,0,0],[6,1,0],[-8,5,3]]
        double[] a = [4, 12, -16, 12, 37, -43, -16, -43, 98];
        Assert.Equal(-1, Cholesky.Factor(a, 3, threads: 1));
        Assert.Equal([2.0, 6, 1, -8, 5, 3], new[] { a[0], a[3], a[4], a[6], a[7], a[8] });
    }

    [Fact]
    public void BlockedCholeskyReproducesARandomMatrixAcrossBlocksAndThreadCounts()
    {
        int n = 301; // three blocks of 128, tiles of 64 cut unevenly
        var spd = RandomSpd(n, 7);
        var one = (double[])spd.Clone();
        var two = (double[])spd.Clone();
        Assert.Equal(-1, Cholesky.Factor(one, n, threads: 1));
        Assert.Equal(-1, Cholesky.Factor(two, n, threads: 2));
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                Assert.Equal(one[i * n + j], two[i * n + j]); // bit-identical across thread counts
                double s = 0;
                for (int k = 0; k <= j; k++) s += one[i * n + k] * one[j * n + k];
                Assert.True(Math.Abs(s - spd[i * n + j]) <= 1e-10 * n, $"({i},{j}): {s} vs {spd[i * n + j]}");
            }
    }

    [Fact]
    public void CholeskyReportsTheFirstColumnThatIsNotPositiveDefinite()
    {
        Assert.Equal(1, Cholesky.Factor([1, 2, 2, 1], 2));
        Assert.Equal(0, Cholesky.Factor([double.NaN, 0, 0, 1], 2));
    }

    [Fact]
    public void CholeskySolveMatchesGaussianEliminationForManyRightHandSides()
    {
        int n = 150, count = 70;
        var spd = RandomSpd(n, 3);
        var rng = new Random(4);
        var b = Enumerable.Range(0, count * n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var l = (double[])spd.Clone();
        Assert.Equal(-1, Cholesky.Factor(l, n));
        var x = (double[])b.Clone();
        Cholesky.Solve(l, n, x, count);
        for (int r = 0; r < count; r++)
        {
            var expect = Gauss(spd, n, b.AsSpan(r * n, n).ToArray());
            for (int i = 0; i < n; i++) Assert.Equal(expect[i], x[r * n + i], 1e-9);
        }
    }

    [Fact]
    public void BlockedSolveMatchesPlainSubstitutionAndIsBitIdenticalAcrossThreadCounts()
    {
        int n = 301, count = 75; // three column blocks of 128 (the last cut), GEMM row blocks of 96 cut unevenly
        var spd = RandomSpd(n, 5);
        var l = (double[])spd.Clone();
        Assert.Equal(-1, Cholesky.Factor(l, n));
        var rng = new Random(6);
        var b = Enumerable.Range(0, count * n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var plain = (double[])b.Clone();
        var one = (double[])b.Clone();
        var two = (double[])b.Clone();
        Cholesky.SolveUnblocked(l, n, plain, count, threads: 1);
        Cholesky.Solve(l, n, one, count, threads: 1);
        Cholesky.Solve(l, n, two, count, threads: 2);
        Assert.Equal(one, two);
        for (int i = 0; i < plain.Length; i++) Assert.True(Math.Abs(one[i] - plain[i]) <= 1e-10 * (1 + Math.Abs(plain[i])), $"[{i}]: {one[i]} vs {plain[i]}");
    }

    [Fact]
    public unsafe void DoubleGemmSubtractsTheFusedProductExactlyOnStridedOperandsAndTheLowerTriangle()
    {
        int m = 17, n = 21, k = 13; // not multiples of the 6×8 tile
        var rng = new Random(8);
        double[] R(int len) => Enumerable.Range(0, len).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var a = R(m * k);       // A(i, p) = a[i·k + p]
        var bt = R(k * n);      // B(j, p) = bt[p·n + j] (column-strided operand)
        var c0 = R(m * 30);     // C with row stride 30
        foreach (bool lower in new[] { false, true })
            foreach (int threads in new[] { 1, 2 })
            {
                var c = (double[])c0.Clone();
                using (var pool = new WorkerPool(threads))
                    fixed (double* pa = a, pb = bt, pc = c)
                        DoubleGemm.SubtractProduct(new DoubleOperand(pa, k, 1), new DoubleOperand(pb, 1, n), pc, 30, m, n, k, pool, lower);
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < 30; j++)
                    {
                        double expect = c0[i * 30 + j];
                        if (j < n && (!lower || j <= i))
                        {
                            double acc = 0;
                            for (int p = 0; p < k; p++) acc = Math.FusedMultiplyAdd(a[i * k + p], bt[p * n + j], acc);
                            expect -= acc;
                        }
                        Assert.Equal(expect, c[i * 30 + j]);
                    }
            }
    }

    [Fact]
    public void RidgeAutoIsOneThousandthOfTheMeanGramDiagonal()
    {
        double[] g = [1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 6];
        Assert.Equal(1e-3 * 3, RidgeRule.Lambda(g, 4, RidgeRule.AutoFactor), 15);
        Assert.Equal(0.5 * 3, RidgeRule.Lambda(g, 4, 0.5), 15);
    }

    [Fact]
    public void W2SolveEqualsTheClosedFormRidgeSolution()
    {
        int h = 6, n = 9, tokens = 300;
        var rng = new Random(11);
        float[] R(int k, double s = 1) => Enumerable.Range(0, k).Select(_ => (float)((rng.NextDouble() - 0.5) * s)).ToArray();
        var d = new ExpertWeights(h, n, R(n * h), R(n * h), new float[h * n]);
        var x = R(tokens * h, 2);
        var y = R(tokens * h);
        var o = new RefitOptions { Calibration = [], Ridge = 0.01, Chunk = 128 };
        var (w2, lambda, err) = LayerRefit.SolveW2(d, x, y, tokens, o, 0, 1, null);
        // independent: H in float64, G = Σ h hᵀ, C = Σ y hᵀ, W2ᵀ = (G + λI)⁻¹ Cᵀ by Gaussian elimination
        var hid = new double[tokens, n];
        for (int t = 0; t < tokens; t++)
            for (int u = 0; u < n; u++)
            {
                double a = 0, b = 0;
                for (int k = 0; k < h; k++) { a += d.W1[u * h + k] * x[t * h + k]; b += d.W3[u * h + k] * x[t * h + k]; }
                hid[t, u] = a / (1 + Math.Exp(-a)) * b;
            }
        var g = new double[n * n];
        double trace = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int t = 0; t < tokens; t++) g[i * n + j] += hid[t, i] * hid[t, j];
        for (int i = 0; i < n; i++) trace += g[i * n + i];
        double expectLambda = 0.01 * trace / n;
        Assert.Equal(expectLambda, lambda, expectLambda * 1e-5);
        for (int i = 0; i < n; i++) g[i * n + i] += expectLambda;
        double yy = 0, rss = 0;
        var w = new double[h, n];
        for (int r = 0; r < h; r++)
        {
            var c = new double[n];
            for (int u = 0; u < n; u++)
                for (int t = 0; t < tokens; t++) c[u] += y[t * h + r] * hid[t, u];
            var sol = Gauss(g, n, c);
            for (int u = 0; u < n; u++)
            {
                w[r, u] = sol[u];
                Assert.True(Math.Abs(sol[u] - w2[r * n + u]) <= 1e-4 * (1 + Math.Abs(sol[u])), $"w2[{r},{u}]: {w2[r * n + u]} vs {sol[u]}");
            }
        }
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < h; r++)
            {
                double p = 0;
                for (int u = 0; u < n; u++) p += w[r, u] * hid[t, u];
                rss += (y[t * h + r] - p) * (y[t * h + r] - p);
                yy += (double)y[t * h + r] * y[t * h + r];
            }
        Assert.Equal(rss / yy, err, 1e-4);
    }

    [Fact]
    public void RefitOfIdenticalExpertsReproducesTheMoeBlock()
    {
        int h = 8, inter = 12, tokens = 400;
        var rng = new Random(5);
        float[] R(int k) => Enumerable.Range(0, k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var e = new ExpertWeights(h, inter, R(inter * h), R(inter * h), R(inter * h));
        var experts = Enumerable.Range(0, 4).Select(_ => e.Clone()).ToArray();
        var x = R(tokens * h);
        var o = new RefitOptions { Calibration = [], Ridge = 1e-12 };
        var fit = LayerRefit.Fit(x, tokens, experts, R(4 * h), 2, 0, o, 1);
        Assert.True(fit.InitialError < 1e-6, $"relative error {fit.InitialError}");
        Assert.Equal(e.W1, fit.Dense.W1);
        Assert.Equal(e.W3, fit.Dense.W3);
        for (int i = 0; i < e.W2.Length; i++) Assert.Equal(e.W2[i], fit.Dense.W2[i], 1e-4);
        // the dense MLP's output equals the MoE block's (top-2 weights sum to 1) to float32 rounding
        var moe = new RoutedMoe(experts, R(4 * h), 2, 1).Output(x, tokens);
        var dense = MoeBlock.ExpertOutput(fit.Dense, x, tokens);
        for (int i = 0; i < moe.Length; i++) Assert.Equal(moe[i], dense[i], 1e-5);
    }

    [Fact]
    public void SelectInitKeepsTheUnitsWithTheLargestRoutedActivationTimesW2Norm()
    {
        int h = 4, inter = 3, tokens = 50;
        var rng = new Random(9);
        float[] R(int k) => Enumerable.Range(0, k).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var experts = Enumerable.Range(0, 2).Select(_ => new ExpertWeights(h, inter, R(inter * h), R(inter * h), R(inter * h))).ToArray();
        // expert 1's unit 2 gets a huge w2 column, expert 0's unit 0 a zero one
        for (int r = 0; r < h; r++) { experts[1].W2[r * inter + 2] = 100; experts[0].W2[r * inter + 0] = 0; }
        var x = R(tokens * h);
        var moe = new RoutedMoe(experts, new float[2 * h], 2, 1) { UnitScore = new double[2 * inter] };
        moe.Output(x, tokens);
        var d = LayerRefit.Init(experts, moe, 5, RefitInit.Select, 0);
        // the dropped unit is expert 0's unit 0; kept in index order: e0u1, e0u2, e1u0, e1u1, e1u2
        Assert.Equal(experts[0].W1.AsSpan(1 * h, 2 * h).ToArray(), d.W1.AsSpan(0, 2 * h).ToArray());
        Assert.Equal(experts[1].W1, d.W1.AsSpan(2 * h, 3 * h).ToArray());
        Assert.Equal(experts[1].W3, d.W3.AsSpan(2 * h, 3 * h).ToArray());
    }

    private static double[] RandomSpd(int n, int seed)
    {
        var rng = new Random(seed);
        var m = Enumerable.Range(0, n * n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = i == j ? n * 0.1 : 0;
                for (int k = 0; k < n; k++) s += m[i * n + k] * m[j * n + k];
                a[i * n + j] = s;
            }
        return a;
    }

    /// <summary>Gaussian elimination with partial pivoting (independent of Cholesky).</summary>
    private static double[] Gauss(double[] a0, int n, double[] b0)
    {
        var a = (double[])a0.Clone();
        var b = (double[])b0.Clone();
        for (int c = 0; c < n; c++)
        {
            int p = c;
            for (int r = c + 1; r < n; r++) if (Math.Abs(a[r * n + c]) > Math.Abs(a[p * n + c])) p = r;
            if (p != c)
            {
                for (int k = 0; k < n; k++) (a[c * n + k], a[p * n + k]) = (a[p * n + k], a[c * n + k]);
                (b[c], b[p]) = (b[p], b[c]);
            }
            for (int r = c + 1; r < n; r++)
            {
                double f = a[r * n + c] / a[c * n + c];
                for (int k = c; k < n; k++) a[r * n + k] -= f * a[c * n + k];
                b[r] -= f * b[c];
            }
        }
        var x = new double[n];
        for (int r = n - 1; r >= 0; r--)
        {
            double s = b[r];
            for (int k = r + 1; k < n; k++) s -= a[r * n + k] * x[k];
            x[r] = s / a[r * n + r];
        }
        return x;
    }
}
