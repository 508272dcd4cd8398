using System.Globalization;
using System.Runtime.CompilerServices;

namespace Mistral.Merge.Core;

/// <summary>
/// bfloat16: the top 16 bits of an IEEE float32. Conversion from float rounds to nearest, ties
/// to even, exactly like torch's <c>Tensor.to(torch.bfloat16)</c>; every NaN becomes torch's
/// canonical quiet NaN 0x7FC0; ±Inf and subnormals follow from the bit arithmetic.
/// </summary>
public readonly struct BFloat16 : IEquatable<BFloat16>, IComparable<BFloat16>
{
    public readonly ushort Bits;

    private BFloat16(ushort bits) => Bits = bits;

    public static BFloat16 FromBits(ushort bits) => new(bits);

    public static readonly BFloat16 NaN = new(0x7FC0);
    public static readonly BFloat16 PositiveInfinity = new(0x7F80);
    public static readonly BFloat16 NegativeInfinity = new(0xFF80);
    public static readonly BFloat16 Zero = new(0);
    public static readonly BFloat16 One = new(0x3F80);

    /// <summary>float → bf16 bits, round-to-nearest-even; NaN → 0x7FC0 (torch's c10 rule).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort RoundToBits(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7FFF_FFFFu) > 0x7F80_0000u) return 0x7FC0;
        // Adding 0x7FFF plus the lowest kept bit rounds half-way cases to the even neighbour.
        return (ushort)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BitsToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    public static explicit operator BFloat16(float value) => new(RoundToBits(value));
    public static explicit operator float(BFloat16 value) => BitsToSingle(value.Bits);
    public static explicit operator double(BFloat16 value) => BitsToSingle(value.Bits);

    public bool IsNaN => (Bits & 0x7FFF) > 0x7F80;
    public bool IsInfinity => (Bits & 0x7FFF) == 0x7F80;

    // NaN != NaN and +0 == -0, as for float.
    public bool Equals(BFloat16 other) => (float)this == (float)other;
    public override bool Equals(object? obj) => obj is BFloat16 b && Equals(b);
    public override int GetHashCode() => ((float)this).GetHashCode();
    public int CompareTo(BFloat16 other) => ((float)this).CompareTo((float)other);
    public static bool operator ==(BFloat16 a, BFloat16 b) => a.Equals(b);
    public static bool operator !=(BFloat16 a, BFloat16 b) => !a.Equals(b);
    // Ordering operators compare the values as IEEE floats do (any comparison with NaN is false), like float's own.
    public static bool operator <(BFloat16 a, BFloat16 b) => (float)a < (float)b;
    public static bool operator <=(BFloat16 a, BFloat16 b) => (float)a <= (float)b;
    public static bool operator >(BFloat16 a, BFloat16 b) => (float)a > (float)b;
    public static bool operator >=(BFloat16 a, BFloat16 b) => (float)a >= (float)b;
    public override string ToString() => ((float)this).ToString(CultureInfo.InvariantCulture);
}
