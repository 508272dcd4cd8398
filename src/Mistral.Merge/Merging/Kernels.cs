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
    // The reductions below add in one fixed order at every vector width: 8-element groups into four float64 lanes
    // (lane l of group g gets x[8g+l]-term + x[8g+4+l]-term, which is what widening a Vector256<float> gives), the
    // four lanes summed by Vector256.Sum, then the tail in order. Vector256 (and wider) CPUs run it as two halves of
    // a Vector256<double>, Vector128 CPUs (ARM64 NEON) as two Vector128<double> pairs, others lane by lane: the
    // same bits everywhere (L1Stream reproduces L1 piece by piece with the same order).

    /// <summary>Σa², Σb², Σab in float64, added to the accumulators.</summary>
    public static void Moments(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ref double aa, ref double bb, ref double ab) =>
        Moments(a, b, ref aa, ref bb, ref ab, Simd.Widest);

    internal static void Moments(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ref double aa, ref double bb, ref double ab, SimdWidth width)
    {
        if (a.Length != b.Length) throw new ArgumentException("length mismatch");
        int i = 0, groups = a.Length / 8 * 8;
        double saa = 0, sbb = 0, sab = 0;
        if (groups > 0)
        {
            ref float ra = ref MemoryMarshal.GetReference(a);
            ref float rb = ref MemoryMarshal.GetReference(b);
            Vector256<double> vaa, vbb, vab;
            if (width >= SimdWidth.V256)
            {
                vaa = vbb = vab = Vector256<double>.Zero;
                for (; i < groups; i += 8)
                {
                    var (a0, a1) = Vector256.Widen(Vector256.LoadUnsafe(ref ra, (nuint)i));
                    var (b0, b1) = Vector256.Widen(Vector256.LoadUnsafe(ref rb, (nuint)i));
                    vaa += a0 * a0 + a1 * a1;
                    vbb += b0 * b0 + b1 * b1;
                    vab += a0 * b0 + a1 * b1;
                }
            }
            else if (width == SimdWidth.V128)
            {
                Vector128<double> aaLo = default, aaHi = default, bbLo = default, bbHi = default, abLo = default, abHi = default;
                for (; i < groups; i += 8)
                {
                    var (a0l, a0h) = Vector128.Widen(Vector128.LoadUnsafe(ref ra, (nuint)i));
                    var (a1l, a1h) = Vector128.Widen(Vector128.LoadUnsafe(ref ra, (nuint)(i + 4)));
                    var (b0l, b0h) = Vector128.Widen(Vector128.LoadUnsafe(ref rb, (nuint)i));
                    var (b1l, b1h) = Vector128.Widen(Vector128.LoadUnsafe(ref rb, (nuint)(i + 4)));
                    aaLo += a0l * a0l + a1l * a1l; aaHi += a0h * a0h + a1h * a1h;
                    bbLo += b0l * b0l + b1l * b1l; bbHi += b0h * b0h + b1h * b1h;
                    abLo += a0l * b0l + a1l * b1l; abHi += a0h * b0h + a1h * b1h;
                }
                vaa = Vector256.Create(aaLo, aaHi); vbb = Vector256.Create(bbLo, bbHi); vab = Vector256.Create(abLo, abHi);
            }
            else
            {
                Span<double> laa = stackalloc double[4], lbb = stackalloc double[4], lab = stackalloc double[4];
                laa.Clear(); lbb.Clear(); lab.Clear();
                for (; i < groups; i += 8)
                    for (int l = 0; l < 4; l++)
                    {
                        double x0 = a[i + l], x1 = a[i + 4 + l], y0 = b[i + l], y1 = b[i + 4 + l];
                        laa[l] += x0 * x0 + x1 * x1;
                        lbb[l] += y0 * y0 + y1 * y1;
                        lab[l] += x0 * y0 + x1 * y1;
                    }
                vaa = Vector256.Create(laa[0], laa[1], laa[2], laa[3]);
                vbb = Vector256.Create(lbb[0], lbb[1], lbb[2], lbb[3]);
                vab = Vector256.Create(lab[0], lab[1], lab[2], lab[3]);
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
    public static double L1(ReadOnlySpan<float> a) => L1(a, Simd.Widest);

    internal static double L1(ReadOnlySpan<float> a, SimdWidth width)
    {
        int i = 0, groups = a.Length / 8 * 8;
        double s = 0;
        if (groups > 0)
        {
            ref float ra = ref MemoryMarshal.GetReference(a);
            Vector256<double> acc;
            if (width >= SimdWidth.V256)
            {
                acc = Vector256<double>.Zero;
                for (; i < groups; i += 8)
                {
                    var (a0, a1) = Vector256.Widen(Vector256.Abs(Vector256.LoadUnsafe(ref ra, (nuint)i)));
                    acc += a0 + a1;
                }
            }
            else if (width == SimdWidth.V128)
            {
                Vector128<double> lo = default, hi = default;
                for (; i < groups; i += 8)
                {
                    var (a0l, a0h) = Vector128.Widen(Vector128.Abs(Vector128.LoadUnsafe(ref ra, (nuint)i)));
                    var (a1l, a1h) = Vector128.Widen(Vector128.Abs(Vector128.LoadUnsafe(ref ra, (nuint)(i + 4))));
                    lo += a0l + a1l; hi += a0h + a1h;
                }
                acc = Vector256.Create(lo, hi);
            }
            else
            {
                Span<double> lanes = stackalloc double[4];
                lanes.Clear();
                for (; i < groups; i += 8)
                    for (int l = 0; l < 4; l++) lanes[l] += (double)Math.Abs(a[i + l]) + (double)Math.Abs(a[i + 4 + l]);
                acc = Vector256.Create(lanes[0], lanes[1], lanes[2], lanes[3]);
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
