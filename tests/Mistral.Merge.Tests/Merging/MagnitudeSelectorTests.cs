using Mistral.Merge.Merging;

namespace Mistral.Merge.Tests.Merging;

/// <summary>The chunked selection against the old whole-array one, bit for bit, on data full of ties.</summary>
public class MagnitudeSelectorTests
{
    // Few distinct magnitudes of both signs, ±0, NaN (several payloads), ±Inf, subnormals.
    private static readonly float[] Pool =
    [
        0f, -0f, 0.5f, -0.5f, 1f, -1f, 1.0000001f, 2f, -2f, 1e-45f, -1e-45f, 3e-39f, -3e-39f,
        float.NaN, BitConverter.UInt32BitsToSingle(0xFFFFFFFF), BitConverter.UInt32BitsToSingle(0x7F800001),
        float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, -float.Epsilon,
    ];

    private static float[] Data(Random rnd, int n)
        => Enumerable.Range(0, n).Select(_ => rnd.Next(4) == 0 ? (float)(rnd.NextDouble() - 0.5) : Pool[rnd.Next(Pool.Length)]).ToArray();

    private static uint[] Bits(float[] x) => x.Select(BitConverter.SingleToUInt32Bits).ToArray();

    /// <summary>Counting passes over the chunks in flat order, then the masks in a shuffled order.</summary>
    private static float[] Chunked(MagnitudeSelector s, float[] x, int rows, int cols, int chunkRows, Random rnd)
    {
        var y = (float[])x.Clone();
        var starts = Enumerable.Range(0, (rows + chunkRows - 1) / chunkRows).Select(c => c * chunkRows * cols).ToArray();
        int Len(int start) => Math.Min(chunkRows * cols, y.Length - start);
        while (s.NeedsPass)
        {
            foreach (int f in starts) s.Count(y.AsSpan(f, Len(f)), f);
            s.EndPass();
        }
        foreach (int f in starts.OrderBy(_ => rnd.Next())) s.Mask(y.AsSpan(f, Len(f)), f);
        return y;
    }

    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 }, { 1, 37, 1 }, { 5, 7, 1 }, { 5, 7, 2 }, { 33, 16, 1 }, { 33, 16, 3 }, { 33, 16, 7 }, { 33, 16, 33 }, { 64, 9, 5 }, { 101, 3, 13 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TopKInChunksMatchesTheWholeArraySelection(int rows, int cols, int chunkRows)
    {
        var rnd = new Random(rows * 1000 + cols * 10 + chunkRows);
        int n = rows * cols;
        for (int trial = 0; trial < 40; trial++)
        {
            var x = Data(rnd, n);
            long k = trial switch { 0 => 0, 1 => 1, 2 => n - 1, 3 => n, 4 => n + 3, 5 => -2, _ => rnd.Next(0, n + 1) };
            var expected = (float[])x.Clone();
            HoareSelectionReference.KeepTopK(expected, k);
            Assert.Equal(Bits(expected), Bits(Chunked(MagnitudeSelector.TopK(n, k), x, rows, cols, chunkRows, rnd)));
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void AscendingRangeInChunksMatchesTheWholeArraySelection(int rows, int cols, int chunkRows)
    {
        var rnd = new Random(rows * 1000 + cols * 10 + chunkRows + 7);
        int n = rows * cols;
        for (int trial = 0; trial < 40; trial++)
        {
            var x = Data(rnd, n);
            long lo = trial switch { 0 => 0, 1 => -3, 2 => n, _ => rnd.Next(0, n + 1) };
            long hi = trial switch { 0 => n, 1 => n + 2, 3 => lo, _ => rnd.Next((int)Math.Max(0, lo), n + 1) };
            var expected = (float[])x.Clone();
            HoareSelectionReference.KeepAscendingRange(expected, lo, hi);
            Assert.Equal(Bits(expected), Bits(Chunked(MagnitudeSelector.AscendingRange(n, lo, hi), x, rows, cols, chunkRows, rnd)));
        }
    }

    [Fact]
    public void WholeSpanHelpersMatchTheOldSelectionOnLargeTiedData()
    {
        var rnd = new Random(3);
        var x = Data(rnd, 200_003);
        foreach (long k in new long[] { 1, 77_777, 150_000, 200_002 })
        {
            var (expected, got) = ((float[])x.Clone(), (float[])x.Clone());
            HoareSelectionReference.KeepTopK(expected, k);
            MagnitudeSelection.KeepTopK(got, k);
            Assert.Equal(Bits(expected), Bits(got));
        }
        foreach (var (lo, hi) in new (long, long)[] { (5, 200_000), (100_000, 100_001), (0, 123_456), (60_000, 200_003) })
        {
            var (expected, got) = ((float[])x.Clone(), (float[])x.Clone());
            HoareSelectionReference.KeepAscendingRange(expected, lo, hi);
            MagnitudeSelection.KeepAscendingRange(got, lo, hi);
            Assert.Equal(Bits(expected), Bits(got));
        }
    }

    [Fact]
    public void TiePassOnlyWhenABoundaryCutsAGroupOfEqualMagnitudes()
    {
        // |x| = 3, 1, 2, 2, 2: the 2 largest are 3 and the first 2 → the group of 2s is cut.
        float[] x = [3, -1, 2, -2, 2];
        var cut = MagnitudeSelector.TopK(5, 2);
        int passes = 0;
        for (; cut.NeedsPass; passes++) { cut.Count(x, 0); cut.EndPass(); }
        Assert.Equal(3, passes);
        var y = (float[])x.Clone();
        cut.Mask(y, 0);
        Assert.Equal([3f, 0, 2, 0, 0], y);
        // The 4 largest take every 2: nothing is cut, two radix passes suffice.
        var whole = MagnitudeSelector.TopK(5, 4);
        passes = 0;
        for (; whole.NeedsPass; passes++) { whole.Count(x, 0); whole.EndPass(); }
        Assert.Equal(2, passes);
    }

    [Fact]
    public void MaskOfAPieceNotCountedInTheTiePassThrows()
    {
        float[] x = [1, 1, 1, 1];
        var s = MagnitudeSelector.TopK(4, 2);
        while (s.NeedsPass) { s.Count(x.AsSpan(0, 2), 0); s.Count(x.AsSpan(2), 2); s.EndPass(); }
        Assert.Throws<InvalidOperationException>(() => s.Mask(x.AsSpan(1, 2), 1));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(8)]
    [InlineData(15)]
    [InlineData(1001)]
    [InlineData(100_000)]
    public void L1StreamInPiecesEqualsKernelsL1BitForBit(int n)
    {
        var rnd = new Random(n);
        var x = Enumerable.Range(0, n).Select(_ => (float)((rnd.NextDouble() - 0.5) * Math.Pow(10, rnd.Next(-8, 8)))).ToArray();
        for (int trial = 0; trial < 5; trial++)
        {
            var s = new L1Stream(n);
            for (int done = 0; done < n;)
            {
                int len = Math.Min(n - done, trial == 0 ? 1 : rnd.Next(1, 20 * trial * trial));
                s.Add(x.AsSpan(done, len));
                done += len;
            }
            Assert.Equal(BitConverter.DoubleToInt64Bits(Kernels.L1(x)), BitConverter.DoubleToInt64Bits(s.Total));
        }
    }
}
