using System.Text.Json.Nodes;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

/// <summary>
/// Routing frequencies and perplexities measured with the built-in forward pass against expected.json
/// (an independent float32 PyTorch reference): ids = ([BOS] + encode(text))[:20000], windows of 256.
/// </summary>
public class ForwardPassDependentTests
{
    internal static readonly string[] Texts = ["tinystories-eval.txt", "wiki-eval.txt", "code-eval.txt"];
    private static JsonNode? _expected;
    internal static JsonNode Expected => _expected ??= JsonNode.Parse(File.ReadAllText(SharedFixtures.PathOf("expected.json")))!;

    internal static int[] Tokens(string text) => MoeForwardPass.Tokens(SharedFixtures.PathOf("stories260k-moe4"), SharedFixtures.PathOf("text", text), 20000);

    internal static double ExpectedPpl(string model, string text) => Expected["models"]![model]!["perplexity"]![text]!["perplexity"]!.GetValue<double>();

    internal static void Close(double expect, double got, string what) => Assert.True(Math.Abs(got - expect) <= 1e-4 * expect, $"{what}: {got} vs {expect}");

    /// <summary>The table has 5 decimals; one flipped top-2 choice among 20,000 tokens moves a share by 2.5e-5.</summary>
    internal static void AssertFrequencies(JsonArray table, Func<int, int, double> got, string what)
    {
        for (int l = 0; l < 5; l++)
            for (int e = 0; e < 4; e++)
                Assert.True(Math.Abs(table[l]![e]!.GetValue<double>() - got(l, e)) <= 6e-5, $"{what} layer {l} expert {e}: {got(l, e)} vs {table[l]![e]}");
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, MoeEvaluation> MoeRuns = new();

    /// <summary>One pass of the trained MoE per text gives both its perplexity and its routing (the same windows).</summary>
    private static MoeEvaluation MoeRun(string text) => MoeRuns.GetOrAdd(text, t => MoeForwardPass.Evaluate(SharedFixtures.PathOf("stories260k-moe4"), Tokens(t)));

    [FixtureFact]
    public void RoutingFrequenciesMatchExpectedTables()
    {
        foreach (var text in Texts)
        {
            var stats = MoeRun(text).Routing!;
            Assert.Equal(20000, stats.Tokens(0));
            var table = (JsonArray)Expected["models"]!["stories260k-moe4"]!["routing"]![text]!["selection_frequency"]!;
            AssertFrequencies(table, stats.SelectionFrequency, text);
        }
    }

    [FixtureFact]
    public void PerplexityOfTheMoeItselfMatchesExpected()
    {
        foreach (var text in Texts)
        {
            var r = MoeRun(text).Perplexity;
            Assert.Equal(19921, r.Tokens);
            Close(ExpectedPpl("stories260k-moe4", text), r.Perplexity, text);
        }
    }

    /// <summary>
    /// The four conversions on the two other eval texts (MoeReportTests checks all four on tinystories through
    /// moe-report, with frequencies measured by the forward pass); frequency uses the tinystories table, as the reference.
    /// </summary>
    [FixtureFact]
    public void PerplexityOfEachConversionMatchesExpected()
    {
        var freq = MoeToDenseFixtureTests.TinyStoriesFrequencies();
        var strategies = new (string Name, MoeToDenseOptions Options)[]
        {
            ("expert0", new() { Strategy = DenseStrategy.Expert, ExpertPerLayer = [0, 0, 0, 0, 0] }),
            ("uniform", new() { Strategy = DenseStrategy.Mean }),
            ("frequency", new() { Strategy = DenseStrategy.Frequency, Frequencies = freq }),
            ("concat", new() { Strategy = DenseStrategy.Concat }),
        };
        var conversions = strategies.SelectMany(s => new[] { "wiki-eval.txt", "code-eval.txt" }.Select(t => (s.Name, Text: t, s.Options))).ToArray();
        using var tmp = new TempDir();
        foreach (var (name, text, o) in conversions)
        {
            if (!Directory.Exists(tmp[name])) MoeToDense.Convert(SharedFixtures.PathOf("stories260k-moe4"), tmp[name], o);
            double expect = Expected["moe_to_dense"]![name]!["perplexity"]![text]!["perplexity"]!.GetValue<double>();
            Close(expect, MoeForwardPass.Perplexity(tmp[name], Tokens(text)).Perplexity, $"{name} on {text}");
        }
    }

    /// <summary>
    /// On the identity upcycle every strategy (and every pruning) is the dense base. Weight-averaging
    /// strategies give the base's weights bit for bit, hence the base's perplexity exactly; concat and
    /// pruning compute the same function in another order (tolerance 1e-6 relative). 2,560 tokens keep it
    /// fast; the base's perplexity on all 20,000 tokens is checked against expected.json by the inference tests.
    /// </summary>
    [FixtureFact]
    public void IdentityUpcycleEveryStrategyKeepsTheBasePerplexity()
    {
        string id = SharedFixtures.PathOf("stories260k-moe4-identity");
        var ids = Tokens("tinystories-eval.txt")[..2560];
        double basePpl = MoeForwardPass.Perplexity(SharedFixtures.PathOf("stories260k"), ids).Perplexity;
        using var cal = MoeForwardPass.Calibrate(id, ids[..1024]);
        var freq = cal.Routing.SelectionFrequencyTable();
        using var tmp = new TempDir();
        var dense = new (string Name, bool Exact, MoeToDenseOptions Options)[]
        {
            ("expert", true, new() { Strategy = DenseStrategy.Expert, ExpertPerLayer = [3, 2, 1, 0, 3] }),
            ("mean", true, new() { Strategy = DenseStrategy.Mean }),
            ("frequency", true, new() { Strategy = DenseStrategy.Frequency, Frequencies = freq }),
            ("aligned_mean", true, new() { Strategy = DenseStrategy.AlignedMean, Frequencies = freq, AlignedFrequencyWeighted = true }),
            ("concat", false, new() { Strategy = DenseStrategy.Concat }),
            ("concat2", false, new() { Strategy = DenseStrategy.Concat, ConcatTopK = 2, Frequencies = freq }),
        };
        void Same(bool exact, double got, string what)
        {
            if (exact) Assert.True(got == basePpl, $"{what}: {got:R} vs base {basePpl:R}");
            else Assert.True(Math.Abs(got - basePpl) <= 1e-6 * basePpl, $"{what}: {got:R} vs base {basePpl:R}");
        }
        Same(false, MoeForwardPass.Perplexity(id, ids).Perplexity, "the upcycle itself");
        foreach (var (name, exact, o) in dense)
        {
            MoeToDense.Convert(id, tmp[name], o);
            Same(exact, MoeForwardPass.Perplexity(tmp[name], ids).Perplexity, name);
        }
        var prune = new (string Name, MoePruneOptions Options)[]
        {
            ("prune-frequency", new() { NumExperts = 2, Frequencies = freq }),
            ("prune-output", new() { NumExperts = 3, Selection = PruneSelection.OutputChange, Calibration = cal, Frequencies = freq }),
            ("group", new() { NumExperts = 2, Group = true, Calibration = cal, Frequencies = freq }),
        };
        foreach (var (name, o) in prune)
        {
            MoePrune.Run(id, tmp[name], o);
            Same(false, MoeForwardPass.Perplexity(tmp[name], ids).Perplexity, name);
        }
    }

    [FixtureFact]
    public void CalibrationCapturesTheMoeInputsTheRouterSees()
    {
        string m = SharedFixtures.PathOf("stories260k-moe4");
        var ids = Tokens("wiki-eval.txt")[..1000];
        using var cal = MoeForwardPass.Calibrate(m, ids);
        Assert.Equal(1000, cal.Tokens);
        using var f = ModelFolder.Open(m);
        var layout = new MixtralLayout(f);
        // Routing recomputed from the captured inputs agrees with the forward pass's own routing.
        var again = RouterStatisticsRunner.FromInputs(cal, layout);
        for (int l = 0; l < 5; l++)
            for (int e = 0; e < 4; e++)
                Assert.True(Math.Abs(again.SelectionFrequency(l, e) - cal.Routing.SelectionFrequency(l, e)) <= 1e-3);
    }
}
