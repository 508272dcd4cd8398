using System.Text.Json.Nodes;
using Mistral.Merge.IO;
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
        void Fails(string expect, params string[] args)
        {
            var r = CliRunner.Run(args);
            Assert.Equal(1, r.ExitCode);
            Assert.Contains(expect, r.Stderr);
            Assert.Single(r.Stderr.Trim().Split('\n'));
        }
        Fails("unknown strategy 'avg'", "moe-convert", tmp["in"], tmp["o"], "--strategy", "avg");
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
        Mistral.Merge.Cli.Commands.MoeStatsCommand.Write(s, "m", "t.txt", false, tmp["h.svg"], o);
        Assert.Contains("100 tokens, top-2 of 4 experts", o.ToString());
        Assert.Contains("0.5000", o.ToString()); // expert 2 of layer 1 is in every top-2
        Assert.StartsWith("<svg", File.ReadAllText(tmp["h.svg"]));
        var j = new StringWriter();
        Mistral.Merge.Cli.Commands.MoeStatsCommand.Write(s, "m", "t.txt", true, null, j);
        Assert.Equal(0.5, JsonNode.Parse(j.ToString())!["selection_frequency"]![1]![2]!.GetValue<double>());
    }
}
