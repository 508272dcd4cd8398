using System.Globalization;

namespace Mistral.Merge.IO.Gguf;

/// <summary>
/// One metadata value: a scalar (its .NET value: byte, sbyte, ushort, short, uint, int, float, bool, string, ulong,
/// long, double) or an array (<see cref="ElementType"/> and an <c>Array</c> of those).
/// </summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue U32(uint v) => new(GgufValueType.UInt32, v);
    public static GgufValue U16(ushort v) => new(GgufValueType.UInt16, v);
    public static GgufValue I32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue F32(float v) => new(GgufValueType.Float32, v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Str(string v) => new(GgufValueType.String, v);
    public static GgufValue Strings(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue F32s(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue I32s(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);

    public bool IsArray => Type == GgufValueType.Array;

    /// <summary>The value as text for messages and the tests: scalars invariant, arrays as "[n × type]".</summary>
    public override string ToString() => Value switch
    {
        Array a => $"[{a.Length} × {ElementType}]",
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };
}

/// <summary>A tensor as a GGUF file lists it: dims innermost first (ggml's ne), its type, its byte length.</summary>
public sealed record GgufTensorInfo(string Name, long[] Dims, GgmlType Type)
{
    /// <summary>Offset in the data section (set by the writer, read by the reader).</summary>
    public long Offset { get; init; }
    public long ElementCount => Dims.Aggregate(1L, (a, d) => checked(a * d));
    public long ByteLength => GgmlTypes.ByteCount(Type, Dims);
}
