using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Numerics;

public unsafe class GemmTests
{
    private static (byte[] Bytes, float[] Values) Weights(int rows, int cols, DType type, int seed)
    {
        var rng = new Random(seed);
        var v = new float[rows * cols];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        var bytes = new byte[v.Length * type.SizeOf()];
        Conversions.FromSingle(v, type, bytes);
        Conversions.ToSingle(bytes, type, v); // the values the kernel sees
        return (bytes, v);
    }

    private static float[] Activations(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static double Naive(float[] w, float[] x, int row, int xRow, int k)
    {
        double s = 0;
        for (int c = 0; c < k; c++) s += (double)w[row * k + c] * x[xRow * k + c];
        return s;
    }

    public static TheoryData<DType, int, int, int> Shapes()
    {
        var d = new TheoryData<DType, int, int, int>();
        foreach (var t in new[] { DType.F32, DType.F16, DType.BF16 })
        {
            d.Add(t, 1, 1, 1);
            d.Add(t, 5, 7, 3);
            d.Add(t, 33, 9, 17);
            d.Add(t, 70, 100, 300);   // K spans two 256-column blocks
            d.Add(t, 64, 300, 64);    // more than one weight block
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GemmMatchesNaiveProduct(DType type, int m, int n, int k)
    {
        var (bytes, w) = Weights(n, k, type, n * 31 + k);
        var x = Activations(m * k, m);
        var y = new float[m * n];
        using var pool = new WorkerPool(3);
        using var gemm = new Gemm(pool);
        fixed (byte* pw = bytes) gemm.Multiply(x, m, new WeightMatrix(pw, type, n, k), y);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                Assert.True(Math.Abs(Naive(w, x, j, i, k) - y[i * n + j]) < 1e-5 * Math.Sqrt(k) + 1e-6, $"Y[{i},{j}]");
    }

    /// <summary>Each output as its definition: one float32 FMA chain over k in increasing order, from zero.</summary>
    private static float FmaChain(float[] w, float[] x, int row, int xRow, int k)
    {
        float s = 0;
        for (int c = 0; c < k; c++) s = MathF.FusedMultiplyAdd(w[row * k + c], x[xRow * k + c], s);
        return s;
    }

    [Theory]
    [InlineData(DType.BF16, 5, 7, 3)]
    [InlineData(DType.BF16, 300, 100, 300)]  // two token chunks, two K slices (the second not a multiple of 8), a partial micro-panel
    [InlineData(DType.F16, 40, 1030, 520)]    // weight blocks of 64 rows and a partial last block, three K slices
    [InlineData(DType.F32, 600, 13, 64)]     // three token chunks, one partial micro-panel
    [InlineData(DType.BF16, 520, 2100, 512)]  // two chunks of whole groups, 33 blocks and a ragged one, 8 × 8 transposes
    public void GemmGivesEveryOutputAsOneFmaChainAtEveryVectorWidthAndThreadCount(DType type, int m, int n, int k)
    {
        var (bytes, w) = Weights(n, k, type, n * 7 + k);
        var x = Activations(m * k, m + 1);
        var expected = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) expected[i * n + j] = FmaChain(w, x, j, i, k);
        foreach (int bits in new[] { 512, 256, 128, 0 })
            foreach (int threads in new[] { 1, 3 })
            {
                var y = new float[m * n];
                using var pool = new WorkerPool(threads);
                using var gemm = new Gemm(pool, bits);
                fixed (byte* pw = bytes) gemm.Multiply(x, m, new WeightMatrix(pw, type, n, k), y);
                for (int i = 0; i < y.Length; i++)
                    Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(y[i]),
                        $"Y[{i / n},{i % n}] at {bits} bits on {threads} threads: {y[i]} vs {expected[i]}");
            }
    }

    [Theory]
    [InlineData(6, 256, 300, 700)]   // partial last group, partial last K slice, on the pool (M·K ≥ 65536)
    [InlineData(12, 128, 64, 1100)]  // the AVX-512 layout: 128-column slices
    [InlineData(6, 256, 5, 40)]      // small: packed on the calling thread
    public void PackingOnThePoolPlacesEveryElementWhereTheLayoutSays(int groupWidth, int depth, int m, int k)
    {
        var x = Activations(m * (k + 3), m + k);
        using var pool = new WorkerPool(3);
        using var packed = new PackedInput(groupWidth, depth);
        var before = Enumerable.Repeat(7f, (m + 32) * k).ToArray();
        fixed (float* pb = before) packed.Pack(pb, m + 32, k, k, pool); // the reused buffer holds other values first
        fixed (float* px = x)
        {
            packed.Pack(px, m, k, k + 3, pool); // row stride past K
            int groups = (m + groupWidth - 1) / groupWidth;
            Assert.Equal(groups, packed.Groups);
            for (int t = 0; t < groups * groupWidth; t++)
                for (int c = 0; c < k; c++)
                {
                    int g = t / groupWidth, j = t % groupWidth;
                    int k0 = c / depth * depth, kc = Math.Min(depth, k - k0);
                    long at = (long)k0 * groups * groupWidth + (long)g * kc * groupWidth + (long)(c - k0) * groupWidth + j;
                    float expected = t < m ? x[t * (k + 3) + c] : 0f;
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(packed.Data[at]), $"X[{t},{c}]");
                }
        }
    }

    [Theory]
    [InlineData(DType.BF16, 16, 16, 256)]  // the bf16 fast path (AVX2: widened in registers)
    [InlineData(DType.BF16, 32, 32, 8)]
    [InlineData(DType.BF16, 16, 11, 256)]  // a partial micro-panel: the generic path, rows past nr zero
    [InlineData(DType.BF16, 16, 16, 44)]   // a K slice that is not a multiple of 8: scalar transpose on x86, 4 × 4 blocks on ARM64
    [InlineData(DType.F32, 16, 16, 6)]     // nor of 4: scalar everywhere
    [InlineData(DType.F16, 32, 32, 256)]
    [InlineData(DType.F32, 16, 5, 40)]
    public void WeightPanelHoldsTheWidenedRowsTransposedAndZeroPastTheLastRow(DType type, int width, int nr, int kc)
    {
        const int n = 40, k = 300, r0 = 3, k0 = 8;
        var (bytes, w) = Weights(n, k, type, width + nr + kc);
        var panel = new float[kc * width];
        var rows = new float[width * Gemm.MaxKBlock];
        Array.Fill(rows, 9f); // stale scratch
        fixed (byte* pw = bytes) fixed (float* pp = panel) fixed (float* pr = rows)
            WeightPanel.Pack(new WeightMatrix(pw, type, n, k), r0, nr, k0, kc, width, pr, pp);
        for (int i = 0; i < kc; i++)
            for (int j = 0; j < width; j++)
            {
                float expected = j < nr ? w[(r0 + j) * k + k0 + i] : 0f;
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(panel[i * width + j]), $"panel[{i}][{j}]");
            }
    }

    /// <summary>
    /// Full panels at both widths take the in-register q8_0 path on AVX2, a partial panel the row-by-row one; both
    /// must hold the scalar dequantization's bits.
    /// </summary>
    [Theory]
    [InlineData(16, 16, 256, 256)]
    [InlineData(32, 32, 128, 384)]
    [InlineData(16, 13, 256, 0)]
    [InlineData(16, 16, 64, 448)]
    public void WeightPanelOfQ8_0BlocksHoldsTheDequantizedRows(int width, int nr, int kc, int k0)
    {
        const int n = 40, k = 512, r0 = 2;
        var rng = new Random(3);
        var values = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() * 2 - 1) * (rng.Next(3) == 0 ? 1e-3f : 1f)).ToArray();
        var blocks = new byte[Mistral.Merge.Numerics.Quantization.Q8_0.ByteCount(n * k)];
        Mistral.Merge.Numerics.Quantization.Q8_0.Quantize(values, blocks);
        var dense = new float[n * k];
        Mistral.Merge.Numerics.Quantization.Q8_0.Dequantize(blocks, dense, vector: false);
        var panel = new float[kc * width];
        var rows = new float[width * Gemm.MaxKBlock];
        Array.Fill(rows, 9f); // stale scratch
        fixed (byte* pw = blocks) fixed (float* pp = panel) fixed (float* pr = rows)
            WeightPanel.Pack(new WeightMatrix(pw, BlockQuant.Q8_0, n, k), r0, nr, k0, kc, width, pr, pp);
        for (int i = 0; i < kc; i++)
            for (int j = 0; j < width; j++)
            {
                float expected = j < nr ? dense[(r0 + j) * k + k0 + i] : 0f;
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(panel[i * width + j]), $"panel[{i}][{j}]");
            }
    }

    [Fact]
    public void GroupedGemmGivesEachMatrixTheBitsOfItsOwnMultiply()
    {
        const int m = 70, k = 520;
        var (b0, _) = Weights(300, k, DType.BF16, 1);
        var (b1, _) = Weights(40, k, DType.F16, 2);   // small: blocks halved, a partial micro-panel
        var (b2, _) = Weights(96, k, DType.F32, 3);
        var x = Activations(m * k, 4);
        using var pool = new WorkerPool(3);
        using var gemm = new Gemm(pool);
        using var packed = new PackedInput();
        packed.Pack(x, m, k);
        fixed (byte* p0 = b0) fixed (byte* p1 = b1) fixed (byte* p2 = b2)
        {
            var ws = new[] { new WeightMatrix(p0, DType.BF16, 300, k), new WeightMatrix(p1, DType.F16, 40, k), new WeightMatrix(p2, DType.F32, 96, k) };
            var single = ws.Select(w => new float[m * w.Rows]).ToArray();
            var grouped = ws.Select(w => new float[m * w.Rows]).ToArray();
            for (int i = 0; i < ws.Length; i++)
                fixed (float* py = single[i]) gemm.Multiply(packed, ws[i], py, ws[i].Rows);
            fixed (float* g0 = grouped[0]) fixed (float* g1 = grouped[1]) fixed (float* g2 = grouped[2])
                gemm.Multiply(packed, ws, new[] { (nint)g0, (nint)g1, (nint)g2 });
            for (int i = 0; i < ws.Length; i++)
                Assert.True(single[i].AsSpan().SequenceEqual(grouped[i]), $"matrix {i}");
            Assert.Throws<ArgumentException>(() => gemm.Multiply(packed, ReadOnlySpan<WeightMatrix>.Empty, ReadOnlySpan<nint>.Empty));
            Assert.Throws<ArgumentException>(() => gemm.Multiply(packed, new[] { ws[0], ws[1], ws[2], ws[0] }, new nint[4]));
            // A matrix of another width anywhere in the group is refused before anything runs; the GEMM stays usable.
            var narrow = new WeightMatrix(p2, DType.F32, 8, k - 8);
            var e = Assert.Throws<ArgumentException>(() => gemm.Multiply(packed, new[] { ws[0], narrow }, new nint[2]));
            Assert.Equal($"GEMM inner dimensions differ: X has {k} columns, W has {k - 8}", e.Message);
            var again = new float[m * ws[0].Rows];
            fixed (float* py = again) gemm.Multiply(packed, ws[0], py, ws[0].Rows);
            Assert.True(single[0].AsSpan().SequenceEqual(again));
        }
    }

    [Theory]
    [InlineData(6, 256, "6-token groups of 256 columns")]
    [InlineData(12, 256, "12-token groups of 256 columns")] // the AVX-512 kernel's groups, another K slice
    public void GemmRejectsActivationsPackedForAnotherMicroKernelWidth(int groupWidth, int depth, string packedAs)
    {
        using var pool = new WorkerPool(1);
        using var gemm = new Gemm(pool, 512);
        using var packed = new PackedInput(groupWidth, depth);
        packed.Pack(new float[4 * 8], 4, 8);
        var w = new float[3 * 8];
        var y = new float[4 * 3];
        fixed (float* pw = w) fixed (float* py = y)
        {
            var weight = new WeightMatrix((byte*)pw, DType.F32, 3, 8);
            nint yAddress = (nint)py;
            var e = Assert.Throws<ArgumentException>(() => gemm.Multiply(packed, weight, (float*)yAddress, 3));
            Assert.Equal($"X is packed in {packedAs}, this GEMM's kernel takes 12 × 128", e.Message);
        }
    }

    [Fact]
    public void GemmRejectsAnUnknownVectorWidth()
    {
        using var pool = new WorkerPool(1);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Gemm(pool, 64));
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GemvMatchesNaiveProduct(DType type, int _, int n, int k)
    {
        var (bytes, w) = Weights(n, k, type, n + k);
        var x = Activations(k, 3);
        var y = new float[n];
        using var pool = new WorkerPool(2);
        using var gemv = new Gemv(pool);
        fixed (byte* pw = bytes) gemv.Multiply(new WeightMatrix(pw, type, n, k), x, y);
        for (int j = 0; j < n; j++)
            Assert.True(Math.Abs(Naive(w, x, j, 0, k) - y[j]) < 1e-5 * Math.Sqrt(k) + 1e-6, $"y[{j}]");
    }

    [Fact]
    public void GemvStreamsLargeMatricesOnAllWorkers()
    {
        var (bytes, w) = Weights(515, 1031, DType.BF16, 1);
        var x = Activations(1031, 2);
        var y1 = new float[515];
        var y4 = new float[515];
        using (var pool = new WorkerPool(1)) using (var g = new Gemv(pool)) fixed (byte* pw = bytes) g.Multiply(new WeightMatrix(pw, DType.BF16, 515, 1031), x, y1);
        using (var pool = new WorkerPool(4)) using (var g = new Gemv(pool)) fixed (byte* pw = bytes) g.Multiply(new WeightMatrix(pw, DType.BF16, 515, 1031), x, y4);
        Assert.Equal(y1, y4);
        for (int j = 0; j < 515; j++) Assert.True(Math.Abs(Naive(w, x, j, 0, 1031) - y1[j]) < 1e-4);
        // Every row, whatever job it fell in, has the bits of the single-row kernel with its own split of x.
        fixed (byte* pw = bytes) fixed (float* px = x)
            for (int j = 0; j < 515; j++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(Gemv.Dot1Bf16((ushort*)pw + j * 1031, px, 1031)), BitConverter.SingleToUInt32Bits(y1[j]));
    }

    [Theory]
    [InlineData(1024, 2, 64)]   // 16 jobs: 8 per thread
    [InlineData(6144, 16, 32)]  // q/k/v as one group on 16 cores: 192 jobs
    [InlineData(4096, 16, 32)]
    [InlineData(1024, 16, 16)]  // never below 16 rows (4 calls of the 4-row kernel)
    [InlineData(515, 4, 16)]
    [InlineData(128000, 64, 64)]
    public void GemvJobsShrinkUntilEveryThreadHasEightButNotBelowSixteenRows(long rows, int threads, int expected) =>
        Assert.Equal(expected, Gemv.RowsPerJobFor(rows, threads));

    [Theory]
    [InlineData(new[] { 14336 }, 2)]          // gate_proj alone
    [InlineData(new[] { 4096, 1024, 1024 }, 2)] // q/k/v
    [InlineData(new[] { 14336, 14336 }, 2)]   // gate/up
    [InlineData(new[] { 300, 200 }, 16)]
    [InlineData(new[] { 515 }, 4)]
    [InlineData(new[] { 3, 40, 17 }, 2)]
    [InlineData(new[] { 32000 }, 64)]
    public void GemvScheduleDealsEveryRowOnceInShrinkingJobsThatStartOnMultiplesOfSixteen(int[] rows, int threads)
    {
        int[] matrix = new int[1], from = new int[1], to = new int[1];
        int jobs = Gemv.Schedule(rows, threads, ref matrix, ref from, ref to);
        int min = Gemv.RowsPerJobFor(rows.Sum(), threads);
        int m = 0, next = 0, last = int.MaxValue;
        for (int j = 0; j < jobs; j++)
        {
            if (next == rows[m]) { m++; next = 0; }
            Assert.Equal(m, matrix[j]);
            Assert.Equal(next, from[j]); // in order, no row twice or left out, never across a matrix's end
            Assert.Equal(0, from[j] % 16);
            int size = to[j] - from[j];
            Assert.True(size > 0 && to[j] <= rows[m]);
            if (to[j] < rows[m]) // a job cut by its matrix's end may be smaller than the rest
            {
                Assert.True(size >= min && size <= last, $"job {j}: {size} rows after {last}, at least {min}");
                last = size;
            }
            next = to[j];
        }
        Assert.Equal(rows.Length - 1, m);
        Assert.Equal(rows[^1], next);
    }

    [Fact]
    public void GemvScheduleStartsEachThreadOnAQuarterOfTheRowsOnTwoThreads()
    {
        int[] matrix = [], from = [], to = [];
        int jobs = Gemv.Schedule([14336], 2, ref matrix, ref from, ref to);
        // 14336 / 4 = 3584; then 10752 / 4 = 2688; 8064 / 4 = 2016; 6048 / 4 = 1512, down to a multiple of 16: 1504;
        // 4544 / 4 = 1136
        Assert.Equal([3584, 2688, 2016, 1504, 1136], Enumerable.Range(0, 5).Select(j => to[j] - from[j]));
        Assert.Equal(64, to[jobs - 2] - from[jobs - 2]); // the tail: the smallest job, 64 rows
    }

    [Theory]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    [InlineData(DType.F32)]
    public void GemvGivesTheSameBitsWithSmallerJobsOnManyThreads(DType type)
    {
        // 16 threads: jobs of 16 rows (a group: 16 + 32 rows of 64-row jobs on one thread)
        var (b1, _) = Weights(300, 96, type, 5);
        var (b2, _) = Weights(200, 96, type, 6);
        var x = Activations(96, 7);
        float[] Run(int threads, out float[] y2)
        {
            var y1 = new float[300];
            y2 = new float[200];
            using var pool = new WorkerPool(threads);
            using var g = new Gemv(pool);
            fixed (byte* p1 = b1) fixed (byte* p2 = b2) fixed (float* px = x) fixed (float* py1 = y1) fixed (float* py2 = y2)
                g.Multiply(px, [new WeightMatrix(p1, type, 300, 96), new WeightMatrix(p2, type, 200, 96)], [(nint)py1, (nint)py2]);
            return y1;
        }
        var one = Run(1, out var one2);
        var many = Run(16, out var many2);
        Assert.Equal(one, many);
        Assert.Equal(one2, many2);
    }
}
