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
/// The terms of <see cref="Simd.SumOfScaledRows"/>: term t is <c>Coefficient(t) · Row(t)[0..len)</c> (attention: a
/// query element times a key row, a probability times a value row).
/// </summary>
public unsafe interface IScaledRows
{
    float Coefficient(int t);
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
    /// dst[c] = Σ_t Coefficient(t) · Row(t)[c] for c &lt; <paramref name="len"/>, t &lt; <paramref name="terms"/>: a
    /// broadcast coefficient times a row slice, FMA-accumulated in registers. Each dst[c] is one FMA chain over t in
    /// increasing order, the same at every width (no cross-lane step), so every width gives the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void SumOfScaledRows<TRows>(TRows rows, int terms, float* dst, int len, SimdWidth width = 0)
        where TRows : struct, IScaledRows
    {
        if (width == 0) width = Widest;
        int c = 0;
        // Several independent accumulators per pass over the terms: one chain alone waits out the FMA latency.
        if (width >= SimdWidth.V512)
        {
            for (; c + 64 <= len; c += 64)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int t = 0; t < terms; t++)
                {
                    var s = Vector512.Create(rows.Coefficient(t));
                    float* r = rows.Row(t) + c;
                    a0 = Vector512.FusedMultiplyAdd(s, Vector512.Load(r), a0);
                    a1 = Vector512.FusedMultiplyAdd(s, Vector512.Load(r + 16), a1);
                    a2 = Vector512.FusedMultiplyAdd(s, Vector512.Load(r + 32), a2);
                    a3 = Vector512.FusedMultiplyAdd(s, Vector512.Load(r + 48), a3);
                }
                a0.Store(dst + c); a1.Store(dst + c + 16); a2.Store(dst + c + 32); a3.Store(dst + c + 48);
            }
            for (; c + 32 <= len; c += 32)
            {
                Vector512<float> a = default, b = default;
                for (int t = 0; t < terms; t++)
                {
                    var s = Vector512.Create(rows.Coefficient(t));
                    float* r = rows.Row(t) + c;
                    a = Vector512.FusedMultiplyAdd(s, Vector512.Load(r), a);
                    b = Vector512.FusedMultiplyAdd(s, Vector512.Load(r + 16), b);
                }
                a.Store(dst + c); b.Store(dst + c + 16);
            }
            for (; c + 16 <= len; c += 16)
            {
                Vector512<float> a = default;
                for (int t = 0; t < terms; t++) a = Vector512.FusedMultiplyAdd(Vector512.Create(rows.Coefficient(t)), Vector512.Load(rows.Row(t) + c), a);
                a.Store(dst + c);
            }
        }
        if (width >= SimdWidth.V256)
        {
            for (; c + 64 <= len; c += 64)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int t = 0; t < terms; t++)
                {
                    var s = Vector256.Create(rows.Coefficient(t));
                    float* r = rows.Row(t) + c;
                    a0 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r), a0);
                    a1 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 8), a1);
                    a2 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 16), a2);
                    a3 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 24), a3);
                    a4 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 32), a4);
                    a5 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 40), a5);
                    a6 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 48), a6);
                    a7 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 56), a7);
                }
                a0.Store(dst + c); a1.Store(dst + c + 8); a2.Store(dst + c + 16); a3.Store(dst + c + 24);
                a4.Store(dst + c + 32); a5.Store(dst + c + 40); a6.Store(dst + c + 48); a7.Store(dst + c + 56);
            }
            for (; c + 32 <= len; c += 32)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int t = 0; t < terms; t++)
                {
                    var s = Vector256.Create(rows.Coefficient(t));
                    float* r = rows.Row(t) + c;
                    a0 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r), a0);
                    a1 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 8), a1);
                    a2 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 16), a2);
                    a3 = Vector256.FusedMultiplyAdd(s, Vector256.Load(r + 24), a3);
                }
                a0.Store(dst + c); a1.Store(dst + c + 8); a2.Store(dst + c + 16); a3.Store(dst + c + 24);
            }
            for (; c + 8 <= len; c += 8)
            {
                Vector256<float> a = default;
                for (int t = 0; t < terms; t++) a = Vector256.FusedMultiplyAdd(Vector256.Create(rows.Coefficient(t)), Vector256.Load(rows.Row(t) + c), a);
                a.Store(dst + c);
            }
        }
        if (width >= SimdWidth.V128)
            for (; c + 4 <= len; c += 4)
            {
                Vector128<float> a = default;
                for (int t = 0; t < terms; t++) a = Vector128.FusedMultiplyAdd(Vector128.Create(rows.Coefficient(t)), Vector128.Load(rows.Row(t) + c), a);
                a.Store(dst + c);
            }
        for (; c < len; c++)
        {
            float s = 0;
            for (int t = 0; t < terms; t++) s = MathF.FusedMultiplyAdd(rows.Coefficient(t), rows.Row(t)[c], s);
            dst[c] = s;
        }
    }
}
