using System.Runtime.Intrinsics;
using Mistral.Merge.Numerics;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Tests.Numerics;

/// <summary>
/// The llama.cpp-style Q8_0 decode kernel: activation quantization (ggml's x86 quantize_row_q8_0), the integer block
/// dot at every path the CPU has (same bits as the scalar reference), the load-time quantizer, the bf16 GEMV's split x.
/// </summary>
public sealed unsafe class Q8DotTests
{
    private static float[] Random(int n, int seed, float scale = 1)
    {
        var r = new Random(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1) * scale)];
    }

    [Fact]
    public void ActivationQuantizationScalesByTheMaximumAndRoundsTiesToEven()
    {
        // amax = 127 → d = 1, id = 127/127 = 1: q = x rounded half to even (ggml's _mm256_round_ps), not away from zero.
        var x = new float[32];
        float[] head = [127f, 2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 1.5f, -126.4f];
        head.CopyTo(x, 0);
        sbyte[] want = [127, 2, 4, -2, 0, 0, 2, -126];
        foreach (bool vector in new[] { false, true })
        {
            var q = new byte[Q8_0.BlockBytes];
            float d;
            fixed (float* px = x) fixed (byte* pq = q) Q8Dot.QuantizeActivation(px, 32, pq, &d, vector);
            Assert.Equal(1f, d);
            Assert.Equal(Fp16.ToBits(1f), BitConverter.ToUInt16(q, 0));
            Assert.Equal(want, q[2..10].Select(b => (sbyte)b).ToArray());
            Assert.All(q[10..], b => Assert.Equal(0, b));
        }
    }

    [Fact]
    public void ActivationQuantizationOfAZeroBlockIsAllZeros()
    {
        var x = new float[64];
        x[40] = 3f; // the second block is not zero
        var q = new byte[2 * Q8_0.BlockBytes];
        var d = new float[2];
        fixed (float* px = x) fixed (byte* pq = q) fixed (float* pd = d) Q8Dot.QuantizeActivation(px, 64, pq, pd);
        Assert.All(q[..Q8_0.BlockBytes], b => Assert.Equal(0, b));
        Assert.Equal(0f, d[0]);
        Assert.Equal(Fp16.FromBits(Fp16.ToBits(3f / 127f)), d[1]);
        Assert.Equal(127, (sbyte)q[Q8_0.BlockBytes + 2 + 8]);
    }

    [Fact]
    public void VectorAndScalarActivationQuantizationGiveTheSameBytes()
    {
        var x = Random(32 * 50, 1, 3);
        var a = new byte[Q8_0.ByteCount(x.Length)];
        var b = new byte[a.Length];
        var da = new float[50];
        var db = new float[50];
        fixed (float* px = x) fixed (byte* pa = a) fixed (byte* pb = b) fixed (float* pda = da) fixed (float* pdb = db)
        {
            Q8Dot.QuantizeActivation(px, x.Length, pa, pda, vector: true);
            Q8Dot.QuantizeActivation(px, x.Length, pb, pdb, vector: false);
        }
        Assert.Equal(a, b);
        Assert.Equal(da, db);
    }

    [Fact]
    public void BlockScalesWidenExactlyForEveryHalf()
    {
        for (int h = 0; h < 65536; h++)
            Assert.Equal(BitConverter.SingleToUInt32Bits(Fp16.FromBits((ushort)h)), BitConverter.SingleToUInt32Bits(Q8Dot.Half((ushort)h)));
    }

    [Fact]
    public void TheScaleTableWidensEveryHalfExactly()
    {
        for (int h = 0; h < 65536; h++)
        {
            float want = Fp16.FromBits((ushort)h), got = Q8Dot.TableHalf((ushort)h);
            if (float.IsNaN(want)) Assert.True(float.IsNaN(got));
            else Assert.Equal(BitConverter.SingleToUInt32Bits(want), BitConverter.SingleToUInt32Bits(got));
        }
    }

    [Fact]
    public void FourBlockScalesWidenTogetherExactlyForEveryHalf()
    {
        for (int h = 0; h < 65536; h += 4)
        {
            var v = Q8Dot.Halves(Vector128.Create(h, h + 1, h + 2, h + 3));
            for (int i = 0; i < 4; i++)
            {
                float want = Fp16.FromBits((ushort)(h + i));
                if (float.IsNaN(want)) Assert.True(float.IsNaN(v[i]));
                else Assert.Equal(BitConverter.SingleToUInt32Bits(want), BitConverter.SingleToUInt32Bits(v[i]));
            }
        }
    }

    [Fact]
    public void TheGemvGivesEachRowTheScalarDotBitsWithANegativeScale()
    {
        const int cols = 32 * 64, rows = 4;
        var wb = new byte[Q8_0.ByteCount(cols * rows)];
        Q8_0.Quantize(Random(cols * rows, 7, 0.1f), wb);
        Fp16.Write(wb.AsSpan((int)Q8_0.ByteCount(cols) + 3 * Q8_0.BlockBytes), -0.002f); // a negative scale (another tool's file)
        var x = Random(cols, 8, 2);
        var xq = new byte[Q8_0.ByteCount(cols)];
        var xd = new float[cols / 32];
        var y = new float[rows];
        using var pool = new WorkerPool(1);
        using var gemv = new Gemv(pool);
        fixed (byte* pw = wb) fixed (float* px = x) fixed (byte* pq = xq) fixed (float* pd = xd)
        {
            gemv.Multiply(new WeightMatrix(pw, BlockQuant.Q8_0, rows, cols), x, y);
            Q8Dot.QuantizeActivation(px, cols, pq, pd);
            for (int r = 0; r < rows; r++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(Q8Dot.Dot(pw + r * Q8_0.ByteCount(cols), pq, pd, cols / 32, Q8Dot.Path.Scalar)), BitConverter.SingleToUInt32Bits(y[r]));
        }
    }

    [Fact]
    public void TheDotIsTheScaledSumOfIntegerProductsPerBlock()
    {
        // Power-of-two scales keep every step exact: block 0 d_w·d_x = 0.5·0.25, block 1 = 2·1.
        const int nb = 2;
        var w = new byte[nb * Q8_0.BlockBytes];
        var xq = new byte[nb * Q8_0.BlockBytes];
        float[] dw = [0.5f, 2f], dx = [0.25f, 1f];
        double want = 0;
        for (int b = 0; b < nb; b++)
        {
            Fp16.Write(w.AsSpan(b * Q8_0.BlockBytes), dw[b]);
            Fp16.Write(xq.AsSpan(b * Q8_0.BlockBytes), dx[b]);
            long s = 0;
            for (int j = 0; j < 32; j++)
            {
                sbyte qw = (sbyte)(j * 7 - 100 + b), qx = (sbyte)(127 - j * 8);
                w[b * Q8_0.BlockBytes + 2 + j] = (byte)qw;
                xq[b * Q8_0.BlockBytes + 2 + j] = (byte)qx;
                s += qw * qx;
            }
            want += (double)dw[b] * dx[b] * s;
        }
        fixed (byte* pw = w) fixed (byte* px = xq) fixed (float* pd = dx)
            foreach (var path in Enum.GetValues<Q8Dot.Path>().Where(Q8Dot.IsSupported))
                Assert.Equal((float)want, Q8Dot.Dot(pw, px, pd, nb, path));
    }

    [Fact]
    public void EveryDotPathGivesTheScalarReferencesBits()
    {
        const int cols = 32 * 128;
        var wb = new byte[Q8_0.ByteCount(cols)];
        Q8_0.Quantize(Random(cols, 2, 0.05f), wb);
        var x = Random(cols, 3, 4);
        var xq = new byte[wb.Length];
        var xd = new float[cols / 32];
        fixed (byte* pw = wb) fixed (float* px = x) fixed (byte* pq = xq) fixed (float* pd = xd)
        {
            Q8Dot.QuantizeActivation(px, cols, pq, pd);
            uint scalar = BitConverter.SingleToUInt32Bits(Q8Dot.Dot(pw, pq, pd, cols / 32, Q8Dot.Path.Scalar));
            foreach (var path in Enum.GetValues<Q8Dot.Path>().Where(Q8Dot.IsSupported))
                Assert.Equal(scalar, BitConverter.SingleToUInt32Bits(Q8Dot.Dot(pw, pq, pd, cols / 32, path)));
            // and it is the dequantized dot within the activation's quantization error
            var wf = new float[cols];
            Q8_0.Dequantize(wb, wf);
            double exact = 0, bound = 0;
            for (int i = 0; i < cols; i++) { exact += (double)wf[i] * x[i]; bound += Math.Abs(wf[i]) * pd[i / 32] * 0.6; } // half a step, plus the fp16 rounding of d
            Assert.InRange(Q8Dot.Dot(pw, pq, pd, cols / 32) - exact, -bound, bound);
        }
    }

    [Fact]
    public void VectorWeightQuantizationGivesTheScalarReferencesBytes()
    {
        // random blocks at several magnitudes, exact ties (amax 127 → id 1: ±k.5 rounds away from zero), a zero block,
        // subnormals, and a block with a NaN and one with an infinity (both left to the scalar reference)
        var x = new List<float>();
        foreach (float scale in new[] { 1e-3f, 1f, 300f }) x.AddRange(Random(32 * 40, (int)scale + 11, scale));
        float[] ties = [127f, 2.5f, -2.5f, 0.5f, -0.5f, 126.5f, -126.5f, 1.5f, -1.5f, 0.49999997f, -0.49999997f, 3.5f];
        x.AddRange([.. ties, .. new float[32 - ties.Length]]);
        x.AddRange(new float[32]);
        x.AddRange(Enumerable.Range(0, 32).Select(i => BitConverter.UInt32BitsToSingle((uint)(i * 37 + 1)) * (i % 2 == 0 ? 1 : -1)));
        x.AddRange([float.NaN, .. Random(31, 12)]);
        x.AddRange([float.PositiveInfinity, .. Random(31, 13)]);
        var a = new byte[Q8_0.ByteCount(x.Count)];
        var b = new byte[a.Length];
        Q8_0.Quantize(x.ToArray(), a, vector: true);
        Q8_0.Quantize(x.ToArray(), b, vector: false);
        Assert.Equal(b, a);
        int tieBlock = 3 * 40 * Q8_0.BlockBytes;
        Assert.Equal(new sbyte[] { 127, 3, -3, 1, -1, 127, -127, 2, -2, 0, 0, 4 }, a[(tieBlock + 2)..(tieBlock + 2 + ties.Length)].Select(v => (sbyte)v).ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void LoadTimeQuantizationEqualsTheReferenceQuantizerRowByRow(int threads)
    {
        const int rows = 130, cols = 96;
        var f = Random(rows * cols, 4);
        var bf = new ushort[f.Length];
        for (int i = 0; i < f.Length; i++) bf[i] = (ushort)(BitConverter.SingleToUInt32Bits(f[i]) >> 16);
        var widened = bf.Select(b => BitConverter.UInt32BitsToSingle((uint)b << 16)).ToArray();
        var want = new byte[Q8_0.ByteCount(f.Length)];
        Q8_0.Quantize(widened, want);
        using var q = new QuantizedWeights();
        fixed (ushort* p = bf)
        {
            var m = q.ToQ8_0(new WeightMatrix((byte*)p, DType.BF16, rows, cols), threads);
            Assert.Equal(BlockQuant.Q8_0, m.Quant);
            Assert.Equal(want.Length, m.ByteLength);
            Assert.Equal(want, new ReadOnlySpan<byte>(m.Data, want.Length).ToArray());
            Assert.Equal(want.Length, q.Bytes);
        }
    }

    [Fact]
    public void TheQ8GemvIsTheQ8DotOfEveryRowWithTheActivationQuantizedOnce()
    {
        const int rows = 70, cols = 96;
        var wb = new byte[Q8_0.ByteCount(rows * cols)];
        Q8_0.Quantize(Random(rows * cols, 5), wb);
        var x = Random(cols, 6);
        var xq = new byte[Q8_0.ByteCount(cols)];
        var xd = new float[cols / 32];
        var y = new float[rows];
        using var pool = new WorkerPool(2);
        using var gemv = new Gemv(pool);
        fixed (byte* pw = wb) fixed (float* px = x) fixed (byte* pq = xq) fixed (float* pd = xd)
        {
            gemv.Multiply(new WeightMatrix(pw, BlockQuant.Q8_0, rows, cols), x, y);
            Q8Dot.QuantizeActivation(px, cols, pq, pd, vector: false);
            for (int r = 0; r < rows; r++)
                Assert.Equal(Q8Dot.Dot(pw + r * Q8_0.ByteCount(cols), pq, pd, cols / 32, Q8Dot.Path.Scalar), y[r]);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AGemvGroupGivesEachMatrixTheBitsOfItsOwnGemv(bool q8)
    {
        // three matrices sharing x (as q/k/v), 600 + 130 + 9 rows so jobs span matrix boundaries and the pool runs
        const int cols = 96;
        int[] rows = [600, 130, 9];
        var data = rows.Select((n, i) => Random(n * cols, 20 + i, 0.2f)).ToArray();
        var q = data.Select(f => { var b = new byte[Q8_0.ByteCount(f.Length)]; Q8_0.Quantize(f, b); return b; }).ToArray();
        var bf = data.Select(f => f.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray()).ToArray();
        var x = Random(cols, 23);
        var alone = rows.Select(n => new float[n]).ToArray();
        var grouped = rows.Select(n => new float[n]).ToArray();
        using var pool = new WorkerPool(2);
        using var gemv = new Gemv(pool);
        fixed (byte* q0 = q[0]) fixed (byte* q1 = q[1]) fixed (byte* q2 = q[2])
        fixed (ushort* b0 = bf[0]) fixed (ushort* b1 = bf[1]) fixed (ushort* b2 = bf[2])
        fixed (float* px = x) fixed (float* g0 = grouped[0]) fixed (float* g1 = grouped[1]) fixed (float* g2 = grouped[2])
        {
            WeightMatrix[] ws = q8
                ? [new(q0, BlockQuant.Q8_0, rows[0], cols), new(q1, BlockQuant.Q8_0, rows[1], cols), new(q2, BlockQuant.Q8_0, rows[2], cols)]
                : [new((byte*)b0, DType.BF16, rows[0], cols), new((byte*)b1, DType.BF16, rows[1], cols), new((byte*)b2, DType.BF16, rows[2], cols)];
            for (int i = 0; i < 3; i++) gemv.Multiply(ws[i], x, alone[i]);
            gemv.Multiply(px, ws, [(nint)g0, (nint)g1, (nint)g2]);
        }
        for (int i = 0; i < 3; i++)
            Assert.Equal(alone[i].Select(BitConverter.SingleToUInt32Bits), grouped[i].Select(BitConverter.SingleToUInt32Bits));
    }

    [Theory]
    [InlineData(SimdWidth.Scalar)]
    [InlineData(SimdWidth.V128)]
    [InlineData(SimdWidth.V256)]
    [InlineData(SimdWidth.V512)]
    public void SplitXHoldsEachChunksEvenElementsThenItsOddOnes(SimdWidth width)
    {
        const int k = 75; // two 32-chunks at V512, then an 11-element tail kept in place
        var x = Enumerable.Range(0, k).Select(i => (float)i).ToArray();
        var xs = new float[k];
        fixed (float* px = x) fixed (float* ps = xs) Gemv.SplitEvenOdd(px, k, ps, width);
        int lanes = (int)width, chunk = 2 * lanes, full = width == SimdWidth.Scalar ? 0 : k / chunk * chunk;
        for (int i = 0; i < k; i++)
        {
            int c = i / chunk * chunk, j = i - c;
            float want = i >= full ? i : j < lanes ? c + 2 * j : c + 2 * (j - lanes) + 1;
            Assert.Equal(want, xs[i]);
        }
    }
}
