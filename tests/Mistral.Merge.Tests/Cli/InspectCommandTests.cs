namespace Mistral.Merge.Tests.Cli;

public class InspectCommandTests
{
    [FixtureFact]
    public void InspectShowsArchitectureAndTensorTable()
    {
        var r = CliRunner.Run("inspect", SharedFixtures.PathOf("stories260k"));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("MistralForCausalLM", r.Stdout);
        Assert.Contains("260,032", r.Stdout);
        Assert.Contains("model.layers.4.self_attn.k_proj.weight", r.Stdout);
        Assert.Contains("[32, 64]", r.Stdout);
    }

    [Fact]
    public void MissingFolderIsOneLineErrorAndExitOne()
    {
        var r = CliRunner.Run("inspect", "/nonexistent/model");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("error: /nonexistent/model: model folder not found", r.Stderr.Trim());
    }
}
