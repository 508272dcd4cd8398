namespace Mistral.Merge.Tests.Models;

/// <summary>Hostile synth dimensions: one line and exit 1 before any plan or file is made.</summary>
public sealed class SynthLimitTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    [Theory]
    [InlineData("2147483647", "1", "1", "config.json: 'hidden_size' must be an integer from 1 to 1048576, got 2147483647")]
    [InlineData("8", "2147483647", "8", "config.json: 'num_hidden_layers' must be an integer from 0 to 10000, got 2147483647")]
    public void RefusedBeforeAnythingIsWritten(string hidden, string layers, string heads, string message)
    {
        var r = CliRunner.Run("synth", _d["out"], "--arch", "mistral", "--hidden", hidden, "--layers", layers, "--heads", heads, "--intermediate", "1", "--vocab", "1");
        CliRunner.AssertOneLineError(r, message);
        Assert.Empty(Directory.GetFileSystemEntries(_d.Path));
    }

    /// <summary>Each value within config.json's bounds, but too many tensors for a header (10,000 layers × 4,096 experts).</summary>
    [Fact]
    public void TooManyTensorsForOneHeader()
    {
        var r = CliRunner.Run("synth", _d["out"], "--arch", "mixtral", "--hidden", "8", "--layers", "10000", "--heads", "2", "--intermediate", "8", "--vocab", "8", "--experts", "4096", "--experts-per-token", "1");
        CliRunner.AssertOneLineError(r, "synth dimensions: 10000 layers make 122,950,000 tensors, more than the 500,000 a checkpoint header can list");
    }
}
