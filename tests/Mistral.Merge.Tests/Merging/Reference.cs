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

    // ---- The methods of "More methods", written from the spec's text: whole tensors at once, element by element,
    // float32 where the spec says element-wise, float64 for norms, dots, means and trigonometry. ----

    private static double NormOf(float[] v) => Math.Sqrt(v.Sum(x => (double)x * x));
    private static double DotOf(float[] a, float[] b) { double s = 0; for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i]; return s; }

    /// <summary>sce: select by variance, weights from mean squares, erase by majority sign.</summary>
    public static float[] Sce(float[] b, float[][] xs, double topk)
    {
        int n = xs.Length, len = b.Length;
        if (n == 0) return (float[])b.Clone();
        var d = xs.Select(x => x.Select((v, j) => v - b[j]).ToArray()).ToArray();
        if (topk < 1)
        {
            var keep = new bool[len];
            if (topk > 0)
            {
                var var = new float[len];
                for (int j = 0; j < len; j++)
                {
                    double mu = 0;
                    for (int i = 0; i < n; i++) mu += d[i][j];
                    mu /= n;
                    double sq = 0;
                    for (int i = 0; i < n; i++) sq += (d[i][j] - mu) * (d[i][j] - mu);
                    var[j] = (float)(sq / n);
                }
                int nz = var.Count(v => v != 0);
                int k = (int)(float)((float)nz * (float)topk);
                foreach (int j in Enumerable.Range(0, len).OrderByDescending(j => var[j]).ThenBy(j => j).Take(k)) keep[j] = true;
            }
            for (int i = 0; i < n; i++) for (int j = 0; j < len; j++) if (!keep[j]) d[i][j] = 0;
        }
        var m = d.Select(di => (float)(di.Sum(v => (double)v * v) / len)).ToArray();
        double sum = m.Sum(v => (double)v);
        var w = m.Select(mi => Math.Abs(sum) < 1e-6 ? (float)(1.0 / n) : (float)(mi / sum)).ToArray();
        var o = new float[len];
        for (int j = 0; j < len; j++)
        {
            float total = 0;
            for (int i = 0; i < n; i++) total += d[i][j];
            int sign = total >= 0 ? 1 : -1;
            float num = 0, den = 0;
            for (int i = 0; i < n; i++)
                if (Math.Sign(d[i][j]) == sign) { num += w[i] * d[i][j]; den += w[i]; }
            o[j] = b[j] + num / Math.Max(den, 1e-6f);
        }
        return o;
    }

    /// <summary>multislerp: one exponential-map step from the weighted mean direction.</summary>
    public static float[] MultiSlerp(float[]? b, float[][] xs, double[] weight, bool normalize, double eps = 1e-8)
    {
        int n = xs.Length, len = xs[0].Length;
        if (n == 1) return (float[])xs[0].Clone();
        var v = xs.Select(x => b == null ? (float[])x.Clone() : x.Select((e, j) => e - b[j]).ToArray()).ToArray();
        double total = weight.Sum();
        var w = weight.Select(x => (float)(normalize ? x / total : x)).ToArray();
        var norms = v.Select(NormOf).ToArray();
        var u = v.Select((vi, i) => vi.Select(e => e / (float)(norms[i] + eps)).ToArray()).ToArray();
        var m = new float[len];
        for (int i = 0; i < n; i++) for (int j = 0; j < len; j++) m[j] += w[i] * u[i][j];
        double mn = NormOf(m);
        float[] o;
        if (mn < eps)
        {
            if (n > 2) throw new InvalidOperationException("no mean direction");
            o = new float[len];
            for (int i = 0; i < n; i++) for (int j = 0; j < len; j++) o[j] += w[i] * v[i][j];
        }
        else
        {
            var mh = m.Select(e => e / (float)mn).ToArray();
            var t = new float[len];
            for (int i = 0; i < n; i++)
            {
                float dot = (float)DotOf(u[i], mh);
                for (int j = 0; j < len; j++) t[j] += w[i] * (u[i][j] - dot * mh[j]);
            }
            double tau = NormOf(t) + eps;
            float c = (float)Math.Cos(tau), sn = (float)(Math.Sin(tau) / tau);
            double scale = 0;
            for (int i = 0; i < n; i++) scale += w[i] * norms[i];
            o = new float[len];
            for (int j = 0; j < len; j++) o[j] = (mh[j] * c + t[j] * sn) * (float)scale;
        }
        if (b != null) for (int j = 0; j < len; j++) o[j] += b[j];
        return o;
    }

    /// <summary>karcher: the iterated spherical mean, element-wise in float32 on whole vectors.</summary>
    public static float[] Karcher(float[][] xs, int maxIter, double tol)
    {
        int n = xs.Length, len = xs[0].Length;
        if (n == 1) return (float[])xs[0].Clone();
        var norms = xs.Select(NormOf).ToArray();
        var e = xs.Select((x, i) => norms[i] == 0 ? new float[len] : x.Select(v => v / (float)norms[i]).ToArray()).ToArray();
        var valid = Enumerable.Range(0, n).Where(i => norms[i] > tol).ToList();
        if (valid.Count == 0) return new float[len];
        double a = 1.0 / valid.Count;
        var u = new float[len];
        foreach (int i in valid) for (int j = 0; j < len; j++) u[j] += (float)a * e[i][j];
        double un = NormOf(u);
        if (un < tol) u = (float[])e[valid[0]].Clone();
        else u = u.Select(x => x / (float)un).ToArray();
        for (int it = 0; it < maxIter; it++)
        {
            var t = new float[len];
            foreach (int i in valid)
            {
                double d = Math.Clamp(DotOf(u, e[i]), -1, 1);
                double th = Math.Acos(d);
                if (th < tol) continue;
                float f = (float)(a * th / Math.Sin(th));
                for (int j = 0; j < len; j++) t[j] += f * (e[i][j] - (float)d * u[j]);
            }
            double tn = NormOf(t);
            if (tn < tol) break;
            float c = (float)Math.Cos(tn), sn = (float)Math.Sin(tn);
            for (int j = 0; j < len; j++) u[j] = c * u[j] + sn * (t[j] / (float)tn);
            un = NormOf(u);
            if (un > tol) u = u.Select(x => x / (float)un).ToArray();
        }
        double scale = 0;
        for (int i = 0; i < n; i++) scale += norms[i] / n;
        return u.Select(x => (float)scale * x).ToArray();
    }

    /// <summary>nearswap for one other model.</summary>
    public static float[] NearSwap(float[] b, float[] x, double t)
        => b.Select((bv, j) =>
        {
            float w = Math.Clamp((float)t * (1f / Math.Max(Math.Abs(bv - x[j]), 1e-6f)), 0f, 1f);
            return w * x[j] + (1f - w) * bv;
        }).ToArray();

    /// <summary>ram (plus = false) and ramplus_tl.</summary>
    public static float[] Ram(float[] b, float[][] xs, double epsilon, bool plus, double r = 0.1, double alpha = 0.2)
    {
        int n = xs.Length, len = b.Length;
        var d = xs.Select(x => x.Select((v, j) => v - b[j]).ToArray()).ToArray();
        var act = d.Select(di => di.Select(v => Math.Abs(v) > (float)epsilon).ToArray()).ToArray();
        var c = Enumerable.Range(0, len).Select(j => Enumerable.Range(0, n).Count(i => act[i][j])).ToArray();
        var lambda = new float[n];
        for (int i = 0; i < n; i++)
        {
            long shared = Enumerable.Range(0, len).Count(j => act[i][j] && c[j] >= 2);
            long unique = Enumerable.Range(0, len).Count(j => act[i][j] && c[j] == 1);
            double rho = shared / Math.Max(unique, epsilon);
            lambda[i] = (float)(1 + r * Math.Min(Math.Max(rho, 0), alpha));
        }
        var o = new float[len];
        for (int j = 0; j < len; j++)
        {
            if (c[j] == 0) { o[j] = b[j]; continue; }
            if (c[j] == 1)
            {
                int i = Enumerable.Range(0, n).First(i => act[i][j]);
                o[j] = b[j] + (plus ? lambda[i] * d[i][j] : d[i][j]);
                continue;
            }
            float s = 0;
            for (int i = 0; i < n; i++) if (act[i][j]) s += d[i][j] / c[j];
            o[j] = b[j] + s;
        }
        return o;
    }

    /// <summary>arcee_fusion on a [rows, cols] tensor; samples above 1e6 elements with the portable generator.</summary>
    public static float[] ArceeFusion(float[] b, float[] x, int rows, int cols, ulong seed = 0, string name = "")
    {
        var imp = new float[b.Length];
        for (int r = 0; r < rows; r++)
        {
            var px = Softmax(x.AsSpan(r * cols, cols).ToArray());
            var qb = Softmax(b.AsSpan(r * cols, cols).ToArray());
            double kl = 0;
            for (int c = 0; c < cols; c++) kl += (px[c] + 1e-8) * Math.Log((px[c] + 1e-8) / (qb[c] + 1e-8));
            for (int c = 0; c < cols; c++) imp[r * cols + c] = Math.Abs(x[r * cols + c] - b[r * cols + c]) * (float)kl;
        }
        float[] s0 = imp, s1 = imp;
        if (imp.Length > 1_000_000)
        {
            double p = 1e6 / imp.Length;
            var m0 = DareMask(seed, name, 0, imp.Length, p);
            var m1 = DareMask(seed, name, 1, imp.Length, p);
            s0 = imp.Where((_, i) => m0[i]).ToArray();
            s1 = imp.Where((_, i) => m1[i]).ToArray();
        }
        float Q(float[] sample, double q)
        {
            var sorted = sample.OrderBy(v => v).ToArray();
            return sorted[(int)((float)q * (float)(sorted.Length - 1))];
        }
        float thr = Q(s0, 0.5) + (float)(1.5 * (Q(s1, 0.75) - Q(s1, 0.25)));
        return b.Select((bv, i) => bv + (x[i] - bv) * (imp[i] >= thr ? 1f : 0f)).ToArray();
    }

    private static double[] Softmax(float[] z)
    {
        double max = z.Max(v => (double)v);
        var e = z.Select(v => Math.Exp(v - max)).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }

    public static float[] Read(ModelFolder f, string name) => f.ReadSingle(name);
}
