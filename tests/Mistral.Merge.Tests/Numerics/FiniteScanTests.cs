using System.Runtime.InteropServices;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Numerics;

public sealed class FiniteScanTests
{
    [Theory]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    public void OverflowBitsIsExactlyWhereRoundingGivesInf(DType type)
    {
        uint t = FiniteScan.OverflowBits(type);
        float[] values = [BitConverter.UInt32BitsToSingle(t - 1), BitConverter.UInt32BitsToSingle(t), -BitConverter.UInt32BitsToSingle(t - 1), -BitConverter.UInt32BitsToSingle(t)];
        var bytes = new byte[values.Length * 2];
        Conversions.FromSingle(values, type, bytes);
        var back = new float[values.Length];
        Conversions.ToSingle(bytes, type, back);
        Assert.True(float.IsFinite(back[0]) && float.IsFinite(back[2]));
        Assert.Equal(float.PositiveInfinity, back[1]);
        Assert.Equal(float.NegativeInfinity, back[3]);
    }

    [Fact]
    public void MaxAbsBitsFindsOneBadValueAnywhere()
    {
        var x = new float[1000];
        for (int i = 0; i < x.Length; i++) x[i] = MathF.Sin(i);
        Assert.True(FiniteScan.AllFinite(x));
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
            foreach (int at in new[] { 0, 7, 500, 999 })
            {
                var y = (float[])x.Clone();
                y[at] = bad;
                Assert.False(FiniteScan.AllFinite(y));
                Assert.Equal(float.IsNaN(bad), FiniteScan.MaxAbsBits(y) > FiniteScan.InfBits);
            }
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.F16)]
    [InlineData(DType.BF16)]
    [InlineData(DType.F64)]
    public void CountIsExactForEveryFloatDType(DType type)
    {
        var x = new float[77];
        for (int i = 0; i < x.Length; i++) x[i] = i - 30;
        x[3] = float.NaN; x[40] = float.NaN; x[41] = float.PositiveInfinity; x[76] = float.NegativeInfinity; x[5] = float.NegativeInfinity;
        var bytes = Encode(x, type);
        Assert.Equal(new ValueCounts(2, 1, 2, false), FiniteScan.Count(bytes, type));
        Assert.False(FiniteScan.AllFinite(bytes, type));
        var zeros = Encode([0f, -0f, 0f], type);
        Assert.Equal(new ValueCounts(0, 0, 0, true), FiniteScan.Count(zeros, type));
        Assert.True(FiniteScan.AllFinite(zeros, type));
    }

    private static byte[] Encode(float[] x, DType type)
    {
        if (type == DType.F64) return MemoryMarshal.AsBytes(x.Select(v => (double)v).ToArray().AsSpan()).ToArray();
        var bytes = new byte[x.Length * type.SizeOf()];
        Conversions.FromSingle(x, type, bytes);
        return bytes;
    }
}
