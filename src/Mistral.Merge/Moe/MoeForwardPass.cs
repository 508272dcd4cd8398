using Mistral.Merge.Inference;

namespace Mistral.Merge.Moe;

/// <summary>MoE block inputs captured by the forward pass, with the routing statistics of the same pass.</summary>
public sealed class MoeCalibration(float[][] inputs, int tokens, int hidden, RoutingStatistics routing) : IMoeCalibrationSource
{
    public int Layers => inputs.Length;
    public int Hidden => hidden;
    public int Tokens => tokens;
    public RoutingStatistics Routing => routing;
    public float[] MoeInputs(int layer, out int t) { t = tokens; return inputs[layer]; }
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
        if (!File.Exists(textFile)) throw new MergeException($"{textFile}: text file not found");
        string text;
        try { text = File.ReadAllText(textFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new MergeException($"{textFile}: cannot read ({e.Message})"); }
        var ids = TokenizerLoader.Load(model).Encode(text, addBos: true);
        if (ids.Length > maxTokens) ids = ids[..maxTokens];
        if (ids.Length < 2) throw new MergeException($"{textFile}: the text gives {ids.Length} token(s) with BOS; at least 2 are needed");
        return ids;
    }

    /// <summary>Routing statistics of a Mixtral on token ids (every position of every window).</summary>
    public static RoutingStatistics Routing(string model, int[] ids, int threads = 0, CancellationToken token = default)
        => Run(model, ids, capture: false, threads, token).Routing;

    /// <summary>MoE block inputs of every layer on calibration token ids, plus their routing statistics.</summary>
    public static MoeCalibration Calibrate(string model, int[] ids, int threads = 0, CancellationToken token = default)
        => Run(model, ids, capture: true, threads, token);

    /// <summary>Perplexity of any model the forward pass loads (dense or MoE), ctx = stride = 256 by default.</summary>
    public static PerplexityResult Perplexity(string model, int[] ids, int ctx = Window, int stride = Window, int threads = 0, CancellationToken token = default)
        => Evaluate(model, ids, ctx, stride, threads, token).Perplexity;

    /// <summary>Perplexity and, for a Mixtral, the routing statistics of the same pass (every fed position).</summary>
    public static MoeEvaluation Evaluate(string model, int[] ids, int ctx = Window, int stride = Window, int threads = 0, CancellationToken token = default)
    {
        using var m = TransformerModel.Load(model);
        using var backend = new CpuBackend(m, threads);
        var s = m.Shape;
        Observer? observer = s.IsMoe ? new Observer(s.Layers, s.Experts, s.ExpertsPerToken, s.Hidden, 0) : null;
        backend.MoeObserver = observer;
        var r = Inference.Perplexity.Evaluate(backend, ids, ctx, stride, cancel: token);
        return new MoeEvaluation(r, observer?.Stats);
    }

    private static MoeCalibration Run(string model, int[] ids, bool capture, int threads, CancellationToken token)
    {
        using var m = TransformerModel.Load(model);
        var s = m.Shape;
        if (!s.IsMoe) throw new MergeException($"{model}: not a Mixtral model (architecture '{m.Config.ArchitectureName}'); routing needs MixtralForCausalLM");
        if (ids.Length == 0) throw new MergeException("routing: no tokens");
        if (capture && (long)ids.Length * s.Hidden > Array.MaxLength)
            throw new MergeException($"calibration: {ids.Length} tokens × hidden {s.Hidden} is too large; lower the calibration token limit");
        using var backend = new CpuBackend(m, threads);
        var observer = new Observer(s.Layers, s.Experts, s.ExpertsPerToken, s.Hidden, capture ? ids.Length : 0);
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
        }
        return new MoeCalibration(observer.Inputs, capture ? ids.Length : 0, s.Hidden, observer.Stats);
    }

    /// <summary>Adds every layer's router logits to the statistics and, when capturing, copies the block inputs.</summary>
    private sealed class Observer(int layers, int experts, int topK, int hidden, int captureTokens) : IMoeObserver
    {
        public RoutingStatistics Stats { get; } = new(layers, experts, topK);
        public float[][] Inputs { get; } = Enumerable.Range(0, layers).Select(_ => new float[(long)captureTokens * hidden]).ToArray();
        private int _offset;

        public void Observe(int layer, ReadOnlySpan<float> inputs, ReadOnlySpan<float> routerLogits, int tokens)
        {
            Stats.Add(layer, routerLogits);
            if (captureTokens > 0) inputs.CopyTo(Inputs[layer].AsSpan(_offset * hidden, tokens * hidden));
        }

        public void Advance(int tokens) => _offset += tokens;
    }
}
