using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference;

/// <summary>The weights of one decoder layer: views into the mapped files, norms widened to float32.</summary>
public sealed class LayerWeights
{
    public required float[] InputNorm { get; init; }
    public required float[] PostAttentionNorm { get; init; }
    public required WeightMatrix Q { get; init; }
    public required WeightMatrix K { get; init; }
    public required WeightMatrix V { get; init; }
    public required WeightMatrix O { get; init; }
    // Biases of the q/k/v projections (Qwen2), widened to float32; null when the architecture has none.
    public float[]? QBias { get; init; }
    public float[]? KBias { get; init; }
    public float[]? VBias { get; init; }
    // Dense MLP (null for MoE layers).
    public WeightMatrix? Gate { get; init; }
    public WeightMatrix? Up { get; init; }
    public WeightMatrix? Down { get; init; }
    // Mixtral: router [E, hidden] and per-expert w1 (gate), w3 (up), w2 (down).
    public WeightMatrix? Router { get; init; }
    public WeightMatrix[] ExpertGate { get; init; } = [];
    public WeightMatrix[] ExpertUp { get; init; } = [];
    public WeightMatrix[] ExpertDown { get; init; } = [];

    /// <summary>
    /// One layer's weights with the shapes <paramref name="shape"/> implies, read through a model format's lookups
    /// (safetensors folder or GGUF file), each called with the architecture's per-layer HF name of the tensor:
    /// <paramref name="matrix"/>(name, rows, cols), <paramref name="vector"/>(name, n) and
    /// <paramref name="experts"/>(expert name template, rows, cols) for all experts of an MoE layer. The tensors
    /// are looked up in this order, so the first missing or misshapen one is the one reported.
    /// </summary>
    public static LayerWeights Read(TransformerShape shape, Func<string, int, int, WeightMatrix> matrix, Func<string, int, float[]> vector,
        Func<string, int, int, WeightMatrix[]> experts)
    {
        var a = shape.Architecture;
        float[]? Bias(string? name, int n) => name == null ? null : vector(name, n);
        return new LayerWeights
        {
            InputNorm = vector(a.InputNorm, shape.Hidden),
            PostAttentionNorm = vector(a.PostAttentionNorm, shape.Hidden),
            Q = matrix(a.Q, shape.QDim, shape.Hidden),
            K = matrix(a.K, shape.KvDim, shape.Hidden),
            V = matrix(a.V, shape.KvDim, shape.Hidden),
            O = matrix(a.O, shape.Hidden, shape.QDim),
            QBias = Bias(a.QBias, shape.QDim),
            KBias = Bias(a.KBias, shape.KvDim),
            VBias = Bias(a.VBias, shape.KvDim),
            Gate = shape.IsMoe ? null : matrix(a.Gate!, shape.Intermediate, shape.Hidden),
            Up = shape.IsMoe ? null : matrix(a.Up!, shape.Intermediate, shape.Hidden),
            Down = shape.IsMoe ? null : matrix(a.Down!, shape.Hidden, shape.Intermediate),
            Router = shape.IsMoe ? matrix(a.Router!, shape.Experts, shape.Hidden) : null,
            ExpertGate = shape.IsMoe ? experts(a.ExpertGate!, shape.Intermediate, shape.Hidden) : [],
            ExpertDown = shape.IsMoe ? experts(a.ExpertDown!, shape.Hidden, shape.Intermediate) : [],
            ExpertUp = shape.IsMoe ? experts(a.ExpertUp!, shape.Intermediate, shape.Hidden) : [],
        };
    }
}

/// <summary>Shape and hyper-parameters of a decoder-only transformer, checked against config.json.</summary>
public sealed record TransformerShape(
    Architecture Architecture, int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, int HeadDim,
    int Vocab, double RopeTheta, double RmsNormEps, int? SlidingWindow, bool TiedEmbeddings, int Experts, int ExpertsPerToken)
{
    public int QDim => Heads * HeadDim;
    public int KvDim => KvHeads * HeadDim;
    public bool IsMoe => Experts > 0;
}

/// <summary>
/// An HF checkpoint of a declared <see cref="Architecture"/> ready for the forward pass: the config validated,
/// every tensor found with the shape the config implies, big weights left memory-mapped in their
/// stored dtype (F32/F16/BF16), only the norm vectors copied to float32.
/// </summary>
public sealed unsafe class TransformerModel : IDisposable
{
    private readonly ModelFolder? _folder;
    private readonly IDisposable? _gguf;      // a GGUF model's mapped file and buffers (Inference/Gguf/GgufModelLoader)
    private readonly Action? _checkGguf;
    private readonly QuantizedWeights? _quantized; // --weights q8_0: the projections' Q8_0 copies
    /// <summary>The safetensors folder; a GGUF model has none (CUDA and MoE surgery read safetensors folders).</summary>
    public ModelFolder Folder => _folder ?? throw new MergeException($"{Path}: this needs a safetensors model folder; GGUF files are read by perplexity, compare, generate and inspect on the CPU");
    public bool IsGguf => _folder == null;
    /// <summary>The weights the forward pass reads: as stored, or the projections quantized to Q8_0 at load (<c>--weights q8_0</c>).</summary>
    public WeightFormat Weights => _quantized != null ? WeightFormat.Q8_0 : WeightFormat.AsStored;
    public ModelConfig Config { get; }
    public TransformerShape Shape { get; }
    public WeightMatrix Embedding { get; }
    public WeightMatrix LmHead { get; }
    public float[] FinalNorm { get; }
    public IReadOnlyList<LayerWeights> Layers { get; }
    public string Path { get; }
    /// <summary>Bytes of weights one dense decode step streams: every layer matrix and the head (MoE: all experts, an upper bound).</summary>
    public long WeightBytes { get; }

    private TransformerModel(ModelFolder folder, ModelConfig config, TransformerShape shape, WeightMatrix embed,
        WeightMatrix head, float[] finalNorm, LayerWeights[] layers, long weightBytes)
    {
        _folder = folder; Path = folder.Path; Config = config; Shape = shape; Embedding = embed; LmHead = head;
        FinalNorm = finalNorm; Layers = layers; WeightBytes = weightBytes;
    }

    /// <summary>A model over weights held by <paramref name="owner"/> (a GGUF file), disposed with the model.</summary>
    internal TransformerModel(string path, IDisposable owner, Action checkUnchanged, ModelConfig config, TransformerShape shape,
        WeightMatrix embed, WeightMatrix head, float[] finalNorm, LayerWeights[] layers, long weightBytes)
    {
        Path = path; _gguf = owner; _checkGguf = checkUnchanged; Config = config; Shape = shape; Embedding = embed; LmHead = head;
        FinalNorm = finalNorm; Layers = layers; WeightBytes = weightBytes;
    }

    /// <summary><paramref name="source"/>'s files and vectors with new projection weights (it is not used after this).</summary>
    private TransformerModel(TransformerModel source, WeightMatrix head, LayerWeights[] layers, long weightBytes, QuantizedWeights quantized)
    {
        _folder = source._folder; _gguf = source._gguf; _checkGguf = source._checkGguf; _quantized = quantized;
        Path = source.Path; Config = source.Config; Shape = source.Shape; Embedding = source.Embedding; LmHead = head;
        FinalNorm = source.FinalNorm; Layers = layers; WeightBytes = weightBytes;
    }

    /// <summary>
    /// <see cref="Load(string)"/>, then with <see cref="WeightFormat.Q8_0"/> every projection (q/k/v/o, gate/up/down,
    /// the experts' and lm_head — tied or not) quantized to ggml's Q8_0 on <paramref name="threads"/> threads, one
    /// tensor at a time from the mapped file; the token embedding (a row lookup), the norms and the MoE router
    /// stay as stored, and so does a weight that is already quantized (GGUF) or whose rows are not a multiple of
    /// 32 (a notice names it).
    /// </summary>
    public static TransformerModel Load(string path, WeightFormat weights, int threads = 0)
    {
        var model = Load(path);
        if (weights == WeightFormat.AsStored) return model;
        try { return model.ToQ8_0(threads); }
        catch { model.Dispose(); throw; }
    }

    private TransformerModel ToQ8_0(int threads)
    {
        var q = new QuantizedWeights();
        try
        {
            var a = Shape.Architecture;
            long bytes = 0;
            WeightMatrix Q(string name, WeightMatrix w)
            {
                if (!w.IsQuantized)
                {
                    if (w.Cols % Numerics.Quantization.Q8_0.BlockSize == 0) w = q.ToQ8_0(w, threads);
                    else IO.Notices.Write($"{Path}: tensor '{name}' has rows of {w.Cols} weights, not a multiple of 32: kept as {w.Type} under --weights q8_0");
                }
                bytes += w.ByteLength;
                return w;
            }
            var layers = new LayerWeights[Layers.Count];
            for (int l = 0; l < layers.Length; l++)
            {
                var w = Layers[l];
                string P(string s) => a.Layer(l, s);
                WeightMatrix[] Experts(WeightMatrix[] e, string? name) =>
                    [.. e.Select((m, i) => Q(P(Architecture.Expert(name!, i)), m))];
                if (w.Router is { } router) bytes += router.ByteLength;
                layers[l] = new LayerWeights
                {
                    InputNorm = w.InputNorm, PostAttentionNorm = w.PostAttentionNorm,
                    Q = Q(P(a.Q), w.Q), K = Q(P(a.K), w.K), V = Q(P(a.V), w.V), O = Q(P(a.O), w.O),
                    QBias = w.QBias, KBias = w.KBias, VBias = w.VBias,
                    Gate = w.Gate is { } g ? Q(P(a.Gate!), g) : null,
                    Up = w.Up is { } u ? Q(P(a.Up!), u) : null,
                    Down = w.Down is { } d ? Q(P(a.Down!), d) : null,
                    Router = w.Router, // llama.cpp keeps ffn_gate_inp in float32 too
                    ExpertGate = Experts(w.ExpertGate, a.ExpertGate), ExpertUp = Experts(w.ExpertUp, a.ExpertUp),
                    ExpertDown = Experts(w.ExpertDown, a.ExpertDown),
                };
            }
            var head = Q(Shape.TiedEmbeddings ? a.Embed : a.LmHead, LmHead);
            return new TransformerModel(this, head, layers, bytes, q);
        }
        catch { q.Dispose(); throw; }
    }

    /// <summary>Fails with one line when a model file changed since it was opened.</summary>
    public void CheckUnchanged()
    {
        if (_folder != null) _folder.CheckUnchanged();
        else _checkGguf!();
    }

    /// <summary>A model folder, or a <c>.gguf</c> file (f32/f16/bf16/q8_0/q4_0 weights).</summary>
    public static TransformerModel Load(string path)
    {
        if (Gguf.GgufModelLoader.IsGgufPath(path)) return Gguf.GgufModelLoader.Load(path);
        var folder = ModelFolder.Open(path);
        try { return Load(folder); }
        catch { folder.Dispose(); throw; }
    }

    /// <summary>Builds the model over an open folder (which it then owns and disposes).</summary>
    public static TransformerModel Load(ModelFolder folder)
    {
        var config = folder.Config ?? throw new MergeException($"{folder.Path}: no config.json in this folder");
        var shape = ShapeOf(config, System.IO.Path.Combine(folder.Path, "config.json"));
        long bytes = 0;
        WeightMatrix Matrix(string name, int rows, int cols)
        {
            var m = MatrixOf(folder, name, rows, cols);
            bytes += m.ByteLength;
            return m;
        }
        float[] Vector(string name, int n)
        {
            var (_, info) = Lookup(folder, name);
            if (info.Shape.Length != 1 || info.Shape[0] != n)
                throw new MergeException($"{folder.Path}: tensor '{name}' has shape {info.ShapeText}, expected [{n}] from config.json");
            CheckDType(folder, info);
            return folder.ReadSingle(name);
        }

        var a = shape.Architecture;
        var embed = MatrixOf(folder, a.Embed, shape.Vocab, shape.Hidden);
        var layers = new LayerWeights[shape.Layers];
        for (int l = 0; l < shape.Layers; l++)
        {
            string P(string s) => a.Layer(l, s);
            layers[l] = LayerWeights.Read(shape, (name, rows, cols) => Matrix(P(name), rows, cols), (name, n) => Vector(P(name), n),
                (template, rows, cols) => [.. Enumerable.Range(0, shape.Experts).Select(e => Matrix(P(Architecture.Expert(template, e)), rows, cols))]);
        }
        var finalNorm = Vector(a.FinalNorm, shape.Hidden);
        WeightMatrix head;
        if (shape.TiedEmbeddings && !folder.Contains(a.LmHead)) head = embed;
        else if (!folder.Contains(a.LmHead))
            throw new MergeException($"{folder.Path}: model has no tensor '{a.LmHead}' and config.json does not set tie_word_embeddings");
        else if (shape.TiedEmbeddings) head = embed; // HF ties: the embedding is the head, a stored copy is ignored
        else head = MatrixOf(folder, a.LmHead, shape.Vocab, shape.Hidden);
        bytes += head.ByteLength;
        return new TransformerModel(folder, config, shape, embed, head, finalNorm, layers, bytes);
    }

    /// <summary>Reads and checks the hyper-parameters the forward pass needs.</summary>
    public static TransformerShape ShapeOf(ModelConfig c, string where)
    {
        if (c.Architecture is not { } arch)
            throw new MergeException($"{where}: unsupported architecture '{(c.ArchitectureName.Length > 0 ? c.ArchitectureName : c.ModelType)}' (supported: {Architecture.SupportedList})");
        void Positive(string key, int v) { if (v <= 0) throw new MergeException($"{where}: '{key}' must be a positive integer, got {v}"); }
        Positive("hidden_size", c.HiddenSize);
        Positive("intermediate_size", c.IntermediateSize);
        Positive("num_hidden_layers", c.NumHiddenLayers);
        Positive("num_attention_heads", c.NumAttentionHeads);
        Positive("num_key_value_heads", c.NumKeyValueHeads);
        Positive("head_dim", c.HeadDim);
        Positive("vocab_size", c.VocabSize);
        if (c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw new MergeException($"{where}: num_attention_heads ({c.NumAttentionHeads}) is not a multiple of num_key_value_heads ({c.NumKeyValueHeads})");
        if (c.HeadDim % 2 != 0) throw new MergeException($"{where}: head_dim {c.HeadDim} is odd; rotary embeddings need an even head_dim");
        if (c.Json[c.Names.Keys.HeadDim] is null && c.HiddenSize % c.NumAttentionHeads != 0)
            throw new MergeException($"{where}: hidden_size ({c.HiddenSize}) is not a multiple of num_attention_heads ({c.NumAttentionHeads}) and no head_dim is given");
        if (c.SlidingWindow is { } w && w <= 0) throw new MergeException($"{where}: 'sliding_window' must be positive or null, got {w}");
        if (!(c.RopeTheta > 0)) throw new MergeException($"{where}: 'rope_theta' must be positive, got {c.RopeTheta}");
        if (!(c.RmsNormEps >= 0)) throw new MergeException($"{where}: 'rms_norm_eps' must not be negative, got {c.RmsNormEps}");
        if (c.Json["rope_scaling"] is { } rs)
            throw new MergeException($"{where}: rope_scaling {rs.ToJsonString()} is not supported by the built-in forward pass");
        foreach (var bias in new[] { "attention_bias", "mlp_bias" })
            if (c.Json[bias] is System.Text.Json.Nodes.JsonValue bv && bv.TryGetValue<bool>(out var on) && on)
                throw new MergeException($"{where}: '{bias}': true is not supported by the built-in forward pass");
        int experts = 0, perToken = 0;
        if (arch.IsMoe)
        {
            experts = c.NumLocalExperts; perToken = c.NumExpertsPerTok;
            Positive("num_local_experts", experts);
            if (perToken <= 0 || perToken > experts)
                throw new MergeException($"{where}: 'num_experts_per_tok' must be between 1 and num_local_experts ({experts}), got {perToken}");
        }
        // The architectures share the math; the window applies where the declaration reads one (not Llama's).
        int? window = c.EffectiveSlidingWindow(out var unsupported);
        if (unsupported != null) throw new MergeException($"{where}: {unsupported}");
        return new TransformerShape(arch, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads,
            c.NumKeyValueHeads, c.HeadDim, c.VocabSize, c.RopeTheta, c.RmsNormEps, window, c.TieWordEmbeddings, experts, perToken);
    }

    private static (SafetensorsFile File, TensorInfo Info) Lookup(ModelFolder folder, string name)
        => folder.TryGet(name, out var f, out var t) ? (f, t)
            : throw new MergeException($"{folder.Path}: model has no tensor '{name}' (required by config.json)");

    private static void CheckDType(ModelFolder folder, TensorInfo info)
    {
        if (info.DType is not (DType.F32 or DType.F16 or DType.BF16))
            throw new MergeException($"{folder.Path}: tensor '{info.Name}' has dtype {info.DType}; the forward pass reads F32, F16 or BF16");
    }

    private static WeightMatrix MatrixOf(ModelFolder folder, string name, int rows, int cols)
    {
        var (file, info) = Lookup(folder, name);
        if (info.Shape.Length != 2 || info.Shape[0] != rows || info.Shape[1] != cols)
            throw new MergeException($"{folder.Path}: tensor '{name}' has shape {info.ShapeText}, expected [{rows}, {cols}] from config.json");
        CheckDType(folder, info);
        return new WeightMatrix(file.Pointer(info), info.DType, rows, cols);
    }

    public void Dispose()
    {
        _folder?.Dispose();
        _gguf?.Dispose();
        _quantized?.Dispose();
    }
}
