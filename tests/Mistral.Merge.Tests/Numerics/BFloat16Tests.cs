using System.Runtime.InteropServices;

namespace Mistral.Merge.Tests.Numerics;

public class BFloat16Tests
{
    /// <summary>
    /// Independent reference: decode the float exactly as a double, pick the nearer of the two bf16
    /// neighbours (truncated and truncated+1 ulp, where the step past the largest finite value is
    /// 2^128 = Inf), ties to the even one. Uses value arithmetic, not the bit trick under test.
    /// </summary>
    internal static ushort Reference(uint u)
    {
        float f = BitConverter.UInt32BitsToSingle(u);
        if (float.IsNaN(f)) return 0x7FC0;
        if (float.IsInfinity(f)) return (ushort)(u >> 16);
        double x = Math.Abs((double)f);
        uint sign = u & 0x8000_0000u;
        uint lo = (u & 0x7FFF_FFFFu) >> 16, hi = lo + 1;
        double vlo = Value(lo), vhi = Value(hi);
        uint pick = (x - vlo).CompareTo(vhi - x) switch { < 0 => lo, > 0 => hi, _ => (lo & 1) == 0 ? lo : hi };
        return (ushort)((sign >> 16) | pick);

        static double Value(uint magnitudeBits) => magnitudeBits == 0x7F80 ? Math.Pow(2, 128) : BitConverter.UInt32BitsToSingle(magnitudeBits << 16);
    }

    [Theory]
    [InlineData(0x3F800000u, 0x3F80)] // 1.0
    [InlineData(0x3F808000u, 0x3F80)] // exactly half-way, kept bit even: round down
    [InlineData(0x3F818000u, 0x3F82)] // exactly half-way, kept bit odd: round up to even
    [InlineData(0x3F807FFFu, 0x3F80)] // just below half: down
    [InlineData(0x3F808001u, 0x3F81)] // just above half: up
    [InlineData(0xBF808000u, 0xBF80)] // negative tie to even (down in magnitude)
    [InlineData(0xBF818000u, 0xBF82)] // negative tie to even (up in magnitude)
    [InlineData(0x3FFF8000u, 0x4000)] // tie carries into the exponent
    [InlineData(0x40490FDBu, 0x4049)] // pi
    [InlineData(0x00000000u, 0x0000)] // +0
    [InlineData(0x80000000u, 0x8000)] // -0
    [InlineData(0x7F800000u, 0x7F80)] // +Inf
    [InlineData(0xFF800000u, 0xFF80)] // -Inf
    [InlineData(0x7F7FFFFFu, 0x7F80)] // float.MaxValue overflows to +Inf
    [InlineData(0xFF7FFFFFu, 0xFF80)] // -float.MaxValue overflows to -Inf
    [InlineData(0x7F7F8000u, 0x7F80)] // tie above the largest bf16 (odd) rounds to Inf
    [InlineData(0x7F7F7FFFu, 0x7F7F)] // just below that tie stays finite
    [InlineData(0x7F7E8000u, 0x7F7E)] // tie with even kept bit stays
    [InlineData(0x00000001u, 0x0000)] // smallest subnormal rounds to 0
    [InlineData(0x00008000u, 0x0000)] // subnormal tie, even: 0
    [InlineData(0x00018000u, 0x0002)] // subnormal tie, odd: up
    [InlineData(0x00008001u, 0x0001)] // subnormal above half
    [InlineData(0x007FFFFFu, 0x0080)] // largest subnormal rounds to the smallest normal
    [InlineData(0x807FFFFFu, 0x8080)]
    [InlineData(0x80008000u, 0x8000)] // negative subnormal tie to -0
    [InlineData(0x7F800001u, 0x7FC0)] // signalling NaN → canonical quiet NaN
    [InlineData(0x7FC00000u, 0x7FC0)]
    [InlineData(0xFFC00000u, 0x7FC0)] // negative NaN loses its sign (torch)
    [InlineData(0x7FFFFFFFu, 0x7FC0)] // would carry into the sign bit without the NaN check
    [InlineData(0xFFFFFFFFu, 0x7FC0)]
    [InlineData(0xFF800001u, 0x7FC0)]
    [InlineData(0x7F80FFFFu, 0x7FC0)]
    public void ScalarRoundingMatchesExactBits(uint input, int expected)
    {
        Assert.Equal((ushort)expected, BFloat16.RoundToBits(BitConverter.UInt32BitsToSingle(input)));
        Assert.Equal((ushort)expected, Reference(input));
        // The bulk (SIMD) path at every position of a vector, plus the scalar tail.
        var src = new float[67];
        Array.Fill(src, BitConverter.UInt32BitsToSingle(input));
        var dst = new ushort[67];
        Conversions.SingleToBFloat16(src, dst);
        Assert.All(dst, d => Assert.Equal((ushort)expected, d));
    }

    [Fact]
    public void EveryHighHalfWithCriticalLowHalvesMatchesReference()
    {
        // All 65,536 sign/exponent/mantissa-top patterns × the low halves that decide rounding.
        ushort[] lows = [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x4000, 0xC000];
        var src = new uint[65536 * lows.Length];
        for (int h = 0, k = 0; h < 65536; h++)
            foreach (var l in lows) src[k++] = ((uint)h << 16) | l;
        var dst = new ushort[src.Length];
        Conversions.SingleToBFloat16(MemoryMarshal.Cast<uint, float>(src), dst);
        for (int i = 0; i < src.Length; i++)
            if (dst[i] != Reference(src[i]))
                Assert.Fail($"0x{src[i]:X8}: got 0x{dst[i]:X4}, expected 0x{Reference(src[i]):X4}");
    }

    [Fact]
    public void SimdPathEqualsScalarPathOnMillionsOfRandomPatterns()
    {
        var rng = new Random(20240601);
        var src = new uint[4_000_000];
        rng.NextBytes(MemoryMarshal.AsBytes(src.AsSpan()));
        var dst = new ushort[src.Length];
        Conversions.SingleToBFloat16(MemoryMarshal.Cast<uint, float>(src), dst);
        for (int i = 0; i < src.Length; i++)
            if (dst[i] != BFloat16.RoundToBits(BitConverter.UInt32BitsToSingle(src[i])))
                Assert.Fail($"0x{src[i]:X8}: SIMD 0x{dst[i]:X4}, scalar 0x{BFloat16.RoundToBits(BitConverter.UInt32BitsToSingle(src[i])):X4}");
        for (int i = 0; i < 200_000; i++)
            Assert.Equal(Reference(src[i]), dst[i]);
    }

    [Fact]
    public void OddLengthsUseTheTailCorrectly()
    {
        var rng = new Random(5);
        for (int n = 0; n < 100; n++)
        {
            var src = new uint[n];
            rng.NextBytes(MemoryMarshal.AsBytes(src.AsSpan()));
            var dst = new ushort[n + 3];
            dst.AsSpan().Fill(0xABCD);
            Conversions.SingleToBFloat16(MemoryMarshal.Cast<uint, float>(src), dst);
            for (int i = 0; i < n; i++) Assert.Equal(Reference(src[i]), dst[i]);
            Assert.Equal([0xABCD, 0xABCD, 0xABCD], dst[n..]);
        }
    }

    [Fact]
    public void WideningIsExactForAllBitPatterns()
    {
        var src = new ushort[65536 + 5];
        for (int i = 0; i < src.Length; i++) src[i] = (ushort)i;
        var dst = new float[src.Length];
        Conversions.BFloat16ToSingle(src, dst);
        for (int i = 0; i < src.Length; i++)
        {
            Assert.Equal((uint)src[i] << 16, BitConverter.SingleToUInt32Bits(dst[i])); // NaN payloads kept
            Assert.Equal((uint)src[i] << 16, BitConverter.SingleToUInt32Bits(BFloat16.BitsToSingle(src[i])));
        }
        // Round trip: every non-NaN bf16 survives bf16 → f32 → bf16.
        var back = new ushort[src.Length];
        Conversions.SingleToBFloat16(dst, back);
        for (int i = 0; i < src.Length; i++)
            Assert.Equal(BFloat16.FromBits(src[i]).IsNaN ? (ushort)0x7FC0 : src[i], back[i]);
    }

    [Fact]
    public void ValueTypeSemantics()
    {
        Assert.Equal(0x3F80, ((BFloat16)1f).Bits);
        Assert.Equal(1f, (float)BFloat16.One);
        Assert.True(BFloat16.NaN.IsNaN);
        Assert.True(BFloat16.NegativeInfinity.IsInfinity);
        Assert.NotEqual(BFloat16.NaN, BFloat16.NaN);
        Assert.Equal(BFloat16.FromBits(0x8000), BFloat16.Zero); // -0 == +0
        Assert.True(BFloat16.One.CompareTo(BFloat16.Zero) > 0);
        Assert.Equal("1", BFloat16.One.ToString());
        Assert.Equal(-2.0, (double)BFloat16.FromBits(0xC000));
    }

    [Fact]
    public void HalfConversionsMatchTheFramework()
    {
        var halves = new ushort[65536];
        for (int i = 0; i < halves.Length; i++) halves[i] = (ushort)i;
        var f = new float[halves.Length];
        Conversions.ToSingle(MemoryMarshal.AsBytes(halves.AsSpan()), DType.F16, f);
        for (int i = 0; i < halves.Length; i++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf(halves[i]);
            if (float.IsNaN(expected)) Assert.True(float.IsNaN(f[i]));
            else Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(f[i]));
        }
        var rng = new Random(9);
        var src = new uint[100_000];
        rng.NextBytes(MemoryMarshal.AsBytes(src.AsSpan()));
        src[0] = 0x477FF000; // 65520: the F16 overflow tie → Inf
        src[1] = 0x33000000; // 2^-25: tie to zero
        var bytes = new byte[src.Length * 2];
        Conversions.FromSingle(MemoryMarshal.Cast<uint, float>(src), DType.F16, bytes);
        var got = MemoryMarshal.Cast<byte, ushort>(bytes);
        for (int i = 0; i < src.Length; i++)
        {
            var expected = (Half)BitConverter.UInt32BitsToSingle(src[i]);
            if (Half.IsNaN(expected)) Assert.True(Half.IsNaN(BitConverter.UInt16BitsToHalf(got[i])));
            else Assert.Equal(BitConverter.HalfToUInt16Bits(expected), got[i]);
        }
        Assert.Equal(0x7C00, got[0]);
        Assert.Equal(0x0000, got[1]);
    }

    [Fact]
    public void ToSingleAndFromSingleCoverEveryFloatType()
    {
        float[] values = [1.5f, -2.25f, 3.0e-3f, 65504f];
        var bytes = new byte[values.Length * 4];
        Conversions.FromSingle(values, DType.F32, bytes);
        var back = new float[values.Length];
        Conversions.ToSingle(bytes, DType.F32, back);
        Assert.Equal(values, back);

        double[] doubles = [1.0 + 1e-12, -1e300, 0.1];
        var f = new float[3];
        Conversions.ToSingle(MemoryMarshal.AsBytes(doubles.AsSpan()), DType.F64, f);
        Assert.Equal([1f, float.NegativeInfinity, 0.1f], f);

        Assert.Throws<MergeException>(() => Conversions.ToSingle(new byte[4], DType.I32, new float[1]));
        Assert.Throws<MergeException>(() => Conversions.FromSingle(new float[1], DType.I8, new byte[1]));
    }
}
