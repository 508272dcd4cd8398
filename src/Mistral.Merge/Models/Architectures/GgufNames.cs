namespace Mistral.Merge.Models;

/// <summary>What llama.cpp does with a GGUF tensor on export: plain weight, kept float32, or Q/K row-permuted.</summary>
public enum GgufTensorKind
{
    /// <summary>A weight matrix: written in the requested type.</summary>
    Weight,
    /// <summary>A norm weight (<c>*_norm.weight</c>): always float32 in convert_hf_to_gguf and llama-quantize.</summary>
    Norm,
    /// <summary>The MoE router (<c>ffn_gate_inp</c>): always float32 in convert_hf_to_gguf, never quantized by llama-quantize.</summary>
    Router,
    /// <summary>Query projection (weight or bias): rows permuted for llama.cpp's RoPE when the layout asks for it.</summary>
    Query,
    /// <summary>Key projection (weight or bias): permuted with the key/value head count.</summary>
    Key,
}

/// <summary>One tensor of a GGUF file and the HF tensor it comes from (layer-relative for layer tensors).</summary>
public sealed record GgufTensorName(string Hf, string Gguf, GgufTensorKind Kind);

/// <summary>
/// How an architecture is written as GGUF (llama.cpp's convert_hf_to_gguf.py): its GGUF architecture name, whether
/// the q/k rows are permuted (<c>LlamaModel.permute</c>: llama.cpp's "llama" arch rotates interleaved pairs, HF
/// rotates halves), and whether the llama-only keys <c>vocab_size</c> and <c>rope.dimension_count</c> are written.
/// </summary>
public sealed record GgufLayout(string Arch, bool PermuteQk, bool LlamaKeys);

public sealed partial class Architecture
{
    /// <summary>The GGUF layout; null for an architecture that cannot be exported.</summary>
    public GgufLayout? Gguf { get; init; }

    /// <summary>GGUF tensor names (gguf-py's tensor_mapping.py, MODEL_TENSOR names in constants.py).</summary>
    public static class GgufNames
    {
        public const string TokenEmbd = "token_embd.weight", OutputNorm = "output_norm.weight", Output = "output.weight";

        /// <summary>A layer tensor's full name: <c>blk.N.attn_q.weight</c>.</summary>
        public static string Block(int layer, string name) => FormattableString.Invariant($"blk.{layer}.{name}");

        /// <summary>Mixtral's experts stacked into one 3-D tensor per weight (w1 = gate, w2 = down, w3 = up).</summary>
        public static string Experts(string w) => w switch
        {
            "w1" => "ffn_gate_exps.weight",
            "w2" => "ffn_down_exps.weight",
            "w3" => "ffn_up_exps.weight",
            _ => throw new ArgumentException($"no expert weight '{w}'", nameof(w)),
        };
    }

    /// <summary>The global tensors: (HF name, GGUF name, kind). The output head is absent from tied models.</summary>
    public IReadOnlyList<GgufTensorName> GgufGlobals =>
    [
        new(Embed, GgufNames.TokenEmbd, GgufTensorKind.Weight),
        new(FinalNorm, GgufNames.OutputNorm, GgufTensorKind.Norm),
        new(LmHead, GgufNames.Output, GgufTensorKind.Weight),
    ];

    /// <summary>The per-layer tensors (layer-relative HF suffix, GGUF name without <c>blk.N.</c>), experts excluded.</summary>
    public IReadOnlyList<GgufTensorName> GgufLayerTensors => new GgufTensorName?[]
    {
        new(InputNorm, "attn_norm.weight", GgufTensorKind.Norm),
        new(PostAttentionNorm, "ffn_norm.weight", GgufTensorKind.Norm),
        new(Q, "attn_q.weight", GgufTensorKind.Query),
        new(K, "attn_k.weight", GgufTensorKind.Key),
        new(V, "attn_v.weight", GgufTensorKind.Weight),
        new(O, "attn_output.weight", GgufTensorKind.Weight),
        QBias is { } qb ? new(qb, "attn_q.bias", GgufTensorKind.Query) : null,
        KBias is { } kb ? new(kb, "attn_k.bias", GgufTensorKind.Key) : null,
        VBias is { } vb ? new(vb, "attn_v.bias", GgufTensorKind.Weight) : null,
        Gate is { } g ? new(g, "ffn_gate.weight", GgufTensorKind.Weight) : null,
        Up is { } u ? new(u, "ffn_up.weight", GgufTensorKind.Weight) : null,
        Down is { } d ? new(d, "ffn_down.weight", GgufTensorKind.Weight) : null,
        Router is { } r ? new(r, "ffn_gate_inp.weight", GgufTensorKind.Router) : null,
    }.OfType<GgufTensorName>().ToList();
}
