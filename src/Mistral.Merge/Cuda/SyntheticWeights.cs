using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Cuda;

/// <summary>
/// Seeded random weights held in memory, for GPU tests (tiny models, every tensor distinct) and benchmarks
/// (full-size shapes with <c>shareAcrossLayers</c>: one buffer per distinct tensor role, reused by every layer
/// and expert — the bytes moved and the FLOPs are those of the real model, the memory is one layer's).
/// Matrices ~ U(−a, a) with a = √3/√in (std 1/√in), norms ~ 1 + U(−0.1, 0.1), embeddings std 1.
/// </summary>
public sealed class SyntheticWeights : IWeightSource
{
    private readonly Dictionary<string, TensorInfo> _infos = new();
    private readonly ConcurrentDictionary<string, byte[]> _data = new();
    private readonly DType _dtype;
    private readonly ulong _seed;
    private readonly bool _share;
    private readonly int _threads;

    public ModelConfig Config { get; }
    public string Origin { get; }

    /// <param name="threads">threads that generate a tensor (the <see cref="WorkerPool"/>'s; 0 = all cores).</param>
    public SyntheticWeights(ModelConfig config, DType dtype = DType.BF16, ulong seed = 0, bool shareAcrossLayers = false, int threads = 0)
    {
        _threads = threads;
        if (dtype is not (DType.F32 or DType.BF16)) throw new ArgumentException("F32 or BF16", nameof(dtype));
        Config = config; _dtype = dtype; _seed = seed; _share = shareAcrossLayers;
        Origin = $"synthetic {config.ArchitectureName} (seed {seed})";
        var names = config.Names;
        Add(names.Embed, [config.VocabSize, config.HiddenSize]);
        Add(names.FinalNorm, [config.HiddenSize]);
        if (!config.TieWordEmbeddings) Add(names.LmHead, [config.VocabSize, config.HiddenSize]);
        var layout = new LayerLayout(config, bf16: true);
        for (int l = 0; l < config.NumHiddenLayers; l++)
            foreach (var (name, _, shape, _) in layout.Parts(l)) Add(name, shape);
    }

    private void Add(string name, long[] shape)
    {
        long n = 1;
        foreach (var s in shape) n *= s;
        _infos[name] = new TensorInfo(name, _dtype, shape, 0, n * _dtype.SizeOf());
    }

    public IEnumerable<string> Names => _infos.Keys;
    public bool Contains(string name) => _infos.ContainsKey(name);
    public TensorInfo Info(string name) => _infos.TryGetValue(name, out var i) ? i : throw new MergeException($"{Origin}: tensor {name} is missing");
    public ReadOnlySpan<byte> Bytes(string name) => _data.GetOrAdd(Canonical(name), _ => Generate(name));

    /// <summary>With sharing, layer and expert indices are dropped: all layers/experts map to one buffer.</summary>
    private string Canonical(string name)
    {
        var names = Config.Names;
        if (!_share || !names.TryParseLayer(name, out _, out var suffix)) return name;
        return "layer." + (names.TryParseExpert(suffix, out _, out var w) ? "expert." + w : suffix);
    }

    private byte[] Generate(string name)
    {
        var info = Info(name);
        long n = info.ElementCount;
        bool norm = info.Shape.Length == 1;
        float a = norm ? 0.1f : name == Config.Names.Embed ? MathF.Sqrt(3f) : MathF.Sqrt(3f / info.Shape[^1]);
        var bytes = new byte[checked(n * _dtype.SizeOf())];
        ulong baseSeed = _seed ^ Fnv(Canonical(name));
        const int Chunk = 1 << 20;
        WorkerPool.For(_threads, (int)((n + Chunk - 1) / Chunk), (c, _) =>
        {
            long start = (long)c * Chunk;
            int len = (int)Math.Min(Chunk, n - start);
            var f = new float[len];
            ulong state = baseSeed + (ulong)c * 0x9E3779B97F4A7C15UL;
            for (int i = 0; i < len; i++)
            {
                float u = (SplitMix(ref state) >> 40) * (1f / 16777216f);   // [0, 1)
                f[i] = (norm ? 1f : 0f) + (2f * u - 1f) * a;
            }
            var dst = bytes.AsSpan((int)(start * _dtype.SizeOf()), len * _dtype.SizeOf());
            Conversions.FromSingle(f, _dtype, dst);
        });
        return bytes;
    }

    private static ulong SplitMix(ref ulong s)
    {
        ulong z = s += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Fnv(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in s) { h ^= ch; h *= 1099511628211UL; }
        return h;
    }

    /// <summary>An HF-style config for a synthetic model.</summary>
    public static ModelConfig MakeConfig(string arch, int hidden, int layers, int heads, int kvHeads, int intermediate, int vocab,
        int experts = 0, int expertsPerToken = 0, int? headDim = null, int? slidingWindow = null, bool tieEmbeddings = false,
        int maxPositions = 4096, double ropeTheta = 10000, double rmsNormEps = 1e-5)
    {
        var a = Architecture.Named(arch) ?? throw new MergeException($"unknown architecture '{arch}' ({string.Join(", ", Architecture.All.Select(x => x.Name))})");
        var (archName, type) = (a.HfArchitecture, a.ModelType);
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray(archName),
            ["model_type"] = type,
            ["hidden_size"] = hidden,
            ["intermediate_size"] = intermediate,
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = kvHeads,
            ["head_dim"] = headDim ?? hidden / heads,
            ["vocab_size"] = vocab,
            ["max_position_embeddings"] = maxPositions,
            ["rope_theta"] = ropeTheta,
            ["rms_norm_eps"] = rmsNormEps,
            ["sliding_window"] = slidingWindow,
            ["tie_word_embeddings"] = tieEmbeddings,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["torch_dtype"] = "bfloat16",
        };
        if (experts > 0) { o["num_local_experts"] = experts; o["num_experts_per_tok"] = expertsPerToken; }
        return ModelConfig.FromJson(o);
    }
}
