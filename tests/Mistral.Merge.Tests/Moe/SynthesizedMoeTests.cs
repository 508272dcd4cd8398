using System.Text.Json.Nodes;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

/// <summary>The forward-pass side of MoE surgery on checkpoints the tests synthesize themselves (no ../shared).</summary>
public class SynthesizedMoeTests
{
    private static void Close(double expect, double got, double rel, string what) => Assert.True(Math.Abs(got - expect) <= rel * expect, $"{what}: {got:R} vs {expect:R}");

    /// <summary>Identity upcycle of a synthesized Mistral: every strategy gives back the dense model (weights bit for bit where they average).</summary>
    [Fact]
    public void UpcycledSynthesizedMistralEveryStrategyGivesBackTheDenseBase()
    {
        using var tmp = new TempDir();
        var dense = SynthMixtral.Synth(tmp.Path, "dense", arch: "mistral", seed: 7);
        var moe = SynthMixtral.Upcycle(dense, tmp["moe"], experts: 4, perTok: 2);
        var ids = MoeForwardPass.Tokens(moe, SynthMixtral.WriteText(tmp.Path), 2000);
        double basePpl = MoeForwardPass.Perplexity(dense, ids).Perplexity;
        Close(basePpl, MoeForwardPass.Perplexity(moe, ids).Perplexity, 1e-6, "upcycle");
        using var cal = MoeForwardPass.Calibrate(moe, ids);
        var freq = cal.Routing.SelectionFrequencyTable();
        foreach (var row in freq) Assert.Equal(1.0, row.Sum(), 12);
        var strategies = new (string Name, bool SameWeights, MoeToDenseOptions O)[]
        {
            ("expert", true, new() { Strategy = DenseStrategy.Expert, ExpertPerLayer = [3, 1] }),
            ("mean", true, new() { Strategy = DenseStrategy.Mean }),
            ("frequency", true, new() { Strategy = DenseStrategy.Frequency, Frequencies = freq }),
            ("aligned_mean", true, new() { Strategy = DenseStrategy.AlignedMean, Frequencies = freq, AlignedFrequencyWeighted = true }),
            ("concat", false, new() { Strategy = DenseStrategy.Concat }),
        };
        using var baseFolder = ModelFolder.Open(dense);
        foreach (var (name, same, o) in strategies)
        {
            MoeToDense.Convert(moe, tmp[name], o);
            double ppl = MoeForwardPass.Perplexity(tmp[name], ids).Perplexity;
            if (same)
            {
                using var got = ModelFolder.Open(tmp[name]);
                foreach (var n in baseFolder.TensorNames) Assert.True(baseFolder.GetBytes(n).SequenceEqual(got.GetBytes(n)), $"{name}: {n}");
                Assert.True(ppl == basePpl, $"{name}: {ppl:R} vs {basePpl:R}");
            }
            else Close(basePpl, ppl, 1e-6, name);
        }
        MoePrune.Run(moe, tmp["prune"], new MoePruneOptions { NumExperts = 2, Frequencies = freq });
        MoePrune.Run(moe, tmp["output"], new MoePruneOptions { NumExperts = 3, Selection = PruneSelection.OutputChange, Calibration = cal });
        MoePrune.Run(moe, tmp["group"], new MoePruneOptions { NumExperts = 2, Group = true, Calibration = cal });
        foreach (var name in new[] { "prune", "output", "group" }) Close(basePpl, MoeForwardPass.Perplexity(tmp[name], ids).Perplexity, 1e-6, name);
    }

    /// <summary>
    /// With zero routers every expert has probability 1/E: top-E routing is the uniform average of the
    /// experts' outputs, which is exactly what concat computes; top-2 picks experts 0 and 1 (ties → lower
    /// index) with weight 1/2 each, so routing frequencies are exactly [½, ½, 0, 0] and concat/prune of the
    /// top 2 by frequency compute the MoE itself.
    /// </summary>
    [Fact]
    public void ZeroRouterMixtralConcatAndPruneComputeTheMoeItself()
    {
        using var tmp = new TempDir();
        var src = SynthMixtral.Synth(tmp.Path, "mix", seed: 3);
        var all = SynthMixtral.ZeroRouters(src, tmp["all"], perTok: 4);
        var top2 = SynthMixtral.ZeroRouters(src, tmp["top2"]);
        var ids = MoeForwardPass.Tokens(all, SynthMixtral.WriteText(tmp.Path), 1000);

        MoeToDense.Convert(all, tmp["concat"], new MoeToDenseOptions { Strategy = DenseStrategy.Concat });
        Close(MoeForwardPass.Perplexity(all, ids).Perplexity, MoeForwardPass.Perplexity(tmp["concat"], ids).Perplexity, 1e-5, "concat of all vs top-4 MoE");

        var eval = MoeForwardPass.Evaluate(top2, ids);
        var freq = eval.Routing!.SelectionFrequencyTable();
        foreach (var row in freq) Assert.Equal([0.5, 0.5, 0, 0], row);
        Assert.Equal(ids.Length, eval.Routing.Tokens(1));
        Assert.Equal(ids.Length, eval.Routing.CoSelected(0, 0, 1));
        MoeToDense.Convert(top2, tmp["concat2"], new MoeToDenseOptions { Strategy = DenseStrategy.Concat, ConcatTopK = 2, Frequencies = freq });
        MoePrune.Run(top2, tmp["prune2"], new MoePruneOptions { NumExperts = 2, Frequencies = freq });
        Close(eval.Perplexity.Perplexity, MoeForwardPass.Perplexity(tmp["concat2"], ids).Perplexity, 1e-5, "concat top-2");
        Close(eval.Perplexity.Perplexity, MoeForwardPass.Perplexity(tmp["prune2"], ids).Perplexity, 1e-5, "prune to 2");
    }

    [Fact]
    public void CalibrationInputsReproduceTheForwardPassRouting()
    {
        using var tmp = new TempDir();
        var m = SynthMixtral.Synth(tmp.Path, "mix", seed: 9);
        var ids = MoeForwardPass.Tokens(m, SynthMixtral.WriteText(tmp.Path), 700);
        using var cal = MoeForwardPass.Calibrate(m, ids);
        Assert.Equal(ids.Length, cal.Tokens);
        var direct = MoeForwardPass.Routing(m, ids);
        using var f = ModelFolder.Open(m);
        var again = RouterStatisticsRunner.FromInputs(cal, new MixtralLayout(f));
        for (int l = 0; l < 2; l++)
            for (int e = 0; e < 4; e++)
            {
                Assert.Equal(direct.Selections(l, e), cal.Routing.Selections(l, e));
                Assert.True(Math.Abs(again.SelectionFrequency(l, e) - direct.SelectionFrequency(l, e)) <= 2.0 / ids.Length, $"layer {l} expert {e}");
            }
    }

    [Fact]
    public void ConvertedConfigsLoadInTheForwardPass()
    {
        using var tmp = new TempDir();
        var m = SynthMixtral.Synth(tmp.Path, "mix", seed: 4);
        MoeToDense.Convert(m, tmp["d"], new MoeToDenseOptions { Strategy = DenseStrategy.Concat, OutDType = DType.BF16 });
        using var dense = Mistral.Merge.Inference.TransformerModel.Load(tmp["d"]);
        Assert.Equal(Architecture.Mistral, dense.Shape.Architecture);
        Assert.Equal(4 * 48, dense.Shape.Intermediate);
        var cfg = JsonNode.Parse(File.ReadAllText(tmp["d/config.json"]))!;
        Assert.Equal("bfloat16", cfg["torch_dtype"]!.GetValue<string>());
    }
}
