using Mistral.Merge.Numerics;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>The Q8_0/Q4_0 kernels on the blocks: scalar reference, Vector256 path, GEMV and GEMM against dequantize-then-dot.</summary>
public sealed unsafe class QuantizedKernelTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    private static byte[] Quantize(BlockQuant q, float[] w)
    {
        var b = new byte[q == BlockQuant.Q8_0 ? Q8_0.ByteCount(w.Length) : Q4_0.ByteCount(w.Length)];
        if (q == BlockQuant.Q8_0) Q8_0.Quantize(w, b); else Q4_0.Quantize(w, b);
        return b;
    }

    [Fact]
    public void AQ8BlockDotIsTheScaleTimesTheSumOfProducts()
    {
        // d = 0.5 (exact in fp16), qs = j − 16, x = 1: 0.5 · Σ(j − 16) = 0.5 · (−16) = −8.
        var block = new byte[34];
        Fp16.Write(block, 0.5f);
        for (int j = 0; j < 32; j++) block[2 + j] = (byte)(sbyte)(j - 16);
        var x = Enumerable.Repeat(1f, 32).ToArray();
        fixed (byte* b = block) fixed (float* px = x)
        {
            Assert.Equal(-8f, QuantizedDot.Dot(BlockQuant.Q8_0, b, px, 32, vector: false));
            Assert.Equal(-8f, QuantizedDot.Dot(BlockQuant.Q8_0, b, px, 32, vector: true));
        }
    }

    [Fact]
    public void AQ4BlockDotReadsLowNibblesFirstThenHighOnesMinusEight()
    {
        // d = 2, byte j = (hi 15, lo 0): weights 0..15 are (0 − 8)·2 = −16, 16..31 are (15 − 8)·2 = 14; x[j] = j.
        var block = new byte[18];
        Fp16.Write(block, 2f);
        for (int j = 0; j < 16; j++) block[2 + j] = 0xF0;
        var x = Enumerable.Range(0, 32).Select(j => (float)j).ToArray();
        float want = -16 * (15 * 16 / 2) + 14 * ((16 + 31) * 16 / 2); // −1920 + 5264
        fixed (byte* b = block) fixed (float* px = x)
        {
            Assert.Equal(want, QuantizedDot.Dot(BlockQuant.Q4_0, b, px, 32, vector: false));
            Assert.Equal(want, QuantizedDot.Dot(BlockQuant.Q4_0, b, px, 32, vector: true));
        }
    }

    [Theory]
    [InlineData(BlockQuant.Q8_0)]
    [InlineData(BlockQuant.Q4_0)]
    public void VectorAndScalarDotsAgreeWithTheDequantizedWeights(BlockQuant q)
    {
        const int cols = 32 * 40;
        var blocks = Quantize(q, Random(cols, 1));
        var x = Random(cols, 2);
        var w = new float[cols];
        if (q == BlockQuant.Q8_0) Q8_0.Dequantize(blocks, w); else Q4_0.Dequantize(blocks, w);
        double want = 0;
        for (int i = 0; i < cols; i++) want += (double)w[i] * x[i];
        fixed (byte* b = blocks) fixed (float* px = x)
        {
            float scalar = QuantizedDot.Dot(q, b, px, cols, vector: false), vector = QuantizedDot.Dot(q, b, px, cols, vector: true);
            Assert.True(Math.Abs(scalar - want) < 1e-4, $"scalar {scalar} vs {want}");
            Assert.True(Math.Abs(vector - want) < 1e-4, $"vector {vector} vs {want}");
        }
    }

    [Theory]
    [InlineData(BlockQuant.Q8_0)]
    [InlineData(BlockQuant.Q4_0)]
    public void GemvAndGemmOnBlocksMatchTheFloatKernelsOnTheDequantizedMatrix(BlockQuant q)
    {
        const int rows = 70, cols = 96, m = 9;
        var blocks = Quantize(q, Random(rows * cols, 3));
        var dense = new float[rows * cols];
        if (q == BlockQuant.Q8_0) Q8_0.Dequantize(blocks, dense); else Q4_0.Dequantize(blocks, dense);
        var x = Random(m * cols, 4);
        using var pool = new WorkerPool(2);
        using var gemv = new Gemv(pool);
        using var gemm = new Gemm(pool);
        fixed (byte* b = blocks) fixed (float* d = dense)
        {
            var wq = new WeightMatrix(b, q, rows, cols);
            var wf = new WeightMatrix((byte*)d, DType.F32, rows, cols);
            Assert.True(wq.IsQuantized);
            Assert.Equal(blocks.Length, wq.ByteLength);
            var yq = new float[m * rows];
            var yf = new float[m * rows];
            for (int i = 0; i < m; i++)
            {
                gemv.Multiply(wq, x.AsSpan(i * cols, cols), yq.AsSpan(i * rows, rows));
                gemv.Multiply(wf, x.AsSpan(i * cols, cols), yf.AsSpan(i * rows, rows));
            }
            // Q8_0's GEMV quantizes x to Q8_0 first, as llama.cpp does (exact bits: Q8DotTests); Q4_0's keeps x in float32.
            double gemvTolerance = q == BlockQuant.Q8_0 ? 0.05 : 1e-4;
            Assert.True(GgufEval.MaxAbsDiff(yq, yf) < gemvTolerance, $"GEMV differs by {GgufEval.MaxAbsDiff(yq, yf)}");
            gemm.Multiply(x, m, wq, yq);
            Assert.True(GgufEval.MaxAbsDiff(yq, yf) < 1e-4, $"GEMM differs by {GgufEval.MaxAbsDiff(yq, yf)}");
            // A row slice (one Mixtral expert of a stacked tensor) starts at its own blocks.
            var slice = wq.RowSlice(10, 5);
            Assert.Equal((nint)wq.At(10, 0), (nint)slice.Data);
            Assert.Equal(wq.RowBytes * 5, slice.ByteLength);
        }
    }
}
