using Mistral.Merge.Inference;

namespace Mistral.Merge.Cuda;

/// <summary>
/// <see cref="IBackend"/> on the GPU: the CPU backend's contract (append tokens at consecutive positions to a
/// cache, logits for every token or the last) served by <see cref="CudaTransformer"/>. The weights are read from the
/// model's folder (the same mmap'ed files the CPU backend uses) and uploaded once, or streamed with offload.
/// </summary>
public sealed class CudaBackend : IBackend, ILayerDiagnostics
{
    private readonly CudaTransformer _t;
    private readonly CudaContext? _ownedContext;
    private readonly CudaTransformerOptions _options;
    private readonly TransformerModel _model;

    public TransformerShape Shape { get; }
    public int HostThreads => Numerics.WorkerPool.DefaultThreads;
    public CudaTransformer Transformer => _t;
    public string Name => $"cuda ({_t.Context.Name}, {(_options.Precision == CudaPrecision.BF16 ? "bf16" : "f32")} weights{(_t.Offloaded ? ", layers streamed" : "")})";

    /// <param name="ownsContext">Dispose <paramref name="ctx"/> with this backend (the CLI opens one per backend).</param>
    public CudaBackend(CudaContext ctx, TransformerModel model, CudaTransformerOptions? options = null, bool ownsContext = false)
    {
        _options = options ?? new CudaTransformerOptions();
        Shape = model.Shape;
        _model = model;
        _t = CudaTransformer.Load(ctx, new ModelFolderWeights(model.Folder), _options);
        if (ownsContext) _ownedContext = ctx;
    }

    public IKvCache CreateCache(int maxTokens) => _t.CreateCache(maxTokens);

    public string ModelName => _model.Path;

    /// <summary>The diagnosis runs on the CPU reference (only after the logits check fired).</summary>
    public string LocateNonFinite(ReadOnlySpan<int> tokens)
    {
        using var cpu = new CpuBackend(_model);
        return cpu.LocateNonFinite(tokens);
    }

    public void Forward(ReadOnlySpan<int> tokens, ReadOnlySpan<int> positions, IKvCache cache, Span<float> logits)
    {
        if (cache is not CudaKvCache c || c.Owner != _t) throw new ArgumentException("the KV cache was not made by this backend", nameof(cache));
        if (positions.Length != tokens.Length) throw new ArgumentException($"{tokens.Length} tokens but {positions.Length} positions", nameof(positions));
        for (int i = 0; i < positions.Length; i++)
            if (positions[i] != c.Length + i)
                throw new MergeException($"the CUDA backend appends at consecutive positions: expected position {c.Length + i}, got {positions[i]}");
        int vocab = Shape.Vocab, rows = ForwardLogits.Rows(logits.Length, vocab, tokens.Length);
        if (rows == 1 || rows == tokens.Length) { _t.Forward(tokens, c, logits); return; }
        // the last r rows of a perplexity window: the device computes them all (the head is cheap there)
        var all = new float[(long)tokens.Length * vocab];
        _t.Forward(tokens, c, all);
        all.AsSpan((tokens.Length - rows) * vocab).CopyTo(logits);
    }

    public void Dispose()
    {
        _t.Dispose();
        _ownedContext?.Dispose();
    }
}
