using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Models;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// general.* and {arch}.* metadata as convert_hf_to_gguf.py writes them (TextModel.set_gguf_parameters, with
/// LlamaModel's vocab_size, rope.dimension_count and linear rope scaling; Qwen2Model's yarn scaling), each key written
/// only when config.json gives its source as convert does.
/// </summary>
public static class GgufModelMetadata
{
    public static List<(string Key, GgufValue Value)> Build(string folder, ModelConfig c, GgufLayout layout, GgufFileType fileType, uint alignment)
    {
        var arch = layout.Arch;
        var j = c.Json;
        var k = c.Names.Keys;
        var meta = new List<(string, GgufValue)>
        {
            (GgufFormat.KeyArchitecture, GgufValue.Str(arch)),
            ("general.type", GgufValue.Str("model")),
        };
        meta.AddRange(GgufModelCard.Read(folder));
        void U32(string key, long? v) { if (v is { } x) meta.Add(($"{arch}.{key}", GgufValue.U32((uint)x))); }
        void F32(string key, double? v) { if (v is { } x) meta.Add(($"{arch}.{key}", GgufValue.F32((float)x))); }
        bool Has(string key) => j[key] is JsonValue;

        U32("block_count", c.NumHiddenLayers);
        U32("context_length", Has("max_position_embeddings") ? c.MaxPositionEmbeddings : null);
        U32("embedding_length", Has(k.Hidden) ? c.HiddenSize : null);
        U32("feed_forward_length", Has(k.Intermediate) ? c.IntermediateSize : null);
        U32("attention.head_count", Has(k.Heads) ? c.NumAttentionHeads : null);
        U32("attention.head_count_kv", Has(k.KvHeads) ? c.NumKeyValueHeads : null);
        F32("rope.freq_base", Has(k.RopeTheta) ? c.RopeTheta : null);
        F32("attention.layer_norm_rms_epsilon", Has(k.RmsNormEps) ? c.RmsNormEps : null);
        if (c.IsMoe)
        {
            U32("expert_count", c.NumLocalExperts);
            U32("expert_used_count", c.NumExpertsPerTok);
        }
        if (Has(k.HeadDim))
        {
            U32("attention.key_length", c.HeadDim);
            U32("attention.value_length", c.HeadDim);
        }
        meta.Add((GgufFormat.KeyFileType, GgufValue.U32((uint)fileType)));
        if (c.EffectiveSlidingWindow(out _) is { } window) U32("attention.sliding_window", window);
        if (layout.LlamaKeys)
        {
            U32("vocab_size", c.VocabSize);
            U32("rope.dimension_count", c.HeadDim);
        }
        RopeScaling(c, layout, meta);
        meta.Add((GgufFormat.KeyQuantizationVersion, GgufValue.U32(GgufFormat.QuantizationVersion)));
        meta.Add((GgufFormat.KeyAlignment, GgufValue.U32(alignment)));
        return meta;
    }

    /// <summary>gguf-py's RopeScalingType (written as its lower-case name).</summary>
    private enum RopeScalingType { None, Linear, Yarn }

    /// <summary>Linear scaling (LlamaModel) and yarn (Qwen2Model); any other rope_scaling is refused rather than dropped.</summary>
    private static void RopeScaling(ModelConfig c, GgufLayout layout, List<(string, GgufValue)> meta)
    {
        if (c.Json["rope_scaling"] is not JsonObject rs) return;
        var where = c.SourcePath ?? "config.json";
        string? name = (rs["rope_type"] ?? rs["type"]) is JsonValue tv && tv.TryGetValue<string>(out var t) ? t : null;
        if (name is null or "default") return;
        var type = Enum.TryParse<RopeScalingType>(name, ignoreCase: true, out var parsed) ? parsed : RopeScalingType.None;
        double? factor = JsonFile.Number(rs, "factor", where, 0, 1e6);
        var arch = layout.Arch;
        bool supported = factor != null && (type == RopeScalingType.Linear ? layout.LlamaKeys : type == RopeScalingType.Yarn && !layout.LlamaKeys);
        if (!supported)
            throw new MergeException($"{where}: rope_scaling type '{name}' cannot be exported to GGUF by mistral-merge (only a factor with {RopeScalingType.Linear.ToString().ToLowerInvariant()} for Llama-family models, {RopeScalingType.Yarn.ToString().ToLowerInvariant()} for Qwen2)");
        meta.Add(($"{arch}.rope.scaling.type", GgufValue.Str(type.ToString().ToLowerInvariant())));
        meta.Add(($"{arch}.rope.scaling.factor", GgufValue.F32((float)factor!.Value)));
        if (type == RopeScalingType.Yarn && JsonFile.Number(rs, "original_max_position_embeddings", where, 0, 1e9) is { } o)
            meta.Add(($"{arch}.rope.scaling.original_context_length", GgufValue.U32((uint)o)));
    }
}
