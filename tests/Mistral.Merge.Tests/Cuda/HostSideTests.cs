using System.Runtime.InteropServices;
using Mistral.Merge.Cuda;

namespace Mistral.Merge.Tests.Cuda;

/// <summary>The host-side pieces of the GPU path that need no GPU: RoPE tables, the packed layer layout, weight packing.</summary>
public class HostSideTests
{
    [Fact]
    public void RopeTablesFollowHfFloat32Formula()
    {
        var (cos, sin) = RopeTables.Build(positions: 300, headDim: 8, theta: 10000);
        Assert.Equal(300 * 4, cos.Length);
        for (int i = 0; i < 4; i++) { Assert.Equal(1f, cos[i]); Assert.Equal(0f, sin[i]); }   // position 0: identity
        // inv_freq = [1, 0.1, 0.01, 0.001] (f32); position 1, pair 0: angle exactly 1.
        Assert.Equal(MathF.Cos(1f), cos[4]);
        Assert.Equal(MathF.Sin(1f), sin[4]);
        for (int p = 0; p < 300; p++)
            for (int i = 0; i < 4; i++)
            {
                double ang = p * Math.Pow(10000, -2.0 * i / 8);
                Assert.True(Math.Abs(cos[p * 4 + i] - Math.Cos(ang)) < 3e-5, $"cos p={p} i={i}");
                Assert.True(Math.Abs(sin[p * 4 + i] - Math.Sin(ang)) < 3e-5, $"sin p={p} i={i}");
            }
        Assert.Equal("head_dim 7 is odd: rotary embeddings need an even head dimension",
            Assert.Throws<MergeException>(() => RopeTables.Build(4, 7, 10000)).Message);
    }

    [Fact]
    public void DenseLayoutFusesQkvAndGateUpAtAlignedOffsets()
    {
        var c = SyntheticWeights.MakeConfig("mistral", hidden: 64, layers: 2, heads: 8, kvHeads: 2, intermediate: 100, vocab: 50);
        var lay = new LayerLayout(c, bf16: true);
        Assert.Equal((8 + 2 * 2) * 8, lay.QkvRows);
        var parts = lay.Parts(1).ToList();
        Assert.Equal(["model.layers.1.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight",
            "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.v_proj.weight",
            "model.layers.1.self_attn.o_proj.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
            "model.layers.1.mlp.down_proj.weight"], parts.Select(p => p.Name));
        Assert.Equal(lay.Qkv + 64 * 64 * 2, parts[3].Offset);          // k rows follow the 64 q rows
        Assert.Equal(lay.Qkv + (64 + 16) * 64 * 2, parts[4].Offset);   // v rows follow the 16 k rows
        Assert.Equal(lay.GateUp + 100 * 64 * 2, parts[7].Offset);      // up rows follow the 100 gate rows
        foreach (var off in new[] { lay.Norm1, lay.Norm2, lay.Qkv, lay.O, lay.GateUp, lay.Down })
            Assert.Equal(0, off % LayerLayout.Align);
        // Parts never overlap and fit in the slot.
        var spans = parts.Select(p => (p.Offset, End: p.Offset + p.Shape.Aggregate(1L, (a, b) => a * b) * (p.Norm ? 4 : 2))).OrderBy(s => s.Offset).ToList();
        for (int i = 1; i < spans.Count; i++) Assert.True(spans[i].Offset >= spans[i - 1].End);
        Assert.True(spans[^1].End <= lay.Bytes);
        Assert.Equal(2 * new LayerLayout(c, bf16: true).ExpertDownStride, new LayerLayout(c, bf16: false).ExpertDownStride);
    }

    [Fact]
    public void MoeLayoutStacksExpertsW1W3ThenW2()
    {
        var c = SyntheticWeights.MakeConfig("mixtral", hidden: 32, layers: 1, heads: 4, kvHeads: 4, intermediate: 48, vocab: 40, experts: 3, expertsPerToken: 2);
        var lay = new LayerLayout(c, bf16: false);
        var parts = lay.Parts(0).ToDictionary(p => p.Name);
        Assert.Equal(lay.Router, parts["model.layers.0.block_sparse_moe.gate.weight"].Offset);
        for (int e = 0; e < 3; e++)
        {
            Assert.Equal(lay.GateUp + e * lay.ExpertGateUpStride, parts[$"model.layers.0.block_sparse_moe.experts.{e}.w1.weight"].Offset);
            Assert.Equal(lay.GateUp + e * lay.ExpertGateUpStride + 48 * 32 * 4, parts[$"model.layers.0.block_sparse_moe.experts.{e}.w3.weight"].Offset);
            Assert.Equal(lay.Down + e * lay.ExpertDownStride, parts[$"model.layers.0.block_sparse_moe.experts.{e}.w2.weight"].Offset);
        }
        Assert.Equal(2L * 48 * 32 * 4, lay.ExpertGateUpStride);
        Assert.Equal(2 + 4 + 1 + 3 * 3, parts.Count);   // norms, q k v o, router, 3 experts × (w1, w3, w2)
    }

    [Fact]
    public unsafe void PackingConvertsF32ToBf16WithRneAndKeepsNormsF32()
    {
        var c = SyntheticWeights.MakeConfig("mistral", hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 24, vocab: 30);
        var src = new SyntheticWeights(c, DType.F32, seed: 3);
        var lay = new LayerLayout(c, bf16: true);
        var buf = new byte[lay.Bytes];
        fixed (byte* p = buf) WeightPacker.PackLayer(src, lay, 0, p, buf.Length);

        foreach (var (name, offset, shape, norm) in lay.Parts(0))
        {
            var f = MemoryMarshal.Cast<byte, float>(src.Bytes(name)).ToArray();
            if (norm)
                Assert.Equal(f, MemoryMarshal.Cast<byte, float>(buf.AsSpan((int)offset, f.Length * 4)).ToArray());
            else
            {
                var packed = MemoryMarshal.Cast<byte, ushort>(buf.AsSpan((int)offset, f.Length * 2)).ToArray();
                for (int i = 0; i < f.Length; i++)
                {
                    uint u = BitConverter.SingleToUInt32Bits(f[i]);
                    ushort rne = (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);   // the fixture README's integer RNE
                    Assert.Equal(rne, packed[i]);
                }
            }
        }
    }

    [Fact]
    public unsafe void PackingRejectsATensorOfTheWrongShapeByName()
    {
        var good = SyntheticWeights.MakeConfig("mistral", hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 24, vocab: 30);
        var other = SyntheticWeights.MakeConfig("mistral", hidden: 16, layers: 1, heads: 2, kvHeads: 1, intermediate: 20, vocab: 30);
        var src = new SyntheticWeights(other, DType.BF16);   // weights for intermediate 20, config says 24
        var lay = new LayerLayout(good, bf16: true);
        var buf = new byte[lay.Bytes];
        var e = Assert.Throws<MergeException>(() => { fixed (byte* p = buf) WeightPacker.PackLayer(src, lay, 0, p, buf.Length); });
        Assert.Equal($"{src.Origin}: model.layers.0.mlp.gate_proj.weight has shape [20, 16] but config.json implies [24, 16]", e.Message);
    }

    [Fact]
    public void SyntheticWeightsAreDeterministicAndShareable()
    {
        var c = SyntheticWeights.MakeConfig("mixtral", hidden: 16, layers: 2, heads: 2, kvHeads: 1, intermediate: 24, vocab: 30, experts: 2, expertsPerToken: 1);
        var a = new SyntheticWeights(c, DType.BF16, seed: 9);
        var b = new SyntheticWeights(c, DType.BF16, seed: 9);
        var shared = new SyntheticWeights(c, DType.BF16, seed: 9, shareAcrossLayers: true);
        const string w1 = "model.layers.1.block_sparse_moe.experts.1.w1.weight";
        Assert.True(a.Bytes(w1).SequenceEqual(b.Bytes(w1)));
        Assert.False(a.Bytes(w1).SequenceEqual(a.Bytes("model.layers.0.block_sparse_moe.experts.1.w1.weight")));
        Assert.True(shared.Bytes(w1).SequenceEqual(shared.Bytes("model.layers.0.block_sparse_moe.experts.0.w1.weight")));
        var norm = new float[16];
        Conversions.ToSingle(a.Bytes("model.layers.0.input_layernorm.weight"), DType.BF16, norm);
        Assert.All(norm, v => Assert.InRange(v, 0.89f, 1.11f));
    }
}
