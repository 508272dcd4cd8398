namespace Mistral.Merge.Tests.Merging;

/// <summary>
/// The whole-array magnitude selection the engine used before selecting in chunks (Hoare's
/// selection on a copy of the magnitudes), kept verbatim as the reference the chunked one must match.
/// </summary>
internal static class HoareSelectionReference
{
    public static void KeepTopK(Span<float> x, long k)
    {
        long n = x.Length;
        if (k >= n) return;
        if (k <= 0) { x.Clear(); return; }
        var mags = Magnitudes(x);
        float t = Select(mags, n - k);
        long greater = 0;
        for (int i = 0; i < x.Length; i++) if (Mag(x[i]) > t) greater++;
        long equalToKeep = k - greater;
        for (int i = 0; i < x.Length; i++)
        {
            float m = Mag(x[i]);
            if (m > t) continue;
            if (m == t && equalToKeep > 0) { equalToKeep--; continue; }
            x[i] = 0;
        }
    }

    public static void KeepAscendingRange(Span<float> x, long lo, long hi)
    {
        long n = x.Length;
        lo = Math.Max(0, lo); hi = Math.Min(n, hi);
        if (lo >= hi) { x.Clear(); return; }
        if (lo == 0 && hi == n) return;
        var mags = Magnitudes(x);
        float a = Select(mags, lo);
        float b = Select(mags, hi - 1);
        long lessA = 0, lessB = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float m = Mag(x[i]);
            if (m < a) lessA++;
            if (m < b) lessB++;
        }
        long firstA = lo - lessA;
        long lastB = hi - 1 - lessB;
        long occA = 0, occB = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float m = Mag(x[i]);
            bool aboveLo = m > a || (m == a && occA >= firstA);
            bool belowHi = m < b || (m == b && occB <= lastB);
            if (m == a) occA++;
            if (m == b) occB++;
            if (!(aboveLo && belowHi)) x[i] = 0;
        }
    }

    private static float Mag(float v) { var m = Math.Abs(v); return float.IsNaN(m) ? float.PositiveInfinity : m; }

    private static float[] Magnitudes(ReadOnlySpan<float> x)
    {
        var m = new float[x.Length];
        for (int i = 0; i < x.Length; i++) m[i] = Mag(x[i]);
        return m;
    }

    private static float Select(float[] a, long k)
    {
        int lo = 0, hi = a.Length - 1;
        int kk = (int)k;
        while (hi > lo)
        {
            int mid = lo + (hi - lo) / 2;
            float x = a[lo], y = a[mid], z = a[hi];
            float pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] < pivot) i++;
                while (a[j] > pivot) j--;
                if (i <= j) { (a[i], a[j]) = (a[j], a[i]); i++; j--; }
            }
            if (kk <= j) hi = j;
            else if (kk >= i) lo = i;
            else return a[kk];
        }
        return a[kk];
    }
}
