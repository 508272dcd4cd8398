namespace Mistral.Merge.Merging;

/// <summary>
/// Magnitude sparsification of a whole span in O(n) with a stable order: among equal magnitudes the
/// lower flat index comes first in the sort order (descending for top-k, ascending for breadcrumbs),
/// exactly what a stable sort gives. The span is one piece of a <see cref="MagnitudeSelector"/>.
/// </summary>
public static class MagnitudeSelection
{
    /// <summary>Keeps the <paramref name="k"/> largest |x| (ties: lower index kept first); zeroes the rest.</summary>
    public static void KeepTopK(Span<float> x, long k) => Run(MagnitudeSelector.TopK(x.Length, k), x);

    /// <summary>Keeps the elements at positions [lo, hi) of the stable ascending order of |x|; zeroes the rest.</summary>
    public static void KeepAscendingRange(Span<float> x, long lo, long hi) => Run(MagnitudeSelector.AscendingRange(x.Length, lo, hi), x);

    private static void Run(MagnitudeSelector s, Span<float> x)
    {
        while (s.NeedsPass)
        {
            s.Count(x, 0);
            s.EndPass();
        }
        s.Mask(x, 0);
    }
}
