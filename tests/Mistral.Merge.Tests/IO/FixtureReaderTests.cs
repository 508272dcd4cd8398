using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Mistral.Merge.Models;
using Mistral.Merge.Tests.Numerics;

namespace Mistral.Merge.Tests.IO;

/// <summary>Our reader against an independent hand parse of the shared fixtures and their README facts.</summary>
public class FixtureReaderTests
{
    [FixtureTheory]
    [InlineData("stories260k", 47, 260_032L, 1_045_096L, "F32", "25640b9ce62ee63b8883dc423854727ff1f7594405102d21f9b028c5d11764e7")]
    [InlineData("stories260k-bf16", 47, 260_032L, 525_032L, "BF16", "3bcf7fd09b2c58b8a982fc48170f0e4a457ddebe575a57519ce2eedb94ac9bb0")]
    [InlineData("stories260k-moe4", 97, 756_672L, 3_037_872L, "F32", "4d29fd05a9222a0b6be30f54429392202a943090325659b9750512dbbed84f56")]
    public void ReaderEqualsHandParseTensorByTensor(string folder, int tensors, long parameters, long fileBytes, string dtype, string sha256)
    {
        var path = SharedFixtures.PathOf(folder, "model.safetensors");
        var raw = File.ReadAllBytes(path);
        Assert.Equal(fileBytes, raw.Length);
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(raw)));
        var expected = RawSafetensors.Parse(raw);

        using var m = ModelFolder.Open(SharedFixtures.PathOf(folder));
        Assert.Equal(tensors, m.TensorNames.Count);
        Assert.Equal(parameters, m.ParameterCount);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), m.TensorNames.Order(StringComparer.Ordinal));
        foreach (var name in m.TensorNames)
        {
            var e = expected[name];
            var t = m.Info(name);
            Assert.Equal(dtype, e.DType);
            Assert.Equal(e.DType, t.DType.ToString());
            Assert.Equal(e.Shape, t.Shape);
            Assert.True(e.Bytes.AsSpan().SequenceEqual(m.GetBytes(name)), name);
        }
        Assert.Equal(Mistral.Merge.Models.Architecture.Mistral == m.Config!.Architecture ? 0 : 4, m.Config.NumLocalExperts);
    }

    [FixtureFact]
    public void Bf16FixtureIsTheRneConversionOfTheF32ModelBitForBit()
    {
        using var f32 = ModelFolder.Open(SharedFixtures.PathOf("stories260k"));
        using var bf16 = ModelFolder.Open(SharedFixtures.PathOf("stories260k-bf16"));
        Assert.Equal(f32.TensorNames, bf16.TensorNames);
        long checkedElements = 0;
        foreach (var name in f32.TensorNames)
        {
            var src = MemoryMarshal.Cast<byte, float>(f32.GetBytes(name));
            var want = MemoryMarshal.Cast<byte, ushort>(bf16.GetBytes(name));
            var got = new ushort[src.Length];
            Conversions.SingleToBFloat16(src, got);
            Assert.True(want.SequenceEqual(got), name);
            for (int i = 0; i < src.Length; i++)
                Assert.Equal(BFloat16Tests.Reference(BitConverter.SingleToUInt32Bits(src[i])), want[i]);
            // Widening back through the model-folder API gives exactly the bf16 values.
            var widened = bf16.ReadSingle(name);
            for (int i = 0; i < src.Length; i++) Assert.Equal((uint)want[i] << 16, BitConverter.SingleToUInt32Bits(widened[i]));
            checkedElements += src.Length;
        }
        Assert.Equal(260_032, checkedElements);
    }

    [FixtureFact]
    public void ConfigIsTyped()
    {
        using var m = ModelFolder.Open(SharedFixtures.PathOf("stories260k-moe4"));
        var c = m.Config!;
        Assert.Equal(Mistral.Merge.Models.Architecture.Mixtral, c.Architecture);
        Assert.Equal((64, 172, 5, 8, 4, 8, 512), (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, c.VocabSize));
        Assert.Equal((4, 2, true), (c.NumLocalExperts, c.NumExpertsPerTok, c.TieWordEmbeddings));
        Assert.Equal((1, 2), (c.BosTokenId, c.EosTokenId));
        var seven = ModelConfig.Load(SharedFixtures.PathOf("mistral-7b-v0.1", "config.json"));
        Assert.Equal((4096, 14336, 32, 32, 8, 128, 32000, 4096), (seven.HiddenSize, seven.IntermediateSize, seven.NumHiddenLayers,
            seven.NumAttentionHeads, seven.NumKeyValueHeads, seven.HeadDim, seven.VocabSize, seven.SlidingWindow));
    }

    [FixtureFact]
    public void IndexWithoutWeightsNamesTheMissingShard()
    {
        // mistral-7b-v0.1 holds the real 291-tensor index but no weights.
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(SharedFixtures.PathOf("mistral-7b-v0.1")));
        Assert.Equal($"{SharedFixtures.PathOf("mistral-7b-v0.1", "model.safetensors.index.json")}: shard 'model-00001-of-00002.safetensors' is listed but does not exist", e.Message);
    }
}
