namespace Mistral.Merge.Inference;

/// <summary>The weights the forward pass reads (<c>--weights</c>): as stored, or the projections quantized to Q8_0 at load.</summary>
public enum WeightFormat { AsStored, Q8_0 }

/// <summary>The <c>--weights</c> names.</summary>
public static class WeightFormats
{
    /// <summary>auto = as stored (bf16/f16/f32, or a GGUF file's own types); q8_0 = projections quantized to ggml's Q8_0 at load.</summary>
    public static readonly string[] Names = ["auto", "q8_0"];

    public static WeightFormat Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "auto" or "" => WeightFormat.AsStored,
        "q8_0" => WeightFormat.Q8_0,
        _ => throw new MergeException($"--weights: expected auto or q8_0, got '{name}'"),
    };
}
