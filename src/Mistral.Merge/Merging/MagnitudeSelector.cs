namespace Mistral.Merge.Merging;

/// <summary>
/// A magnitude selection (the k largest |x|, or the positions [lo, hi) of the ascending order of
/// |x|) over a tensor seen piece by piece, exact and stable: among equal magnitudes the lower flat
/// index comes first in the sort order (descending for top-k, ascending for a range), exactly what a
/// stable sort gives. Memory does not depend on the tensor's size.
/// <para>
/// Protocol: while <see cref="NeedsPass"/>, call <see cref="Count"/> on every element once, pieces in
/// flat order, then <see cref="EndPass"/>. Two radix passes find the boundary magnitudes; when a
/// boundary cuts through a group of equal magnitudes, a third pass records, per piece, how many
/// elements of that group come before it. Then <see cref="Mask"/> applies to the pieces in any order
/// (pieces counted in that third pass when there is one; any span otherwise).
/// </para>
/// </summary>
public sealed class MagnitudeSelector
{
    private const int KeyPiece = 1024;
    private enum Kind { KeepAll, KeepNone, Bounds }

    private readonly Kind _kind;
    private readonly long _n, _lo, _hi;           // keep ascending positions [lo, hi) ...
    private readonly bool _topK;                  // ... but top-k keeps the head of the lower boundary's group
    private readonly RadixRanks? _radix;
    // Boundaries: keys a ≤ b; among the elements equal to a (to b), the occurrences in [aFrom, aTo) ([0, bTo)) are kept.
    private uint _a, _b = uint.MaxValue;
    private long _aFrom, _aTo = long.MaxValue, _bTo = long.MaxValue;
    private bool _cut, _tiesCounted;
    private readonly List<(long Offset, long A, long B)> _before = [];
    private long _seenA, _seenB;

    private MagnitudeSelector(Kind kind, long n = 0, long lo = 0, long hi = 0, bool topK = false)
    {
        _kind = kind; _n = n; _lo = lo; _hi = hi; _topK = topK;
        if (kind == Kind.Bounds) _radix = topK ? new RadixRanks(lo) : new RadixRanks(lo, hi - 1);
    }

    /// <summary>Keeps the <paramref name="k"/> largest of the <paramref name="n"/> magnitudes (ties: lower index kept first).</summary>
    public static MagnitudeSelector TopK(long n, long k)
        => k >= n ? new(Kind.KeepAll) : k <= 0 ? new(Kind.KeepNone) : new(Kind.Bounds, n, n - k, n, topK: true);

    /// <summary>Keeps the positions [lo, hi) of the stable ascending order of the <paramref name="n"/> magnitudes.</summary>
    public static MagnitudeSelector AscendingRange(long n, long lo, long hi)
    {
        lo = Math.Max(0, lo); hi = Math.Min(n, hi);
        return lo >= hi ? new(Kind.KeepNone) : lo == 0 && hi == n ? new(Kind.KeepAll) : new(Kind.Bounds, n, lo, hi);
    }

    /// <summary>|v| as bits, which order like the magnitudes; NaN counts as +Inf.</summary>
    public static uint Key(float v) => Math.Min(BitConverter.SingleToUInt32Bits(v) & 0x7FFFFFFFu, 0x7F800000u);

    /// <summary>Whether <see cref="Mask"/> knows what to keep (in the tie pass: for the pieces counted so far).</summary>
    public bool BoundariesKnown => _kind != Kind.Bounds || _radix!.Passes == 2;

    public bool NeedsPass => _kind == Kind.Bounds && (_radix!.Passes < 2 || _cut && !_tiesCounted);

    /// <summary>Counts the piece of values at flat index <paramref name="offset"/> in the current pass (nothing once no pass is needed).</summary>
    public void Count(ReadOnlySpan<float> values, long offset)
    {
        if (!NeedsPass) return;
        if (_radix!.Passes < 2)
        {
            Span<uint> keys = stackalloc uint[KeyPiece];
            for (int done = 0; done < values.Length; done += KeyPiece)
            {
                var piece = values.Slice(done, Math.Min(KeyPiece, values.Length - done));
                for (int i = 0; i < piece.Length; i++) keys[i] = Key(piece[i]);
                _radix.Count(keys[..piece.Length]);
            }
            return;
        }
        _before.Add((offset, _seenA, _seenB));
        foreach (float v in values)
        {
            uint k = Key(v);
            if (k == _a) _seenA++;
            if (k == _b) _seenB++;
        }
    }

    public void EndPass()
    {
        if (!NeedsPass) return;
        if (_radix!.Passes == 2) { _tiesCounted = true; return; }
        _radix.EndPass();
        if (_radix.Passes == 2) SetBoundaries();
    }

    private void SetBoundaries()
    {
        var r = _radix!;
        _a = r.Key[0];
        if (_topK)
        {
            // Everything above a is kept; of the a's, the first k − (number above a).
            long greater = _n - r.Less[0] - r.Equal[0];
            _aFrom = 0;
            _aTo = _n - _lo - greater;
            _cut = _aTo < r.Equal[0];
        }
        else
        {
            _b = r.Key[1];
            _aFrom = _lo - r.Less[0];          // the a's before position lo are dropped
            _bTo = _hi - r.Less[1];            // the b's from position hi on are dropped
            _cut = _aFrom > 0 || _bTo < r.Equal[1];
        }
    }

    /// <summary>Zeroes the elements of the piece at flat index <paramref name="offset"/> that are not kept.</summary>
    public void Mask(Span<float> x, long offset)
    {
        if (_kind == Kind.KeepAll) return;
        if (_kind == Kind.KeepNone) { x.Clear(); return; }
        if (!BoundariesKnown) throw new InvalidOperationException("the boundaries are not counted yet");
        var (occA, occB) = _cut ? Before(offset) : (0L, 0L);
        uint a = _a, b = _b;
        for (int i = 0; i < x.Length; i++)
        {
            uint k = Key(x[i]);
            if (k > a && k < b) continue;
            bool keep = (k > a || k == a && occA >= _aFrom && occA < _aTo) && (k < b || k == b && occB < _bTo);
            if (k == a) occA++;
            if (k == b) occB++;
            if (!keep) x[i] = 0;
        }
    }

    /// <summary>The boundary-equal elements before a piece, as counted in the tie pass.</summary>
    private (long A, long B) Before(long offset)
    {
        int lo = 0, hi = _before.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            long o = _before[mid].Offset;
            if (o == offset) return (_before[mid].A, _before[mid].B);
            if (o < offset) lo = mid + 1; else hi = mid - 1;
        }
        throw new InvalidOperationException($"no piece at flat index {offset} was counted in the tie pass");
    }
}
