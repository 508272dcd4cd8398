using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Dot products of a float32 activation row with a row of ggml Q8_0 / Q4_0 blocks, computed on the blocks (no float
/// copy of the weights): per block <c>d · Σ qᵢ·xᵢ</c>, accumulated in float32. Q4_0's nibbles are
/// <c>qs[j] &amp; 15</c> → weight j and <c>qs[j] &gt;&gt; 4</c> → weight j+16, both minus 8 (ggml's dequantize_row_q4_0).
/// The Vector256 path keeps 8 lane sums per block and scales them by d; the scalar path is the reference the tests
/// compare it with (they differ only in summation order). x stays in float32 here; the decode GEMV runs Q8_0
/// weights through <see cref="Q8Dot"/> instead (x quantized to Q8_0 first, llama.cpp's ggml_vec_dot_q8_0_q8_0), Q4_0 ones through this.
/// </summary>
public static unsafe class QuantizedDot
{
    /// <summary>Row <paramref name="row"/> of <paramref name="w"/> (quantized) · x[0..Cols).</summary>
    public static float Row(in WeightMatrix w, int row, float* x) => Dot(w.Quant, w.At(row, 0), x, w.Cols, Vector256.IsHardwareAccelerated);

    /// <summary>One row of blocks · x; <paramref name="vector"/> false runs the scalar reference.</summary>
    public static float Dot(BlockQuant quant, byte* blocks, float* x, int cols, bool vector)
    {
        int nb = cols / Q8_0.BlockSize;
        if (quant == BlockQuant.Q8_0) return vector ? Q8Vector(blocks, x, nb) : Q8Scalar(blocks, x, nb);
        if (quant == BlockQuant.Q4_0) return vector ? Q4Vector(blocks, x, nb) : Q4Scalar(blocks, x, nb);
        throw new ArgumentException($"not a block quantization: {quant}", nameof(quant));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* b) => Fp16.FromBits(*(ushort*)b);

    private static float Q8Scalar(byte* b, float* x, int nb)
    {
        float sum = 0;
        for (int i = 0; i < nb; i++, b += Q8_0.BlockBytes, x += 32)
        {
            sbyte* q = (sbyte*)(b + 2);
            float s = 0;
            for (int j = 0; j < 32; j++) s += q[j] * x[j];
            sum += Scale(b) * s;
        }
        return sum;
    }

    private static float Q4Scalar(byte* b, float* x, int nb)
    {
        float sum = 0;
        for (int i = 0; i < nb; i++, b += Q4_0.BlockBytes, x += 32)
        {
            byte* q = b + 2;
            float s = 0;
            for (int j = 0; j < 16; j++) s += ((q[j] & 0x0F) - 8) * x[j] + ((q[j] >> 4) - 8) * x[j + 16];
            sum += Scale(b) * s;
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q8Vector(byte* b, float* x, int nb)
    {
        Vector256<float> acc = default;
        for (int i = 0; i < nb; i++, b += Q8_0.BlockBytes, x += 32)
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(b)), Block(Vector256.Load((sbyte*)(b + 2)), x), acc);
        return Vector256.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4Vector(byte* b, float* x, int nb)
    {
        Vector256<float> acc = default;
        var low = Vector128.Create((byte)0x0F);
        var eight = Vector256.Create((byte)8);
        for (int i = 0; i < nb; i++, b += Q4_0.BlockBytes, x += 32)
        {
            var packed = Vector128.Load(b + 2);
            // weights 0..15 are the low nibbles, 16..31 the high ones; minus 8 wraps into sbyte −8..7.
            var q = (Vector256.Create(packed & low, Vector128.ShiftRightLogical(packed, 4)) - eight).AsSByte();
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(Scale(b)), Block(q, x), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary>8 lane sums of the 32 products qⱼ·xⱼ.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Block(Vector256<sbyte> q, float* x)
    {
        var (s0, s1) = Vector256.Widen(q);
        var (i0, i1) = Vector256.Widen(s0);
        var (i2, i3) = Vector256.Widen(s1);
        var a = Vector256.ConvertToSingle(i0) * Vector256.Load(x);
        a = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(i1), Vector256.Load(x + 8), a);
        a = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(i2), Vector256.Load(x + 16), a);
        return Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(i3), Vector256.Load(x + 24), a);
    }
}
