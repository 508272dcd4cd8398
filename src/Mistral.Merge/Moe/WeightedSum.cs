using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Mistral.Merge.Moe;

/// <summary>
/// <c>dst = Σ_e w_e · src_e</c> element-wise, accumulated in float64 in expert order with separate
/// multiply and add (no FMA), rounded once to float32. Float64 accumulation makes an average of identical
/// inputs reproduce them exactly (Σ w_e = 1 up to 1e-16), and the fixed order makes results reproducible.
/// </summary>
public static class WeightedSum
{
    /// <param name="width">Tests force a vector width; every width gives the same bits (each element is its own
    /// float64 multiply-then-add chain in expert order, no cross-lane step).</param>
    public static void Compute(ReadOnlySpan<float[]> sources, ReadOnlySpan<double> weights, Span<float> dst, int srcOffset = 0, SimdWidth width = 0)
    {
        if (sources.Length != weights.Length) throw new ArgumentException("one weight per source");
        if (sources.Length == 0) throw new ArgumentException("no sources");
        int n = dst.Length;
        foreach (var s in sources)
            if (s.Length < srcOffset + n) throw new ArgumentException("source shorter than destination");
        if (width == 0) width = Simd.Widest;
        int i = 0;
        ref float d0 = ref MemoryMarshal.GetReference(dst);
        // Vector256 on AVX2 and AVX-512 (eight floats widened to two Vector256<double>); Vector128 on ARM64 NEON.
        if (width >= SimdWidth.V256)
            for (; i + 8 <= n; i += 8)
            {
                var lo = Vector256<double>.Zero;
                var hi = Vector256<double>.Zero;
                for (int e = 0; e < sources.Length; e++)
                {
                    var v = Vector256.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(sources[e]), (nuint)(srcOffset + i));
                    var (vl, vh) = Vector256.Widen(v);
                    var w = Vector256.Create(weights[e]);
                    lo = Vector256.Add(lo, Vector256.Multiply(vl, w));
                    hi = Vector256.Add(hi, Vector256.Multiply(vh, w));
                }
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d0, (nuint)i);
            }
        if (width >= SimdWidth.V128)
            for (; i + 4 <= n; i += 4)
            {
                var lo = Vector128<double>.Zero;
                var hi = Vector128<double>.Zero;
                for (int e = 0; e < sources.Length; e++)
                {
                    var v = Vector128.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(sources[e]), (nuint)(srcOffset + i));
                    var (vl, vh) = Vector128.Widen(v);
                    var w = Vector128.Create(weights[e]);
                    lo = Vector128.Add(lo, Vector128.Multiply(vl, w));
                    hi = Vector128.Add(hi, Vector128.Multiply(vh, w));
                }
                Vector128.Narrow(lo, hi).StoreUnsafe(ref d0, (nuint)i);
            }
        for (; i < n; i++)
        {
            double acc = 0;
            for (int e = 0; e < sources.Length; e++) acc += weights[e] * sources[e][srcOffset + i];
            dst[i] = (float)acc;
        }
    }

    /// <summary>Weights divided by their float64 sum; a non-positive or non-finite sum is an error.</summary>
    public static double[] Normalize(ReadOnlySpan<double> weights, string what)
    {
        double s = 0;
        foreach (var w in weights)
        {
            if (!double.IsFinite(w) || w < 0) throw new MergeException($"{what}: weights must be finite and non-negative, got {w}");
            s += w;
        }
        if (!(s > 0)) throw new MergeException($"{what}: weights sum to zero");
        var r = new double[weights.Length];
        for (int i = 0; i < r.Length; i++) r[i] = weights[i] / s;
        return r;
    }
}
