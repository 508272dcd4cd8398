using System.Text.Json.Nodes;
using Mistral.Merge.Inference;
using Mistral.Merge.IO;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

/// <summary>A fact that needs the shared fixtures AND the forward pass hooks of <see cref="MoeForwardPass"/>.</summary>
public sealed class ForwardPassFactAttribute : FactAttribute
{
    public ForwardPassFactAttribute()
    {
        if (!SharedFixtures.Available) Skip = SharedFixtures.SkipReason;
        else if (MoeForwardPass.RouterLogits == null || MoeForwardPass.Perplexity == null)
            Skip = "AWAITS THE FORWARD PASS (branch inference): MoeForwardPass hooks are not set";
    }
}

/// <summary>Routing frequencies and perplexities of the converted models against expected.json (independent PyTorch reference).</summary>
public class ForwardPassDependentTests
{
    private static readonly JsonNode Expected = SharedFixtures.Available ? JsonNode.Parse(File.ReadAllText(SharedFixtures.PathOf("expected.json")))! : new JsonObject();

    private static int[] Tokens(string text)
    {
        var tok = TokenizerLoader.Load(SharedFixtures.PathOf("stories260k-moe4"));
        var ids = tok.Encode(File.ReadAllText(SharedFixtures.PathOf("text", text)), addBos: true);
        return ids.Length > 20000 ? ids[..20000] : ids;
    }

    [ForwardPassFact]
    public void RoutingFrequenciesMatchExpectedTables()
    {
        foreach (var text in new[] { "tinystories-eval.txt", "wiki-eval.txt", "code-eval.txt" })
        {
            var src = MoeForwardPass.RouterLogits!(SharedFixtures.PathOf("stories260k-moe4"));
            var stats = RouterStatisticsRunner.Measure(src, 2, Tokens(text));
            var table = (JsonArray)Expected["models"]!["stories260k-moe4"]!["routing"]![text]!["selection_frequency"]!;
            for (int l = 0; l < 5; l++)
                for (int e = 0; e < 4; e++)
                    Assert.Equal(table[l]![e]!.GetValue<double>(), stats.SelectionFrequency(l, e), 4); // table rounded to 5 decimals
        }
    }

    [ForwardPassFact]
    public void PerplexityOfEachConversionMatchesExpected()
    {
        var freq = MoeToDenseFixtureTests.TinyStoriesFrequencies();
        var conversions = new Dictionary<string, MoeToDenseOptions>
        {
            ["expert0"] = new() { Strategy = DenseStrategy.Expert, ExpertPerLayer = [0, 0, 0, 0, 0] },
            ["uniform"] = new() { Strategy = DenseStrategy.Mean },
            ["frequency"] = new() { Strategy = DenseStrategy.Frequency, Frequencies = freq },
            ["concat"] = new() { Strategy = DenseStrategy.Concat },
        };
        using var tmp = new TempDir();
        var ppl = MoeForwardPass.Perplexity!;
        foreach (var (name, o) in conversions)
        {
            MoeToDense.Convert(SharedFixtures.PathOf("stories260k-moe4"), tmp[name], o);
            foreach (var text in new[] { "tinystories-eval.txt", "wiki-eval.txt", "code-eval.txt" })
            {
                double expect = Expected["moe_to_dense"]![name]!["perplexity"]![text]!["perplexity"]!.GetValue<double>();
                double got = ppl(tmp[name], Tokens(text), default);
                Assert.True(Math.Abs(got - expect) <= 1e-4 * expect, $"{name} on {text}: {got} vs {expect}");
            }
        }
    }

    [ForwardPassFact]
    public void IdentityUpcycleConversionsKeepTheBasePerplexity()
    {
        using var tmp = new TempDir();
        MoeToDense.Convert(SharedFixtures.PathOf("stories260k-moe4-identity"), tmp["mean"], new MoeToDenseOptions());
        double expect = Expected["models"]!["stories260k"]!["perplexity"]!["tinystories-eval.txt"]!["perplexity"]!.GetValue<double>();
        Assert.True(Math.Abs(MoeForwardPass.Perplexity!(tmp["mean"], Tokens("tinystories-eval.txt"), default) - expect) <= 1e-4 * expect);
    }
}
