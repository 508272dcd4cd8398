using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Merging;

/// <summary>
/// An independent, straightforward scalar re-implementation of the spec's formulas (double
/// precision where sensible) that the end-to-end merges are compared against.
/// </summary>
internal static class Reference
{
    public static double Gradient(double[] v, double t)
    {
        if (v.Length == 1) return v[0];
        double pos = t * (v.Length - 1);
        int i = (int)Math.Floor(pos);
        int j = Math.Min(v.Length - 1, i + 1);
        double f = pos - i;
        return (1 - f) * v[i] + f * v[j];
    }

    public static double[] Slerp(float[] a, float[] b, double t)
    {
        double na = Math.Sqrt(a.Sum(x => (double)x * x)), nb = Math.Sqrt(b.Sum(x => (double)x * x));
        if (na <= 1e-8) na = 1;
        if (nb <= 1e-8) nb = 1;
        double dot = 0;
        for (int i = 0; i < a.Length; i++) dot += a[i] / na * (b[i] / nb);
        double s0, s1;
        if (Math.Abs(dot) > 0.9995) { s0 = 1 - t; s1 = t; }
        else
        {
            double th = Math.Acos(dot);
            s0 = Math.Sin(th - th * t) / Math.Sin(th);
            s1 = Math.Sin(th * t) / Math.Sin(th);
        }
        return a.Select((x, i) => s0 * x + s1 * b[i]).ToArray();
    }

    /// <summary>Indices of the k largest |d| (stable: lower index first among equals).</summary>
    public static HashSet<int> TopK(float[] d, long k)
        => Enumerable.Range(0, d.Length).OrderByDescending(i => Math.Abs(d[i])).ThenBy(i => i).Take((int)k).ToHashSet();

    // The spec's portable generator, written again from its text.
    private static ulong Mix(ulong z)
    {
        unchecked
        {
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }

    public static bool[] DareMask(ulong seed, string name, int ordinal, int n, double p)
    {
        unchecked
        {
            ulong h = 14695981039346656037UL;
            foreach (byte c in System.Text.Encoding.UTF8.GetBytes(name)) { h ^= c; h *= 1099511628211UL; }
            const ulong G = 0x9E3779B97F4A7C15UL;
            ulong key = Mix(Mix(seed ^ h) + (ulong)(ordinal + 1) * G);
            return Enumerable.Range(0, n).Select(i => (Mix(key + (ulong)(i + 1) * G) >> 40) / 16777216.0 < p).ToArray();
        }
    }

    /// <summary>Task vectors, sparsified (mask per model, optional L1 rescale), weighted, TIES-mixed or summed.</summary>
    public static double[] TaskVectors(float[] b, float[][] xs, double[] w, Func<int, float[], bool[]> mask, bool rescale, bool consensus, bool normalize, double lambda = 1)
    {
        int n = b.Length, k = xs.Length;
        var wd = new double[k][];
        for (int m = 0; m < k; m++)
        {
            var d = xs[m].Select((x, i) => x - b[i]).ToArray();   // float32 δ, as ranked
            var keep = mask(m, d);
            double before = d.Sum(v => Math.Abs((double)v));
            double after = d.Select((v, i) => keep[i] ? Math.Abs((double)v) : 0).Sum();
            double f = rescale && before >= 1e-7 && after >= 1e-7 ? before / after : 1;
            wd[m] = d.Select((v, i) => keep[i] ? w[m] * v * f : 0).ToArray();
        }
        var o = new double[n];
        for (int i = 0; i < n; i++)
        {
            double mixed = 0, div = 0;
            if (consensus)
            {
                double s = 0;
                for (int m = 0; m < k; m++) s += wd[m][i];
                int maj = s >= 0 ? 1 : -1;
                for (int m = 0; m < k; m++) if (Math.Sign(wd[m][i]) == maj) { mixed += wd[m][i]; div += w[m]; }
                if (div == 0) div = 1;
            }
            else
            {
                for (int m = 0; m < k; m++) { mixed += wd[m][i]; div += w[m]; }
                if (Math.Abs(div) < 1e-8) div = 1;
            }
            if (normalize) mixed /= div;
            o[i] = b[i] + lambda * mixed;
        }
        return o;
    }

    /// <summary>Asserts each float32 result equals the double reference to float32 rounding of the terms.</summary>
    public static void AssertClose(string tensor, double[] expected, float[] actual, Func<int, double> scale, double rel = 5e-7)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double tol = rel * Math.Max(scale(i), Math.Abs(expected[i])) + 1e-30;
            if (Math.Abs(expected[i] - actual[i]) > tol)
                Assert.Fail($"{tensor}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tol:G3})");
        }
    }

    public static float[] Read(ModelFolder f, string name) => f.ReadSingle(name);
}
