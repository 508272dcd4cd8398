using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Surgery;

namespace Mistral.Merge.Tests.Moe;

/// <summary><c>strategy: refit</c> through moe-convert and recipes: bad inputs, multi-file calibration, and the fixture's measured perplexities.</summary>
public class RefitCommandTests
{
    [Fact]
    public void RefitBadInputsAreOneLineErrorsBeforeAnythingIsWritten()
    {
        using var tmp = new TempDir();
        TinyMixtral.Write(tmp["in"], 4);
        File.WriteAllText(tmp["cal.txt"], "some text");
        string[] Args(params string[] more) => ["moe-convert", tmp["in"], tmp["o"], "--strategy", "refit", .. more];
        CliRunner.AssertUsageError(CliRunner.Run(Args("--calibration", tmp["cal.txt"], "--init", "median")), "moe-convert", "--init: unknown init 'median'");
        CliRunner.AssertUsageError(CliRunner.Run(Args("--calibration", tmp["cal.txt"], "--intermediate-size", "0")), "moe-convert", "--intermediate-size");
        CliRunner.AssertOneLineError(CliRunner.Run(Args()), "strategy refit needs --calibration");
        CliRunner.AssertOneLineError(CliRunner.Run(Args("--calibration", tmp["nope.txt"])), "--calibration: file '" + tmp["nope.txt"] + "' not found");
        CliRunner.AssertOneLineError(CliRunner.Run(Args("--calibration", tmp["cal.txt"] + "," + tmp["nope.txt"])), "not found");
        CliRunner.AssertOneLineError(CliRunner.Run(Args("--calibration", tmp["cal.txt"], "--ridge", "0")), "--ridge must be a positive number or auto, got '0'");
        CliRunner.AssertOneLineError(CliRunner.Run(Args("--calibration", tmp["cal.txt"], "--ridge", "-1")), "--ridge must be a positive number or auto, got '-1'");
        CliRunner.AssertOneLineError(CliRunner.Run(Args("--calibration", tmp["cal.txt"], "--ridge", "big")), "--ridge must be a positive number or auto, got 'big'");
        CliRunner.AssertOneLineError(CliRunner.Run(Args("--calibration", tmp["cal.txt"], "--intermediate-size", "20")),
            "--intermediate-size 20 differs from the experts' 12: only init select can choose another size");
        CliRunner.AssertOneLineError(CliRunner.Run(Args("--calibration", tmp["cal.txt"], "--init", "select", "--intermediate-size", "49")),
            "--intermediate-size 49 is more than the 48 units of all experts");
        CliRunner.AssertOneLineError(CliRunner.Run("moe-convert", tmp["in"], tmp["o"], "--strategy", "mean", "--init", "select"), "--init is only used by strategy refit");
        Assert.False(Directory.Exists(tmp["o"]));
    }

    [Fact]
    public void RecipeRefitParametersAreCheckedWithLineAndColumn()
    {
        using var tmp = new TempDir();
        var mix = SynthMixtral.Synth(tmp.Path, "mix", seed: 3);
        var recipe = tmp["r.yml"];
        File.WriteAllText(recipe, $"merge_method: moe_to_dense\nbase_model: {mix}\nparameters:\n  strategy: refit\n  calibration: missing.txt\n  ridge: -2\n");
        var r = CliRunner.Run("merge", recipe, tmp["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("r.yml:5:16: parameter 'calibration': file 'missing.txt' not found", r.Stderr);
        Assert.Contains("r.yml:6:10: parameter 'ridge' must be a positive number or auto, got -2", r.Stderr);
        Assert.False(Directory.Exists(tmp["out"]));
    }

    [Fact]
    public void MoeReportParsesRefitRowsWithInitAndRefinementSteps()
    {
        var s = Mistral.Merge.Moe.Report.ReportStrategy.Parse("refit:select:3", 4);
        Assert.Equal(("refit:select:3", 3, Mistral.Merge.Moe.Refit.RefitInit.Select), (s.Text, s.N, s.Init));
        Assert.True(s.NeedsCalibrationText);
        Assert.False(s.NeedsFrequencies);
        Assert.Equal("refit:mean:0", Mistral.Merge.Moe.Report.ReportStrategy.Parse("refit", 4).Text);
        Assert.Equal(DenseStrategy.Refit, s.DenseOptions(2, null).Strategy);
        Assert.Contains("unknown init 'median'", Assert.Throws<MergeException>(() => Mistral.Merge.Moe.Report.ReportStrategy.Parse("refit:median", 4)).Message);
        Assert.Contains("the refinement steps must be an integer from 0 to 1000", Assert.Throws<MergeException>(() => Mistral.Merge.Moe.Report.ReportStrategy.Parse("refit:mean:x", 4)).Message);
    }

    [Fact]
    public void SeveralCalibrationFilesShareTheTokenLimitInOrder()
    {
        using var tmp = new TempDir();
        var mix = SynthMixtral.Synth(tmp.Path, "mix", seed: 3);
        var a = SynthMixtral.WriteText(tmp.Path);
        var b = tmp["b.txt"];
        File.WriteAllText(b, "def count(boats): return len(boats)\n" + string.Concat(Enumerable.Repeat("x = 1\n", 50)));
        var ids = new RoutingSource([a, b], null, 101, 256, 256).Ids(mix);
        Assert.Equal([.. MoeForwardPass.Tokens(mix, a, 51), .. MoeForwardPass.Tokens(mix, b, 50)], ids);
        Assert.Equal(MoeForwardPass.Tokens(mix, a, 101), new RoutingSource([a], null, 101, 256, 256).Ids(mix));
    }

    [Fact]
    public void RefitOfASynthesizedMixtralWritesADenseModelWhoseErrorDropsWithRefinement()
    {
        using var tmp = new TempDir();
        var mix = SynthMixtral.Synth(tmp.Path, "mix", seed: 3);
        var text = SynthMixtral.WriteText(tmp.Path, repeat: 6);
        var r = CliRunner.Run("moe-convert", mix, tmp["out"], "--strategy", "refit", "--calibration", text, "--refine-steps", "3", "--ctx", "64");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("intermediate 48", r.Stdout);
        Assert.Contains("refit layer 2/2: relative error", r.Stderr);
        foreach (var line in r.Stdout.Split('\n').Where(l => l.Contains("relative reconstruction error", StringComparison.Ordinal)))
        {
            var v = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            double before = double.Parse(v[5], System.Globalization.CultureInfo.InvariantCulture), after = double.Parse(v[8], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(after <= before, line);
        }
        using var got = Mistral.Merge.Models.ModelFolder.Open(tmp["out"]);
        Assert.Equal("MistralForCausalLM", got.Config!.ArchitectureName);
    }

    /// <summary>
    /// The fixture figure of docs/moe.md (refit, init mean, ridge auto, no refinement, 6,000 calibration tokens of the three
    /// train splits, ctx 256) measured on the three eval texts (first 20,000 tokens, ctx = stride = 256).
    /// </summary>
    [FixtureFact]
    public void RefitOfTheTrainedFixtureReachesItsMeasuredPerplexities()
    {
        using var tmp = new TempDir();
        string T(string f) => SharedFixtures.PathOf("text", f);
        var r = CliRunner.Run("moe-convert", SharedFixtures.PathOf("stories260k-moe4"), tmp["out"], "--strategy", "refit",
            "--calibration", $"{T("tinystories-train.txt")},{T("wiki-train.txt")},{T("code-train.txt")}", "--calibration-tokens", "6000", "--ctx", "256");
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var (text, ppl) in new[] { ("tinystories", 6.4753), ("wiki", 18.9047), ("code", 14.1476) })
        {
            var got = MoeForwardPass.Perplexity(tmp["out"], MoeForwardPass.Tokens(tmp["out"], T($"{text}-eval.txt"), 20000)).Perplexity;
            Assert.True(Math.Abs(got - ppl) <= 2e-3 * ppl, $"{text}: {got} vs {ppl}");
        }
    }

    [FixtureFact]
    public void RefitOfTheIdentityUpcycleGivesBackTheDenseBase()
    {
        using var tmp = new TempDir();
        var text = SharedFixtures.PathOf("text", "tinystories-train.txt");
        var r = CliRunner.Run("moe-convert", SharedFixtures.PathOf("stories260k-moe4-identity"), tmp["out"], "--strategy", "refit",
            "--calibration", text, "--calibration-tokens", "2560", "--ridge", "1e-9");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var eval = SharedFixtures.PathOf("text", "tinystories-eval.txt");
        var ids = MoeForwardPass.Tokens(tmp["out"], eval, 2560);
        double got = MoeForwardPass.Perplexity(tmp["out"], ids).Perplexity, expect = MoeForwardPass.Perplexity(SharedFixtures.PathOf("stories260k"), ids).Perplexity;
        Assert.True(Math.Abs(got - expect) <= 1e-4 * expect, $"{got} vs {expect}");
    }
}
