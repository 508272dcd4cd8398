using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Models;

/// <summary>Options of <see cref="Synthesizer.Write"/>.</summary>
public sealed record SynthOptions
{
    /// <summary>Number of decoder layers to write instead of the config's <c>num_hidden_layers</c>.</summary>
    public int? LayersOverride { get; init; }
    public DType DType { get; init; } = DType.BF16;
    public ulong Seed { get; init; }
    /// <summary>A <c>tokenizer.model</c> to copy (with <c>tokenizer_config.json</c>/<c>special_tokens_map.json</c> beside it).</summary>
    public string? TokenizerPath { get; init; }
    /// <summary>Tokenizer files to write as they are (file name → bytes), e.g. the built-in byte-level tokenizer.</summary>
    public IReadOnlyDictionary<string, byte[]>? TokenizerFiles { get; init; }
    public WriterOptions Writer { get; init; } = new();
    /// <summary>Receives (bytes written, total), from worker threads.</summary>
    public Action<long, long>? Progress { get; init; }
    /// <summary>Worker threads (<c>--threads</c>): 0 = all logical processors.</summary>
    public int Threads { get; init; }
}

/// <summary>
/// Seeded random-init checkpoints of any declared <see cref="Architecture"/>, streamed chunk by
/// chunk through <see cref="CheckpointWriter"/> in parallel: memory stays at a few MB per thread
/// whatever the model size. Values are a pure function of (seed, tensor name, element index), so the
/// output is identical for any thread count or chunk size.
/// </summary>
public static class Synthesizer
{
    public const double InitStd = 0.02;

    /// <summary>An HF-style config.json for the given dimensions.</summary>
    public static ModelConfig MakeConfig(string arch, int hidden, int layers, int heads, int kvHeads, int intermediate, int vocab,
        int experts = 0, int expertsPerToken = 0)
    {
        var decl = Architecture.Named(arch ?? "")
            ?? throw new MergeException($"--arch: unknown architecture '{arch}' (expected {string.Join(", ", Architecture.All.Select(x => x.Name))})");
        string a = decl.Name;
        void Positive(string opt, int v) { if (v <= 0) throw new MergeException($"{opt}: must be a positive integer, got {v}"); }
        Positive("--hidden", hidden); Positive("--layers", layers); Positive("--heads", heads);
        Positive("--kv-heads", kvHeads); Positive("--intermediate", intermediate); Positive("--vocab", vocab);
        if (hidden % heads != 0) throw new MergeException($"--hidden {hidden} is not divisible by --heads {heads}");
        if (heads % kvHeads != 0) throw new MergeException($"--heads {heads} is not divisible by --kv-heads {kvHeads}");
        if (decl.IsMoe)
        {
            if (experts <= 0) throw new MergeException($"--experts: {a} needs a positive number of experts");
            if (expertsPerToken <= 0 || expertsPerToken > experts)
                throw new MergeException($"--experts-per-token: must be between 1 and --experts ({experts}), got {expertsPerToken}");
        }
        else if (experts != 0 || expertsPerToken != 0)
            throw new MergeException($"--experts/--experts-per-token: only valid with an MoE --arch ({string.Join(", ", Architecture.All.Where(x => x.IsMoe).Select(x => x.Name))}), not {a}");

        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(decl.HfArchitecture),
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["hidden_act"] = "silu",
            [decl.Keys.Hidden] = hidden,
            ["initializer_range"] = InitStd,
            [decl.Keys.Intermediate] = intermediate,
            ["max_position_embeddings"] = decl.Synth.MaxPositionEmbeddings,
            ["model_type"] = decl.ModelType,
            [decl.Keys.Heads] = heads,
            [decl.Keys.Layers] = layers,
            [decl.Keys.KvHeads] = kvHeads,
            [decl.Keys.RmsNormEps] = 1e-05,
            [decl.Keys.RopeTheta] = decl.Synth.RopeTheta,
        };
        foreach (var (key, value) in decl.Synth.Keys) json[key] = value?.DeepClone();
        if (decl.IsMoe)
        {
            json[decl.Keys.Experts!] = experts;
            json[decl.Keys.ExpertsPerToken!] = expertsPerToken;
            foreach (var (key, value) in decl.Synth.MoeKeys) json[key] = value?.DeepClone();
        }
        json[decl.Keys.TieWordEmbeddings] = false;
        json["torch_dtype"] = "bfloat16";
        json["use_cache"] = true;
        json[decl.Keys.Vocab] = vocab;
        return ModelConfig.FromJson(json);
    }

    /// <summary>The tensors of a checkpoint for <paramref name="config"/> in HF state_dict order.</summary>
    public static List<PlannedTensor> Plan(ModelConfig config, int layers, DType dtype)
    {
        CheckConfig(config, layers);
        long h = config.HiddenSize, inter = config.IntermediateSize, v = config.VocabSize;
        long q = (long)config.NumAttentionHeads * config.HeadDim, kv = (long)config.NumKeyValueHeads * config.HeadDim;
        var a = config.Architecture!;
        var plan = new List<PlannedTensor> { new(a.Embed, dtype, [v, h]) };
        for (int l = 0; l < layers; l++)
        {
            void Add(string? suffix, long[] shape) { if (suffix != null) plan.Add(new(a.Layer(l, suffix), dtype, shape)); }
            Add(a.Q, [q, h]);
            Add(a.QBias, [q]);
            Add(a.K, [kv, h]);
            Add(a.KBias, [kv]);
            Add(a.V, [kv, h]);
            Add(a.VBias, [kv]);
            Add(a.O, [h, q]);
            if (a.IsMoe)
            {
                Add(a.Router, [config.NumLocalExperts, h]);
                for (int e = 0; e < config.NumLocalExperts; e++)
                {
                    Add(Architecture.Expert(a.ExpertGate!, e), [inter, h]);
                    Add(Architecture.Expert(a.ExpertDown!, e), [h, inter]);
                    Add(Architecture.Expert(a.ExpertUp!, e), [inter, h]);
                }
            }
            else
            {
                Add(a.Gate, [inter, h]);
                Add(a.Up, [inter, h]);
                Add(a.Down, [h, inter]);
            }
            Add(a.InputNorm, [h]);
            Add(a.PostAttentionNorm, [h]);
        }
        plan.Add(new(a.FinalNorm, dtype, [h]));
        if (!config.TieWordEmbeddings) plan.Add(new(a.LmHead, dtype, [v, h]));
        return plan;
    }

    private static void CheckConfig(ModelConfig c, int layers)
    {
        string where = c.SourcePath ?? "synth dimensions";
        if (c.Architecture == null)
            throw new MergeException($"{where}: architecture '{c.ArchitectureName}' / model_type '{c.ModelType}' is not one of {Architecture.SupportedList}");
        if (c.HiddenSize <= 0 || c.IntermediateSize <= 0 || c.NumAttentionHeads <= 0 || c.NumKeyValueHeads <= 0 || c.HeadDim <= 0 || c.VocabSize <= 0)
            throw new MergeException($"{where}: hidden_size, intermediate_size, num_attention_heads, num_key_value_heads, head_dim and vocab_size must all be positive");
        if (c.NumAttentionHeads % c.NumKeyValueHeads != 0)
            throw new MergeException($"{where}: num_attention_heads {c.NumAttentionHeads} is not divisible by num_key_value_heads {c.NumKeyValueHeads}");
        if (c.Json[c.Names.Keys.HeadDim] is null && c.HiddenSize % c.NumAttentionHeads != 0)
            throw new MergeException($"{where}: hidden_size {c.HiddenSize} is not divisible by num_attention_heads {c.NumAttentionHeads} and no head_dim is given");
        if (c.Architecture.IsMoe && (c.NumLocalExperts <= 0 || c.NumExpertsPerTok <= 0 || c.NumExpertsPerTok > c.NumLocalExperts))
            throw new MergeException($"{where}: a {c.Architecture} config needs {c.Architecture.Keys.Experts} > 0 and 0 < {c.Architecture.Keys.ExpertsPerToken} <= {c.Architecture.Keys.Experts}");
        if (layers < 0) throw new MergeException($"{where}: number of layers must not be negative, got {layers}");
        CheckSize(c, layers, where);
    }

    /// <summary>Most tensors a synthesized checkpoint may have: their header entries (~100 bytes each) stay well under
    /// the 100 MB header limit of safetensors readers, ours included.</summary>
    public const long MaxTensors = 500_000;

    /// <summary>Refuses, before any plan is built, dimensions whose tensor count or byte size cannot be written.</summary>
    private static void CheckSize(ModelConfig c, int layers, string where)
    {
        int experts = c.Architecture!.IsMoe ? c.NumLocalExperts : 0;
        long perLayer = 6 + (c.Architecture.HasAttentionBias ? 3 : 0) + (experts > 0 ? 1 + 3L * experts : 3);
        if (layers * perLayer > MaxTensors)
            throw new MergeException($"{where}: {layers} layers make {layers * perLayer:N0} tensors, more than the {MaxTensors:N0} a checkpoint header can list");
        try
        {
            long h = c.HiddenSize, q = checked((long)c.NumAttentionHeads * c.HeadDim), kv = checked((long)c.NumKeyValueHeads * c.HeadDim);
            long mlp = checked(3L * c.IntermediateSize * h * Math.Max(1, experts) + experts * h);
            long layer = checked(2 * q * h + 2 * kv * h + mlp + 2 * h + q + 2 * kv);
            _ = checked(layer * layers + 2L * c.VocabSize * h + h);
            _ = checked((long)c.VocabSize * h * sizeof(float));
            _ = checked(layer * sizeof(float));
        }
        catch (OverflowException)
        {
            throw new MergeException($"{where}: these dimensions (hidden {c.HiddenSize}, intermediate {c.IntermediateSize}, vocab {c.VocabSize}, {layers} layers) overflow a 64-bit byte count");
        }
    }

    /// <summary>Writes a seeded random-init checkpoint (+ config.json, + tokenizer files when given) to <paramref name="outDir"/>.</summary>
    public static void Write(string outDir, ModelConfig config, SynthOptions options, CancellationToken cancel = default)
    {
        if (!options.DType.IsFloatMath())
            throw new MergeException($"--dtype: cannot synthesize {options.DType} weights (use bfloat16, float16 or float32)");
        int layers = options.LayersOverride ?? config.NumHiddenLayers;
        var plan = Plan(config, layers, options.DType);
        var json = config.CloneJson();
        json["num_hidden_layers"] = layers;
        json["torch_dtype"] = options.DType.ToTorchName();
        if (json.ContainsKey("dtype")) json["dtype"] = options.DType.ToTorchName();

        string? tokDir = null, tokFile = null;
        if (options.TokenizerPath != null)
        {
            tokFile = Directory.Exists(options.TokenizerPath) ? Path.Combine(options.TokenizerPath, "tokenizer.model") : options.TokenizerPath;
            if (!Path.Exists(tokFile)) throw new MergeException($"--tokenizer: {tokFile} not found");
            InputFile.Require(tokFile);
            tokDir = Path.GetDirectoryName(Path.GetFullPath(tokFile));
        }

        using var writer = new CheckpointWriter(outDir, plan, options.Writer);
        writer.AddFile("config.json", new ModelConfig { Json = json }.ToJsonText() + "\n");
        if (tokFile != null)
        {
            writer.CopyFile(tokFile, "tokenizer.model");
            SideFiles.CopyExisting(tokDir!, writer, ["tokenizer_config.json", "special_tokens_map.json"]);
        }
        foreach (var (name, bytes) in options.TokenizerFiles ?? new Dictionary<string, byte[]>()) writer.AddFile(name, bytes);
        FillRandom(writer, plan, options.Seed, options.Threads, options.Progress, cancel);
        writer.Commit(options.Writer.Force);
    }

    private static void FillRandom(CheckpointWriter writer, List<PlannedTensor> plan, ulong seed, int threads, Action<long, long>? progress, CancellationToken cancel)
    {
        var counter = new ProgressCounter(plan.Sum(t => t.ByteLength), progress);
        var items = new List<(PlannedTensor Tensor, ulong Key, bool IsNorm, long Start, int Count)>();
        foreach (var t in plan)
        {
            bool isNorm = t.Name.EndsWith("norm.weight", StringComparison.Ordinal);
            ulong key = TensorKey(seed, t.Name);
            long n = t.ElementCount;
            for (long s = 0; s < n; s += ChunkWorkers.ChunkElements) items.Add((t, key, isNorm, s, (int)Math.Min(ChunkWorkers.ChunkElements, n - s)));
        }
        ChunkWorkers.Run(items, (it, floats, bytes) =>
        {
            var f = floats.AsSpan(0, it.Count);
            if (it.IsNorm) f.Fill(1f); else Normal(it.Key, it.Start, f);
            int size = it.Tensor.DType.SizeOf();
            var dst = bytes.AsSpan(0, it.Count * size);
            Conversions.FromSingle(f, it.Tensor.DType, dst);
            writer.Write(it.Tensor.Name, dst, it.Start * size);
            counter.Add(dst.Length);
        }, threads, cancel);
    }

    /// <summary>Per-tensor stream key: splitmix64 of the seed mixed with the FNV-1a hash of the name.</summary>
    internal static ulong TensorKey(ulong seed, string name)
    {
        ulong h = 0xCBF29CE484222325;
        foreach (var b in Encoding.UTF8.GetBytes(name)) { h ^= b; h *= 0x100000001B3; }
        return Mix(seed ^ Mix(h));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    private const ulong Gamma = 0x9E3779B97F4A7C15;
    private const float Scale = (float)(InitStd * 1.7320508075688772 / 65536.0); // std of a sum of four U[0,65536) is 65536/√3

    /// <summary>
    /// Approximately N(0, 0.02²) values for elements [start, start + dst.Length) of a tensor: element i is
    /// the splitmix64 output for counter i (a pure function, so chunks can be made in any order), turned
    /// into a normal-ish value by summing its four 16-bit parts (Irwin–Hall, n = 4, rescaled to std 0.02).
    /// The SIMD loop does the same integer arithmetic and the same single float multiply: identical bits.
    /// </summary>
    internal static void Normal(ulong key, long start, Span<float> dst, SimdWidth width = 0)
    {
        ulong state = key + (ulong)start * Gamma; // element i uses Mix(state + (i + 1) * Gamma)
        Simd.Generate(state + Gamma, Gamma, dst, default(IrwinHall4), width);
    }

    /// <summary>The scalar definition: one value from one splitmix64 counter.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float NormalScalar(ulong counter) => default(IrwinHall4).Invoke(counter);

    /// <summary>splitmix64 of the counter, its four 16-bit parts summed, centred and scaled: the same integer arithmetic and one float multiply at every width.</summary>
    private readonly struct IrwinHall4 : ICounterOp
    {
        public float Invoke(ulong counter)
        {
            ulong z = Synthesizer.Mix(counter);
            int sum = (int)(z & 0xFFFF) + (int)((z >> 16) & 0xFFFF) + (int)((z >> 32) & 0xFFFF) + (int)(z >> 48);
            return (sum - 131070) * Scale;
        }

        public Vector128<float> Invoke(Vector128<ulong> lo, Vector128<ulong> hi) =>
            Vector128.ConvertToSingle(Vector128.Narrow(Sum4(Mix(lo)), Sum4(Mix(hi))).AsInt32() - Vector128.Create(131070)) * Scale;
        public Vector256<float> Invoke(Vector256<ulong> lo, Vector256<ulong> hi) =>
            Vector256.ConvertToSingle(Vector256.Narrow(Sum4(Mix(lo)), Sum4(Mix(hi))).AsInt32() - Vector256.Create(131070)) * Scale;
        public Vector512<float> Invoke(Vector512<ulong> lo, Vector512<ulong> hi) =>
            Vector512.ConvertToSingle(Vector512.Narrow(Sum4(Mix(lo)), Sum4(Mix(hi))).AsInt32() - Vector512.Create(131070)) * Scale;

        private static Vector128<ulong> Mix(Vector128<ulong> z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            return z ^ (z >> 31);
        }

        private static Vector256<ulong> Mix(Vector256<ulong> z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            return z ^ (z >> 31);
        }

        private static Vector512<ulong> Mix(Vector512<ulong> z)
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
            return z ^ (z >> 31);
        }

        private static Vector128<ulong> Sum4(Vector128<ulong> z) => (z & Vector128.Create(0xFFFFUL)) + ((z >> 16) & Vector128.Create(0xFFFFUL)) + ((z >> 32) & Vector128.Create(0xFFFFUL)) + (z >> 48);
        private static Vector256<ulong> Sum4(Vector256<ulong> z) => (z & Vector256.Create(0xFFFFUL)) + ((z >> 16) & Vector256.Create(0xFFFFUL)) + ((z >> 32) & Vector256.Create(0xFFFFUL)) + (z >> 48);
        private static Vector512<ulong> Sum4(Vector512<ulong> z) => (z & Vector512.Create(0xFFFFUL)) + ((z >> 16) & Vector512.Create(0xFFFFUL)) + ((z >> 32) & Vector512.Create(0xFFFFUL)) + (z >> 48);
    }
}
