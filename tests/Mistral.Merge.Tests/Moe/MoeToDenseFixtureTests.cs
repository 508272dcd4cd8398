using System.Text.Json.Nodes;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

/// <summary>MoE → dense on the shared fixtures: the identity upcycle must give back the dense base exactly.</summary>
public class MoeToDenseFixtureTests
{
    internal static double[][] TinyStoriesFrequencies()
    {
        var j = JsonNode.Parse(File.ReadAllText(SharedFixtures.PathOf("expected.json")))!;
        var rows = (JsonArray)j["models"]!["stories260k-moe4"]!["routing"]!["tinystories-eval.txt"]!["selection_frequency"]!;
        return rows.Select(r => ((JsonArray)r!).Select(v => v!.GetValue<double>()).ToArray()).ToArray();
    }

    [FixtureTheory]
    [InlineData("mean")]
    [InlineData("expert")]
    [InlineData("frequency")]
    [InlineData("aligned_mean")]
    public void IdentityUpcycleCollapsesToTheDenseBaseBitExactly(string strategy)
    {
        using var tmp = new TempDir();
        var o = new MoeToDenseOptions
        {
            Strategy = MoeToDense.ParseStrategy(strategy, "test"),
            ExpertPerLayer = [0, 1, 2, 3, 1],
            Frequencies = TinyStoriesFrequencies(),
            AlignedFrequencyWeighted = true,
        };
        MoeToDense.Convert(SharedFixtures.PathOf("stories260k-moe4-identity"), tmp["out"], o);
        using var got = ModelFolder.Open(tmp["out"]);
        using var baseModel = ModelFolder.Open(SharedFixtures.PathOf("stories260k"));
        Assert.Equal(baseModel.TensorNames, got.TensorNames);
        foreach (var n in baseModel.TensorNames)
        {
            Assert.Equal(baseModel.Info(n).Shape, got.Info(n).Shape);
            Assert.True(baseModel.GetBytes(n).SequenceEqual(got.GetBytes(n)), $"{strategy}: {n} differs");
        }
        // The config is the base's, apart from keys the base config happens to spell differently.
        var c = got.Config!;
        Assert.Equal(Architecture.Mistral, c.Architecture);
        Assert.Equal("mistral", c.ModelType);
        Assert.Equal(172, c.IntermediateSize);
        foreach (var k in MoeConfigs.MoeKeys) Assert.False(c.Json.ContainsKey(k), k);
        var expectedJson = baseModel.Config!.Json;
        foreach (var (k, v) in expectedJson) Assert.True(JsonNode.DeepEquals(v, c.Json[k]), $"config key {k}: {c.Json[k]?.ToJsonString()} vs {v?.ToJsonString()}");
        Assert.True(File.Exists(tmp["out/tokenizer.model"]));
    }

    [FixtureFact]
    public void IdentityConcatIsFourStackedCopiesWithDownScaledByAQuarter()
    {
        using var tmp = new TempDir();
        MoeToDense.Convert(SharedFixtures.PathOf("stories260k-moe4-identity"), tmp["out"], new MoeToDenseOptions { Strategy = DenseStrategy.Concat });
        using var got = ModelFolder.Open(tmp["out"]);
        using var b = ModelFolder.Open(SharedFixtures.PathOf("stories260k"));
        Assert.Equal(688, got.Config!.IntermediateSize);
        for (int l = 0; l < 5; l++)
        {
            var gate = b.ReadSingle(TensorNames.Layer(l, "mlp.gate_proj.weight"));
            var down = b.ReadSingle(TensorNames.Layer(l, "mlp.down_proj.weight"));
            var g = got.ReadSingle(TensorNames.Layer(l, "mlp.gate_proj.weight"));
            var d = got.ReadSingle(TensorNames.Layer(l, "mlp.down_proj.weight"));
            Assert.Equal(new long[] { 688, 64 }, got.Info(TensorNames.Layer(l, "mlp.up_proj.weight")).Shape);
            Assert.Equal(new long[] { 64, 688 }, got.Info(TensorNames.Layer(l, "mlp.down_proj.weight")).Shape);
            for (int s = 0; s < 4; s++) Assert.Equal(gate, g[(s * gate.Length)..((s + 1) * gate.Length)]);
            for (int row = 0; row < 64; row++)
                for (int s = 0; s < 4; s++)
                    for (int u = 0; u < 172; u++) Assert.Equal(down[row * 172 + u] * 0.25f, d[row * 688 + s * 172 + u]);
        }
    }

    [FixtureTheory]
    [InlineData("mean")]
    [InlineData("expert")]
    [InlineData("frequency")]
    public void TrainedMoeMatchesAnIndependentComputation(string strategy)
    {
        using var tmp = new TempDir();
        var freq = TinyStoriesFrequencies();
        var o = new MoeToDenseOptions { Strategy = MoeToDense.ParseStrategy(strategy, "test"), ExpertPerLayer = [0, 0, 0, 0, 0], Frequencies = freq };
        MoeToDense.Convert(SharedFixtures.PathOf("stories260k-moe4"), tmp["out"], o);
        using var got = ModelFolder.Open(tmp["out"]);
        using var src = ModelFolder.Open(SharedFixtures.PathOf("stories260k-moe4"));
        foreach (var n in got.TensorNames)
        {
            if (!TensorNames.TryParseLayer(n, out var l, out var suffix) || !suffix.StartsWith("mlp.", StringComparison.Ordinal))
            {
                Assert.True(src.GetBytes(n).SequenceEqual(got.GetBytes(n)), n);
                continue;
            }
            string w = suffix switch { "mlp.gate_proj.weight" => "w1", "mlp.up_proj.weight" => "w3", _ => "w2" };
            var experts = Enumerable.Range(0, 4).Select(e => src.ReadSingle($"model.layers.{l}.block_sparse_moe.experts.{e}.{w}.weight")).ToArray();
            var actual = got.ReadSingle(n);
            double fsum = freq[l].Sum();
            for (int i = 0; i < actual.Length; i++)
            {
                float expect = strategy switch
                {
                    "expert" => experts[0][i],
                    "mean" => (float)(0.25 * experts[0][i] + 0.25 * experts[1][i] + 0.25 * experts[2][i] + 0.25 * experts[3][i]),
                    _ => (float)(freq[l][0] / fsum * experts[0][i] + freq[l][1] / fsum * experts[1][i] + freq[l][2] / fsum * experts[2][i] + freq[l][3] / fsum * experts[3][i]),
                };
                Assert.Equal(expect, actual[i]);
            }
        }
        Assert.DoesNotContain(got.TensorNames, n => n.Contains("block_sparse_moe"));
        Assert.Equal(src.TensorNames.Count - 5 * 13 + 5 * 3, got.TensorNames.Count);
    }
}
