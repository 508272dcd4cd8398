using System.Runtime.Intrinsics;

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

    /// <summary>
    /// Quantizes <paramref name="x"/> (length a multiple of 32) into <paramref name="dst"/> (<see cref="ByteCount"/> bytes).
    /// The vector form gives the same bytes as the scalar reference (<paramref name="vector"/> false): the maximum is
    /// order-free, <c>x·id</c> is the same product, and half-away-from-zero is <c>trunc(v) ± (|v − trunc(v)| ≥ ½)</c>,
    /// exact since <c>v − trunc(v)</c> is; a block with a non-finite value takes the scalar reference.
    /// </summary>
    public static unsafe void Quantize(ReadOnlySpan<float> x, Span<byte> dst, bool vector = true)
    {
        if (x.Length % BlockSize != 0) throw new ArgumentException($"Q8_0 needs a multiple of {BlockSize} values, got {x.Length}", nameof(x));
        int nb = x.Length / BlockSize;
        if (dst.Length < (long)nb * BlockBytes) throw new ArgumentException("Q8_0 destination too short", nameof(dst));
        fixed (float* px = x) fixed (byte* pd = dst)
            for (int i = 0; i < nb; i++)
            {
                float* b = px + i * BlockSize;
                byte* o = pd + i * BlockBytes;
                if (!vector || !Vector256.IsHardwareAccelerated || !QuantizeBlockVector(b, o)) QuantizeBlock(b, o);
            }
    }

    /// <summary>quantize_row_q8_0_ref for one block, line for line.</summary>
    private static unsafe void QuantizeBlock(float* b, byte* o)
    {
        float amax = 0f;
        for (int j = 0; j < BlockSize; j++) amax = MathF.Max(amax, MathF.Abs(b[j]));
        float d = amax / ((1 << 7) - 1);
        float id = d != 0f ? 1.0f / d : 0.0f;
        Fp16.Write(new Span<byte>(o, 2), d);
        for (int j = 0; j < BlockSize; j++)
            o[2 + j] = (byte)(sbyte)MathF.Round(b[j] * id, MidpointRounding.AwayFromZero);
    }

    /// <summary>One block at 256 bits; false (nothing written) when the block holds a non-finite value.</summary>
    private static unsafe bool QuantizeBlockVector(float* b, byte* o)
    {
        Vector256<float> x0 = Vector256.Load(b), x1 = Vector256.Load(b + 8), x2 = Vector256.Load(b + 16), x3 = Vector256.Load(b + 24);
        var m = Vector256.Max(Vector256.Max(Vector256.Abs(x0), Vector256.Abs(x1)), Vector256.Max(Vector256.Abs(x2), Vector256.Abs(x3)));
        var h = Vector128.Max(m.GetLower(), m.GetUpper());
        float amax = MathF.Max(MathF.Max(h[0], h[1]), MathF.Max(h[2], h[3]));
        if (!float.IsFinite(amax)) return false;
        float d = amax / ((1 << 7) - 1);
        float id = d != 0f ? 1.0f / d : 0.0f;
        Fp16.Write(new Span<byte>(o, 2), d);
        var s = Vector256.Create(id);
        Vector256.Narrow(Vector256.Narrow(RoundAway(x0 * s), RoundAway(x1 * s)), Vector256.Narrow(RoundAway(x2 * s), RoundAway(x3 * s)))
            .AsSByte().Store((sbyte*)(o + 2));
        return true;
    }

    /// <summary>Round half away from zero (C's roundf) of finite values below 2^31, to int32.</summary>
    private static Vector256<int> RoundAway(Vector256<float> v)
    {
        var t = Vector256.Truncate(v);
        var up = Vector256.GreaterThanOrEqual(Vector256.Abs(v - t), Vector256.Create(0.5f));
        var step = Vector256.ConditionalSelect(Vector256.LessThan(v, Vector256<float>.Zero), Vector256.Create(-1f), Vector256.Create(1f));
        return Vector256.ConvertToInt32(t + (step & up.AsSingle()));
    }

    /// <summary>
    /// The weights a block row stands for (ggml's <c>dequantize_row_q8_0</c>): <c>q·d</c> in float32, one product
    /// per weight, so the vector form (the GEMM's panel packing of q8_0 weights runs through here) gives the scalar
    /// form's bits (<paramref name="vector"/> false: the reference the tests compare with).
    /// </summary>
    public static unsafe void Dequantize(ReadOnlySpan<byte> src, Span<float> y, bool vector = true)
    {
        int nb = y.Length / BlockSize;
        if (src.Length < (long)nb * BlockBytes) throw new ArgumentException("Q8_0 source too short", nameof(src));
        fixed (byte* ps = src) fixed (float* py = y)
            for (int i = 0; i < nb; i++)
            {
                byte* o = ps + i * BlockBytes;
                float* dst = py + i * BlockSize;
                float d = Fp16.Read(new ReadOnlySpan<byte>(o, 2));
                if (vector && Vector256.IsHardwareAccelerated) Widen(Vector256.Load((sbyte*)(o + 2)), d, dst);
                else if (vector && Vector128.IsHardwareAccelerated)
                {
                    Widen(Vector128.Load((sbyte*)(o + 2)), d, dst);
                    Widen(Vector128.Load((sbyte*)(o + 18)), d, dst + 16);
                }
                else for (int j = 0; j < BlockSize; j++) dst[j] = (sbyte)o[2 + j] * d;
            }
    }

    /// <summary>16 signed bytes to <paramref name="dst"/>[0..16) as <c>q·d</c> (ARM64's form).</summary>
    internal static unsafe void Widen(Vector128<sbyte> q, float d, float* dst)
    {
        var s = Vector128.Create(d);
        var (lo, hi) = Vector128.Widen(q);
        var (i0, i1) = Vector128.Widen(lo);
        var (i2, i3) = Vector128.Widen(hi);
        (Vector128.ConvertToSingle(i0) * s).Store(dst);
        (Vector128.ConvertToSingle(i1) * s).Store(dst + 4);
        (Vector128.ConvertToSingle(i2) * s).Store(dst + 8);
        (Vector128.ConvertToSingle(i3) * s).Store(dst + 12);
    }

    /// <summary>32 signed bytes to <paramref name="dst"/>[0..32) as <c>q·d</c> (Q4_0's dequantization shares it).</summary>
    internal static unsafe void Widen(Vector256<sbyte> q, float d, float* dst)
    {
        var s = Vector256.Create(d);
        var (lo, hi) = Vector256.Widen(q);
        var (i0, i1) = Vector256.Widen(lo);
        var (i2, i3) = Vector256.Widen(hi);
        (Vector256.ConvertToSingle(i0) * s).Store(dst);
        (Vector256.ConvertToSingle(i1) * s).Store(dst + 8);
        (Vector256.ConvertToSingle(i2) * s).Store(dst + 16);
        (Vector256.ConvertToSingle(i3) * s).Store(dst + 24);
    }
}
