using System.Diagnostics;
using Mistral.Merge.Moe;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Benchmarks.Moe;

/// <summary>
/// Times the aligned_mean building blocks at Mixtral sizes: <c>moe-assignment [n] [hidden] [noise] [baseline-n]</c>.
/// (0) the similarity (three products) at baseline-n × baseline-n × hidden with the packed
/// <see cref="SimilarityGemm"/> against the first dot-product kernel (<see cref="DotProductGemm"/>, with its
/// w2 transposes), measured in the same run, results compared; (1) LAPJV on uniform random similarities;
/// (2) LAPJV on a permuted noisy copy (optimum known, checked); (3) the similarity at full size in GFLOP/s.
/// </summary>
public static class AssignmentBenchmark
{
    public static int Run(string[] args)
    {
        int n = args.Length > 0 ? int.Parse(args[0]) : 14336;
        int hidden = args.Length > 1 ? int.Parse(args[1]) : 4096;
        float noise = args.Length > 2 ? float.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 0.5f;
        Console.WriteLine($"n = {n}, hidden = {hidden}, threads = {Environment.ProcessorCount}, AVX-512 = {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");
        int baselineN = args.Length > 3 ? int.Parse(args[3]) : 2048;
        var rng = new Random(1);
        if (baselineN > 0) CompareWithBaseline(rng, baselineN, hidden);

        var s = new float[(long)n * n];
        for (long i = 0; i < s.LongLength; i++) s[i] = (float)rng.NextDouble();
        var sw = Stopwatch.StartNew();
        var x = LinearAssignment.SolveMax(s, n);
        Console.WriteLine($"LAPJV, uniform random similarities: {sw.Elapsed.TotalSeconds:F2} s (objective {Objective(s, n, x):F3})");

        // Realistic: expert = permuted reference + noise, similarity over the w1/w3/w2 units.
        var reference = RandomExpert(rng, hidden, n, 1f);
        var perm = Enumerable.Range(0, n).OrderBy(_ => rng.Next()).ToArray();
        var expert = ExpertWeights.Zeros(hidden, n);
        var p = MoeStrategies.Permute(reference, perm);
        for (long i = 0; i < p.W1.LongLength; i++)
        {
            expert.W1[i] = p.W1[i] + noise * Gauss(rng);
            expert.W3[i] = p.W3[i] + noise * Gauss(rng);
            expert.W2[i] = p.W2[i] + noise * Gauss(rng);
        }
        var align = new ExpertAlignment();
        var got = align.Align(reference, expert);
        int correct = 0;
        for (int u = 0; u < n; u++) if (perm[got[u]] == u) correct++;
        Console.WriteLine($"similarity GEMM (3 × {n}×{n}×{hidden}): {align.LastSimilaritySeconds:F2} s = {3.0 * 2 * n * (double)n * hidden / align.LastSimilaritySeconds / 1e9:F1} GFLOP/s");
        Console.WriteLine($"LAPJV, permuted noisy copy (noise std {noise} × weight std): {align.LastAssignmentSeconds:F2} s, recovered {correct}/{n} units");
        return correct == n ? 0 : 1;
    }

    private static void CompareWithBaseline(Random rng, int n, int hidden)
    {
        var r = RandomExpert(rng, hidden, n, 1f);
        var e = RandomExpert(rng, hidden, n, 1f);
        double flop = 3.0 * 2 * n * (double)n * hidden;
        ExpertAlignment.Similarity(r, e); // warm-up (JIT)
        var sw = Stopwatch.StartNew();
        var fast = ExpertAlignment.Similarity(r, e);
        double tFast = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var slow = new float[(long)n * n];
        DotProductGemm.MultiplyAddNT(r.W1, e.W1, slow, n, n, hidden);
        DotProductGemm.MultiplyAddNT(r.W3, e.W3, slow, n, n, hidden);
        DotProductGemm.MultiplyAddNT(Transpose(r.W2, hidden, n), Transpose(e.W2, hidden, n), slow, n, n, hidden);
        double tSlow = sw.Elapsed.TotalSeconds;
        double maxRel = 0;
        for (long i = 0; i < fast.LongLength; i++)
            maxRel = Math.Max(maxRel, Math.Abs(fast[i] - slow[i]) / (Math.Sqrt(3.0 * hidden) + Math.Abs(slow[i])));
        Console.WriteLine($"similarity at {n}×{n}×{hidden} (×3): packed {tFast:F2} s = {flop / tFast / 1e9:F1} GFLOP/s, " +
                          $"baseline dot-product kernel {tSlow:F2} s = {flop / tSlow / 1e9:F1} GFLOP/s, speed-up ×{tSlow / tFast:F1}; " +
                          $"max |diff| / (√(3H) + |s|) = {maxRel:E1}");
    }

    private static float[] Transpose(float[] src, int rows, int cols)
    {
        var dst = new float[src.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                dst[(long)c * rows + r] = src[(long)r * cols + c];
        return dst;
    }

    private static double Objective(float[] s, int n, int[] x) { double t = 0; for (int i = 0; i < n; i++) t += s[(long)i * n + x[i]]; return t; }

    private static float Gauss(Random r) => (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()));

    private static ExpertWeights RandomExpert(Random r, int h, int n, float std)
    {
        var e = ExpertWeights.Zeros(h, n);
        for (long i = 0; i < e.W1.LongLength; i++) { e.W1[i] = std * Gauss(r); e.W3[i] = std * Gauss(r); e.W2[i] = std * Gauss(r); }
        return e;
    }
}
