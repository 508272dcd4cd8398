using System.Diagnostics;

namespace Mistral.Merge.Inference;

public sealed record CompareResult(double MeanKl, double P99Kl, double MaxKl, double Top1Agreement,
    PerplexityResult A, PerplexityResult B, int Tokens, double Seconds);

/// <summary>
/// Two models on the same windows of the same tokens: per scored token KL(A‖B) of the next-token
/// distributions, whether their argmax agrees, and each model's perplexity.
/// </summary>
public static class Compare
{
    public static CompareResult Run(IBackend a, IBackend b, int[] ids, int ctx, int stride,
        Action<long, long>? progress = null, CancellationToken cancel = default)
    {
        int vocab = a.Shape.Vocab;
        if (b.Shape.Vocab != vocab)
            throw new MergeException($"the models have different vocabularies ({vocab} and {b.Shape.Vocab} tokens); KL needs the same tokenizer");
        var windows = Perplexity.Windows(ids.Length, ctx, stride);
        int rows = Math.Min(ctx, ids.Length);
        var la = new float[(long)rows * vocab];
        var lb = new float[(long)rows * vocab];
        var pa = new double[vocab];
        var pb = new double[vocab];
        var positions = Enumerable.Range(0, ctx).ToArray();
        using var ca = a.CreateCache(ctx);
        using var cb = b.CreateCache(ctx);
        var kls = new List<double>();
        double nllA = 0, nllB = 0;
        int agree = 0;
        long fed = 0, total = 0;
        foreach (var w in windows) total += w.Length;
        var sw = Stopwatch.StartNew();
        double secA = 0, secB = 0;
        foreach (var w in windows)
        {
            cancel.ThrowIfCancellationRequested();
            ca.Reset(); cb.Reset();
            var tokens = ids.AsSpan(w.Begin, w.Length);
            var spanA = la.AsSpan(0, w.LogitRows * vocab);
            var spanB = lb.AsSpan(0, w.LogitRows * vocab);
            var t0 = sw.Elapsed.TotalSeconds;
            a.Forward(tokens, positions.AsSpan(0, w.Length), ca, spanA);
            var t1 = sw.Elapsed.TotalSeconds;
            b.Forward(tokens, positions.AsSpan(0, w.Length), cb, spanB);
            secA += t1 - t0; secB += sw.Elapsed.TotalSeconds - t1;
            LogitsGuard.Check(a, spanA, tokens, w.Begin);
            LogitsGuard.Check(b, spanB, tokens, w.Begin);
            for (int t = w.ScoreFrom; t < w.End; t++)
            {
                var ra = la.AsSpan((t - 1 - w.FirstLogit) * vocab, vocab);
                var rb = lb.AsSpan((t - 1 - w.FirstLogit) * vocab, vocab);
                LogMath.LogSoftmax(ra, pa);
                LogMath.LogSoftmax(rb, pb);
                kls.Add(LogMath.KlDivergence(pa, pb));
                nllA -= pa[ids[t]];
                nllB -= pb[ids[t]];
                if (LogMath.ArgMax(ra) == LogMath.ArgMax(rb)) agree++;
            }
            fed += w.Length;
            progress?.Invoke(fed, total);
        }
        int n = kls.Count;
        double mean = 0, max = 0;
        foreach (var k in kls) { mean += k; max = Math.Max(max, k); }
        mean /= n;
        kls.Sort();
        double p99 = kls[Math.Max(0, (int)Math.Ceiling(0.99 * n) - 1)]; // nearest rank
        var resA = new PerplexityResult(Math.Exp(nllA / n), nllA / n, n, secA);
        var resB = new PerplexityResult(Math.Exp(nllB / n), nllB / n, n, secB);
        return new CompareResult(mean, p99, max, (double)agree / n, resA, resB, n, sw.Elapsed.TotalSeconds);
    }
}
