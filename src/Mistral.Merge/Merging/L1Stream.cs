using System.Runtime.Intrinsics;

namespace Mistral.Merge.Merging;

/// <summary>
/// <see cref="Kernels.L1"/> of a vector of <paramref name="length"/> elements fed piece by piece, in
/// order: the same float64 additions in the same order (8-element groups into 4 lanes, the lanes
/// summed, then the tail), so <see cref="Total"/> equals Kernels.L1 of the whole vector bit for bit.
/// </summary>
public sealed class L1Stream(long length)
{
    private readonly long _groupsEnd = length / 8 * 8; // Kernels.L1's order at every vector width
    private readonly double[] _lanes = new double[4];
    private readonly float[] _low = new float[4];   // first half of the current 8-element group
    private readonly float[] _tail = new float[8];  // after the groups (only when there are groups)
    private double _scalar;                         // the whole sum when there are no groups
    private long _seen;

    public void Add(ReadOnlySpan<float> x)
    {
        foreach (float v in x)
        {
            long i = _seen++;
            if (i < _groupsEnd)
            {
                int p = (int)(i & 7);
                if (p < 4) _low[p] = v;
                else _lanes[p - 4] += (double)Math.Abs(_low[p - 4]) + (double)Math.Abs(v);
            }
            else if (_groupsEnd > 0) _tail[i - _groupsEnd] = v;
            else _scalar += Math.Abs(v);
        }
    }

    public double Total
    {
        get
        {
            if (_seen != length) throw new InvalidOperationException($"{_seen} of {length} elements seen");
            if (_groupsEnd == 0) return _scalar;
            double s = Vector256.Sum(Vector256.Create(_lanes[0], _lanes[1], _lanes[2], _lanes[3]));
            for (long i = _groupsEnd; i < length; i++) s += Math.Abs(_tail[i - _groupsEnd]);
            return s;
        }
    }
}
