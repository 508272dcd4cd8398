using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>
/// Q8_0 and Q4_0 dequantization (what the GEMM's panel packing runs on quantized weights): the vector form against
/// the scalar reference, bit for bit, over every quantized byte value and the fp16 scales that test IEEE's edges.
/// </summary>
public class DequantizationVectorTests
{
    // 1, −1.5, the smallest subnormal, the largest finite, −0, +∞, NaN
    public static TheoryData<ushort> Scales() => [0x3C00, 0xBE00, 0x0001, 0x7BFF, 0x8000, 0x7C00, 0x7E00];

    /// <summary><paramref name="blocks"/> blocks of <paramref name="blockBytes"/> bytes, scale first, the payload bytes counting 0, 1, 2, ….</summary>
    private static byte[] Blocks(int blocks, int blockBytes, ushort scale)
    {
        var b = new byte[blocks * blockBytes];
        int v = 0;
        for (int i = 0; i < blocks; i++)
        {
            b[i * blockBytes] = (byte)scale;
            b[i * blockBytes + 1] = (byte)(scale >> 8);
            for (int j = 2; j < blockBytes; j++) b[i * blockBytes + j] = (byte)v++;
        }
        return b;
    }

    [Theory, MemberData(nameof(Scales))]
    public void Q8_0VectorFormEqualsTheScalarFormBitForBit(ushort scale)
    {
        var src = Blocks(8, Q8_0.BlockBytes, scale); // all 256 byte values
        float[] vector = new float[256], scalar = new float[256];
        Q8_0.Dequantize(src, vector);
        Q8_0.Dequantize(src, scalar, vector: false);
        Assert.Equal(scalar.Select(BitConverter.SingleToInt32Bits), vector.Select(BitConverter.SingleToInt32Bits));
    }

    [Theory, MemberData(nameof(Scales))]
    public void Q4_0VectorFormEqualsTheScalarFormBitForBit(ushort scale)
    {
        var src = Blocks(16, Q4_0.BlockBytes, scale); // all 256 byte values, so every nibble in both halves
        float[] vector = new float[512], scalar = new float[512];
        Q4_0.Dequantize(src, vector);
        Q4_0.Dequantize(src, scalar, vector: false);
        Assert.Equal(scalar.Select(BitConverter.SingleToInt32Bits), vector.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Q8_0WeightsAreTheSignedBytesTimesTheScale()
    {
        var src = Blocks(8, Q8_0.BlockBytes, 0xBE00); // scale −1.5
        var y = new float[256];
        Q8_0.Dequantize(src, y);
        Assert.Equal(0f, y[0]);
        Assert.Equal(-1.5f * 127, y[127]);
        Assert.Equal(-1.5f * -128, y[128]);
        Assert.Equal(1.5f, y[255]);
    }

    [Fact]
    public void Q4_0WeightsAreTheNibblesLessEightTimesTheScaleLowNibblesFirst()
    {
        var src = Blocks(1, Q4_0.BlockBytes, 0x3C00); // bytes 0x00..0x0F
        var y = new float[32];
        Q4_0.Dequantize(src, y);
        Assert.Equal(Enumerable.Range(0, 16).Select(j => j - 8f), y[..16]);   // low nibbles 0..15
        Assert.Equal(Enumerable.Repeat(-8f, 16), y[16..]);                   // high nibbles all 0
    }

    [Fact]
    public void ASourceShorterThanItsBlocksIsRefused()
    {
        Assert.Throws<ArgumentException>(() => Q8_0.Dequantize(new byte[Q8_0.BlockBytes * 2 - 1], new float[64]));
        Assert.Throws<ArgumentException>(() => Q4_0.Dequantize(new byte[Q4_0.BlockBytes * 2 - 1], new float[64]));
    }
}
