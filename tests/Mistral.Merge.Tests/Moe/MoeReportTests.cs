using System.Text.Json.Nodes;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

/// <summary><c>moe-report</c> end to end: figures, the cache (a rerun computes nothing), temp folders removed, errors.</summary>
public class MoeReportTests
{
    private static Dictionary<string, (string Text, DateTime Time)> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => f, f => (File.ReadAllText(f), File.GetLastWriteTimeUtc(f)));

    [FixtureFact]
    public void ReportOnTheFixtureMatchesExpectedAndIsCached()
    {
        using var tmp = new TempDir();
        string[] args = ["moe-report", SharedFixtures.PathOf("stories260k-moe4"), "--text", SharedFixtures.PathOf("text", "tinystories-eval.txt"),
            "--strategies", "expert:0,mean,frequency,concat", "--cache", tmp["cache"], "--json"];
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var j = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(5, j["computed"]!.GetValue<int>()); // frequencies came from the original's own evaluation pass
        ForwardPassDependentTests.Close(ForwardPassDependentTests.ExpectedPpl("stories260k-moe4", "tinystories-eval.txt"), j["original"]!["perplexity"]!.GetValue<double>(), "original");
        var expected = new Dictionary<string, string> { ["expert:0"] = "expert0", ["mean"] = "uniform", ["frequency"] = "frequency", ["concat"] = "concat" };
        foreach (var row in (JsonArray)j["strategies"]!)
        {
            var name = expected[row!["strategy"]!.GetValue<string>()];
            double e = ForwardPassDependentTests.Expected["moe_to_dense"]![name]!["perplexity"]!["tinystories-eval.txt"]!["perplexity"]!.GetValue<double>();
            ForwardPassDependentTests.Close(e, row["perplexity"]!.GetValue<double>(), name);
            Assert.Equal(19921, row["tokens"]!.GetValue<int>());
        }
        Assert.Equal(755392, j["strategies"]![3]!["size"]!.GetValue<long>()); // 4×172 units
        Assert.Empty(Directory.GetDirectories(tmp["cache"], "tmp-*"));

        var before = Snapshot(tmp["cache"]);
        var again = CliRunner.Run([.. args[..^1]]); // markdown this time
        Assert.True(again.ExitCode == 0, again.Stderr);
        Assert.Contains("0 computed, 5 cached", again.Stdout);
        Assert.Contains("| frequency | mean weighted by routing frequency | 260,032 | 5.4471 | -0.1877 | cached |", again.Stdout);
        Assert.Equal(before, Snapshot(tmp["cache"]));
    }

    [Fact]
    public void ReportOnASynthesizedMixtral()
    {
        using var tmp = new TempDir();
        // Zero routers, top-4 of 4: the MoE is the uniform average of its experts' outputs, which concat computes exactly.
        var m = SynthMixtral.ZeroRouters(SynthMixtral.Synth(tmp.Path, "mix", seed: 21), tmp["zero"], perTok: 4);
        var text = SynthMixtral.WriteText(tmp.Path);
        string[] args = ["moe-report", m, "--text", text, "--max-tokens", "600", "--cache", tmp["cache"], "--json",
            "--strategies", "expert:1,mean,frequency,aligned_mean:weighted,concat,prune:2,group:2"];
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var j = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(9, j["computed"]!.GetValue<int>()); // original, routing on the calibration text (its limit differs from --max-tokens), 7 strategies
        double original = j["original"]!["perplexity"]!.GetValue<double>();
        var rows = ((JsonArray)j["strategies"]!).ToDictionary(x => x!["strategy"]!.GetValue<string>(), x => x!);
        double concat = rows["concat"]["perplexity"]!.GetValue<double>();
        Assert.True(Math.Abs(concat - original) <= 1e-5 * original, $"concat {concat} vs original {original}");
        Assert.Equal(0.0, rows["concat"]["delta_perplexity"]!.GetValue<double>(), 3);
        // Every expert is selected by every token: frequency weights are uniform, so 'frequency' is 'mean'.
        Assert.Equal(rows["mean"]["perplexity"]!.GetValue<double>(), rows["frequency"]["perplexity"]!.GetValue<double>(), 9);
        Assert.Equal(j["original"]!["size"]!.GetValue<long>() - 2L * 2 * (3 * 48 * 32 + 32), rows["prune:2"]["size"]!.GetValue<long>());
        Assert.Empty(Directory.GetDirectories(tmp["cache"], "tmp-*"));

        // A rerun with one new strategy computes only that one and leaves the cached files as they were.
        var before = Snapshot(tmp["cache"]);
        var more = CliRunner.Run([.. args[..^3], "--strategies", "expert:1,mean,frequency,aligned_mean:weighted,concat,prune:2,group:2,aligned_mean"]);
        Assert.True(more.ExitCode == 0, more.Stderr);
        Assert.Contains("1 computed, 8 cached", more.Stdout);
        Assert.Contains("| aligned_mean | units aligned to expert 0, uniform mean |", more.Stdout);
        foreach (var (f, v) in before) Assert.Equal(v, (File.ReadAllText(f), File.GetLastWriteTimeUtc(f)));
        // Another text is another key.
        File.WriteAllText(tmp["other.txt"], "A different text about boats and robots, long enough to score a few tokens.");
        var other = CliRunner.Run("moe-report", m, "--text", tmp["other.txt"], "--calibration", text, "--max-tokens", "600", "--cache", tmp["cache"], "--strategies", "mean,frequency");
        Assert.True(other.ExitCode == 0, other.Stderr);
        Assert.Contains("3 computed, 0 cached", other.Stdout); // original and mean and frequency on the new text; routing on the calibration text is cached
    }

    [Fact]
    public void ReportErrorsAreOneLine()
    {
        using var tmp = new TempDir();
        var m = SynthMixtral.Synth(tmp.Path, "mix");
        var dense = SynthMixtral.Synth(tmp.Path, "dense", arch: "mistral");
        var text = SynthMixtral.WriteText(tmp.Path);
        void Fails(string expect, params string[] args) => CliRunner.AssertOneLineError(CliRunner.Run(args), expect);
        Fails("unknown strategy 'avg'", "moe-report", m, "--text", text, "--cache", tmp["c"], "--strategies", "mean,avg");
        Fails("'expert:4': the expert must be an integer from 0 to 3", "moe-report", m, "--text", text, "--cache", tmp["c"], "--strategies", "expert:4");
        Fails("'mean' is listed twice", "moe-report", m, "--text", text, "--cache", tmp["c"], "--strategies", "mean,mean");
        Fails("not a Mixtral model", "moe-report", dense, "--text", text, "--cache", tmp["c"]);
        Fails("text file not found", "moe-report", m, "--text", tmp["none.txt"], "--cache", tmp["c"]);
        Fails("text file not found", "moe-report", m, "--text", text, "--calibration", tmp["none.txt"], "--cache", tmp["c"]);
        CliRunner.AssertUsageError(CliRunner.Run("moe-report", m, "--text", text, "--max-tokens", "1", "--cache", tmp["c"]), "moe-report", "--max-tokens must be at least 2, got 1");
    }

    [Fact]
    public void ThePruneCriterionIsSpelledAsRecipesSpellItAndTheOldSpellingStillParses()
    {
        var a = Mistral.Merge.Moe.Report.ReportStrategy.Parse("prune:2:output_change", 4);
        var b = Mistral.Merge.Moe.Report.ReportStrategy.Parse("prune:2:output", 4);
        Assert.Equal(a, b);
        Assert.Equal("prune:2:output", a.Text); // the cache key of earlier reports stays valid
    }
}
