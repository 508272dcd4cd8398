using System.Runtime.InteropServices;
using Architecture = Mistral.Merge.Models.Architecture;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Cuda;

/// <summary>
/// The Mistral/Mixtral/Llama forward pass on one GPU (HF semantics): bf16 (or f32) weights, f32 residual stream,
/// f32 KV cache, cuBLAS GEMMs with f32 accumulation, NVRTC kernels for everything else. Weights are either all
/// resident or, with <see cref="CudaTransformerOptions.Offload"/>, streamed layer by layer through two device
/// slots and two pinned staging buffers while the previous layer computes.
/// Not thread-safe: one caller at a time (the context is made current on the calling thread).
/// </summary>
public sealed partial class CudaTransformer : IForwardModel
{
    private readonly CudaContext _ctx;
    private readonly IWeightSource _src;
    private readonly CudaTransformerOptions _opt;
    private readonly LayerLayout _layout;
    private readonly CudaStream _compute, _copy;
    private readonly CudaBlas _blas;
    private readonly List<IDisposable> _owned = new();

    public ModelConfig Config { get; }
    public CudaContext Context => _ctx;
    public bool Bf16 => _opt.Precision == CudaPrecision.BF16;
    public bool Offloaded { get; }
    public int MaxSequence { get; }
    public int Chunk { get; }
    /// <summary>Tokens currently in the default KV cache (the one the IForwardModel members use).</summary>
    public int Position => _default?.Length ?? 0;
    /// <summary>Bytes of weights read per forward pass (all layers + head): the decode roofline numerator.</summary>
    public long WeightBytesPerToken { get; }
    /// <summary>Weight bytes of one packed layer (device slot size).</summary>
    public long LayerBytes => _layout.Bytes;

    private int Hidden => Config.HiddenSize;
    private int Vocab => Config.VocabSize;
    private int Layers => Config.NumHiddenLayers;
    private int Window => Config.EffectiveSlidingWindow(out _) ?? 0;
    private int K => Math.Max(1, Config.NumExpertsPerTok);
    private int Es => Bf16 ? 2 : 4;

    public static CudaTransformer Load(CudaContext ctx, ModelFolder folder, CudaTransformerOptions? options = null) =>
        new(ctx, new ModelFolderWeights(folder), options ?? new CudaTransformerOptions());

    public static CudaTransformer Load(CudaContext ctx, IWeightSource source, CudaTransformerOptions? options = null) =>
        new(ctx, source, options ?? new CudaTransformerOptions());

    private CudaTransformer(CudaContext ctx, IWeightSource src, CudaTransformerOptions opt)
    {
        _ctx = ctx; _src = src; _opt = opt; Config = src.Config;
        Validate(Config, src.Origin);
        _layout = new LayerLayout(Config, Bf16);
        int maxSeq = opt.MaxSequence > 0 ? opt.MaxSequence : Math.Min(Config.MaxPositionEmbeddings > 0 ? Config.MaxPositionEmbeddings : 4096, 4096);
        MaxSequence = maxSeq;
        Chunk = Math.Max(1, Math.Min(opt.ChunkTokens, maxSeq));
        ctx.MakeCurrent();
        _ = ctx.Kernels;   // compile (or load) the kernels before allocating anything large: fail fast
        _compute = Own(ctx.CreateStream());
        _copy = Own(ctx.CreateStream());
        _blas = Own(new CudaBlas(ctx, _compute));
        try
        {
            long globals = GlobalBytes();
            long activations = ActivationBytes();
            long kv = KvBytes(maxSeq);   // planned for one cache of MaxSequence tokens
            long all = globals + activations + kv + (long)Layers * _layout.Bytes;
            long two = globals + activations + kv + 2 * _layout.Bytes;
            var (free, _) = ctx.MemoryInfo();
            long usable = free - opt.ReserveBytes;
            bool offload = opt.Offload && Layers > 2;
            if (!offload && all > usable)
                throw new MergeException($"{src.Origin}: the model needs {ByteSize.Format(all)} of GPU memory (weights, KV cache for {maxSeq} tokens, activations) " +
                    $"but {ctx.Name} has {ByteSize.Format(free)} free: use --offload to stream layers, or a smaller --max-seq");
            if (offload && two > usable)
                throw new MergeException($"{src.Origin}: even with --offload the model needs {ByteSize.Format(two)} of GPU memory but {ctx.Name} has {ByteSize.Format(free)} free");
            Offloaded = offload;
            WeightBytesPerToken = (long)Layers * _layout.Bytes + HeadBytes();
            AllocateGlobals();
            AllocateActivations();
            InitLayers();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private T Own<T>(T d) where T : IDisposable { _owned.Add(d); return d; }

    internal static void Validate(ModelConfig c, string origin)
    {
        if (c.Architecture is not { } arch)
            throw new MergeException($"{origin}: architecture '{c.Identity}' is not supported by the CUDA forward pass ({Architecture.SupportedList})");
        if (arch.HasAttentionBias)
            throw new MergeException($"{origin}: {arch} has q/k/v biases, which the CUDA forward pass does not apply; use --device cpu");
        if (c.HiddenSize <= 0 || c.NumHiddenLayers <= 0 || c.NumAttentionHeads <= 0 || c.NumKeyValueHeads <= 0 || c.VocabSize <= 0 || c.IntermediateSize <= 0)
            throw new MergeException($"{origin}: config.json lacks hidden_size/num_hidden_layers/num_attention_heads/num_key_value_heads/vocab_size/intermediate_size");
        if (c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw new MergeException($"{origin}: num_attention_heads {c.NumAttentionHeads} is not a multiple of num_key_value_heads {c.NumKeyValueHeads}");
        if (c.HeadDim > CudaKernels.MaxHeadDim || c.HeadDim % 2 != 0)
            throw new MergeException($"{origin}: head_dim {c.HeadDim} is not supported by the CUDA attention kernels (even, at most {CudaKernels.MaxHeadDim})");
        if (c.IsMoe && (c.NumExpertsPerTok < 1 || c.NumExpertsPerTok > Math.Min(c.NumLocalExperts, CudaKernels.MaxExpertsPerToken) || c.NumLocalExperts > 1024))
            throw new MergeException($"{origin}: num_experts_per_tok {c.NumExpertsPerTok} of {c.NumLocalExperts} experts is not supported (1..{CudaKernels.MaxExpertsPerToken}, at most 1024 experts)");
    }

    private CudaKvCache? _default;
    private CudaKvCache Default => _default ??= CreateCache(MaxSequence);

    /// <summary>Forgets the default KV cache (the next forward starts at position 0).</summary>
    public void Reset() { if (_default != null) _default.Length = 0; }

    /// <summary>
    /// Appends <paramref name="tokens"/> to <paramref name="cache"/> and writes logits: for every token when
    /// <paramref name="logits"/> holds tokens × vocab floats, for the last token when it holds vocab floats.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, CudaKvCache cache, Span<float> logits)
    {
        if (cache.Owner != this) throw new ArgumentException("the KV cache belongs to another model", nameof(cache));
        bool all = logits.Length == (long)tokens.Length * Vocab;
        if (!all && logits.Length != Vocab)
            throw new ArgumentException($"logits must hold {tokens.Length}×{Vocab} or {Vocab} floats, not {logits.Length}", nameof(logits));
        CheckTokens(tokens, cache);
        for (int start = 0; start < tokens.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, tokens.Length - start);
            bool last = start + n == tokens.Length;
            var mode = all ? Head.AllLogits : last ? Head.LastLogits : Head.None;
            RunChunk(tokens.Slice(start, n), mode, default, cache);
            if (mode == Head.AllLogits) DownloadFloats(_logits!, logits.Slice(start * Vocab, n * Vocab));
            else if (mode == Head.LastLogits) DownloadFloats(_logits!, logits);
        }
    }

    /// <summary>
    /// Appends <paramref name="tokens"/> to the sequence and returns logits: [tokens.Length × vocab] when
    /// <paramref name="allLogits"/>, else the last position's [vocab].
    /// </summary>
    public float[] Forward(ReadOnlySpan<int> tokens, bool allLogits = false)
    {
        var result = new float[(long)(allLogits ? tokens.Length : 1) * Vocab];
        Forward(tokens, Default, result);
        return result;
    }

    /// <summary>
    /// Scores one window from an empty cache: element i is −log p(tokens[i+1] | tokens[0..i]) in f32 on the GPU
    /// (tokens.Length − 1 values; HF perplexity semantics: the first token is context only).
    /// </summary>
    public float[] TokenNll(ReadOnlySpan<int> tokens)
    {
        Reset();
        var cache = Default;
        CheckTokens(tokens, cache);
        var nll = new float[Math.Max(0, tokens.Length - 1)];
        var targets = new int[Chunk];
        for (int start = 0; start < tokens.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, tokens.Length - start);
            for (int i = 0; i < n; i++) targets[i] = start + i + 1 < tokens.Length ? tokens[start + i + 1] : -1;
            RunChunk(tokens.Slice(start, n), Head.Nll, targets.AsSpan(0, n), cache);
            int keep = Math.Min(n, nll.Length - start);
            if (keep > 0) DownloadFloats(_nll!, nll.AsSpan(start, keep));
        }
        return nll;
    }

    /// <summary>Greedy continuation: feeds the prompt, then <paramref name="steps"/> argmax tokens (stops after EOS when given).</summary>
    public int[] Greedy(ReadOnlySpan<int> prompt, int steps, int? eos = null)
    {
        Reset();
        var cache = Default;
        CheckTokens(prompt, cache);
        var outIds = new List<int>(steps);
        if (steps <= 0 || prompt.IsEmpty) return [];
        for (int start = 0; start < prompt.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, prompt.Length - start);
            RunChunk(prompt.Slice(start, n), start + n == prompt.Length ? Head.Argmax : Head.None, default, cache);
        }
        Span<int> one = stackalloc int[1];
        for (int s = 0; s < steps; s++)
        {
            int id = DownloadArgmax();
            outIds.Add(id);
            if (id == eos || s == steps - 1) break;
            one[0] = id;
            CheckTokens(one, cache);
            RunChunk(one, Head.Argmax, default, cache);
        }
        return outIds.ToArray();
    }

    private void CheckTokens(ReadOnlySpan<int> tokens, CudaKvCache cache)
    {
        foreach (int t in tokens)
            if ((uint)t >= (uint)Vocab) throw new MergeException($"token id {t} is outside the vocabulary (0..{Vocab - 1})");
        if (cache.Length + tokens.Length > cache.MaxLength)
            throw new MergeException($"sequence of {cache.Length + tokens.Length} tokens exceeds the KV cache ({cache.MaxLength} tokens): raise --max-seq");
    }

    private unsafe void DownloadFloats(DeviceBuffer src, Span<float> dst) =>
        _ctx.Download(src, MemoryMarshal.AsBytes(dst));

    private int DownloadArgmax()
    {
        Span<int> v = stackalloc int[1];
        _ctx.Download(_argmax!, MemoryMarshal.AsBytes(v));
        return v[0];
    }

    public void Dispose()
    {
        try { _ctx.MakeCurrent(); _compute?.Synchronize(); _copy?.Synchronize(); } catch (MergeException) { } catch (ObjectDisposedException) { }
        _default?.Dispose();
        _default = null;
        for (int i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        _owned.Clear();
    }
}
