using Mistral.Merge.IO;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Moe;

/// <summary>
/// MoE block inputs captured by the forward pass (on disk, see <see cref="CalibrationStore"/>), with the routing
/// statistics of the same pass.
/// </summary>
public sealed class MoeCalibration(CalibrationStore? inputs, int layers, int hidden, RoutingStatistics routing) : IMoeCalibrationSource, IDisposable
{
    public int Layers => layers;
    public int Hidden => hidden;
    public int Tokens => inputs?.Tokens ?? 0;
    public RoutingStatistics Routing => routing;
    public float[] MoeInputs(int layer, out int tokens)
    {
        if (inputs == null) throw new InvalidOperationException("no block inputs were captured (routing-only run)");
        tokens = inputs.Tokens;
        return inputs.MoeInputs(layer);
    }
    public void Dispose() => inputs?.Dispose();
}

/// <summary>A perplexity run; <see cref="Routing"/> is null for a dense model.</summary>
public sealed record MoeEvaluation(PerplexityResult Perplexity, RoutingStatistics? Routing);

/// <summary>
/// What MoE surgery measures with the CPU forward pass (<see cref="CpuBackend"/>), all with the fixtures'
/// protocol: token ids = [BOS] + encode(text), cut to a limit; non-overlapping windows of 256 tokens, each
/// run from an empty cache; every position of every window routed (statistics, calibration), every token
/// but a window's first scored (perplexity, HF perplexity-guide semantics).
/// </summary>
public static class MoeForwardPass
{
    public const int Window = 256;

    /// <summary>[BOS] + encode(text file), cut to <paramref name="maxTokens"/>.</summary>
    public static int[] Tokens(string model, string textFile, int maxTokens)
    {
        if (maxTokens < 2) throw new MergeException($"token limit must be at least 2, got {maxTokens}");
        return TextTokens.FromFile(model, textFile, maxTokens);
    }

    /// <summary>Routing statistics of a Mixtral on token ids (every position of every window).</summary>
    public static RoutingStatistics Routing(string model, int[] ids, int threads = 0, CancellationToken token = default)
        => Run(model, ids, capture: false, threads, null, token).Routing;

    /// <summary>As <see cref="Routing(string, int[], int, CancellationToken)"/>; <paramref name="progress"/> receives (tokens routed, tokens).</summary>
    public static RoutingStatistics Routing(string model, int[] ids, Action<long, long>? progress, CancellationToken token = default)
        => Run(model, ids, capture: false, 0, progress, token).Routing;

    /// <summary>MoE block inputs of every layer on calibration token ids, plus their routing statistics.</summary>
    public static MoeCalibration Calibrate(string model, int[] ids, int threads = 0, CancellationToken token = default)
        => Run(model, ids, capture: true, threads, null, token);

    /// <summary>As <see cref="Calibrate(string, int[], int, CancellationToken)"/>; <paramref name="progress"/> receives (tokens routed, tokens).</summary>
    public static MoeCalibration Calibrate(string model, int[] ids, Action<long, long>? progress, CancellationToken token = default)
        => Run(model, ids, capture: true, 0, progress, token);

    /// <summary>Perplexity of any model the forward pass loads (dense or MoE), ctx = stride = 256 by default.</summary>
    public static PerplexityResult Perplexity(string model, int[] ids, int ctx = Window, int stride = Window, int threads = 0, CancellationToken token = default)
        => Evaluate(model, ids, ctx, stride, threads, token).Perplexity;

    /// <summary>Perplexity and, for a Mixtral, the routing statistics of the same pass (every fed position).</summary>
    public static MoeEvaluation Evaluate(string model, int[] ids, int ctx = Window, int stride = Window, int threads = 0, CancellationToken token = default)
    {
        using var m = TransformerModel.Load(model);
        using var backend = new CpuBackend(m, threads);
        var s = m.Shape;
        Observer? observer = s.IsMoe ? new Observer(s.Layers, s.Experts, s.ExpertsPerToken, s.Hidden, null) : null;
        backend.MoeObserver = observer;
        var r = Inference.Perplexity.Evaluate(backend, ids, ctx, stride, cancel: token);
        return new MoeEvaluation(r, observer?.Stats);
    }

    private static MoeCalibration Run(string model, int[] ids, bool capture, int threads, Action<long, long>? progress, CancellationToken token)
    {
        using var m = TransformerModel.Load(model);
        var s = m.Shape;
        if (!s.IsMoe) throw new MergeException($"{model}: not a Mixtral model (architecture '{m.Config.ArchitectureName}'); routing needs MixtralForCausalLM");
        if (ids.Length == 0) throw new MergeException("routing: no tokens");
        var store = capture ? new CalibrationStore(s.Layers, ids.Length, s.Hidden) : null;
        try
        {
            Route(m, ids, new Observer(s.Layers, s.Experts, s.ExpertsPerToken, s.Hidden, store), threads, progress, token, out var stats);
            return new MoeCalibration(store, s.Layers, s.Hidden, stats);
        }
        catch
        {
            store?.Dispose();
            throw;
        }
    }

    private static void Route(TransformerModel m, int[] ids, Observer observer, int threads, Action<long, long>? progress,
        CancellationToken token, out RoutingStatistics stats)
    {
        var s = m.Shape;
        using var backend = new CpuBackend(m, threads);
        backend.MoeObserver = observer;
        using var cache = backend.CreateCache(Window);
        var positions = new int[Window];
        for (int i = 0; i < Window; i++) positions[i] = i;
        var logits = new float[s.Vocab];
        for (int start = 0; start < ids.Length; start += Window)
        {
            token.ThrowIfCancellationRequested();
            int n = Math.Min(Window, ids.Length - start);
            cache.Reset();
            backend.Forward(ids.AsSpan(start, n), positions.AsSpan(0, n), cache, logits);
            observer.Advance(n);
            progress?.Invoke(start + n, ids.Length);
        }
        stats = observer.Stats;
    }

    /// <summary>Adds every layer's router logits to the statistics and, when capturing, copies the block inputs.</summary>
    private sealed class Observer(int layers, int experts, int topK, int hidden, CalibrationStore? store) : IMoeObserver
    {
        public RoutingStatistics Stats { get; } = new(layers, experts, topK);
        private int _offset;

        public void Observe(int layer, ReadOnlySpan<float> inputs, ReadOnlySpan<float> routerLogits, int tokens)
        {
            Stats.Add(layer, routerLogits);
            store?.Write(layer, _offset, inputs[..(tokens * hidden)]);
        }

        public void Advance(int tokens) => _offset += tokens;
    }
}
