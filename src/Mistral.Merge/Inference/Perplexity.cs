using System.Diagnostics;

namespace Mistral.Merge.Inference;

/// <summary>One evaluation window: tokens [Begin, End) are fed; tokens at positions [ScoreFrom, End) are scored.</summary>
public readonly record struct EvalWindow(int Begin, int End, int ScoreFrom)
{
    public int Length => End - Begin;
    public int Scored => End - ScoreFrom;
    /// <summary>The position of the first logit row a scorer needs: the one before the first scored token.</summary>
    public int FirstLogit => ScoreFrom - 1;
    /// <summary>Logit rows a scorer needs: from <see cref="FirstLogit"/> to the window's end (all of them in the first
    /// window, stride + 1 after it), so the backend can skip the rest.</summary>
    public int LogitRows => End - FirstLogit;
}

public sealed record PerplexityResult(double Perplexity, double MeanNll, int Tokens, double Seconds)
{
    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;
    /// <summary>Of <see cref="Seconds"/>, the time outside the forward passes (finiteness check and NLL).</summary>
    public double ScoringSeconds { get; init; }
}

/// <summary>
/// Sliding-window perplexity with the HF perplexity-guide semantics: windows of <c>ctx</c> tokens start
/// at 0, stride, 2·stride, … until one reaches the end; a window scores the tokens at positions ≥ the
/// previous window's end and after its own first token; PPL = exp(mean NLL).
/// </summary>
public static class Perplexity
{
    public static List<EvalWindow> Windows(int tokens, int ctx, int stride)
    {
        if (ctx < 2) throw new MergeException($"--ctx must be at least 2, got {ctx}");
        if (stride < 1 || stride > ctx) throw new MergeException($"--stride must be between 1 and --ctx ({ctx}), got {stride}");
        if (tokens < 2) throw new MergeException($"the text has {tokens} token(s) with BOS; at least 2 are needed to score anything");
        var list = new List<EvalWindow>();
        int prevEnd = 0;
        for (int begin = 0; ; begin += stride)
        {
            int end = Math.Min(begin + ctx, tokens);
            list.Add(new EvalWindow(begin, end, Math.Max(prevEnd, begin + 1)));
            prevEnd = end;
            if (end == tokens) break;
        }
        return list;
    }

    /// <summary>
    /// Runs every window through <paramref name="backend"/>; <paramref name="progress"/> gets (tokens done, total).
    /// Each window's logits are checked and scored on a worker pool (<see cref="WindowScorer"/>), as many threads as the backend's.
    /// </summary>
    public static PerplexityResult Evaluate(IBackend backend, int[] ids, int ctx, int stride,
        Action<long, long>? progress = null, CancellationToken cancel = default)
    {
        var windows = Windows(ids.Length, ctx, stride);
        int vocab = backend.Shape.Vocab;
        var logits = new float[(long)Math.Min(ctx, ids.Length) * vocab];
        var positions = new int[ctx];
        for (int i = 0; i < ctx; i++) positions[i] = i;
        using var cache = backend.CreateCache(ctx);
        using var scorer = new WindowScorer(vocab, Math.Min(ctx, ids.Length), backend.HostThreads);
        double nll = 0, scoring = 0;
        int scored = 0;
        long fed = 0, total = 0;
        foreach (var w in windows) total += w.Length;
        var sw = Stopwatch.StartNew();
        foreach (var w in windows)
        {
            cancel.ThrowIfCancellationRequested();
            cache.Reset();
            var span = logits.AsSpan(0, w.LogitRows * vocab); // the backend skips the head and the last MLP for the rest
            backend.Forward(ids.AsSpan(w.Begin, w.Length), positions.AsSpan(0, w.Length), cache, span);
            long t0 = Stopwatch.GetTimestamp();
            if (!scorer.Score(logits, ids, w, ref nll))
                LogitsGuard.Check(backend, span, ids.AsSpan(w.Begin, w.Length), w.Begin); // throws, naming where
            scoring += Stopwatch.GetElapsedTime(t0).TotalSeconds;
            scored += w.Scored;
            fed += w.Length;
            progress?.Invoke(fed, total);
        }
        double mean = nll / scored;
        return new PerplexityResult(Math.Exp(mean), mean, scored, sw.Elapsed.TotalSeconds) { ScoringSeconds = scoring };
    }
}
