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
    public static void Combine(ReadOnlySpan<float> a, float ca, ReadOnlySpan<float> b, float cb, Span<float> dst) =>
        Simd.Map(a, b, dst, new LinearCombination(ca, cb));

    /// <summary>dst += c·x in float32 (product rounded, then the sum).</summary>
    public static void AddScaled(Span<float> dst, ReadOnlySpan<float> x, float c) =>
        Simd.Map(dst, x, dst, new LinearCombination(1f, c)); // 1·dst is dst exactly

    /// <summary>dst = c·x in float32.</summary>
    public static void Scale(ReadOnlySpan<float> x, float c, Span<float> dst) => Simd.Map(x, x, dst, new Scaled(c));

    /// <summary>x -= y in float32.</summary>
    public static void SubtractInPlace(Span<float> x, ReadOnlySpan<float> y) => Simd.Map(x, y, x, default(Difference));

    /// <summary>ca·x + cb·y, each product rounded, then the sum (no FMA).</summary>
    internal readonly struct LinearCombination(float ca, float cb) : IBinaryOp
    {
        public float Invoke(float x, float y) => Add(Mul(ca, x), Mul(cb, y));
        public Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x * ca + y * cb;
        public Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x * ca + y * cb;
        public Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x * ca + y * cb;
    }

    /// <summary>c·x (the second input is ignored).</summary>
    internal readonly struct Scaled(float c) : IBinaryOp
    {
        public float Invoke(float x, float y) => Mul(c, x);
        public Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x * c;
        public Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x * c;
        public Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x * c;
    }

    /// <summary>x − y.</summary>
    internal readonly struct Difference : IBinaryOp
    {
        public float Invoke(float x, float y) => x - y;
        public Vector128<float> Invoke(Vector128<float> x, Vector128<float> y) => x - y;
        public Vector256<float> Invoke(Vector256<float> x, Vector256<float> y) => x - y;
        public Vector512<float> Invoke(Vector512<float> x, Vector512<float> y) => x - y;
    }

    // RyuJIT never contracts a product and a sum into an FMA, so these round twice like the reference.
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static float Mul(float a, float b) => a * b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] private static float Add(float a, float b) => a + b;
}
