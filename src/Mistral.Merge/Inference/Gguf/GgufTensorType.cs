using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Models;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>The output types <c>export-gguf --type</c> accepts, and the type each tensor gets.</summary>
public static class GgufTensorType
{
    public static readonly IReadOnlyList<string> Names = ["f32", "f16", "bf16", "q8_0", "q4_0"];

    public static GgmlType Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "f32" => GgmlType.F32,
        "f16" => GgmlType.F16,
        "bf16" => GgmlType.BF16,
        "q8_0" => GgmlType.Q8_0,
        "q4_0" => GgmlType.Q4_0,
        _ => throw new MergeException($"--type '{name}' is not one of {string.Join(", ", Names)}"),
    };

    public static GgufFileType FileType(GgmlType t) => t switch
    {
        GgmlType.F32 => GgufFileType.AllF32,
        GgmlType.F16 => GgufFileType.MostlyF16,
        GgmlType.BF16 => GgufFileType.MostlyBF16,
        GgmlType.Q8_0 => GgufFileType.MostlyQ8_0,
        GgmlType.Q4_0 => GgufFileType.MostlyQ4_0,
        _ => throw new ArgumentException($"no file type for {t}", nameof(t)),
    };

    /// <summary>
    /// The type a tensor is written in. convert_hf_to_gguf.py (f32/f16/bf16/q8_0): 1-D tensors, norms and the MoE
    /// router are float32, every other weight takes the requested type, and a row whose length is not a multiple of
    /// the 32-weight block falls back to f16 (its QuantError fallback). q4_0 follows llama-quantize --pure q4_0 on
    /// such a float32 file (the same tensors are quantized: 2-D/3-D weights except norms and ffn_gate_inp, the output
    /// head included); where llama-quantize refuses a row that is not a multiple of 32 ("no tensor type fallback"),
    /// this falls back to f16 as convert does for q8_0.
    /// </summary>
    public static GgmlType For(GgufTensorKind kind, int dims, long rowLength, GgmlType target)
    {
        if (target == GgmlType.F32 || dims <= 1 || kind is GgufTensorKind.Norm or GgufTensorKind.Router) return GgmlType.F32;
        if (target is GgmlType.Q8_0 or GgmlType.Q4_0 && rowLength % 32 != 0) return GgmlType.F16;
        return target;
    }
}
