using System.Text.Json.Nodes;
using Mistral.Merge.Models;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

public class MoeCommandTests
{
    [FixtureFact]
    public void MoeConvertFrequencyFromAMoeStatsJsonFile()
    {
        using var tmp = new TempDir();
        var freq = MoeToDenseFixtureTests.TinyStoriesFrequencies();
        var stats = new JsonObject { ["selection_frequency"] = new JsonArray(freq.Select(r => (JsonNode)new JsonArray(r.Select(v => (JsonNode)v).ToArray())).ToArray()) };
        File.WriteAllText(tmp["freq.json"], stats.ToJsonString());
        var r = CliRunner.Run("moe-convert", SharedFixtures.PathOf("stories260k-moe4"), tmp["out"], "--strategy", "frequency", "--frequencies", tmp["freq.json"]);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("intermediate 172", r.Stdout);
        using var got = ModelFolder.Open(tmp["out"]);
        Assert.Equal("MistralForCausalLM", got.Config!.ArchitectureName);
        var r2 = CliRunner.Run("moe-convert", SharedFixtures.PathOf("stories260k-moe4"), tmp["pruned"], "--prune", "3", "--frequencies", tmp["freq.json"]);
        Assert.Equal(0, r2.ExitCode);
        Assert.Contains("layer 0: 0 1 3", r2.Stdout);
    }

    [Fact]
    public void MoeConvertErrorsAreOneLine()
    {
        using var tmp = new TempDir();
        TinyMixtral.Write(tmp["in"], 4);
        void Fails(string expect, params string[] args) => CliRunner.AssertOneLineError(CliRunner.Run(args), expect);
        CliRunner.AssertUsageError(CliRunner.Run("moe-convert", tmp["in"], tmp["o"], "--strategy", "avg"), "moe-convert", "unknown strategy 'avg'");
        Fails("needs routing frequencies", "moe-convert", tmp["in"], tmp["o"], "--strategy", "frequency");
        Fails("'x' is not an integer", "moe-convert", tmp["in"], tmp["o"], "--strategy", "expert", "--expert", "x");
        File.WriteAllText(tmp["bad.json"], "{\"selection_frequency\": [[1,2,3]]}");
        Fails("frequency table has 1 layers, the model has 2", "moe-convert", tmp["in"], tmp["o"], "--strategy", "frequency", "--frequencies", tmp["bad.json"]);
        Fails("no tokenizer.model", "moe-convert", tmp["in"], tmp["o"], "--prune", "2", "--group", "--calibration", tmp["bad.json"]);
        Fails("no tokenizer.model", "moe-stats", tmp["in"], "--text", tmp["bad.json"]);
        Assert.False(Directory.Exists(tmp["o"]));
        var ok = CliRunner.Run("moe-convert", tmp["in"], tmp["o"], "--strategy", "expert", "--expert", "1,3");
        Assert.Equal(0, ok.ExitCode);
    }

    [Fact]
    public void MoeStatsPrintsTableJsonAndHeatmap()
    {
        using var tmp = new TempDir();
        var s = new RoutingStatistics(2, 4, 2);
        var rng = new Random(2);
        s.Add(0, Enumerable.Range(0, 400).Select(_ => (float)rng.NextDouble()).ToArray());
        s.Add(1, Enumerable.Range(0, 400).Select(i => i % 4 == 2 ? 3f : (float)rng.NextDouble()).ToArray());
        var o = new StringWriter();
        Mistral.Merge.Cli.Commands.MoeStatsCommand.Write(s, "m", "t.txt", 20000, false, tmp["h.svg"], o);
        Assert.Contains("100 tokens, top-2 of 4 experts", o.ToString());
        Assert.Contains("0.5000", o.ToString()); // expert 2 of layer 1 is in every top-2
        Assert.StartsWith("<svg", File.ReadAllText(tmp["h.svg"]));
        var j = new StringWriter();
        Mistral.Merge.Cli.Commands.MoeStatsCommand.Write(s, "m", "t.txt", 20000, true, null, j);
        Assert.Equal(0.5, JsonNode.Parse(j.ToString())!["selection_frequency"]![1]![2]!.GetValue<double>());
    }
}

public class MoeStatsCommandTests
{
    [FixtureFact]
    public void MoeStatsOnTheFixtureGivesTheExpectedFrequencies()
    {
        using var tmp = new TempDir();
        var r = CliRunner.Run("moe-stats", SharedFixtures.PathOf("stories260k-moe4"), "--text", SharedFixtures.PathOf("text", "code-eval.txt"), "--json", "--plot", tmp["h.svg"], "--ctx", "256");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var j = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(20000, j["tokens"]![0]!.GetValue<long>());
        var got = (JsonArray)j["selection_frequency"]!;
        var table = (JsonArray)ForwardPassDependentTests.Expected["models"]!["stories260k-moe4"]!["routing"]!["code-eval.txt"]!["selection_frequency"]!;
        ForwardPassDependentTests.AssertFrequencies(table, (l, e) => got[l]![e]!.GetValue<double>(), "moe-stats --json");
        var svg = File.ReadAllText(tmp["h.svg"]);
        Assert.StartsWith("<svg", svg);
        Assert.Contains("layer 4, expert 0: 0.489", svg); // code routes layer 4 to expert 0 (0.48928)
    }

    [Fact]
    public void MoeStatsOnASynthesizedMixtral()
    {
        using var tmp = new TempDir();
        var m = SynthMixtral.ZeroRouters(SynthMixtral.Synth(tmp.Path, "mix"), tmp["zero"]);
        var text = SynthMixtral.WriteText(tmp.Path);
        var r = CliRunner.Run("moe-stats", m, "--text", text, "--max-tokens", "500", "--plot", tmp["p.svg"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("500 tokens, top-2 of 4 experts", r.Stdout);
        Assert.Contains("    0   0.5000  0.5000  0.0000  0.0000", r.Stdout);
        Assert.Contains("e0+e1: 500", r.Stdout);
        Assert.Contains("heatmap: " + tmp["p.svg"], r.Stdout);
        Assert.True(File.Exists(tmp["p.svg"]));
        var j = CliRunner.Run("moe-stats", m, "--text", text, "--max-tokens", "500", "--json");
        var freq = JsonNode.Parse(j.Stdout)!["selection_frequency"]!;
        Assert.Equal(0.5, freq[1]![1]!.GetValue<double>());
        Assert.Equal(0.0, freq[1]![3]!.GetValue<double>());
    }

    [Fact]
    public void MoeStatsBadInputsAreOneLineErrors()
    {
        using var tmp = new TempDir();
        var dense = SynthMixtral.Synth(tmp.Path, "dense", arch: "mistral");
        var mix = SynthMixtral.Synth(tmp.Path, "mix");
        var text = SynthMixtral.WriteText(tmp.Path);
        void Fails(string expect, params string[] args) => CliRunner.AssertOneLineError(CliRunner.Run(args), expect);
        Fails("not a Mixtral model", "moe-stats", dense, "--text", text);
        Fails($"{tmp["none.txt"]}: text file not found", "moe-stats", mix, "--text", tmp["none.txt"]);
        CliRunner.AssertUsageError(CliRunner.Run("moe-stats", mix, "--text", text, "--max-tokens", "0"), "moe-stats", "--max-tokens must be at least 2, got 0");
        Fails($"--plot {tmp["no/such/dir/p.svg"]}: cannot write (the folder {tmp["no/such/dir"]} does not exist)", "moe-stats", mix, "--text", text, "--plot", tmp["no/such/dir/p.svg"]);
        Fails($"--plot {tmp.Path}: cannot write (a directory, not a regular file)", "moe-stats", mix, "--text", text, "--plot", tmp.Path);
        Fails("not found", "moe-stats", tmp["nothing"], "--text", text);
    }
}
