using Mistral.Merge.Models;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

public class MoePruneTests
{
    [FixtureFact]
    public void PruneByFrequencyKeepsTheMostUsedExpertsAndTheirRouterRows()
    {
        using var tmp = new TempDir();
        var freq = MoeToDenseFixtureTests.TinyStoriesFrequencies();
        MoePrune.Run(SharedFixtures.PathOf("stories260k-moe4"), tmp["out"], new MoePruneOptions { NumExperts = 2, Frequencies = freq });
        using var got = ModelFolder.Open(tmp["out"]);
        using var src = ModelFolder.Open(SharedFixtures.PathOf("stories260k-moe4"));
        int[][] kept = [[0, 1], [2, 3], [2, 3], [1, 2], [1, 3]]; // from the tinystories routing table
        for (int l = 0; l < 5; l++)
        {
            var router = src.ReadSingle(MixtralLayout.Router(l));
            var newRouter = got.ReadSingle(MixtralLayout.Router(l));
            Assert.Equal(new long[] { 2, 64 }, got.Info(MixtralLayout.Router(l)).Shape);
            for (int k = 0; k < 2; k++)
            {
                Assert.Equal(router[(kept[l][k] * 64)..((kept[l][k] + 1) * 64)], newRouter[(k * 64)..((k + 1) * 64)]);
                foreach (var w in new[] { "w1", "w2", "w3" })
                    Assert.True(src.GetBytes(MixtralLayout.ExpertTensor(l, kept[l][k], w)).SequenceEqual(got.GetBytes(MixtralLayout.ExpertTensor(l, k, w))));
            }
            Assert.False(got.Contains(MixtralLayout.ExpertTensor(l, 2, "w1")));
        }
        Assert.Equal(2, got.Config!.NumLocalExperts);
        Assert.Equal(2, got.Config.NumExpertsPerTok);
        Assert.Equal(Mistral.Merge.Models.Architecture.Mixtral, got.Config.Architecture);
        Assert.Equal(0.02, got.Config.Json["router_aux_loss_coef"]!.GetValue<double>());
    }

    [Fact]
    public void OutputChangeDropsTheExpertThatIsNeverRouted()
    {
        using var tmp = new TempDir();
        var rng = new Random(3);
        // expert 1 of every layer has a router row far below the others: it is never in the top 2 of 4
        TinyMixtral.Write(tmp["in"], 4, router: l => Enumerable.Range(0, 4 * TinyMixtral.Hidden).Select(i => i / TinyMixtral.Hidden == 1 ? -100f : (float)(rng.NextDouble() - 0.5)).ToArray());
        var x = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, 40 * TinyMixtral.Hidden).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray();
        var cal = new TinyMixtral.FixedCalibration(x, 40);
        var r = MoePrune.Run(tmp["in"], tmp["out"], new MoePruneOptions { NumExperts = 3, Selection = PruneSelection.OutputChange, Calibration = cal });
        Assert.All(r.LayerNotes, n => Assert.EndsWith(": 0 2 3", n));
        using var got = ModelFolder.Open(tmp["out"]);
        using var src = ModelFolder.Open(tmp["in"]);
        Assert.True(src.GetBytes(MixtralLayout.ExpertTensor(1, 3, "w2")).SequenceEqual(got.GetBytes(MixtralLayout.ExpertTensor(1, 2, "w2"))));
        Assert.Equal("kept", got.Config!.Json["custom_key"]!.GetValue<string>());
        Assert.Equal(2, got.Config.NumExpertsPerTok);
    }

    [Fact]
    public void GroupMergesNearDuplicateExpertsWithFrequencyWeightsAndMergesRouterRowsAlike()
    {
        using var tmp = new TempDir();
        var rng = new Random(4);
        var basis = Enumerable.Range(0, 2).Select(_ => MoeStrategiesTests.RandomExpert(rng, TinyMixtral.Hidden, TinyMixtral.Inter)).ToArray();
        // experts 0 and 2 are noisy copies of basis 0, experts 1 and 3 of basis 1
        var experts = new ExpertWeights[4];
        for (int e = 0; e < 4; e++)
        {
            var c = basis[e % 2].Clone();
            for (int i = 0; i < c.W1.Length; i++) { c.W1[i] += 0.01f * (float)(rng.NextDouble() - 0.5); c.W2[i] += 0.01f * (float)(rng.NextDouble() - 0.5); }
            experts[e] = c;
        }
        var routers = Enumerable.Range(0, 4 * TinyMixtral.Hidden).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        TinyMixtral.Write(tmp["in"], 4, expert: (_, e) => experts[e], router: _ => routers);
        var x = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, 30 * TinyMixtral.Hidden).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray();
        double[][] freq = [[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]];
        MoePrune.Run(tmp["in"], tmp["out"], new MoePruneOptions { NumExperts = 2, Group = true, Frequencies = freq, Calibration = new TinyMixtral.FixedCalibration(x, 30) });
        using var got = ModelFolder.Open(tmp["out"]);
        for (int l = 0; l < 2; l++)
        {
            var w1 = got.ReadSingle(MixtralLayout.ExpertTensor(l, 1, "w1"));  // cluster {1, 3}
            var router = got.ReadSingle(MixtralLayout.Router(l));
            double a = freq[l][1] / (freq[l][1] + freq[l][3]), b = freq[l][3] / (freq[l][1] + freq[l][3]);
            for (int i = 0; i < w1.Length; i++) Assert.Equal((float)(a * experts[1].W1[i] + b * experts[3].W1[i]), w1[i]);
            for (int i = 0; i < TinyMixtral.Hidden; i++)
                Assert.Equal((float)(a * routers[TinyMixtral.Hidden + i] + b * routers[3 * TinyMixtral.Hidden + i]), router[TinyMixtral.Hidden + i]);
        }
        Assert.Equal(2, got.Config!.NumLocalExperts);
    }

    [Fact]
    public void BadRequestsAreOneLineErrorsAndWriteNothing()
    {
        using var tmp = new TempDir();
        TinyMixtral.Write(tmp["in"], 4);
        string Err(MoePruneOptions o) => Assert.Throws<MergeException>(() => MoePrune.Run(tmp["in"], tmp["out"], o)).Message;
        Assert.Contains("num_experts 5 must be between 1 and 4", Err(new MoePruneOptions { NumExperts = 5, Frequencies = [[1, 1, 1, 1], [1, 1, 1, 1]] }));
        Assert.Contains("needs routing frequencies", Err(new MoePruneOptions { NumExperts = 2 }));
        Assert.Contains("group needs calibration", Err(new MoePruneOptions { NumExperts = 2, Group = true, Frequencies = [[1, 1, 1, 1], [1, 1, 1, 1]] }));
        Assert.Contains("must be 2 layers × 4 experts", Err(new MoePruneOptions { NumExperts = 2, Frequencies = [[1, 1, 1, 1]] }));
        Assert.False(Directory.Exists(tmp["out"]));
    }
}
