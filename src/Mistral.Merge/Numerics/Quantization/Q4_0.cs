using System.Runtime.Intrinsics;

namespace Mistral.Merge.Numerics.Quantization;

/// <summary>
/// ggml's Q4_0 block: 32 weights as one fp16 scale <c>d</c> then 16 bytes <c>qs</c> (18 bytes); byte <c>j</c> holds
/// weight <c>j</c> in its low nibble and weight <c>j + 16</c> in its high nibble, a weight being <c>(q − 8)·d</c>.
/// Quantization is ggml-quants.c's <c>quantize_row_q4_0_ref</c> line for line: <c>max</c> = the value of largest
/// magnitude (the first such), <c>d = max / −8</c>, <c>id = d ? 1/d : 0</c>, <c>q = min(15, (int8)(x·id + 8.5f))</c>
/// (the cast truncates toward zero), the scale stored as fp16 (round to nearest even).
/// </summary>
public static class Q4_0
{
    public const int BlockSize = 32;
    public const int BlockBytes = 2 + BlockSize / 2;

    public static long ByteCount(long count) => count / BlockSize * BlockBytes;

    public static void Quantize(ReadOnlySpan<float> x, Span<byte> dst)
    {
        if (x.Length % BlockSize != 0) throw new ArgumentException($"Q4_0 needs a multiple of {BlockSize} values, got {x.Length}", nameof(x));
        int nb = x.Length / BlockSize;
        for (int i = 0; i < nb; i++)
        {
            var b = x.Slice(i * BlockSize, BlockSize);
            var o = dst.Slice(i * BlockBytes, BlockBytes);
            float amax = 0f, max = 0f;
            for (int j = 0; j < BlockSize; j++)
            {
                float v = b[j];
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            }
            float d = max / -8;
            float id = d != 0f ? 1.0f / d : 0.0f;
            Fp16.Write(o, d);
            for (int j = 0; j < BlockSize / 2; j++)
            {
                float x0 = b[j] * id, x1 = b[BlockSize / 2 + j] * id;
                byte xi0 = (byte)Math.Min(15, TruncateToInt8(x0 + 8.5f));
                byte xi1 = (byte)Math.Min(15, TruncateToInt8(x1 + 8.5f));
                o[2 + j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    /// <summary>
    /// C's <c>(int8_t)f</c> for the values that can occur here (x·id + 8.5 lies in [0.5, 16.5] for finite input):
    /// truncation toward zero. NaN input (a NaN weight) gives 0, as x86's cvttss2si-then-narrow gives 0x80000000 → 0.
    /// </summary>
    private static int TruncateToInt8(float f) => float.IsNaN(f) ? 0 : (sbyte)(int)MathF.Truncate(f);

    /// <summary>
    /// The weights a block row stands for (ggml's <c>dequantize_row_q4_0</c>): <c>(q − 8)·d</c> in float32; the
    /// vector form gives the scalar form's bits (<paramref name="vector"/> false: the reference the tests compare with).
    /// </summary>
    public static unsafe void Dequantize(ReadOnlySpan<byte> src, Span<float> y, bool vector = true)
    {
        int nb = y.Length / BlockSize;
        if (src.Length < (long)nb * BlockBytes) throw new ArgumentException("Q4_0 source too short", nameof(src));
        fixed (byte* ps = src) fixed (float* py = y)
            for (int i = 0; i < nb; i++)
            {
                byte* o = ps + i * BlockBytes;
                float* dst = py + i * BlockSize;
                float d = Fp16.Read(new ReadOnlySpan<byte>(o, 2));
                if (vector && Vector128.IsHardwareAccelerated)
                {
                    // low nibbles are weights 0..15, high nibbles 16..31; q − 8 wraps into the sbyte range −8..7
                    var q = Vector128.Load(o + 2);
                    var eight = Vector128.Create((byte)8);
                    var lo = ((q & Vector128.Create((byte)0x0F)) - eight).AsSByte();
                    var hi = (Vector128.ShiftRightLogical(q, 4) - eight).AsSByte();
                    if (Vector256.IsHardwareAccelerated) Q8_0.Widen(Vector256.Create(lo, hi), d, dst);
                    else { Q8_0.Widen(lo, d, dst); Q8_0.Widen(hi, d, dst + 16); }
                }
                else
                    for (int j = 0; j < BlockSize / 2; j++)
                    {
                        dst[j] = ((o[2 + j] & 0x0F) - 8) * d;
                        dst[j + BlockSize / 2] = ((o[2 + j] >> 4) - 8) * d;
                    }
            }
    }
}
