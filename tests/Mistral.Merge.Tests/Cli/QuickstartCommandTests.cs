using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Cli;

public class QuickstartCommandTests
{
    [Fact]
    public void RunsEveryStepAndTheSlerpEndpointsAreTheInputsExactly()
    {
        using var tmp = new TempDir();
        var dir = tmp["qs"];
        var r = CliRunner.Run("quickstart", dir);
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var step in new[] { "synth", "merge", "inspect", "perplexity", "compare", "generate" })
            Assert.Contains("$ mistral-merge " + step + " ", r.Stdout);
        Assert.Contains("quickstart done", r.Stdout);

        // The recipe's t schedules: self_attn [0, 0.5, 1] and mlp [1, 0.5, 0] over 4 layers, so layer 0
        // attention is tiny-a and layer 0 MLP is tiny-b, layer 3 the other way round, bit for bit (bf16 in, bf16 out).
        using var a = ModelFolder.Open(Path.Combine(dir, "tiny-a"));
        using var b = ModelFolder.Open(Path.Combine(dir, "tiny-b"));
        using var m = ModelFolder.Open(Path.Combine(dir, "merged"));
        Assert.Equal(a.GetBytes("model.layers.0.self_attn.q_proj.weight").ToArray(), m.GetBytes("model.layers.0.self_attn.q_proj.weight").ToArray());
        Assert.Equal(b.GetBytes("model.layers.0.mlp.up_proj.weight").ToArray(), m.GetBytes("model.layers.0.mlp.up_proj.weight").ToArray());
        Assert.Equal(b.GetBytes("model.layers.3.self_attn.o_proj.weight").ToArray(), m.GetBytes("model.layers.3.self_attn.o_proj.weight").ToArray());
        Assert.Equal(a.GetBytes("model.layers.3.mlp.down_proj.weight").ToArray(), m.GetBytes("model.layers.3.mlp.down_proj.weight").ToArray());
        Assert.NotEqual(a.GetBytes("model.layers.1.self_attn.q_proj.weight").ToArray(), m.GetBytes("model.layers.1.self_attn.q_proj.weight").ToArray());

        // A second run refuses to overwrite the earlier outputs unless --force.
        var again = CliRunner.Run("quickstart", dir);
        Assert.Equal(1, again.ExitCode);
        Assert.Single(again.Stderr.TrimEnd('\n').Split('\n'));
        Assert.Contains("--force", again.Stderr);
        Assert.Equal(0, CliRunner.Run("quickstart", dir, "--force").ExitCode);
    }

    [Fact]
    public void AnEditedRecipeInTheFolderIsNotOverwrittenWithoutForce()
    {
        using var tmp = new TempDir();
        var dir = tmp["qs"];
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "recipe.yml"), "my own recipe\n");
        var r = CliRunner.Run("quickstart", dir);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"error: {Path.Combine(dir, "recipe.yml")}: exists and differs from the quickstart's (use --force to replace it)", r.Stderr.TrimEnd('\n'));
        Assert.Equal("my own recipe\n", File.ReadAllText(Path.Combine(dir, "recipe.yml")));
        Assert.False(Directory.Exists(Path.Combine(dir, "tiny-a")));
    }
}
