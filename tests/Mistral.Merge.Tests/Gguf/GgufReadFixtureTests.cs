using Mistral.Merge.Inference;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>
/// GGUF reading on the stories260k fixtures: exports read back give the source's perplexity exactly (f32, bf16) or
/// within the type's rounding (f16, q8_0, q4_0), on the first 4096 tokens of tinystories-eval.txt. The whole-text
/// figures are in docs/gguf.md.
/// </summary>
public sealed class GgufReadFixtureTests : IDisposable
{
    private readonly TempDir _d = new();

    public void Dispose() => _d.Dispose();

    private static int[] Ids(string model) =>
        TokenizerLoader.Load(model).Encode(File.ReadAllText(SharedFixtures.PathOf("text", "tinystories-eval.txt")), addBos: true)[..4096];

    private static double Ppl(string model, int[] ids)
    {
        using var m = TransformerModel.Load(model);
        using var backend = new CpuBackend(m, 2);
        return Perplexity.Evaluate(backend, ids, ctx: 512, stride: 512).Perplexity;
    }

    [FixtureTheory]
    [InlineData("stories260k", "f32", 0.0)]
    [InlineData("stories260k-bf16", "bf16", 0.0)]
    [InlineData("stories260k", "f16", 1e-3)]
    [InlineData("stories260k", "q8_0", 5e-3)]
    [InlineData("stories260k", "q4_0", 0.15)]
    public void AnExportReadBackKeepsThePerplexityOfItsSource(string fixture, string type, double relative)
    {
        var folder = SharedFixtures.PathOf(fixture);
        var gguf = _d[$"{type}.gguf"];
        GgufExport.Run(folder, gguf, "--type", type);
        var ids = Ids(folder);
        Assert.Equal(ids, Ids(gguf));
        double want = Ppl(folder, ids), got = Ppl(gguf, ids);
        if (relative == 0) Assert.Equal(want, got);
        else Assert.True(Math.Abs(got / want - 1) <= relative, $"{type}: perplexity {got} vs {want}");
    }

    [FixtureFact]
    public void TheGgufTokenizerEncodesTheWholeFixtureTextAsTokenizerModel()
    {
        var folder = SharedFixtures.PathOf("stories260k");
        var gguf = _d["q8_0.gguf"];
        GgufExport.Run(folder, gguf, "--type", "q8_0");
        var text = File.ReadAllText(SharedFixtures.PathOf("text", "tinystories-eval.txt"));
        var want = TokenizerLoader.Load(folder).Encode(text, addBos: true);
        var got = TokenizerLoader.Load(gguf);
        Assert.Equal(want, got.Encode(text, addBos: true));
        Assert.Equal(TokenizerLoader.Load(folder).Decode(want), got.Decode(want));
    }
}
