namespace Mistral.Merge.Merging;

/// <summary>
/// Finds the keys at one or two ascending ranks of a stream of 32-bit keys in two counting passes
/// of 16 bits each (the high halves, then the low halves inside the bucket of each rank), so the
/// memory is a few 65536-entry histograms whatever the stream's length. Every pass must see every
/// key exactly once, in any order.
/// </summary>
public sealed class RadixRanks
{
    private const int Buckets = 1 << 16;
    private readonly long[] _ranks;
    private readonly uint[] _high;     // per rank: its high 16 bits, known after pass 1
    private readonly long[] _below;    // per rank: keys in lower high-buckets
    private long[] _counts = new long[Buckets];
    private long[][] _low = [];        // per rank: low-half histogram of its bucket (shared when the buckets agree)

    /// <summary>Completed passes: 0, 1, or 2 (then <see cref="Key"/>, <see cref="Less"/>, <see cref="Equal"/> are known).</summary>
    public int Passes { get; private set; }

    /// <summary>Ranks are 0-based positions in the ascending order and must be below the stream's length.</summary>
    public RadixRanks(params long[] ranks)
    {
        _ranks = ranks;
        _high = new uint[ranks.Length];
        _below = new long[ranks.Length];
        Key = new uint[ranks.Length];
        Less = new long[ranks.Length];
        Equal = new long[ranks.Length];
    }

    /// <summary>Per rank: the key at that rank.</summary>
    public uint[] Key { get; }
    /// <summary>Per rank: how many keys are smaller than <see cref="Key"/>.</summary>
    public long[] Less { get; }
    /// <summary>Per rank: how many keys equal <see cref="Key"/>.</summary>
    public long[] Equal { get; }

    public void Count(ReadOnlySpan<uint> keys)
    {
        if (Passes == 0)
        {
            var h = _counts;
            foreach (uint k in keys) h[k >> 16]++;
            return;
        }
        if (Passes != 1) throw new InvalidOperationException("both passes are done");
        // Two ranks in one bucket share one histogram: the second test never matches then.
        uint h0 = _high[0], h1 = _high[^1];
        long[] l0 = _low[0], l1 = _low[^1];
        foreach (uint k in keys)
        {
            uint hi = k >> 16;
            if (hi == h0) l0[k & 0xFFFF]++;
            else if (hi == h1) l1[k & 0xFFFF]++;
        }
    }

    public void EndPass()
    {
        if (Passes == 0)
        {
            _low = new long[_ranks.Length][];
            for (int r = 0; r < _ranks.Length; r++)
            {
                (_high[r], _below[r], _) = Find(_counts, _ranks[r]);
                int same = Array.IndexOf(_high, _high[r], 0, r);
                // The first rank reuses the pass-1 histogram, cleared.
                _low[r] = same >= 0 ? _low[same] : r == 0 ? _counts : new long[Buckets];
            }
            Array.Clear(_counts);
        }
        else
        {
            for (int r = 0; r < _ranks.Length; r++)
            {
                var (lowHalf, less, equal) = Find(_low[r], _ranks[r] - _below[r]);
                Key[r] = _high[r] << 16 | lowHalf;
                Less[r] = _below[r] + less;
                Equal[r] = equal;
            }
            _low = []; _counts = [];
        }
        Passes++;
    }

    /// <summary>The bucket holding the rank-th key: its index, the count below it, and its own count.</summary>
    private static (uint Bucket, long Below, long Count) Find(long[] histogram, long rank)
    {
        long below = 0;
        for (uint b = 0; b < Buckets; b++)
        {
            long c = histogram[b];
            if (rank < below + c) return (b, below, c);
            below += c;
        }
        throw new InvalidOperationException($"rank {rank} is beyond the {below} keys counted");
    }
}
