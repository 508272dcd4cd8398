using Mistral.Merge.Numerics;

namespace Mistral.Merge.Moe.Refit;

/// <summary>What one layer's refit reached: relative reconstruction error ‖Y − W₂H‖²/‖Y‖² after the w2 solve and after refinement, and λ.</summary>
public sealed record LayerFit(ExpertWeights Dense, double InitialError, double FinalError, double Lambda, int AcceptedSteps, double Seconds)
{
    /// <summary>The figures without the weights (which <see cref="SequentialRefit"/> spills to a <see cref="FittedLayerStore"/>).</summary>
    public LayerFitStats Stats => new(Dense.Intermediate, InitialError, FinalError, Lambda, AcceptedSteps, Seconds);
}

/// <summary><see cref="LayerFit"/>'s figures for the summary and the log.</summary>
public sealed record LayerFitStats(int Intermediate, double InitialError, double FinalError, double Lambda, int AcceptedSteps, double Seconds);

/// <summary>
/// One layer of <c>strategy: refit</c>: given the block inputs X [T, hidden] (from the partly converted model) and the
/// MoE block's outputs Y on them, initialize the dense w1/w3, then solve min ‖Y − W₂H‖² + λ‖W₂‖², H = silu(W₁X) ⊙ W₃X:
/// W₂ = C (G + λI)⁻¹ with G = Σ h hᵀ (N×N) and C = Σ y hᵀ (hidden×N), accumulated over chunks of tokens (each chunk's
/// product in float32 by the packed GEMM, added into float64 — a float32 sum of at most <see cref="RefitOptions.Chunk"/>
/// terms per element, float64 across chunks) and solved by <see cref="Cholesky"/>. Refinement: gradient steps on w1/w3
/// of the same loss with w2 at its optimum (variable projection: the gradient with w2 fixed at the solution is the
/// gradient of the reduced loss), each with a backtracking line search in which w2 is re-solved for every trial.
/// </summary>
public static class LayerRefit
{
    public static LayerFit Fit(float[] x, int tokens, ExpertWeights[] experts, float[] router, int topK, int layer, RefitOptions o, int threads)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int h = experts[0].Hidden, inter = experts[0].Intermediate, e = experts.Length;
        int n = o.IntermediateSize ?? inter;
        var moe = new RoutedMoe(experts, router, topK, threads);
        if (o.Init == RefitInit.Select) moe.UnitScore = new double[(long)e * inter];
        var y = new float[(long)tokens * h];
        ForChunks(tokens, o.Chunk, (t0, tc) =>
        {
            var yc = moe.Output(x.AsSpan(t0 * h, tc * h).ToArray(), tc);
            yc.CopyTo(y.AsSpan(t0 * h));
        });
        var dense = Init(experts, moe, n, o.Init, layer);
        var (w2, lambda, err0) = SolveW2(dense, x, y, tokens, o, layer, threads, null);
        dense = new ExpertWeights(h, n, dense.W1, dense.W3, w2);
        double err = err0, step = 0;
        int accepted = 0;
        for (int s = 0; s < o.RefineSteps; s++)
        {
            var (g1, g3) = Gradient(dense, x, y, tokens, o.Chunk, threads);
            double gnorm = Math.Sqrt(SumSq(g1) + SumSq(g3)), wnorm = Math.Sqrt(SumSq(dense.W1) + SumSq(dense.W3));
            if (!(gnorm > 0)) break;
            if (step == 0) step = 0.02 * wnorm / gnorm;
            bool ok = false;
            for (int trial = 0; trial < 5 && !ok; trial++)
            {
                var w1 = Step(dense.W1, g1, step);
                var w3 = Step(dense.W3, g3, step);
                var candidate = new ExpertWeights(h, n, w1, w3, new float[(long)h * n]);
                var (cw2, cl, cerr) = SolveW2(candidate, x, y, tokens, o, layer, threads, lambda);
                if (cerr < err)
                {
                    dense = new ExpertWeights(h, n, w1, w3, cw2);
                    (err, lambda, ok) = (cerr, cl, true);
                    accepted++;
                    step *= 1.5;
                }
                else step *= 0.25;
            }
            if (!ok) break;
        }
        return new LayerFit(dense, err0, err, lambda, accepted, clock.Elapsed.TotalSeconds);
    }

    private static void ForChunks(int tokens, int chunk, Action<int, int> body)
    {
        for (int t0 = 0; t0 < tokens; t0 += chunk) body(t0, Math.Min(chunk, tokens - t0));
    }

    /// <summary>The dense w1/w3 (w2 is solved afterwards): an average of the experts, or the N best units of all of them.</summary>
    internal static ExpertWeights Init(ExpertWeights[] experts, RoutedMoe moe, int n, RefitInit init, int layer)
    {
        int h = experts[0].Hidden, inter = experts[0].Intermediate;
        if (init != RefitInit.Select && n != inter)
            throw new MergeException($"refit layer {layer}: intermediate_size {n} differs from the experts' {inter}; only init select can choose another size");
        double total = moe.Selected.Sum();
        double[] freq = moe.Selected.Select(c => total > 0 ? c / total : 1.0 / experts.Length).ToArray();
        switch (init)
        {
            case RefitInit.Mean: return MoeStrategies.Mean(experts);
            case RefitInit.Frequency: return MoeStrategies.WeightedMean(experts, freq, $"refit frequency init (layer {layer})");
            case RefitInit.AlignedMean:
                int reference = Array.IndexOf(freq, freq.Max());
                return MoeStrategies.AlignedMean(experts, reference, default, new ExpertAlignment());
        }
        // select: score = Σ routing weight · |h| of the unit × ‖its w2 column‖; the N best units, ties → lower index
        var score = moe.UnitScore!;
        for (int ex = 0; ex < experts.Length; ex++)
            for (int u = 0; u < inter; u++)
            {
                double c = 0;
                for (int r = 0; r < h; r++) { double v = experts[ex].W2[(long)r * inter + u]; c += v * v; }
                score[(long)ex * inter + u] *= Math.Sqrt(c);
            }
        var order = Enumerable.Range(0, score.Length).ToArray();
        Array.Sort(order, (a, b) => score[a] != score[b] ? score[b].CompareTo(score[a]) : a.CompareTo(b));
        if (n > order.Length) throw new MergeException($"refit layer {layer}: intermediate_size {n} is more than the {order.Length} units of all experts (init select)");
        var keep = order[..n];
        Array.Sort(keep);
        var d = ExpertWeights.Zeros(h, n);
        for (int i = 0; i < n; i++)
        {
            int ex = keep[i] / inter, u = keep[i] % inter;
            experts[ex].W1.AsSpan(u * h, h).CopyTo(d.W1.AsSpan(i * h, h));
            experts[ex].W3.AsSpan(u * h, h).CopyTo(d.W3.AsSpan(i * h, h));
        }
        return d;
    }

    /// <summary>W₂ = C (G + λI)⁻¹ for the dense w1/w3; returns it, λ and the relative reconstruction error.</summary>
    internal static (float[] W2, double Lambda, double Error) SolveW2(ExpertWeights d, float[] x, float[] y, int tokens, RefitOptions o, int layer, int threads, double? fixedLambda)
    {
        int h = d.Hidden, n = d.Intermediate;
        var g = new double[(long)n * n];
        var c = new double[(long)h * n];
        double yy = 0;
        var gf = new float[(long)n * n];
        var cf = new float[(long)h * n];
        ForChunks(tokens, o.Chunk, (t0, tc) =>
        {
            var xc = x.AsSpan(t0 * h, tc * h).ToArray();
            var yc = y.AsSpan(t0 * h, tc * h);
            var hid = RoutedMoe.Hidden(d, xc, tc, threads);
            Array.Clear(gf); Array.Clear(cf);
            SimilarityGemm.MultiplyAddGram(hid, OperandLayout.KMajor, gf, n, tc, threads); // gf is cleared: symmetric
            SimilarityGemm.MultiplyAdd(yc, OperandLayout.KMajor, hid, OperandLayout.KMajor, cf, h, n, tc, threads);
            WideningAdd.Run(g, gf, threads);
            WideningAdd.Run(c, cf, threads);
            foreach (var v in yc) yy += (double)v * v;
        });
        for (long i = 0; i < g.LongLength; i++)
            if (!double.IsFinite(g[i])) throw new MergeException($"refit layer {layer}: the Gram matrix of the dense activations is not finite (NaN/Inf in the calibration activations or weights)");
        double lambda = fixedLambda ?? RidgeRule.Lambda(g, n, o.Ridge ?? RidgeRule.AutoFactor);
        var a = (double[])g.Clone();
        for (int i = 0; i < n; i++) a[(long)i * n + i] += lambda;
        int bad = Cholesky.Factor(a, n, threads);
        if (bad >= 0) throw new MergeException($"refit layer {layer}: G + λI is not positive definite at column {bad} (λ = {lambda:G4}); raise ridge");
        var w = (double[])c.Clone();
        Cholesky.Solve(a, n, w, h, threads);
        // ‖Y − WH‖² = ‖Y‖² − 2⟨W, C⟩ + ⟨W G, W⟩, and W (G + λI) = C makes ⟨W G, W⟩ = ⟨W, C⟩ − λ‖W‖²: no h·N² product
        double cross = System.Numerics.Tensors.TensorPrimitives.Dot(w, c);
        double quad = cross - lambda * System.Numerics.Tensors.TensorPrimitives.Dot(w, w);
        var w2 = new float[(long)h * n];
        for (long i = 0; i < w.LongLength; i++) w2[i] = (float)w[i];
        double err = yy > 0 ? Math.Max(0, yy - 2 * cross + quad) / yy : 0;
        return (w2, lambda, err);
    }

    /// <summary>∂/∂W₁ and ∂/∂W₃ of ½‖W₂H − Y‖² (H = silu(W₁X) ⊙ W₃X) at the current weights.</summary>
    internal static (float[] G1, float[] G3) Gradient(ExpertWeights d, float[] x, float[] y, int tokens, int chunk, int threads)
    {
        int h = d.Hidden, n = d.Intermediate;
        var g1 = new float[(long)n * h];
        var g3 = new float[(long)n * h];
        var w2t = new float[(long)n * h];
        for (int r = 0; r < h; r++)
            for (int u = 0; u < n; u++) w2t[(long)u * h + r] = d.W2[(long)r * n + u];
        ForChunks(tokens, chunk, (t0, tc) =>
        {
            var xc = x.AsSpan(t0 * h, tc * h).ToArray();
            var a = new float[(long)tc * n];
            var b = new float[(long)tc * n];
            SimilarityGemm.MultiplyAddNT(xc, d.W1, a, tc, n, h, threads);
            SimilarityGemm.MultiplyAddNT(xc, d.W3, b, tc, n, h, threads);
            var hid = new float[(long)tc * n];
            var s = new float[(long)tc * n];
            for (long i = 0; i < hid.LongLength; i++)
            {
                float sig = 1f / (1f + MathF.Exp(-a[i]));
                s[i] = a[i] * sig;
                hid[i] = s[i] * b[i];
            }
            var r = new float[(long)tc * h];
            for (long i = 0; i < r.LongLength; i++) r[i] = -y[t0 * h + i];
            SimilarityGemm.MultiplyAddNT(hid, d.W2, r, tc, h, n, threads);
            var dh = new float[(long)tc * n];
            SimilarityGemm.MultiplyAddNT(r, w2t, dh, tc, n, h, threads);
            var da = new float[(long)tc * n];
            var db = new float[(long)tc * n];
            for (long i = 0; i < da.LongLength; i++)
            {
                float sig = 1f / (1f + MathF.Exp(-a[i]));
                da[i] = dh[i] * b[i] * sig * (1f + a[i] * (1f - sig));
                db[i] = dh[i] * s[i];
            }
            SimilarityGemm.MultiplyAdd(da, OperandLayout.KMajor, xc, OperandLayout.KMajor, g1, n, h, tc, threads);
            SimilarityGemm.MultiplyAdd(db, OperandLayout.KMajor, xc, OperandLayout.KMajor, g3, n, h, tc, threads);
        });
        return (g1, g3);
    }

    private static float[] Step(float[] w, float[] g, double step)
    {
        var r = new float[w.Length];
        for (int i = 0; i < w.Length; i++) r[i] = (float)(w[i] - step * g[i]);
        return r;
    }

    private static double SumSq(float[] v)
    {
        double s = 0;
        foreach (var f in v) s += (double)f * f;
        return s;
    }
}
