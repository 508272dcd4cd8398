using System.Buffers.Binary;

namespace Mistral.Merge.Numerics.Quantization;

/// <summary>
/// IEEE half precision as ggml stores it (little-endian): float → half rounds to nearest, ties to even, as ggml's
/// F16C path (<c>_cvtss_sh(x, 0)</c>) and numpy's <c>astype(float16)</c> do; .NET's <see cref="Half"/> conversion is
/// that rounding.
/// </summary>
public static class Fp16
{
    public static ushort ToBits(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    public static float FromBits(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    public static void Write(Span<byte> dst, float value) => BinaryPrimitives.WriteUInt16LittleEndian(dst, ToBits(value));

    public static float Read(ReadOnlySpan<byte> src) => FromBits(BinaryPrimitives.ReadUInt16LittleEndian(src));

    /// <summary>A row of floats as little-endian halves (2 bytes each).</summary>
    public static void WriteRow(ReadOnlySpan<float> x, Span<byte> dst)
    {
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], ToBits(x[i]));
    }
}
