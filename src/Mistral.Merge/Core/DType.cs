namespace Mistral.Merge.Core;

/// <summary>The element types of the safetensors format.</summary>
public enum DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2 }

public static class DTypes
{
    public static int SizeOf(this DType t) => t switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        _ => 1,
    };

    /// <summary>The name used in safetensors headers.</summary>
    public static string ToSafetensorsName(this DType t) => t.ToString();

    /// <summary>F32, F16 and BF16: the types the merge math and the forward pass read and write.</summary>
    public static bool IsFloatMath(this DType t) => t is DType.F32 or DType.F16 or DType.BF16;

    public static bool TryParseSafetensors(string s, out DType t)
    {
        // Exact, case-sensitive names only: the header is machine-written.
        switch (s)
        {
            case "F64": t = DType.F64; return true;
            case "F32": t = DType.F32; return true;
            case "F16": t = DType.F16; return true;
            case "BF16": t = DType.BF16; return true;
            case "I64": t = DType.I64; return true;
            case "I32": t = DType.I32; return true;
            case "I16": t = DType.I16; return true;
            case "I8": t = DType.I8; return true;
            case "U8": t = DType.U8; return true;
            case "BOOL": t = DType.BOOL; return true;
            case "F8_E4M3": t = DType.F8_E4M3; return true;
            case "F8_E5M2": t = DType.F8_E5M2; return true;
            default: t = default; return false;
        }
    }

    /// <summary>Parses a user-facing dtype name as written in recipes, configs and options
    /// (bfloat16/bf16, float16/fp16/half, float32/fp32/float).</summary>
    public static bool TryParseUser(string? s, out DType t)
    {
        var name = s?.Trim().ToLowerInvariant();
        if (name != null && name.StartsWith("torch.", StringComparison.Ordinal)) name = name[6..]; // mergekit accepts torch.float16
        switch (name)
        {
            case "bfloat16" or "bf16": t = DType.BF16; return true;
            case "float16" or "fp16" or "f16" or "half": t = DType.F16; return true;
            case "float32" or "fp32" or "f32" or "float": t = DType.F32; return true;
            default: t = default; return false;
        }
    }

    public static DType ParseUser(string s, string where)
        => TryParseUser(s, out var t) ? t
           : throw new MergeException($"{where}: unknown dtype '{s}' (expected bfloat16, float16 or float32)");

    /// <summary>The name used for torch_dtype in config.json.</summary>
    public static string ToTorchName(this DType t) => t switch
    {
        DType.F32 => "float32",
        DType.F16 => "float16",
        DType.BF16 => "bfloat16",
        DType.F64 => "float64",
        _ => t.ToString().ToLowerInvariant(),
    };
}
