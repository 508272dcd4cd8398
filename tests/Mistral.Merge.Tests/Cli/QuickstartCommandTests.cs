using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Cli;

public class QuickstartCommandTests
{
    private static readonly string Examples = Path.Combine(SharedFixtures.RepoRoot, "examples");

    [Fact]
    public void RunsEveryStepPrintsThePerplexityTableAndAStoryAndRefusesToOverwriteWithoutForce()
    {
        using var tmp = new TempDir();
        var dir = tmp["qs"];
        var r = CliRunner.Run("quickstart", dir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var step in new[] { "merge " + Path.Combine(dir, "slerp.yml"), "merge " + Path.Combine(dir, "ties.yml"), "inspect", "generate" })
            Assert.Contains("$ mistral-merge " + step + " ", r.Stdout + " ");
        Assert.Contains("quickstart done", r.Stdout);

        // The models written are the ones shipped in examples/ (the embedded resources are current).
        foreach (var (shipped, written) in new[] { ("stories260k", "base"), ("stories260k-wiki", "wiki"), ("stories260k-code", "code") })
            Assert.Equal(File.ReadAllBytes(Path.Combine(Examples, "models", shipped, "model.safetensors")), File.ReadAllBytes(Path.Combine(dir, written, "model.safetensors")));

        // The table: header, then one row per model. The base row's values were measured independently, in a separate
        // process, by `mistral-merge perplexity examples/models/stories260k --text examples/text/T.txt --ctx 256
        // --threads 2 --json` (4.00515331, 100.473765, 411.682974); the loop below re-checks every base cell against
        // the perplexity command on the written folder.
        var lines = r.Stdout.Split('\n');
        int h = Array.IndexOf(lines, "model  tinystories      wiki      code");
        Assert.True(h > 0, r.Stdout);
        Assert.Equal("base        4.0052  100.4738  411.6830", lines[h + 1]);
        string[] rows = ["base", "wiki", "code", "slerp", "ties"];
        for (int i = 0; i < rows.Length; i++)
            Assert.Matches($@"^{rows[i]} +\d+\.\d{{4}} +\d+\.\d{{4}} +\d+\.\d{{4}}$", lines[h + 1 + i]);
        var baseCells = lines[h + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..];
        string[] texts = ["tinystories", "wiki", "code"];
        for (int j = 0; j < texts.Length; j++)
        {
            var p = CliRunner.Run("perplexity", Path.Combine(dir, "base"), "--text", Path.Combine(dir, "text", texts[j] + ".txt"), "--ctx", "256", "--json");
            Assert.Equal(baseCells[j], ((double)JsonNode.Parse(p.Stdout)!["perplexity"]!).ToString("0.0000", CultureInfo.InvariantCulture));
        }

        // The greedy story from the SLERP merge (75 tokens after the prompt), as printed by generate.
        Assert.Contains("\n, there was a little girl named Anna. Anna was an orange toy that she loved to play with."
            + " Everyone was always scared of them and asked Anna to come to the park.\n", r.Stdout);

        // The SLERP schedules reach the ends t = 0 (layer 0 attention, layer 4 MLP): those tensors are the base's, bit
        // for bit (bf16 in, bf16 out); layer 4 attention has t = 0.5.
        using (var b = ModelFolder.Open(Path.Combine(dir, "base")))
        using (var m = ModelFolder.Open(Path.Combine(dir, "slerp")))
        {
            Assert.Equal(b.GetBytes("model.layers.0.self_attn.q_proj.weight").ToArray(), m.GetBytes("model.layers.0.self_attn.q_proj.weight").ToArray());
            Assert.Equal(b.GetBytes("model.layers.4.mlp.up_proj.weight").ToArray(), m.GetBytes("model.layers.4.mlp.up_proj.weight").ToArray());
            Assert.NotEqual(b.GetBytes("model.layers.4.self_attn.q_proj.weight").ToArray(), m.GetBytes("model.layers.4.self_attn.q_proj.weight").ToArray());
        }

        // A second run refuses to overwrite the earlier merges unless --force.
        var again = CliRunner.Run("quickstart", dir);
        CliRunner.AssertOneLineError(again, "--force");
        Assert.Equal(0, CliRunner.Run("quickstart", dir, "--force").ExitCode);
    }

    [Fact]
    public void AnEditedRecipeInTheFolderIsNotOverwrittenWithoutForce()
    {
        using var tmp = new TempDir();
        var dir = tmp["qs"];
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "slerp.yml"), "my own recipe\n");
        var r = CliRunner.Run("quickstart", dir);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {Path.Combine(dir, "slerp.yml")}: exists and differs from the quickstart's (use --force to replace it)", r.Stderr.TrimEnd('\n'));
        Assert.Equal("my own recipe\n", File.ReadAllText(Path.Combine(dir, "slerp.yml")));
        Assert.False(Directory.Exists(Path.Combine(dir, "base")));
    }

    [FixtureFact]
    public void ShippedModelsAreTheFixturesConvertedToBf16()
    {
        using var tmp = new TempDir();
        foreach (var name in new[] { "stories260k", "stories260k-wiki", "stories260k-code" })
        {
            var converted = tmp[name];
            Assert.Equal(0, CliRunner.Run("convert", SharedFixtures.PathOf(name), converted, "--dtype", "bfloat16").ExitCode);
            var shipped = Path.Combine(Examples, "models", name);
            using var a = ModelFolder.Open(converted);
            using var b = ModelFolder.Open(shipped);
            Assert.Equal(a.TensorNames, b.TensorNames);
            foreach (var t in a.TensorNames)
            {
                Assert.Equal(DType.BF16, b.Info(t).DType);
                Assert.Equal(a.Info(t).Shape, b.Info(t).Shape);
                Assert.True(a.GetBytes(t).SequenceEqual(b.GetBytes(t)), $"{name}: {t} differs");
            }
            foreach (var file in new[] { "config.json", "tokenizer.model", "tokenizer_config.json" })
                Assert.Equal(File.ReadAllBytes(Path.Combine(converted, file)), File.ReadAllBytes(Path.Combine(shipped, file)));
        }
    }

    [FixtureFact]
    public void TheShippedBaseGeneratesTheReferenceGreedyContinuation()
    {
        // expected.json's greedy continuation of stories260k-bf16 (independent float32 PyTorch forward pass): the
        // shipped base has the same tensors, so it (and the quickstart's base, a copy of it) must reproduce it.
        var expected = JsonNode.Parse(File.ReadAllText(SharedFixtures.PathOf("expected.json")))!["models"]!["stories260k-bf16"]!["greedy"]!["text"]!.GetValue<string>();
        var r = CliRunner.Run("generate", Path.Combine(Examples, "models", "stories260k"), "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "32");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(expected + "\n", r.Stdout);
    }
}
