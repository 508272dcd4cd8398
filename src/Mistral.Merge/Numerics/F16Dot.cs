using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Numerics;

/// <summary>
/// Decode dot products of fp16 weight rows with a float32 x, the halves widened exactly in registers (.NET exposes no
/// F16C <c>vcvtph2ps</c>), so an fp16 checkpoint streams at the memory's rate as bf16 does instead of through a
/// widened copy of each row. Widening, per lane: h = |half| bits; a normal half is <c>(h &lt;&lt; 13) + (112 &lt;&lt; 23)</c>
/// (the exponent rebiased); a subnormal or zero one is <c>((h &lt;&lt; 13) + (113 &lt;&lt; 23)) − 2⁻¹⁴</c> as floats, exact
/// by Sterbenz and never a float32 subnormal (an x86 core may take a slow assist on those); then the sign. Infinities
/// and NaNs are not widened here: the dots report a row that has one (the running maximum of h), and the caller
/// computes that row the exact slow way. Four FMA chains per row over consecutive vectors, float32 accumulation.
/// </summary>
internal static unsafe class F16Dot
{
    /// <summary>|h| at or above this is an infinity or a NaN.</summary>
    private const int Special = 0x7C00;

    /// <summary>
    /// Rows <paramref name="r0"/> and <paramref name="r1"/> · x at 512 bits, sharing each load of x, prefetching both
    /// rows <paramref name="lead"/> bytes ahead (two sequential streams, as <see cref="Gemv.Dot2Bf16Split"/>). Returns
    /// which rows hold an infinity or a NaN (bit 0: r0, bit 1: r1; their outputs are then meaningless), so each row's
    /// result never depends on the row it was paired with.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static int Dot2x512(ushort* r0, ushort* r1, int K, float* x, int lead, float* y0, float* y1)
    {
        Vector512<float> a0 = default, b0 = default, c0 = default, d0 = default;
        Vector512<float> a1 = default, b1 = default, c1 = default, d1 = default;
        Vector512<int> top0 = default, top1 = default;
        byte* ahead0 = (byte*)r0 + lead, ahead1 = (byte*)r1 + lead;
        int k = 0;
        for (; k + 64 <= K; k += 64, ahead0 += 128, ahead1 += 128)
        {
            Sse.Prefetch0(ahead0); Sse.Prefetch0(ahead0 + 64);
            Sse.Prefetch0(ahead1); Sse.Prefetch0(ahead1 + 64);
            var x0 = Vector512.Load(x + k);
            var x1 = Vector512.Load(x + k + 16);
            var x2 = Vector512.Load(x + k + 32);
            var x3 = Vector512.Load(x + k + 48);
            a0 = Vector512.FusedMultiplyAdd(Widen512(r0 + k, ref top0), x0, a0);
            b0 = Vector512.FusedMultiplyAdd(Widen512(r0 + k + 16, ref top0), x1, b0);
            c0 = Vector512.FusedMultiplyAdd(Widen512(r0 + k + 32, ref top0), x2, c0);
            d0 = Vector512.FusedMultiplyAdd(Widen512(r0 + k + 48, ref top0), x3, d0);
            a1 = Vector512.FusedMultiplyAdd(Widen512(r1 + k, ref top1), x0, a1);
            b1 = Vector512.FusedMultiplyAdd(Widen512(r1 + k + 16, ref top1), x1, b1);
            c1 = Vector512.FusedMultiplyAdd(Widen512(r1 + k + 32, ref top1), x2, c1);
            d1 = Vector512.FusedMultiplyAdd(Widen512(r1 + k + 48, ref top1), x3, d1);
        }
        for (; k + 16 <= K; k += 16)
        {
            var xv = Vector512.Load(x + k);
            a0 = Vector512.FusedMultiplyAdd(Widen512(r0 + k, ref top0), xv, a0);
            a1 = Vector512.FusedMultiplyAdd(Widen512(r1 + k, ref top1), xv, a1);
        }
        *y0 = Tail(r0, k, K, x, Vector512.Sum((a0 + c0) + (b0 + d0)));
        *y1 = Tail(r1, k, K, x, Vector512.Sum((a1 + c1) + (b1 + d1)));
        return (Vector512.GreaterThanOrEqualAny(top0, Vector512.Create(Special)) ? 1 : 0)
            | (Vector512.GreaterThanOrEqualAny(top1, Vector512.Create(Special)) ? 2 : 0);
    }

    /// <summary>One row · x at 256 bits (AVX2: its sixteen registers hold one row's chains and constants, not two rows'). False when the row holds an infinity or a NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    public static bool Dot1x256(ushort* r, int K, float* x, int lead, float* y)
    {
        Vector256<float> a = default, b = default, c = default, d = default;
        Vector256<int> top = default;
        byte* ahead = (byte*)r + lead;
        int k = 0;
        for (; k + 32 <= K; k += 32, ahead += 64)
        {
            Sse.Prefetch0(ahead);
            a = Vector256.FusedMultiplyAdd(Widen256(r + k, ref top), Vector256.Load(x + k), a);
            b = Vector256.FusedMultiplyAdd(Widen256(r + k + 8, ref top), Vector256.Load(x + k + 8), b);
            c = Vector256.FusedMultiplyAdd(Widen256(r + k + 16, ref top), Vector256.Load(x + k + 16), c);
            d = Vector256.FusedMultiplyAdd(Widen256(r + k + 24, ref top), Vector256.Load(x + k + 24), d);
        }
        for (; k + 8 <= K; k += 8) a = Vector256.FusedMultiplyAdd(Widen256(r + k, ref top), Vector256.Load(x + k), a);
        if (Vector256.GreaterThanOrEqualAny(top, Vector256.Create(Special))) return false;
        *y = Tail(r, k, K, x, Vector256.Sum((a + c) + (b + d)));
        return true;
    }

    /// <summary>16 halves → float32 (inf/NaN excepted, see the class); <paramref name="top"/> keeps the largest |h| seen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen512(ushort* p, ref Vector512<int> top)
    {
        var v = Avx512F.ConvertToVector512Int32(Vector256.Load((short*)p)); // sign-extended: bit 31 is the sign
        var h = v & Vector512.Create(0x7FFF);
        top = Vector512.Max(top, h);
        var t = h << 13;
        var normal = t + Vector512.Create(112 << 23);
        var small = ((t + Vector512.Create(113 << 23)).AsSingle() - Vector512.Create(1f / 16384)).AsInt32();
        var f = Vector512.ConditionalSelect(Vector512.LessThan(h, Vector512.Create(0x0400)), small, normal);
        return (f | (v & Vector512.Create(int.MinValue))).AsSingle();
    }

    /// <summary><see cref="Widen512"/> for 8 halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen256(ushort* p, ref Vector256<int> top)
    {
        var v = Avx2.ConvertToVector256Int32((short*)p);
        var h = v & Vector256.Create(0x7FFF);
        top = Vector256.Max(top, h);
        var t = h << 13;
        var normal = t + Vector256.Create(112 << 23);
        var small = ((t + Vector256.Create(113 << 23)).AsSingle() - Vector256.Create(1f / 16384)).AsInt32();
        var f = Vector256.ConditionalSelect(Vector256.LessThan(h, Vector256.Create(0x0400)), small, normal);
        return (f | (v & Vector256.Create(int.MinValue))).AsSingle();
    }

    /// <summary>The elements past the last full vector, added one by one to the chains' sum.</summary>
    private static float Tail(ushort* r, int k, int K, float* x, float s)
    {
        for (; k < K; k++) s += Fp16.FromBits(r[k]) * x[k];
        return s;
    }
}
