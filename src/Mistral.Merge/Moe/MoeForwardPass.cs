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
/// protocol: token ids = [BOS] + encode(text), cut to a limit; windows of ctx tokens every stride tokens (by default
/// non-overlapping windows of <see cref="Window"/> = 256), each run from an empty cache; every token routed once, in the
/// first window that holds it (statistics, calibration), every token but the first window's first scored once
/// (perplexity, HF perplexity-guide semantics).
/// </summary>
public static class MoeForwardPass
{
    /// <summary>The default window (ctx = stride) of routing and calibration: moe-stats' and moe-convert's --ctx default.</summary>
    public const int Window = 256;

    /// <summary>Cap of the default window: activations and the KV cache of a window grow with it (2048 tokens of Mixtral-8x7B ≈ 0.3 GB of cache).</summary>
    public const int MaxDefaultContext = 2048;

    /// <summary>
    /// The default window of moe-stats and of calibrated surgeries on the command line and in recipes: the model's
    /// max_position_embeddings capped at <see cref="MaxDefaultContext"/> (<see cref="Window"/> when the config has none).
    /// The library methods below keep <see cref="Window"/> as their default.
    /// </summary>
    public static int DefaultContext(Models.ModelConfig c) => c.MaxPositionEmbeddings >= 2 ? Math.Min(c.MaxPositionEmbeddings, MaxDefaultContext) : Window;

    /// <summary>[BOS] + encode(text file), cut to <paramref name="maxTokens"/>.</summary>
    public static int[] Tokens(string model, string textFile, int maxTokens)
    {
        if (maxTokens < 2) throw new MergeException($"token limit must be at least 2, got {maxTokens}");
        return TextTokens.FromFile(model, textFile, maxTokens);
    }

    /// <summary>
    /// Routing statistics of a Mixtral on token ids: windows of <paramref name="ctx"/> tokens every <paramref name="stride"/>
    /// (0: ctx) as perplexity's (<see cref="Inference.Perplexity.Windows"/>), each token routed once, in the first window that holds it;
    /// <paramref name="progress"/> receives (tokens routed, tokens).
    /// </summary>
    public static RoutingStatistics Routing(string model, int[] ids, int ctx = Window, int stride = 0, int threads = 0,
        Action<long, long>? progress = null, CancellationToken token = default)
        => Run(model, ids, capture: false, ctx, stride, threads, progress, token).Routing;

    /// <summary>MoE block inputs of every layer on calibration token ids (one row per token, windows as <see cref="Routing"/>), plus their routing statistics.</summary>
    public static MoeCalibration Calibrate(string model, int[] ids, int ctx = Window, int stride = 0, int threads = 0,
        Action<long, long>? progress = null, CancellationToken token = default)
        => Run(model, ids, capture: true, ctx, stride, threads, progress, token);

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

    private static MoeCalibration Run(string model, int[] ids, bool capture, int ctx, int stride, int threads, Action<long, long>? progress, CancellationToken token)
    {
        using var m = TransformerModel.Load(model);
        var s = m.Shape;
        if (!s.IsMoe) throw new MergeException($"{model}: not a Mixtral model (architecture '{m.Config.ArchitectureName}'); routing needs MixtralForCausalLM");
        if (ids.Length == 0) throw new MergeException("routing: no tokens");
        var windows = Inference.Perplexity.Windows(ids.Length, ctx, stride == 0 ? ctx : stride);
        if (ctx != Window) ContextBudget.CheckWindow(m, ctx, ids.Length);
        var store = capture ? new CalibrationStore(s.Layers, ids.Length, s.Hidden) : null;
        try
        {
            Route(m, ids, windows, new Observer(s.Layers, s.Experts, s.ExpertsPerToken, s.Hidden, store), threads, progress, token, out var stats);
            return new MoeCalibration(store, s.Layers, s.Hidden, stats);
        }
        catch
        {
            store?.Dispose();
            throw;
        }
    }

    private static void Route(TransformerModel m, int[] ids, List<EvalWindow> windows, Observer observer, int threads, Action<long, long>? progress,
        CancellationToken token, out RoutingStatistics stats)
    {
        var s = m.Shape;
        int ctx = windows.Max(w => w.Length);
        using var backend = new CpuBackend(m, threads);
        backend.MoeObserver = observer;
        using var cache = backend.CreateCache(ctx);
        var positions = new int[ctx];
        for (int i = 0; i < ctx; i++) positions[i] = i;
        var logits = new float[s.Vocab];
        int routed = 0; // tokens [0, routed) are routed: a window routes only the tokens it adds
        foreach (var w in windows)
        {
            token.ThrowIfCancellationRequested();
            cache.Reset();
            observer.StartWindow(routed - w.Begin);
            backend.Forward(ids.AsSpan(w.Begin, w.Length), positions.AsSpan(0, w.Length), cache, logits);
            observer.Advance(w.End - routed);
            routed = w.End;
            progress?.Invoke(routed, ids.Length);
        }
        stats = observer.Stats;
    }

    /// <summary>Adds every layer's router logits to the statistics and, when capturing, copies the block inputs.</summary>
    private sealed class Observer(int layers, int experts, int topK, int hidden, CalibrationStore? store) : IMoeObserver
    {
        public RoutingStatistics Stats { get; } = new(layers, experts, topK);
        private readonly int[] _seen = new int[layers]; // positions of the current window each layer has seen (the backend may feed it in chunks)
        private int _offset, _skip;

        /// <summary>A new window whose first <paramref name="skip"/> positions were routed by an earlier window.</summary>
        public void StartWindow(int skip)
        {
            _skip = skip;
            Array.Clear(_seen);
        }

        public void Observe(int layer, ReadOnlySpan<float> inputs, ReadOnlySpan<float> routerLogits, int tokens)
        {
            int pos0 = _seen[layer];
            _seen[layer] += tokens;
            int from = Math.Clamp(_skip - pos0, 0, tokens);
            Stats.Add(layer, routerLogits[(from * experts)..(tokens * experts)]);
            store?.Write(layer, _offset + pos0 + from - _skip, inputs[(from * hidden)..(tokens * hidden)]);
        }

        public void Advance(int tokens) => _offset += tokens;
    }
}

/// <summary>
/// The block inputs of one MoE layer on calibration token ids (windows as <see cref="MoeForwardPass.Routing"/>, each
/// token once), with an override of the MoE blocks: the sequential refit runs the converted dense MLPs of earlier
/// layers in place of their experts and skips the blocks from the captured layer on.
/// </summary>
public static class MoeLayerCapture
{
    public static float[] Inputs(string model, int[] ids, int layer, IMoeBlockOverride blocks, int ctx, int stride, int threads,
        Action<long, long>? progress = null, CancellationToken token = default)
    {
        using var m = TransformerModel.Load(model);
        var s = m.Shape;
        if (!s.IsMoe) throw new MergeException($"{model}: not a Mixtral model (architecture '{m.Config.ArchitectureName}'); refit needs MixtralForCausalLM");
        if (ids.Length == 0) throw new MergeException("calibration: no tokens");
        var windows = Inference.Perplexity.Windows(ids.Length, ctx, stride == 0 ? ctx : stride);
        if (ctx != MoeForwardPass.Window) ContextBudget.CheckWindow(m, ctx, ids.Length);
        var x = new float[(long)ids.Length * s.Hidden];
        var observer = new Capture(layer, s.Hidden, x);
        int max = windows.Max(w => w.Length);
        using var backend = new CpuBackend(m, threads) { MoeObserver = observer, MoeOverride = blocks };
        using var cache = backend.CreateCache(max);
        var positions = new int[max];
        for (int i = 0; i < max; i++) positions[i] = i;
        var logits = new float[s.Vocab];
        int routed = 0;
        foreach (var w in windows)
        {
            token.ThrowIfCancellationRequested();
            cache.Reset();
            observer.StartWindow(routed, routed - w.Begin);
            backend.Forward(ids.AsSpan(w.Begin, w.Length), positions.AsSpan(0, w.Length), cache, logits);
            routed = w.End;
            progress?.Invoke(routed, ids.Length);
        }
        return x;
    }

    private sealed class Capture(int layer, int hidden, float[] x) : IMoeObserver
    {
        private int _seen, _offset, _skip;

        public void StartWindow(int offset, int skip) => (_offset, _skip, _seen) = (offset, skip, 0);

        public void Observe(int l, ReadOnlySpan<float> inputs, ReadOnlySpan<float> routerLogits, int tokens)
        {
            if (l != layer) return;
            int pos0 = _seen;
            _seen += tokens;
            int from = Math.Clamp(_skip - pos0, 0, tokens);
            inputs[(from * hidden)..(tokens * hidden)].CopyTo(x.AsSpan((_offset + pos0 + from - _skip) * hidden));
        }
    }
}
