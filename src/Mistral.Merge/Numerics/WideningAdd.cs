using System.Runtime.Intrinsics;

namespace Mistral.Merge.Numerics;

/// <summary>
/// dst[i] += (double)src[i] over large arrays (the refit adds each chunk's float32 Gram, 14336² elements at Mixtral
/// size, into its float64 accumulator): vectorized widening, the array split into equal slices for the threads.
/// Element-wise, so the result does not depend on the thread count.
/// </summary>
public static class WideningAdd
{
    private const int Slice = 1 << 20;

    public static void Run(double[] dst, float[] src, int threads = 0)
    {
        if (src.LongLength > dst.LongLength) throw new ArgumentException("destination shorter than source");
        long count = src.LongLength;
        int slices = (int)((count + Slice - 1) / Slice);
        WorkerPool.For(threads, slices, (s, _) =>
        {
            int len = (int)Math.Min(Slice, count - (long)s * Slice);
            Add(dst.AsSpan((int)((long)s * Slice), len), src.AsSpan((int)((long)s * Slice), len));
        });
    }

    private static void Add(Span<double> d, ReadOnlySpan<float> s)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 8 <= s.Length; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(s.Slice(i, 8)));
                (Vector256.Create((ReadOnlySpan<double>)d.Slice(i, 4)) + lo).CopyTo(d.Slice(i, 4));
                (Vector256.Create((ReadOnlySpan<double>)d.Slice(i + 4, 4)) + hi).CopyTo(d.Slice(i + 4, 4));
            }
        for (; i < s.Length; i++) d[i] += s[i];
    }
}
