using System.Text.Json.Nodes;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Build;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Tests.Moe;

/// <summary>
/// moe-build on the fixtures: examples/moe/stories260k-build.yml (stories260k + its wiki and code fine-tunes, prompts
/// from the train splits). Router rows against tests/moe-build/expected-gates.json (generate.py: mergekit's
/// router.py on a float64 PyTorch forward pass), copied tensors byte for byte, routing and perplexity pinned.
/// </summary>
public class MoeBuildFixtureTests
{
    private static readonly string Example = Path.Combine(SharedFixtures.RepoRoot, "examples", "moe", "stories260k-build.yml");
    private static readonly Lazy<JsonObject> Expected = new(() => (JsonObject)JsonNode.Parse(File.ReadAllText(
        Path.Combine(SharedFixtures.RepoRoot, "tests", "moe-build", "expected-gates.json")))!);

    private static void AssertGates(string mode, float[][] gates)
    {
        var e = Expected.Value[mode]!.AsArray();
        Assert.Equal(e.Count, gates.Length);
        for (int l = 0; l < gates.Length; l++)
            for (int x = 0; x < 3; x++)
                for (int j = 0; j < 64; j++)
                    Assert.True(Math.Abs(e[l]![x]![j]!.GetValue<double>() - gates[l][x * 64 + j]) <= 1e-5, $"{mode} layer {l} expert {x} [{j}]");
    }

    [FixtureFact]
    public void TheStoriesExampleBuildsRoutersEqualToTheTorchReferenceAndCopiesItsSourcesByteForByte()
    {
        using var d = new TempDir();
        var r = CliRunner.Run("moe-build", Example, d["out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var o = ModelFolder.Open(d["out"]);
        Assert.Equal(3, o.Config!.NumLocalExperts);
        Assert.Equal(2, o.Config.NumExpertsPerTok);
        AssertGates("hidden", [.. Enumerable.Range(0, 5).Select(l => o.ReadSingle(MixtralLayout.Router(l)))]);
        var a = Architecture.Mistral;
        using var b = ModelFolder.Open(SharedFixtures.PathOf("stories260k"));
        foreach (var n in b.TensorNames.Where(n => !n.Contains(".mlp.", StringComparison.Ordinal)))
            Assert.True(b.GetBytes(n).SequenceEqual(o.GetBytes(n)), n);
        foreach (var (e, name) in new[] { (0, "stories260k"), (1, "stories260k-wiki"), (2, "stories260k-code") })
        {
            using var src = ModelFolder.Open(SharedFixtures.PathOf(name));
            for (int l = 0; l < 5; l++)
                foreach (var (w, s) in new[] { ("w1", a.Gate!), ("w3", a.Up!), ("w2", a.Down!) })
                    Assert.True(src.GetBytes(a.Layer(l, s)).SequenceEqual(o.GetBytes(MixtralLayout.ExpertTensor(l, e, w))), $"{name} layer {l} {w}");
        }
        Assert.Equal(5 * 3 * 3 + 5 + b.TensorNames.Count(n => !n.Contains(".mlp.", StringComparison.Ordinal)), o.TensorNames.Count);
    }

    [FixtureFact]
    public void EveryPromptGateModeOfTheStoriesPromptsMatchesTheTorchReference()
    {
        var problems = new RecipeProblems(Example);
        var c = MoeBuildConfigReader.ReadFile(Example, problems);
        problems.ThrowIfAny();
        string b = SharedFixtures.PathOf("stories260k");
        float[][] Run(GateMode mode)
        {
            c.GateMode = mode;
            return GateVectors.Compute(c, b, 5, 64, 0, 0);
        }
        AssertGates("hidden", Run(GateMode.Hidden));
        AssertGates("hidden_avg", Run(GateMode.HiddenAverage));
        AssertGates("cheap_embed", Run(GateMode.CheapEmbed));
        var positives = c.Experts.Select(e => e.PositivePrompts).ToArray();
        for (int e = 0; e < 3; e++) c.Experts[e] = c.Experts[e] with { NegativePrompts = positives[(e + 1) % 3] };
        AssertGates("hidden_negative", Run(GateMode.Hidden));
        AssertGates("cheap_embed_negative", Run(GateMode.CheapEmbed));
    }

    /// <summary>Selection frequency [layer][expert] of moe-stats on each eval text (20,000 tokens, windows of 256), as printed (4 decimals).</summary>
    private static readonly Dictionary<string, double[][]> Routing = new()
    {
        ["tinystories"] = [[0.3939, 0.4384, 0.1678], [0.3944, 0.4490, 0.1566], [0.3319, 0.4621, 0.2060], [0.2991, 0.4225, 0.2784], [0.2582, 0.4386, 0.3033]],
        ["wiki"] = [[0.3445, 0.4059, 0.2497], [0.3790, 0.4385, 0.1825], [0.2788, 0.4741, 0.2471], [0.1753, 0.4668, 0.3579], [0.0773, 0.4872, 0.4356]],
        ["code"] = [[0.3578, 0.3463, 0.2960], [0.3904, 0.3914, 0.2183], [0.2963, 0.4513, 0.2524], [0.1946, 0.4503, 0.3551], [0.1014, 0.4707, 0.4279]],
    };

    private static readonly Dictionary<string, double> Perplexity = new() { ["tinystories"] = 6.302994, ["wiki"] = 33.678656, ["code"] = 120.929312 };

    [FixtureFact]
    public void TheBuiltMoeRoutesAndScoresTheThreeEvalTextsAsPinned()
    {
        using var d = new TempDir();
        Assert.Equal(0, CliRunner.Run("moe-build", Example, d["out"]).ExitCode);
        foreach (var (text, table) in Routing)
        {
            var ids = MoeForwardPass.Tokens(d["out"], SharedFixtures.PathOf("text", $"{text}-eval.txt"), 20000);
            var r = MoeForwardPass.Evaluate(d["out"], ids);
            Assert.Equal(Perplexity[text], r.Perplexity.Perplexity, Perplexity[text] * 1e-5);
            for (int l = 0; l < 5; l++)
                for (int e = 0; e < 3; e++)
                    Assert.Equal(table[l][e], r.Routing!.SelectionFrequency(l, e), 6e-5);
        }
    }
}
