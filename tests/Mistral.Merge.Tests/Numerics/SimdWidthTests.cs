using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Mistral.Merge.Inference;
using Mistral.Merge.Merging;
using Mistral.Merge.Moe;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Numerics;

/// <summary>
/// The element-wise kernels and the GEMM micro-kernel give the same bits at every vector width: each is run at a
/// forced width (Vector512 and Vector256 are emulated in software where the CPU lacks them) and compared with the
/// width this machine uses.
/// </summary>
public unsafe class SimdWidthTests
{
    private static readonly SimdWidth[] Widths = [SimdWidth.Scalar, SimdWidth.V128, SimdWidth.V256, SimdWidth.V512];

    /// <summary>Random floats with the awkward values mixed in (NaN, ±Inf, ±0, subnormals, bf16 half-way cases).</summary>
    private static float[] Values(int n, int seed)
    {
        var rng = new Random(seed);
        var v = new float[n];
        float[] special = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f, 1e-40f, -1e-40f,
            BitConverter.UInt32BitsToSingle(0x3F808000), BitConverter.UInt32BitsToSingle(0x3F818000), BitConverter.UInt32BitsToSingle(0xFFFFFFFF)];
        for (int i = 0; i < n; i++)
            v[i] = i % 7 == 3 ? special[rng.Next(special.Length)] : (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-20, 20)));
        return v;
    }

    // Lengths that leave a remainder for every narrower loop and the scalar tail.
    private static readonly int[] Lengths = [0, 1, 3, 7, 15, 31, 33, 100, 1027];

    /// <summary>Same bits, except that any NaN equals any NaN: which operand's payload a NaN result carries is not
    /// specified (the JIT may swap the operands of a commutative add), and the writers canonicalize NaN anyway.</summary>
    private static void AssertSameBits(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(actual[i])
                || (float.IsNaN(expected[i]) && float.IsNaN(actual[i])),
                $"{what}: element {i} differs ({expected[i]} vs {actual[i]})");
    }

    [Fact]
    public void Bf16RoundTripConversionsAgreeAtEveryWidth()
    {
        foreach (int n in Lengths)
        {
            var x = Values(n, n);
            var wide = new ushort[n];
            Conversions.SingleToBFloat16(x, wide);
            for (int i = 0; i < n; i++) Assert.Equal(BFloat16.RoundToBits(x[i]), wide[i]);
            var back = new float[n];
            Conversions.BFloat16ToSingle(wide, back);
            foreach (var w in Widths)
            {
                var narrow = new ushort[n];
                Conversions.SingleToBFloat16(x, narrow, w);
                Assert.Equal(wide, narrow);
                var widened = new float[n];
                Conversions.BFloat16ToSingle(wide, widened, w);
                AssertSameBits(back, widened, $"bf16→f32 at {w}, n={n}");
            }
        }
    }

    [Fact]
    public void MergeElementWiseKernelsAgreeAtEveryWidthAndWithTheScalarReference()
    {
        foreach (int n in Lengths)
        {
            var a = Values(n, 1 + n);
            var b = Values(n, 2 + n);
            const float ca = 0.3f, cb = -1.7f;
            var reference = new float[n];
            for (int i = 0; i < n; i++) { float p = ca * a[i], q = cb * b[i]; reference[i] = p + q; }
            var combined = new float[n];
            Kernels.Combine(a, ca, b, cb, combined);
            AssertSameBits(reference, combined, "Combine");

            var added = (float[])a.Clone();
            Kernels.AddScaled(added, b, cb);
            for (int i = 0; i < n; i++) { float p = cb * b[i]; reference[i] = a[i] + p; }
            AssertSameBits(reference, added, "AddScaled");

            foreach (var w in Widths)
            {
                var d = new float[n];
                Simd.Map(a, b, d, new Kernels.LinearCombination(ca, cb), w);
                AssertSameBits(combined, d, $"Combine at {w}");
                Simd.Map(a, b, d, new Kernels.LinearCombination(1f, cb), w);
                AssertSameBits(added, d, $"AddScaled at {w}");
                Simd.Map(a, a, d, new Kernels.Scaled(ca), w);
                for (int i = 0; i < n; i++) reference[i] = ca * a[i];
                AssertSameBits(reference, d, $"Scale at {w}");
                Simd.Map(a, b, d, default(Kernels.Difference), w);
                for (int i = 0; i < n; i++) reference[i] = a[i] - b[i];
                AssertSameBits(reference, d, $"Subtract at {w}");
            }
        }
    }

    [Fact]
    public void SynthesizerValuesAgreeAtEveryWidthWithTheScalarDefinition()
    {
        const ulong key = 0x1234_5678_9ABC_DEF0;
        foreach (int n in Lengths)
            foreach (var w in Widths)
            {
                var v = new float[n];
                Mistral.Merge.Models.Synthesizer.Normal(key, 77, v, w);
                for (int i = 0; i < n; i++)
                    Assert.Equal(Mistral.Merge.Models.Synthesizer.NormalScalar(key + (ulong)(77 + i + 1) * 0x9E3779B97F4A7C15), v[i]);
            }
    }

    [Fact]
    public void MergeReductionsAddInTheSameOrderAtEveryWidth()
    {
        foreach (int n in Lengths)
        {
            var a = Values(n, 10 + n).Select(v => float.IsFinite(v) ? v : 0.5f).ToArray();
            var b = Values(n, 20 + n).Select(v => float.IsFinite(v) ? v : -0.25f).ToArray();
            double aa = 0, bb = 0, ab = 0;
            Kernels.Moments(a, b, ref aa, ref bb, ref ab);
            double l1 = Kernels.L1(a);
            var stream = new L1Stream(n);
            for (int i = 0; i < n; i += 5) stream.Add(a.AsSpan(i, Math.Min(5, n - i)));
            Assert.Equal(BitConverter.DoubleToInt64Bits(l1), BitConverter.DoubleToInt64Bits(stream.Total));
            foreach (var w in Widths)
            {
                double waa = 0, wbb = 0, wab = 0;
                Kernels.Moments(a, b, ref waa, ref wbb, ref wab, w);
                Assert.Equal(BitConverter.DoubleToInt64Bits(aa), BitConverter.DoubleToInt64Bits(waa));
                Assert.Equal(BitConverter.DoubleToInt64Bits(bb), BitConverter.DoubleToInt64Bits(wbb));
                Assert.Equal(BitConverter.DoubleToInt64Bits(ab), BitConverter.DoubleToInt64Bits(wab));
                Assert.Equal(BitConverter.DoubleToInt64Bits(l1), BitConverter.DoubleToInt64Bits(Kernels.L1(a, w)));
            }
        }
    }

    [Fact]
    public void ForwardPassAxpyIsAnUnfusedProductThenSum()
    {
        var y = Values(1027, 5);
        var acc = Values(1027, 6);
        var expected = new float[acc.Length];
        const float w = 0.37f;
        for (int i = 0; i < acc.Length; i++) { float p = y[i] * w; expected[i] = acc[i] + p; }
        fixed (float* pa = acc) fixed (float* py = y) Mistral.Merge.Inference.Ops.AddScaled(pa, py, w, acc.Length);
        AssertSameBits(expected, acc, "Ops.AddScaled");
        var x = Values(1027, 7);
        var z = (float[])x.Clone();
        TensorPrimitives.Add(z, y, z);
        for (int i = 0; i < x.Length; i++) x[i] += y[i];
        AssertSameBits(x, z, "Ops.Add");
    }

    [Fact]
    public void MoeWeightedSumAgreesAtEveryWidthWithTheFloat64Definition()
    {
        foreach (int n in Lengths)
        {
            const int offset = 3;
            float[][] sources = [Values(n + offset, 30 + n), Values(n + offset, 31 + n), Values(n + offset, 32 + n)];
            double[] weights = [0.2, 0.3000000001, 0.4999999999];
            var reference = new float[n];
            for (int i = 0; i < n; i++)
            {
                double acc = 0;
                for (int e = 0; e < sources.Length; e++) { double p = weights[e] * sources[e][offset + i]; acc += p; }
                reference[i] = (float)acc;
            }
            var wide = new float[n];
            WeightedSum.Compute(sources, weights, wide, offset);
            AssertSameBits(reference, wide, "WeightedSum");
            foreach (var w in Widths)
            {
                var d = new float[n];
                WeightedSum.Compute(sources, weights, d, offset, w);
                AssertSameBits(wide, d, $"WeightedSum at {w}, n={n}");
            }
        }
    }

    [Fact]
    public void AttentionScoresAndValueSumsOfFourHeadsEqualTheirSerialFmaChainsAtEveryWidth()
    {
        // Each score and each output element is its own FMA chain in a fixed order, so every width gives the bits of
        // the serial chain computed here, for each of the four heads read together (and a repeated head).
        const int cap = 45, ld = 45;
        float** pq = stackalloc float*[4];
        float** pp = stackalloc float*[4];
        float** ps = stackalloc float*[4];
        float** po = stackalloc float*[4];
        foreach (int d in new[] { 4, 12, 64, 100 })
            foreach (int n in new[] { 1, 5, 17, 37, 45 })
            {
                var q = Enumerable.Range(0, 4).Select(h => Values(d, d + n + h).Select(v => float.IsFinite(v) ? v : 0.5f).ToArray()).ToArray();
                var keys = Values(d * ld, 2 * d + n).Select(v => float.IsFinite(v) ? v : -1f).ToArray();
                var p = Enumerable.Range(0, 4).Select(h => Values(n, 3 * d + n + h).Select(v => float.IsFinite(v) ? Math.Abs(v) : 0.125f).ToArray()).ToArray();
                int kvDim = d + 8;
                var values = Values(cap * kvDim, 4 * d + n).Select(v => float.IsFinite(v) ? v : 2f).ToArray();
                int s0 = cap - n / 2 - 1 < 0 ? 0 : cap - n / 2 - 1; // slots wrap past the end of the cache
                int first = Math.Min(n, ld - s0);
                var expectScores = new float[4][];
                var expectOut = new float[4][];
                for (int h = 0; h < 4; h++)
                {
                    expectScores[h] = new float[first];
                    for (int j = 0; j < first; j++)
                    {
                        float a = 0;
                        for (int i = 0; i < d; i++) a = MathF.FusedMultiplyAdd(q[h][i], keys[i * ld + s0 + j], a);
                        expectScores[h][j] = a;
                    }
                    expectOut[h] = new float[d];
                    for (int c = 0; c < d; c++)
                    {
                        float a = 0;
                        for (int j = 0; j < n; j++) a = MathF.FusedMultiplyAdd(p[h][j], values[(s0 + j) % cap * kvDim + c], a);
                        expectOut[h][c] = a;
                    }
                }
                foreach (var w in Widths)
                    foreach (var heads in new[] { new[] { 0, 1, 2, 3 }, new[] { 2, 0, 0, 0 } }) // four heads; one head repeated
                    {
                        var sc = heads.Select(_ => new float[n]).ToArray();
                        var o = heads.Select(_ => new float[d]).ToArray();
                        var pins = new List<GCHandle>();
                        float* Pin(float[] a) { var g = GCHandle.Alloc(a, GCHandleType.Pinned); pins.Add(g); return (float*)g.AddrOfPinnedObject(); }
                        try
                        {
                            for (int j = 0; j < 4; j++)
                            {
                                pq[j] = Pin(q[heads[j]]); pp[j] = Pin(p[heads[j]]);
                                ps[j] = Pin(heads[j] == heads[0] && j > 0 ? sc[0] : sc[j]); po[j] = Pin(heads[j] == heads[0] && j > 0 ? o[0] : o[j]);
                            }
                            fixed (float* pk = keys) fixed (float* pv = values)
                            {
                                Attention.Scores(pq, d, pk, ld, s0, first, ps, w);
                                Attention.AccumulateValues(pp, n, pv, kvDim, cap, s0, d, po, w);
                            }
                        }
                        finally { foreach (var g in pins) g.Free(); }
                        for (int j = 0; j < 4; j++)
                        {
                            int slot = heads[j] == heads[0] && j > 0 ? 0 : j;
                            AssertSameBits(expectScores[heads[j]], sc[slot].AsSpan(0, first), $"scores of head {heads[j]} at {w}, d={d}, n={n}");
                            AssertSameBits(expectOut[heads[j]], o[slot], $"values of head {heads[j]} at {w}, d={d}, n={n}");
                        }
                    }
            }
    }

    [Fact]
    public void TwoRowBf16DotGivesEachRowTheBitsOfTheOneRowDotAtEveryWidth()
    {
        // The decode GEMV reads two rows at once (two streams sharing x); each row must keep the one-row bits.
        foreach (int k in new[] { 1, 15, 16, 31, 33, 63, 64, 100, 1027, 14336 })
        {
            var x = Values(k, 60 + k).Select(v => float.IsFinite(v) ? v : 0.75f).ToArray();
            var wb = Values(2 * k, 61 + k).Select(v => BFloat16.RoundToBits(float.IsFinite(v) ? v : -0.5f)).ToArray();
            var xs = new float[Math.Max(k, 64)];
            fixed (float* px = x) fixed (float* pxs = xs) fixed (ushort* pb = wb)
                foreach (var w in Widths)
                {
                    Gemv.SplitEvenOdd(px, k, pxs, w);
                    float y0, y1;
                    Gemv.Dot2Bf16Split(pb, pb + k, k, pxs, px, w, &y0, &y1);
                    Assert.Equal(BitConverter.SingleToUInt32Bits(Gemv.Dot1Bf16Split(pb, k, pxs, px, w)), BitConverter.SingleToUInt32Bits(y0));
                    Assert.Equal(BitConverter.SingleToUInt32Bits(Gemv.Dot1Bf16Split(pb + k, k, pxs, px, w)), BitConverter.SingleToUInt32Bits(y1));
                }
        }
    }

    [Fact]
    public void GemvDotProductsAgreeAtEveryWidthWithinRounding()
    {
        foreach (int k in new[] { 1, 3, 7, 15, 31, 33, 100, 1027 })
        {
            var x = Values(k, 40 + k).Select(v => float.IsFinite(v) ? v : 0.75f).ToArray();
            var wf = Values(4 * k, 41 + k).Select(v => float.IsFinite(v) ? v : -0.5f).ToArray();
            var wb = wf.Select(BFloat16.RoundToBits).ToArray();
            var wbf = wb.Select(b => BitConverter.UInt32BitsToSingle((uint)b << 16)).ToArray();
            var wideF = new float[4];
            var wideB = new float[4];
            fixed (float* px = x) fixed (float* pw = wf) fixed (ushort* pb = wb) fixed (float* pyf = wideF) fixed (float* pyb = wideB)
            {
                Gemv.Dot4F32(pw, k, px, pyf);
                for (int r = 0; r < 4; r++) pyb[r] = Gemv.Dot1Bf16(pb + r * k, px, k);
                foreach (var w in Widths)
                {
                    var yf = new float[4];
                    var yb = new float[4];
                    fixed (float* qf = yf) fixed (float* qb = yb)
                    {
                        Gemv.Dot4F32(pw, k, px, qf, w);
                        for (int r = 0; r < 4; r++) qb[r] = Gemv.Dot1Bf16(pb + r * k, px, k, w);
                    }
                    for (int r = 0; r < 4; r++)
                    {
                        // A dot product is a reduction: each width adds the products in a different order (lanes
                        // first, then across them), so the widths agree only up to float32 rounding. Bound: k + 16
                        // roundings of at most 2⁻²⁴ of Σ|w·x| each, against the float64 sum; twice that between widths.
                        double exactF = 0, exactB = 0, magF = 0, magB = 0;
                        for (int i = 0; i < k; i++)
                        {
                            exactF += (double)wf[r * k + i] * x[i]; magF += Math.Abs((double)wf[r * k + i] * x[i]);
                            exactB += (double)wbf[r * k + i] * x[i]; magB += Math.Abs((double)wbf[r * k + i] * x[i]);
                        }
                        double bound = (k + 16) * Math.Pow(2, -24);
                        Assert.True(Math.Abs(yf[r] - exactF) <= bound * magF, $"f32 row {r} at {w}, k={k}: {yf[r]} vs {exactF}");
                        Assert.True(Math.Abs(yb[r] - exactB) <= bound * magB, $"bf16 row {r} at {w}, k={k}: {yb[r]} vs {exactB}");
                        Assert.True(Math.Abs(yf[r] - wideF[r]) <= 2 * bound * magF, $"f32 row {r} at {w} vs the wide path, k={k}");
                        Assert.True(Math.Abs(yb[r] - wideB[r]) <= 2 * bound * magB, $"bf16 row {r} at {w} vs the wide path, k={k}");
                        // The f32 single-row kernel adds in the four-row kernel's order where it has the width
                        // (Vector512, Vector128, scalar — at Vector256 its single row stays scalar as on AVX2).
                        if (w != SimdWidth.V256)
                            Assert.Equal(BitConverter.SingleToUInt32Bits(yf[r]), BitConverter.SingleToUInt32Bits(Gemv.Dot1F32(pw + r * k, px, k, w)));
                    }
                }
            }
        }
    }

    [Fact]
    public void DotProductGemmTileAgreesAtEveryWidthWithinRounding()
    {
        foreach (int kc in new[] { 1, 3, 5, 9, 17, 33, 100, 515 })
        {
            const int ld = 517;
            var a = Values(4 * ld, 50 + kc).Select(v => float.IsFinite(v) ? v : 0.25f).ToArray();
            var b = Values(4 * ld, 51 + kc).Select(v => float.IsFinite(v) ? v : -2f).ToArray();
            var wide = new float[4 * 6];
            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pw = wide)
            {
                DotProductGemm.Tile4x4(pa, pb, ld, kc, pw, 6);
                foreach (var w in Widths)
                {
                    var c = new float[4 * 6];
                    fixed (float* pc = c) DotProductGemm.Tile4x4(pa, pb, ld, kc, pc, 6, w);
                    for (int r = 0; r < 4; r++)
                        for (int j = 0; j < 6; j++)
                        {
                            // A reduction, so each width adds in its own order (lanes, then across them): the widths
                            // agree up to float32 rounding, kc + 16 roundings of at most 2⁻²⁴ of Σ|a·b| each; twice that
                            // between two widths. The two columns past the tile stay untouched.
                            if (j >= 4) { Assert.Equal(0f, c[r * 6 + j]); continue; }
                            double exact = 0, mag = 0;
                            for (int p = 0; p < kc; p++) { double t = (double)a[r * ld + p] * b[j * ld + p]; exact += t; mag += Math.Abs(t); }
                            double bound = (kc + 16) * Math.Pow(2, -24) * mag;
                            Assert.True(Math.Abs(c[r * 6 + j] - exact) <= bound, $"({r},{j}) at {w}, kc={kc}: {c[r * 6 + j]} vs {exact}");
                            Assert.True(Math.Abs(c[r * 6 + j] - wide[r * 6 + j]) <= 2 * bound, $"({r},{j}) at {w} vs the wide path, kc={kc}");
                        }
                }
            }
        }
    }

    [Fact]
    public void PackedGemmMicroKernelsEqualTheScalarFormAtEveryWidth()
    {
        const int maxK = Gemm.MaxKBlock;
        var rng = new Random(5);
        var a = Enumerable.Range(0, maxK * 12).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var b = Enumerable.Range(0, maxK * 32).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var start = Enumerable.Range(0, 12 * 32).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        foreach (int kc in new[] { 1, 2, 37, maxK })
            foreach (bool first in new[] { true, false })
                foreach (int bits in new[] { 512, 256, 128 })
                {
                    int mr = PackedGemmKernel.TokensFor(bits), nr = PackedGemmKernel.WeightsFor(bits);
                    var expected = (float[])start.Clone();
                    var actual = (float[])start.Clone();
                    fixed (float* pa = a) fixed (float* pb = b) fixed (float* pe = expected) fixed (float* pv = actual)
                    {
                        PackedGemmKernel.Scalar(pa, pb, kc, pe, first, mr, nr);
                        PackedGemmKernel.Run(bits, pa, pb, kc, pv, first);
                    }
                    AssertSameBits(expected, actual, $"{mr}×{nr} micro-kernel at {bits} bits, kc={kc}, first={first}");
                }
    }
}
