using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Merging;

/// <summary>
/// SIMD kernels of the merge maths: reductions accumulate in float64, element-wise results are
/// float32 with the same operation order as the reference (a product, then a sum; no FMA), so a
/// float32 reference reproduces them bit for bit.
/// </summary>
public static class Kernels
{
    /// <summary>Σa², Σb², Σab in float64, added to the accumulators.</summary>
    public static void Moments(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ref double aa, ref double bb, ref double ab)
    {
        if (a.Length != b.Length) throw new ArgumentException("length mismatch");
        int i = 0;
        double saa = 0, sbb = 0, sab = 0;
        if (Vector256.IsHardwareAccelerated && a.Length >= 8)
        {
            var vaa = Vector256<double>.Zero; var vbb = Vector256<double>.Zero; var vab = Vector256<double>.Zero;
            ref float ra = ref MemoryMarshal.GetReference(a);
            ref float rb = ref MemoryMarshal.GetReference(b);
            for (; i <= a.Length - 8; i += 8)
            {
                var (a0, a1) = Vector256.Widen(Vector256.LoadUnsafe(ref ra, (nuint)i));
                var (b0, b1) = Vector256.Widen(Vector256.LoadUnsafe(ref rb, (nuint)i));
                vaa += a0 * a0 + a1 * a1;
                vbb += b0 * b0 + b1 * b1;
                vab += a0 * b0 + a1 * b1;
            }
            saa = Vector256.Sum(vaa); sbb = Vector256.Sum(vbb); sab = Vector256.Sum(vab);
        }
        for (; i < a.Length; i++)
        {
            double x = a[i], y = b[i];
            saa += x * x; sbb += y * y; sab += x * y;
        }
        aa += saa; bb += sbb; ab += sab;
    }

    /// <summary>Σab in float64.</summary>
    public static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double aa = 0, bb = 0, ab = 0;
        Moments(a, b, ref aa, ref bb, ref ab);
        return ab;
    }

    /// <summary>Σ|a| in float64.</summary>
    public static double L1(ReadOnlySpan<float> a)
    {
        int i = 0;
        double s = 0;
        if (Vector256.IsHardwareAccelerated && a.Length >= 8)
        {
            var acc = Vector256<double>.Zero;
            ref float ra = ref MemoryMarshal.GetReference(a);
            for (; i <= a.Length - 8; i += 8)
            {
                var (a0, a1) = Vector256.Widen(Vector256.Abs(Vector256.LoadUnsafe(ref ra, (nuint)i)));
                acc += a0 + a1;
            }
            s = Vector256.Sum(acc);
        }
        for (; i < a.Length; i++) s += Math.Abs(a[i]);
        return s;
    }

    /// <summary>out = ca·a + cb·b in float32 (each product rounded, then the sum).</summary>
    public static void Combine(ReadOnlySpan<float> a, float ca, ReadOnlySpan<float> b, float cb, Span<float> dst)
    {
        int i = 0;
        int n = dst.Length;
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(ca); var vb = Vector256.Create(cb);
            ref float ra = ref MemoryMarshal.GetReference(a);
            ref float rb = ref MemoryMarshal.GetReference(b);
            ref float rd = ref MemoryMarshal.GetReference(dst);
            for (; i <= n - 8; i += 8)
            {
                var x = Vector256.LoadUnsafe(ref ra, (nuint)i) * va;
                var y = Vector256.LoadUnsafe(ref rb, (nuint)i) * vb;
                (x + y).StoreUnsafe(ref rd, (nuint)i);
            }
        }
        for (; i < n; i++) dst[i] = Add(Mul(ca, a[i]), Mul(cb, b[i]));
    }

    /// <summary>dst += c·x in float32 (product rounded, then the sum).</summary>
    public static void AddScaled(Span<float> dst, ReadOnlySpan<float> x, float c)
    {
        int i = 0;
        int n = dst.Length;
        if (Vector256.IsHardwareAccelerated)
        {
            var vc = Vector256.Create(c);
            ref float rx = ref MemoryMarshal.GetReference(x);
            ref float rd = ref MemoryMarshal.GetReference(dst);
            for (; i <= n - 8; i += 8)
            {
                var p = Vector256.LoadUnsafe(ref rx, (nuint)i) * vc;
                (Vector256.LoadUnsafe(ref rd, (nuint)i) + p).StoreUnsafe(ref rd, (nuint)i);
            }
        }
        for (; i < n; i++) dst[i] = Add(dst[i], Mul(c, x[i]));
    }

    /// <summary>dst = c·x in float32.</summary>
    public static void Scale(ReadOnlySpan<float> x, float c, Span<float> dst)
    {
        int i = 0;
        int n = dst.Length;
        if (Vector256.IsHardwareAccelerated)
        {
            var vc = Vector256.Create(c);
            ref float rx = ref MemoryMarshal.GetReference(x);
            ref float rd = ref MemoryMarshal.GetReference(dst);
            for (; i <= n - 8; i += 8) (Vector256.LoadUnsafe(ref rx, (nuint)i) * vc).StoreUnsafe(ref rd, (nuint)i);
        }
        for (; i < n; i++) dst[i] = Mul(c, x[i]);
    }

    /// <summary>x -= y in float32.</summary>
    public static void SubtractInPlace(Span<float> x, ReadOnlySpan<float> y)
    {
        int i = 0;
        int n = x.Length;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float rx = ref MemoryMarshal.GetReference(x);
            ref float ry = ref MemoryMarshal.GetReference(y);
            for (; i <= n - 8; i += 8)
                (Vector256.LoadUnsafe(ref rx, (nuint)i) - Vector256.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref rx, (nuint)i);
        }
        for (; i < n; i++) x[i] = x[i] - y[i];
    }

    // RyuJIT never contracts a product and a sum into an FMA, so these round twice like the reference.
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static float Mul(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static float Add(float a, float b) => a + b;
}
