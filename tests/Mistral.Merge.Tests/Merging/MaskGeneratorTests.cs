using Mistral.Merge.Merging;

namespace Mistral.Merge.Tests.Merging;

public class MaskGeneratorTests
{
    [Fact]
    public void SpecIntermediates()
    {
        Assert.Equal(0xbb99f1cad1e26788UL, MaskGenerator.Fnv1a64("model.layers.0.mlp.up_proj.weight"));
        Assert.Equal(0xd4f5dfe7269f1766UL, MaskGenerator.Mix64(0 ^ 0xbb99f1cad1e26788UL));
        Assert.Equal(0x848b998f8bc966ebUL, MaskGenerator.Key(0, "model.layers.0.mlp.up_proj.weight", 0));
    }

    [Theory]
    [InlineData(0UL, "model.layers.0.mlp.up_proj.weight", 0, new uint[] { 7687833, 11622327, 2031297, 1172095 })]
    [InlineData(0UL, "model.layers.0.mlp.up_proj.weight", 1, new uint[] { 2222756, 469175, 16047192, 10697800 })]
    [InlineData(42UL, "lm_head.weight", 0, new uint[] { 4135208, 11240471, 12157291, 5869862 })]
    public void SpecTestVectors(ulong seed, string name, int ordinal, uint[] expected)
    {
        var key = MaskGenerator.Key(seed, name, ordinal);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], MaskGenerator.Draw24(key, i));
    }

    [Fact]
    public void KeepComparesInDoublePrecision()
    {
        var key = MaskGenerator.Key(0, "model.layers.0.mlp.up_proj.weight", 0);
        // u0 = 7687833 / 2^24 exactly
        Assert.False(MaskGenerator.Keep(key, 0, 7687833 / 16777216.0));
        Assert.True(MaskGenerator.Keep(key, 0, 7687834 / 16777216.0));
    }
}
