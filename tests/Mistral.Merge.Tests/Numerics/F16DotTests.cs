using System.Runtime.Intrinsics.X86;
using Mistral.Merge.Numerics;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Tests.Numerics;

/// <summary>The fp16 decode dots that widen halves in registers (<see cref="F16Dot"/>), against .NET's <see cref="Half"/>.</summary>
public unsafe class F16DotTests
{
    /// <summary>Every finite half bit pattern (±0, subnormals, normals up to ±65504), 63488 of them, 64 to a row.</summary>
    private static ushort[] FiniteHalves() =>
        Enumerable.Range(0, 65536).Where(h => (h & 0x7C00) != 0x7C00).Select(h => (ushort)h).ToArray();

    [Avx2Fact]
    public void EveryFiniteHalfWidensExactlyAtEachWidthThisCpuHas()
    {
        var halves = FiniteHalves();
        Assert.Equal(63488, halves.Length);
        var x = new float[64];
        foreach (bool wide in new[] { true, false })
        {
            if (wide && !Avx512F.IsSupported) continue;
            fixed (ushort* ph = halves) fixed (float* px = x)
                for (int row = 0; row < halves.Length / 64; row++)
                {
                    ushort* r = ph + 64 * row;
                    for (int j = 0; j < 64; j++)
                    {
                        // x one-hot at j: the dot is the widened weight itself, every other product an exact zero
                        Array.Clear(x);
                        x[j] = 1;
                        float y0, y1;
                        if (wide) Assert.Equal(0, F16Dot.Dot2x512(r, r, 64, px, 4096, &y0, &y1));
                        else Assert.True(F16Dot.Dot1x256(r, 64, px, 4096, &y0));
                        float expected = Fp16.FromBits(r[j]);
                        if (expected == 0) Assert.Equal(0f, y0); // -0 comes back +0: it is added to the other chains' +0
                        else Assert.Equal(BitConverter.SingleToUInt32Bits(expected), BitConverter.SingleToUInt32Bits(y0));
                    }
                }
        }
    }

    [Avx2Theory]
    [InlineData((ushort)0x7C00)] // +inf
    [InlineData((ushort)0xFC00)] // -inf
    [InlineData((ushort)0x7E00)] // NaN
    [InlineData((ushort)0xFC01)] // a negative signalling-pattern NaN
    public void ARowWithAnInfinityOrANaNIsReportedAndItsPartnerIsNot(ushort special)
    {
        const int k = 100; // 64 + 32 + a scalar tail of 4: the special value sits in the 16-wide steps
        var rng = new Random(5);
        var finite = Enumerable.Range(0, k).Select(_ => Fp16.ToBits((float)(rng.NextDouble() * 2 - 1))).ToArray();
        var bad = (ushort[])finite.Clone();
        bad[70] = special;
        var x = Enumerable.Range(0, k).Select(i => (float)(rng.NextDouble() + 0.5)).ToArray();
        double exact = 0;
        for (int i = 0; i < k; i++) exact += (double)Fp16.FromBits(finite[i]) * x[i];
        fixed (ushort* pf = finite) fixed (ushort* pb = bad) fixed (float* px = x)
        {
            float y0, y1;
            if (Avx512F.IsSupported)
            {
                Assert.Equal(2, F16Dot.Dot2x512(pf, pb, k, px, 4096, &y0, &y1));
                Assert.True(Math.Abs(y0 - exact) < 1e-4, $"{y0} vs {exact}");
                Assert.Equal(1, F16Dot.Dot2x512(pb, pf, k, px, 4096, &y0, &y1));
                Assert.Equal(3, F16Dot.Dot2x512(pb, pb, k, px, 4096, &y0, &y1));
            }
            {
                Assert.False(F16Dot.Dot1x256(pb, k, px, 4096, &y0));
                Assert.True(F16Dot.Dot1x256(pf, k, px, 4096, &y0));
                Assert.True(Math.Abs(y0 - exact) < 1e-4, $"{y0} vs {exact}");
            }
        }
    }

    [Fact]
    public void F16GemvGivesInfinitiesNaNsAndSubnormalsTheirIeeeResults()
    {
        // 67 rows (an odd row at the end), K = 1031 (a 16-wide step and a scalar tail): rows of subnormals and
        // zeros, rows at ±65504, one +inf (x positive there: +inf), one NaN, the rest random.
        const int n = 67, k = 1031;
        var rng = new Random(9);
        var w = new ushort[n * k];
        for (int i = 0; i < w.Length; i++) w[i] = Fp16.ToBits((float)(rng.NextDouble() * 2 - 1));
        for (int c = 0; c < k; c++)
        {
            w[3 * k + c] = (ushort)(c % 3 == 0 ? 0x8000 : c % 1024);  // -0, +0 and subnormals
            w[4 * k + c] = (ushort)(c % 2 == 0 ? 0x7BFF : 0xFBFF);    // ±65504
        }
        w[10 * k + 500] = 0x7C00;
        w[40 * k + 17] = 0x7E00;
        var x = Enumerable.Range(0, k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        x[500] = 0.5f;
        var y = new float[n];
        using (var pool = new WorkerPool(2))
        using (var gemv = new Gemv(pool))
            fixed (ushort* pw = w) gemv.Multiply(new WeightMatrix((byte*)pw, DType.F16, n, k), x, y);
        for (int r = 0; r < n; r++)
        {
            if (r == 10) { Assert.Equal(float.PositiveInfinity, y[r]); continue; }
            if (r == 40) { Assert.True(float.IsNaN(y[r])); continue; }
            double exact = 0, magnitude = 0;
            for (int c = 0; c < k; c++) { exact += (double)Fp16.FromBits(w[r * k + c]) * x[c]; magnitude += Math.Abs((double)Fp16.FromBits(w[r * k + c]) * x[c]); }
            Assert.True(Math.Abs(y[r] - exact) <= (k + 16) * Math.Pow(2, -24) * magnitude + 1e-30, $"row {r}: {y[r]} vs {exact}");
        }
    }
}
