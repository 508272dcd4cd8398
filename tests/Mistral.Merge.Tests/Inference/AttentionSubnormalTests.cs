using System.Numerics.Tensors;
using Mistral.Merge.Core;
using Mistral.Merge.Inference;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Tests.Inference;

/// <summary>
/// The attention softmax sets probabilities below 2^-126 to zero (subnormal operands cost a microcode assist per
/// FMA on Intel cores); these tests pin that the op zeroes exactly the subnormals and that attention outputs keep
/// the bits of the computation that keeps them.
/// </summary>
public sealed unsafe class AttentionSubnormalTests
{
    [Fact]
    public void ZeroSubnormalZeroesSubnormalsOnlyAtEveryWidth()
    {
        float tiny = float.Epsilon, maxSub = BitConverter.UInt32BitsToSingle(0x007F_FFFF), minNormal = BitConverter.UInt32BitsToSingle(0x0080_0000);
        float[] input = [tiny, -tiny, maxSub, -maxSub, 1e-40f, minNormal, -minNormal, 0f, -0f, 1f, -3.5f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, 1e-38f, 2e-38f];
        float[] expected = [0f, 0f, 0f, 0f, 0f, minNormal, -minNormal, 0f, 0f, 1f, -3.5f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, float.MaxValue, 0f, 2e-38f];
        // repeat to reach every vector width's loop and the scalar tail
        var x = Enumerable.Range(0, 5).SelectMany(_ => input).ToArray();
        var want = Enumerable.Range(0, 5).SelectMany(_ => expected).ToArray();
        foreach (var w in new[] { SimdWidth.Scalar, SimdWidth.V128, SimdWidth.V256, SimdWidth.V512 })
        {
            var y = x.ToArray();
            Simd.Map(y, y, y, default(Attention.ZeroSubnormal), w);
            for (int i = 0; i < y.Length; i++)
                Assert.True(BitConverter.SingleToUInt32Bits(want[i]) == BitConverter.SingleToUInt32Bits(y[i]) || float.IsNaN(want[i]) && float.IsNaN(y[i]),
                    $"{w}: element {i} ({x[i]:R}) became {y[i]:R}, expected {want[i]:R}");
        }
    }

    [Fact]
    public void PeakedAttentionEqualsTheComputationThatKeepsSubnormalProbabilitiesBitForBit()
    {
        // one KV head shared by four query heads, 100 cached positions; keys spread so that each head's scores
        // span ~120 after scaling: many exp(s − max) land below 2^-126 (checked below), some stay normal
        const int d = 16, n = 100, heads = 4;
        var shape = new TransformerShape(Architecture.Mistral, Hidden: heads * d, Intermediate: 8, Layers: 1, Heads: heads, KvHeads: 1, HeadDim: d,
            Vocab: 8, RopeTheta: 1e4, RmsNormEps: 1e-5, SlidingWindow: null, TiedEmbeddings: false, Experts: 0, ExpertsPerToken: 0);
        var rng = new Random(7);
        var q = new float[heads * d];
        for (int h = 0; h < heads; h++) for (int i = 0; i < d; i++) q[h * d + i] = (float)(rng.NextDouble() * 2 - 1) * (h + 1);
        var keys = new float[n][];
        var values = new float[n][];
        for (int j = 0; j < n; j++)
        {
            keys[j] = new float[d];
            values[j] = new float[d];
            for (int i = 0; i < d; i++)
            {
                keys[j][i] = (float)(rng.NextDouble() * 2 - 1) * 60f;
                values[j][i] = (float)(rng.NextDouble() * 2 - 1);
            }
        }

        using var cache = new KvCache(1, 1, d, n, window: null, chunk: 1);
        for (int j = 0; j < n; j++)
            fixed (float* k = keys[j]) fixed (float* v = values[j]) cache.Store(0, j, k, v);
        var output = new float[heads * d];
        using (var pool = new WorkerPool(1))
        using (var attention = new Attention(shape, 1))
            fixed (float* pq = q) fixed (float* po = output) attention.Run(pool, pq, cache, 0, n - 1, 1, po);

        // the same steps without the flush: serial FMA chains in position order, TensorPrimitives' softmax
        float scale = (float)(1.0 / Math.Sqrt(d));
        int subnormal = 0;
        for (int h = 0; h < heads; h++)
        {
            var s = new float[n];
            for (int j = 0; j < n; j++)
            {
                float a = 0;
                for (int i = 0; i < d; i++) a = MathF.FusedMultiplyAdd(q[h * d + i], keys[j][i], a);
                s[j] = a;
            }
            TensorPrimitives.Multiply(s, scale, s);
            TensorPrimitives.Subtract(s, TensorPrimitives.Max(s), s);
            TensorPrimitives.Exp(s, s);
            subnormal += s.Count(p => p != 0 && float.IsSubnormal(p));
            TensorPrimitives.Divide(s, TensorPrimitives.Sum(s), s);
            subnormal += s.Count(p => p != 0 && float.IsSubnormal(p));
            for (int c = 0; c < d; c++)
            {
                float a = 0;
                for (int j = 0; j < n; j++) a = MathF.FusedMultiplyAdd(s[j], values[j][c], a);
                Assert.True(BitConverter.SingleToUInt32Bits(a) == BitConverter.SingleToUInt32Bits(output[h * d + c]),
                    $"head {h}, element {c}: {output[h * d + c]:R}, expected {a:R}");
            }
        }
        Assert.True(subnormal >= 10, $"the case needs subnormal probabilities; it had {subnormal}");
    }
}
