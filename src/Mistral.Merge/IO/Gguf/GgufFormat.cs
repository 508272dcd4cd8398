namespace Mistral.Merge.IO.Gguf;

/// <summary>
/// The GGUF v3 container as llama.cpp reads it (ggml's docs/gguf.md, gguf-py's constants.py), little-endian:
/// magic "GGUF", version (u32), tensor count (u64), key/value count (u64), the key/value pairs (key: u64 length +
/// UTF-8; value type u32; value), the tensor infos (name, n_dims u32, dims u64[n_dims] innermost first, ggml type u32,
/// data offset u64 relative to the data section, a multiple of the alignment), padding to the alignment, the data
/// section (each tensor's bytes padded to the alignment). Shared by the writer, the reader and the tests.
/// </summary>
public static class GgufFormat
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;
    public const uint Version = 3;
    public const uint DefaultAlignment = 32;
    /// <summary>GGML_QUANT_VERSION, written as general.quantization_version.</summary>
    public const uint QuantizationVersion = 2;

    public const string KeyArchitecture = "general.architecture";
    public const string KeyAlignment = "general.alignment";
    public const string KeyFileType = "general.file_type";
    public const string KeyQuantizationVersion = "general.quantization_version";

    /// <summary>gguf-split's keys (u16, u16, i32) and file names (OUT-00001-of-00003.gguf).</summary>
    public const string KeySplitNo = "split.no", KeySplitCount = "split.count", KeySplitTensorsCount = "split.tensors.count";

    public static string SplitName(string prefix, int index, int count) =>
        FormattableString.Invariant($"{prefix}-{index + 1:D5}-of-{count:D5}.gguf");

    public static long Align(long offset, uint alignment) => (offset + alignment - 1) / alignment * alignment;
}

/// <summary>gguf_type: the type of a metadata value.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
    UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>ggml_type: the element type of a tensor (the ones this program writes, and the reader's sizes).</summary>
public enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, BF16 = 30,
}

/// <summary>llama_ftype, written as general.file_type: what most tensors are.</summary>
public enum GgufFileType : uint
{
    AllF32 = 0, MostlyF16 = 1, MostlyQ4_0 = 2, MostlyQ8_0 = 7, MostlyBF16 = 32,
}

/// <summary>Block sizes and byte sizes of the ggml types (ggml.c's type_traits).</summary>
public static class GgmlTypes
{
    /// <summary>(weights per block, bytes per block), or null for a type this program does not know.</summary>
    public static (int Block, int Bytes)? Layout(GgmlType t) => t switch
    {
        GgmlType.F32 or GgmlType.I32 => (1, 4),
        GgmlType.F16 or GgmlType.BF16 or GgmlType.I16 => (1, 2),
        GgmlType.I8 => (1, 1),
        GgmlType.F64 or GgmlType.I64 => (1, 8),
        GgmlType.Q4_0 => (32, 18),
        GgmlType.Q4_1 => (32, 20),
        GgmlType.Q5_0 => (32, 22),
        GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34),
        GgmlType.Q8_1 => (32, 36),
        GgmlType.Q2_K => (256, 84),
        GgmlType.Q3_K => (256, 110),
        GgmlType.Q4_K => (256, 144),
        GgmlType.Q5_K => (256, 176),
        GgmlType.Q6_K => (256, 210),
        GgmlType.Q8_K => (256, 292),
        _ => null,
    };

    /// <summary>Bytes of a tensor whose innermost dimension is a multiple of the block size.</summary>
    public static long ByteCount(GgmlType t, IReadOnlyList<long> dims)
    {
        var (block, bytes) = Layout(t) ?? throw new ArgumentException($"unknown ggml type {t}", nameof(t));
        long n = 1;
        foreach (var d in dims) n = checked(n * d);
        return checked(n / block * bytes);
    }

    /// <summary>gguf-py's lower-case names (f32, q8_0, …).</summary>
    public static string Name(GgmlType t) => t.ToString().ToLowerInvariant();
}
