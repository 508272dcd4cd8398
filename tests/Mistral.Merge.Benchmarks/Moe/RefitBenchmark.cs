using System.Diagnostics;
using System.Globalization;
using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Refit;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks.Moe;

/// <summary>
/// One layer of <c>strategy: refit</c> at Mixtral-8x7B size: <c>moe-refit [tokens 1024] [n 14336] [hidden 4096] [experts 8] [top-k 2]</c>.
/// Times the MoE targets Y (routed top-k experts) and the Gram accumulation G = Σ h hᵀ, C = Σ y hᵀ on
/// <c>tokens</c> random block inputs (chunks of 512, float32 GEMM per chunk added into float64), the blocked
/// Cholesky of G + λI and the solve for the hidden rows of w2, with the peak RssAnon (/proc/self/status).
/// To keep the box usable the experts are two distinct random SwiGLU MLPs used in turn (the compute is per
/// expert, so times are those of eight; memory of eight float32 experts is added in the report line).
/// </summary>
public static class RefitBenchmark
{
    public static int Run(string[] args)
    {
        int Arg(int i, int d) => args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : d;
        int tokens = Arg(0, 1024), n = Arg(1, 14336), h = Arg(2, 4096), e = Arg(3, 8), k = Arg(4, 2);
        int threads = WorkerPool.DefaultThreads;
        Console.WriteLine($"refit layer: tokens {tokens}, intermediate {n}, hidden {h}, {e} experts top-{k}, {threads} threads, AVX-512 = {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");
        var rng = new Random(1);
        float[] R(long count, double scale)
        {
            var v = new float[count];
            for (long i = 0; i < count; i++) v[i] = (float)((rng.NextDouble() - 0.5) * scale);
            return v;
        }
        double ws = 1 / Math.Sqrt(h);
        var distinct = Enumerable.Range(0, Math.Min(2, e)).Select(_ => new ExpertWeights(h, n, R((long)n * h, ws), R((long)n * h, ws), R((long)n * h, 1 / Math.Sqrt(n)))).ToArray();
        var experts = Enumerable.Range(0, e).Select(i => distinct[i % distinct.Length]).ToArray();
        var router = R((long)e * h, ws);
        var x = R((long)tokens * h, 2);
        using var rss = new RssAnonSampler();

        var sw = Stopwatch.StartNew();
        var moe = new RoutedMoe(experts, router, k, threads);
        var y = moe.Output(x, tokens);
        double tY = sw.Elapsed.TotalSeconds;

        sw.Restart();
        var dense = new ExpertWeights(h, n, distinct[0].W1, distinct[0].W3, new float[(long)h * n]);
        var g = new double[(long)n * n];
        var c = new double[(long)h * n];
        var gf = new float[(long)n * n];
        var cf = new float[(long)h * n];
        for (int t0 = 0; t0 < tokens; t0 += 512)
        {
            int tc = Math.Min(512, tokens - t0);
            var hid = RoutedMoe.Hidden(dense, x.AsSpan(t0 * h, tc * h).ToArray(), tc, threads);
            Array.Clear(gf); Array.Clear(cf);
            SimilarityGemm.MultiplyAddGram(hid, OperandLayout.KMajor, gf, n, tc, threads);
            SimilarityGemm.MultiplyAdd(y.AsSpan(t0 * h, tc * h), OperandLayout.KMajor, hid, OperandLayout.KMajor, cf, h, n, tc, threads);
            WideningAdd.Run(g, gf, threads);
            WideningAdd.Run(c, cf, threads);
        }
        double tGram = sw.Elapsed.TotalSeconds;

        // the Gram of one 512-token chunk as the full product and as the upper triangle + mirror, alternated, best of 2
        {
            int tc = Math.Min(512, tokens);
            var hid = RoutedMoe.Hidden(dense, x.AsSpan(0, tc * h).ToArray(), tc, threads);
            double full = double.MaxValue, upper = double.MaxValue;
            for (int rep = 0; rep < 2; rep++)
            {
                Array.Clear(gf); sw.Restart();
                SimilarityGemm.MultiplyAdd(hid, OperandLayout.KMajor, hid, OperandLayout.KMajor, gf, n, n, tc, threads);
                full = Math.Min(full, sw.Elapsed.TotalSeconds);
                Array.Clear(gf); sw.Restart();
                SimilarityGemm.MultiplyAddGram(hid, OperandLayout.KMajor, gf, n, tc, threads);
                upper = Math.Min(upper, sw.Elapsed.TotalSeconds);
            }
            Console.WriteLine($"Gram of one {tc}-token chunk: full product {full:F2} s, upper triangle + mirror {upper:F2} s ({full / upper:F2}× faster)");
        }
        gf = null; cf = null;

        double lambda = RidgeRule.Lambda(g, n, RidgeRule.AutoFactor);
        for (int i = 0; i < n; i++) g[(long)i * n + i] += lambda;
        sw.Restart();
        int bad = Cholesky.Factor(g, n, threads);
        double tChol = sw.Elapsed.TotalSeconds;
        if (bad >= 0) { Console.WriteLine($"not positive definite at column {bad} (tokens < n makes G singular: raise ridge or tokens)"); }
        sw.Restart();
        Cholesky.Solve(g, n, c, h, threads);
        double tSolve = sw.Elapsed.TotalSeconds;
        rss.Dispose();

        double per1k = 1000.0 / tokens;
        Console.WriteLine($"MoE targets Y (top-{k} of {e} experts): {tY:F2} s = {tY * per1k:F2} s per 1k tokens");
        Console.WriteLine($"Gram G = Σhhᵀ and C = Σyhᵀ (H = silu(W1x)⊙W3x included): {tGram:F2} s = {tGram * per1k:F2} s per 1k tokens ({2.0 * tokens * ((double)n * n + (double)h * n + 2.0 * n * h) / tGram / 1e9:F0} GFLOP/s counting G as the full product)");
        Console.WriteLine($"Cholesky of {n}×{n} (float64): {tChol:F2} s ({(double)n * n * n / 3 / tChol / 1e9:F1} GFLOP/s); solve for {h} rows of w2: {tSolve:F2} s ({2.0 * n * (double)n * h / tSolve / 1e9:F1} GFLOP/s)");
        Console.WriteLine($"peak RssAnon: {rss.Peak / 1048576.0:0} MiB (with {distinct.Length} distinct float32 experts of {3.0 * n * h * 4 / 1048576:0} MiB each; {e} distinct ones would add {(e - distinct.Length) * 3.0 * n * h * 4 / 1048576:0} MiB)");
        Console.WriteLine($"per layer with T calibration tokens: {(tY + tGram) * per1k:F1}·T/1000 + {tChol + tSolve:F0} s (plus the calibration forward pass of the layer)");
        return bad >= 0 ? 1 : 0;
    }
}
