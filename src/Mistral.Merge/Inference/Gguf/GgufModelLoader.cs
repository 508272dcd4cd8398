using System.Globalization;
using NativeMemory = System.Runtime.InteropServices.NativeMemory;
using System.Text.Json.Nodes;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// A <c>.gguf</c> file as a <see cref="TransformerModel"/>, the inverse of <see cref="GgufExporter"/>: the config from
/// the <c>{arch}.*</c> metadata, the tensors by their GGUF names, memory-mapped in place (f32/f16/bf16 as float
/// matrices, q8_0/q4_0 as block-quantized ones); Mixtral's stacked 3-D experts are sliced per expert without a copy.
/// The Llama-family q/k rows that convert_hf_to_gguf permuted for llama.cpp's RoPE are put back in HF order: those two
/// matrices per layer are copied, reordered row by row in their stored type (a quantized row is its own blocks).
/// </summary>
public static unsafe class GgufModelLoader
{
    public static bool IsGgufPath(string path) =>
        path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) && !Directory.Exists(path);

    /// <summary>The mapped file and the un-permuted q/k copies, disposed with the model.</summary>
    private sealed class Owner(GgufMappedFile file) : IDisposable
    {
        public GgufMappedFile File { get; } = file;
        public List<nint> Buffers { get; } = [];

        public void Dispose()
        {
            foreach (var b in Buffers) NativeMemory.AlignedFree((void*)b);
            Buffers.Clear();
            File.Dispose();
        }
    }

    public static TransformerModel Load(string path)
    {
        var file = GgufMappedFile.Open(path);
        var owner = new Owner(file);
        try { return Build(path, owner); }
        catch { owner.Dispose(); throw; }
    }

    /// <summary>The HF config.json equivalent of a GGUF file's metadata (what the forward pass reads).</summary>
    public static ModelConfig ConfigOf(GgufReader g)
    {
        var path = g.Path;
        var archName = g.Get(GgufFormat.KeyArchitecture)?.Value as string
            ?? throw new MergeException($"{path}: no string '{GgufFormat.KeyArchitecture}'");
        long? Int(string key) => g.Integer($"{archName}.{key}");
        double? Real(string key) => g.Get($"{archName}.{key}") is { } v
            ? v.Value is float or double ? Convert.ToDouble(v.Value, CultureInfo.InvariantCulture)
                : throw new MergeException($"{path}: '{archName}.{key}' must be a float, got {v.Value}")
            : null;
        long Required(string key) => Int(key) ?? throw new MergeException($"{path}: no metadata key '{archName}.{key}'");

        long experts = Int("expert_count") ?? 0;
        long? window = Int("attention.sliding_window");
        var arch = archName switch
        {
            "llama" => experts > 0 ? Architecture.Mixtral : window != null ? Architecture.Mistral : Architecture.Llama,
            "qwen2" => Architecture.Qwen2,
            _ => throw new MergeException($"{path}: GGUF architecture '{archName}' is not supported (llama, qwen2)"),
        };
        if (g.Get($"{archName}.rope.scaling.type") is { Value: string rs } && rs != "none")
            throw new MergeException($"{path}: rope scaling '{rs}' is not supported by the built-in forward pass");
        var embd = g.Tensors.FirstOrDefault(t => t.Name == Architecture.GgufNames.TokenEmbd)
            ?? throw new MergeException($"{path}: no tensor '{Architecture.GgufNames.TokenEmbd}'");
        long heads = Required("attention.head_count"), hidden = Required("embedding_length");
        var j = new JsonObject
        {
            ["architectures"] = new JsonArray(arch.HfArchitecture),
            ["model_type"] = arch.ModelType,
            ["hidden_size"] = hidden,
            ["intermediate_size"] = Required("feed_forward_length"),
            ["num_hidden_layers"] = Required("block_count"),
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = Int("attention.head_count_kv") ?? heads,
            ["vocab_size"] = embd.Dims.Length == 2 ? embd.Dims[1] : 0,
            ["rope_theta"] = Real("rope.freq_base") ?? 10000.0,
            ["rms_norm_eps"] = Real("attention.layer_norm_rms_epsilon") ?? 1e-5,
            ["tie_word_embeddings"] = g.Tensors.All(t => t.Name != Architecture.GgufNames.Output),
        };
        if (Int("attention.key_length") is { } hd) j["head_dim"] = hd;
        if (Int("context_length") is { } ctx) j["max_position_embeddings"] = ctx;
        if (window is { } w) { j["sliding_window"] = w; if (arch == Architecture.Qwen2) j["use_sliding_window"] = true; }
        if (experts > 0)
        {
            j["num_local_experts"] = experts;
            j["num_experts_per_tok"] = Required("expert_used_count");
        }
        return ModelConfig.FromJson(j, path);
    }

    private static TransformerModel Build(string path, Owner owner)
    {
        var file = owner.File;
        var g = file.Header;
        var config = ConfigOf(g);
        var shape = TransformerModel.ShapeOf(config, path);
        var a = shape.Architecture;
        bool permute = a.Gguf is { PermuteQk: true };
        long bytes = 0;

        GgufTensorInfo Find(string name) => g.Tensors.FirstOrDefault(t => t.Name == name)
            ?? throw new MergeException($"{path}: model has no tensor '{name}' (required by its {a.Name} metadata)");
        string Shape(long[] dims) => $"[{string.Join(", ", dims.Reverse())}]";
        WeightMatrix View(GgufTensorInfo t, long rows, int cols)
        {
            var p = file.Pointer(t);
            return t.Type switch
            {
                GgmlType.F32 => new WeightMatrix(p, DType.F32, checked((int)rows), cols),
                GgmlType.F16 => new WeightMatrix(p, DType.F16, checked((int)rows), cols),
                GgmlType.BF16 => new WeightMatrix(p, DType.BF16, checked((int)rows), cols),
                GgmlType.Q8_0 => new WeightMatrix(p, BlockQuant.Q8_0, checked((int)rows), cols),
                GgmlType.Q4_0 => new WeightMatrix(p, BlockQuant.Q4_0, checked((int)rows), cols),
                _ => throw new MergeException($"{path}: tensor '{t.Name}' has type {GgmlTypes.Name(t.Type)}; the forward pass reads f32, f16, bf16, q8_0 and q4_0"),
            };
        }
        // GGUF dims are innermost first: an HF [rows, cols] weight is [cols, rows].
        WeightMatrix Matrix(string name, int rows, int cols)
        {
            var t = Find(name);
            if (t.Dims.Length != 2 || t.Dims[0] != cols || t.Dims[1] != rows)
                throw new MergeException($"{path}: tensor '{name}' has shape {Shape(t.Dims)}, expected [{rows}, {cols}] from the metadata");
            var m = View(t, rows, cols);
            bytes += m.ByteLength;
            return m;
        }
        WeightMatrix[] Experts(string name, int rows, int cols)
        {
            var t = Find(name);
            if (t.Dims.Length != 3 || t.Dims[0] != cols || t.Dims[1] != rows || t.Dims[2] != shape.Experts)
                throw new MergeException($"{path}: tensor '{name}' has shape {Shape(t.Dims)}, expected [{shape.Experts}, {rows}, {cols}] from the metadata");
            var all = View(t, (long)shape.Experts * rows, cols);
            bytes += all.ByteLength;
            return Enumerable.Range(0, shape.Experts).Select(e => all.RowSlice(e * rows, rows)).ToArray();
        }
        float[] Vector(string name, int n)
        {
            var t = Find(name);
            if (t.Dims.Length != 1 || t.Dims[0] != n)
                throw new MergeException($"{path}: tensor '{name}' has shape {Shape(t.Dims)}, expected [{n}] from the metadata");
            if (t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
                throw new MergeException($"{path}: tensor '{name}' has type {GgmlTypes.Name(t.Type)}; a norm or bias must be f32, f16 or bf16");
            var v = new float[n];
            View(t, 1, n).WidenRow(0, 0, n, v);
            return v;
        }
        // convert_hf_to_gguf's LlamaModel.permute undone: GGUF row h·d + 2j + i holds HF row h·d + i·d/2 + j.
        WeightMatrix Unpermute(WeightMatrix m, int heads)
        {
            if (!permute) return m;
            long rowBytes = m.RowBytes;
            var dst = (byte*)NativeMemory.AlignedAlloc((nuint)m.ByteLength, 64);
            owner.Buffers.Add((nint)dst);
            int d = m.Rows / heads, half = d / 2;
            for (int h = 0; h < heads; h++)
                for (int jj = 0; jj < half; jj++)
                    for (int i = 0; i < 2; i++)
                        Buffer.MemoryCopy(m.Data + (h * d + 2 * jj + i) * rowBytes, dst + (h * d + i * half + jj) * rowBytes, rowBytes, rowBytes);
            return m.IsQuantized ? new WeightMatrix(dst, m.Quant, m.Rows, m.Cols) : new WeightMatrix(dst, m.Type, m.Rows, m.Cols);
        }

        var names = a.GgufLayerTensors.ToDictionary(t => t.Hf, t => t.Gguf);
        var embed = Matrix(Architecture.GgufNames.TokenEmbd, shape.Vocab, shape.Hidden);
        bytes -= embed.ByteLength; // the embedding is a lookup, not streamed (as for safetensors models)
        var layers = new LayerWeights[shape.Layers];
        // GGUF stacks each MoE projection's experts in one tensor (ffn_{gate,down,up}_exps = HF w1, w2, w3).
        string Stacked(string template) => template == a.ExpertGate ? "w1" : template == a.ExpertDown ? "w2" : "w3";
        for (int l = 0; l < shape.Layers; l++)
        {
            string B(string hf) => Architecture.GgufNames.Block(l, names[hf]);
            layers[l] = LayerWeights.Read(shape,
                (hf, rows, cols) =>
                {
                    var m = Matrix(B(hf), rows, cols);
                    return hf == a.Q ? Unpermute(m, shape.Heads) : hf == a.K ? Unpermute(m, shape.KvHeads) : m;
                },
                (hf, n) => Vector(B(hf), n),
                (template, rows, cols) => Experts(Architecture.GgufNames.Block(l, Architecture.GgufNames.Experts(Stacked(template))), rows, cols));
        }
        var finalNorm = Vector(Architecture.GgufNames.OutputNorm, shape.Hidden);
        var head = shape.TiedEmbeddings ? embed : Matrix(Architecture.GgufNames.Output, shape.Vocab, shape.Hidden);
        if (shape.TiedEmbeddings) bytes += head.ByteLength;
        return new TransformerModel(path, owner, file.CheckUnchanged, config, shape, embed, head, finalNorm, layers, bytes);
    }
}
