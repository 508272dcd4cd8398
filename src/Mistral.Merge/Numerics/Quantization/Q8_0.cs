namespace Mistral.Merge.Numerics.Quantization;

/// <summary>
/// ggml's Q8_0 block: 32 weights as one fp16 scale <c>d</c> then 32 int8 <c>qs</c> (34 bytes); a weight is
/// <c>qs[j]·d</c>. Quantization is ggml-quants.c's <c>quantize_row_q8_0_ref</c> line for line:
/// <c>d = amax/127</c>, <c>id = d ? 1/d : 0</c>, <c>qs[j] = roundf(x[j]·id)</c> (half away from zero), the scale
/// stored as fp16 (round to nearest even) while the float <c>d</c> is the one used for <c>id</c>.
/// </summary>
public static class Q8_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 2 + BlockSize;

    /// <summary>Bytes of <paramref name="count"/> weights (a multiple of <see cref="BlockSize"/>).</summary>
    public static long ByteCount(long count) => count / BlockSize * BlockBytes;

    /// <summary>Quantizes <paramref name="x"/> (length a multiple of 32) into <paramref name="dst"/> (<see cref="ByteCount"/> bytes).</summary>
    public static void Quantize(ReadOnlySpan<float> x, Span<byte> dst)
    {
        if (x.Length % BlockSize != 0) throw new ArgumentException($"Q8_0 needs a multiple of {BlockSize} values, got {x.Length}", nameof(x));
        int nb = x.Length / BlockSize;
        for (int i = 0; i < nb; i++)
        {
            var b = x.Slice(i * BlockSize, BlockSize);
            var o = dst.Slice(i * BlockBytes, BlockBytes);
            float amax = 0f;
            for (int j = 0; j < BlockSize; j++) amax = MathF.Max(amax, MathF.Abs(b[j]));
            float d = amax / ((1 << 7) - 1);
            float id = d != 0f ? 1.0f / d : 0.0f;
            Fp16.Write(o, d);
            for (int j = 0; j < BlockSize; j++)
                o[2 + j] = (byte)(sbyte)MathF.Round(b[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>The weights a block row stands for (ggml's <c>dequantize_row_q8_0</c>).</summary>
    public static void Dequantize(ReadOnlySpan<byte> src, Span<float> y)
    {
        int nb = y.Length / BlockSize;
        for (int i = 0; i < nb; i++)
        {
            var o = src.Slice(i * BlockBytes, BlockBytes);
            float d = Fp16.Read(o);
            for (int j = 0; j < BlockSize; j++) y[i * BlockSize + j] = (sbyte)o[2 + j] * d;
        }
    }
}
