using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Core;

/// <summary>A vector width for the element-wise drivers of <see cref="Simd"/> (tests force each one).</summary>
public enum SimdWidth
{
    Scalar = 1,
    V128 = 4,
    V256 = 8,
    V512 = 16,
}

/// <summary>An element-wise float32 operation on two inputs, one body per vector width (TensorPrimitives' operator style).</summary>
public interface IBinaryOp
{
    float Invoke(float x, float y);
    Vector128<float> Invoke(Vector128<float> x, Vector128<float> y);
    Vector256<float> Invoke(Vector256<float> x, Vector256<float> y);
    Vector512<float> Invoke(Vector512<float> x, Vector512<float> y);
}

/// <summary>An element-wise operation on 32-bit lanes (bit patterns): widening, narrowing and rounding steps of the dtype conversions.</summary>
public interface IUInt32Op
{
    uint Invoke(uint x);
    Vector128<uint> Invoke(Vector128<uint> x);
    Vector256<uint> Invoke(Vector256<uint> x);
    Vector512<uint> Invoke(Vector512<uint> x);
}

/// <summary>A float32 value per 64-bit counter (seeded generators): the vector forms map two counter vectors to one float vector.</summary>
public interface ICounterOp
{
    float Invoke(ulong counter);
    Vector128<float> Invoke(Vector128<ulong> lo, Vector128<ulong> hi);
    Vector256<float> Invoke(Vector256<ulong> lo, Vector256<ulong> hi);
    Vector512<float> Invoke(Vector512<ulong> lo, Vector512<ulong> hi);
}

/// <summary>
/// The rows of <see cref="Simd.SumOfScaledRows"/>: term t scales <c>Row(t)[0..len)</c> (attention: a key row
/// scaled by a query element, a value row by a probability).
/// </summary>
public unsafe interface IScaledRows
{
    float* Row(int t);
}

/// <summary>
/// The drivers of the element-wise kernels: each operation is written once as an operator struct
/// (<see cref="IBinaryOp"/>, <see cref="IUInt32Op"/>) and run here at the widest vector width the CPU accelerates
/// (Vector512, Vector256, Vector128 — ARM64's NEON included), the remainder at the narrower widths and then scalar.
/// Element-wise operations have no cross-lane step, so every width gives the same bits; the <c>width</c>
/// parameters exist for the tests that check exactly that.
/// </summary>
public static class Simd
{
    /// <summary>The widest accelerated width.</summary>
    public static SimdWidth Widest { get; } =
        Vector512.IsHardwareAccelerated ? SimdWidth.V512
        : Vector256.IsHardwareAccelerated ? SimdWidth.V256
        : Vector128.IsHardwareAccelerated ? SimdWidth.V128
        : SimdWidth.Scalar;

    /// <summary>dst[i] = op(x[i], y[i]); <paramref name="dst"/> may be <paramref name="x"/> or <paramref name="y"/> (same start).</summary>
    public static void Map<TOp>(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst, TOp op, SimdWidth width = 0)
        where TOp : struct, IBinaryOp
    {
        int n = dst.Length;
        if (x.Length < n || y.Length < n) throw new ArgumentException("an input is shorter than the destination");
        if (width == 0) width = Widest;
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float ry = ref MemoryMarshal.GetReference(y);
        ref float rd = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (width >= SimdWidth.V512)
            for (; i <= n - 16; i += 16)
                op.Invoke(Vector512.LoadUnsafe(ref rx, (nuint)i), Vector512.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref rd, (nuint)i);
        if (width >= SimdWidth.V256)
            for (; i <= n - 8; i += 8)
                op.Invoke(Vector256.LoadUnsafe(ref rx, (nuint)i), Vector256.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref rd, (nuint)i);
        if (width >= SimdWidth.V128)
            for (; i <= n - 4; i += 4)
                op.Invoke(Vector128.LoadUnsafe(ref rx, (nuint)i), Vector128.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref rd, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref rd, i) = op.Invoke(Unsafe.Add(ref rx, i), Unsafe.Add(ref ry, i));
    }

    /// <summary>dst[i] = op(first + i·step) with wrapping 64-bit counters (a counter-based generator: any chunk in any order).</summary>
    public static void Generate<TOp>(ulong first, ulong step, Span<float> dst, TOp op, SimdWidth width = 0)
        where TOp : struct, ICounterOp
    {
        if (width == 0) width = Widest;
        int n = dst.Length, i = 0;
        ref float d = ref MemoryMarshal.GetReference(dst);
        if (width >= SimdWidth.V512)
        {
            var lanes = Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7) * step;
            for (; i <= n - 16; i += 16)
                op.Invoke(Vector512.Create(first + (ulong)i * step) + lanes, Vector512.Create(first + (ulong)(i + 8) * step) + lanes).StoreUnsafe(ref d, (nuint)i);
        }
        if (width >= SimdWidth.V256)
        {
            var lanes = Vector256.Create(0UL, 1, 2, 3) * step;
            for (; i <= n - 8; i += 8)
                op.Invoke(Vector256.Create(first + (ulong)i * step) + lanes, Vector256.Create(first + (ulong)(i + 4) * step) + lanes).StoreUnsafe(ref d, (nuint)i);
        }
        if (width >= SimdWidth.V128)
        {
            var lanes = Vector128.Create(0UL, 1) * step;
            for (; i <= n - 4; i += 4)
                op.Invoke(Vector128.Create(first + (ulong)i * step) + lanes, Vector128.Create(first + (ulong)(i + 2) * step) + lanes).StoreUnsafe(ref d, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = op.Invoke(first + (ulong)i * step);
    }

    /// <summary>dst[i] = op((uint)src[i]): 16-bit values widened to 32-bit lanes, then the operation (bf16 → float32 bits).</summary>
    public static void Widen<TOp>(ReadOnlySpan<ushort> src, Span<uint> dst, TOp op, SimdWidth width = 0)
        where TOp : struct, IUInt32Op
    {
        int n = src.Length;
        if (dst.Length < n) throw new ArgumentException("destination too short");
        if (width == 0) width = Widest;
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref uint d = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (width >= SimdWidth.V512)
            for (; i <= n - 32; i += 32)
            {
                var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref s, (nuint)i));
                op.Invoke(lo).StoreUnsafe(ref d, (nuint)i);
                op.Invoke(hi).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        if (width >= SimdWidth.V256)
            for (; i <= n - 16; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref s, (nuint)i));
                op.Invoke(lo).StoreUnsafe(ref d, (nuint)i);
                op.Invoke(hi).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        if (width >= SimdWidth.V128)
            for (; i <= n - 8; i += 8)
            {
                var (lo, hi) = Vector128.Widen(Vector128.LoadUnsafe(ref s, (nuint)i));
                op.Invoke(lo).StoreUnsafe(ref d, (nuint)i);
                op.Invoke(hi).StoreUnsafe(ref d, (nuint)(i + 4));
            }
        for (; i < n; i++) Unsafe.Add(ref d, i) = op.Invoke(Unsafe.Add(ref s, i));
    }

    /// <summary>dst[i] = (ushort)op(src[i]): the operation on 32-bit lanes, then narrowed to 16 bits (float32 bits → bf16).</summary>
    public static void Narrow<TOp>(ReadOnlySpan<uint> src, Span<ushort> dst, TOp op, SimdWidth width = 0)
        where TOp : struct, IUInt32Op
    {
        int n = src.Length;
        if (dst.Length < n) throw new ArgumentException("destination too short");
        if (width == 0) width = Widest;
        ref uint s = ref MemoryMarshal.GetReference(src);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (width >= SimdWidth.V512)
            for (; i <= n - 32; i += 32)
                Vector512.Narrow(op.Invoke(Vector512.LoadUnsafe(ref s, (nuint)i)), op.Invoke(Vector512.LoadUnsafe(ref s, (nuint)(i + 16)))).StoreUnsafe(ref d, (nuint)i);
        if (width >= SimdWidth.V256)
            for (; i <= n - 16; i += 16)
                Vector256.Narrow(op.Invoke(Vector256.LoadUnsafe(ref s, (nuint)i)), op.Invoke(Vector256.LoadUnsafe(ref s, (nuint)(i + 8)))).StoreUnsafe(ref d, (nuint)i);
        if (width >= SimdWidth.V128)
            for (; i <= n - 8; i += 8)
                Vector128.Narrow(op.Invoke(Vector128.LoadUnsafe(ref s, (nuint)i)), op.Invoke(Vector128.LoadUnsafe(ref s, (nuint)(i + 4)))).StoreUnsafe(ref d, (nuint)i);
        for (; i < n; i++) Unsafe.Add(ref d, i) = (ushort)op.Invoke(Unsafe.Add(ref s, i));
    }

    /// <summary>
    /// Four sums over the same rows: <c>dst[q][c] = Σ_t coef[q][t] · Row(t)[c]</c> for q &lt; 4, c &lt; <paramref name="len"/>,
    /// t &lt; <paramref name="terms"/> (attention: the query heads that share a KV head, so each key and value row is read
    /// once for all four). Every dst[q][c] is one FMA chain over t in increasing order from zero, the same at every
    /// width (no cross-lane step), so every width gives the same bits. Sets may repeat (fewer than four heads): a
    /// repeated set computes and stores the same bits twice.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void SumOfScaledRows<TRows>(TRows rows, float** coef, int terms, float** dst, int len, SimdWidth width = 0)
        where TRows : struct, IScaledRows
    {
        if (width == 0) width = Widest;
        float* k0 = coef[0], k1 = coef[1], k2 = coef[2], k3 = coef[3];
        float* d0 = dst[0], d1 = dst[1], d2 = dst[2], d3 = dst[3];
        int c = 0;
        // 4 sets × 2 vectors = 8 independent chains per pass (covers the FMA latency); AVX-512 machines run it at 256 bits.
        if (width >= SimdWidth.V256)
            for (; c + 16 <= len; c += 16)
            {
                Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
                for (int t = 0; t < terms; t++)
                {
                    float* r = rows.Row(t) + c;
                    var x = Vector256.Load(r);
                    var y = Vector256.Load(r + 8);
                    var s = Vector256.Create(k0[t]); a0 = Vector256.FusedMultiplyAdd(s, x, a0); b0 = Vector256.FusedMultiplyAdd(s, y, b0);
                    s = Vector256.Create(k1[t]); a1 = Vector256.FusedMultiplyAdd(s, x, a1); b1 = Vector256.FusedMultiplyAdd(s, y, b1);
                    s = Vector256.Create(k2[t]); a2 = Vector256.FusedMultiplyAdd(s, x, a2); b2 = Vector256.FusedMultiplyAdd(s, y, b2);
                    s = Vector256.Create(k3[t]); a3 = Vector256.FusedMultiplyAdd(s, x, a3); b3 = Vector256.FusedMultiplyAdd(s, y, b3);
                }
                a0.Store(d0 + c); b0.Store(d0 + c + 8); a1.Store(d1 + c); b1.Store(d1 + c + 8);
                a2.Store(d2 + c); b2.Store(d2 + c + 8); a3.Store(d3 + c); b3.Store(d3 + c + 8);
            }
        if (width >= SimdWidth.V128)
            for (; c + 8 <= len; c += 8)
            {
                Vector128<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default, a3 = default, b3 = default;
                for (int t = 0; t < terms; t++)
                {
                    float* r = rows.Row(t) + c;
                    var x = Vector128.Load(r);
                    var y = Vector128.Load(r + 4);
                    var s = Vector128.Create(k0[t]); a0 = Vector128.FusedMultiplyAdd(s, x, a0); b0 = Vector128.FusedMultiplyAdd(s, y, b0);
                    s = Vector128.Create(k1[t]); a1 = Vector128.FusedMultiplyAdd(s, x, a1); b1 = Vector128.FusedMultiplyAdd(s, y, b1);
                    s = Vector128.Create(k2[t]); a2 = Vector128.FusedMultiplyAdd(s, x, a2); b2 = Vector128.FusedMultiplyAdd(s, y, b2);
                    s = Vector128.Create(k3[t]); a3 = Vector128.FusedMultiplyAdd(s, x, a3); b3 = Vector128.FusedMultiplyAdd(s, y, b3);
                }
                a0.Store(d0 + c); b0.Store(d0 + c + 4); a1.Store(d1 + c); b1.Store(d1 + c + 4);
                a2.Store(d2 + c); b2.Store(d2 + c + 4); a3.Store(d3 + c); b3.Store(d3 + c + 4);
            }
        for (; c < len; c++)
        {
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
            for (int t = 0; t < terms; t++)
            {
                float v = rows.Row(t)[c];
                s0 = MathF.FusedMultiplyAdd(k0[t], v, s0); s1 = MathF.FusedMultiplyAdd(k1[t], v, s1);
                s2 = MathF.FusedMultiplyAdd(k2[t], v, s2); s3 = MathF.FusedMultiplyAdd(k3[t], v, s3);
            }
            d0[c] = s0; d1[c] = s1; d2[c] = s2; d3[c] = s3;
        }
    }
}
