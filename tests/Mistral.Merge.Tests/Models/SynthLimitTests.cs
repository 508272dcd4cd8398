namespace Mistral.Merge.Tests.Models;

/// <summary>Hostile synth dimensions: one line and exit 1 before any plan or file is made.</summary>
public sealed class SynthLimitTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    [Theory]
    [InlineData("2147483647", "1", "1", "synth dimensions: these dimensions (hidden 2147483647, intermediate 1, vocab 1, 1 layers) overflow a 64-bit byte count")]
    [InlineData("8", "2147483647", "8", "synth dimensions: 2147483647 layers make 19,327,352,823 tensors, more than the 500,000 a checkpoint header can list")]
    [InlineData("8", "1000000", "8", "synth dimensions: 1000000 layers make 9,000,000 tensors, more than the 500,000 a checkpoint header can list")]
    public void Refused_before_anything_is_written(string hidden, string layers, string heads, string message)
    {
        var r = CliRunner.Run("synth", _d["out"], "--arch", "mistral", "--hidden", hidden, "--layers", layers, "--heads", heads, "--intermediate", "1", "--vocab", "1");
        CliRunner.AssertOneLineError(r, message);
        Assert.Empty(Directory.GetFileSystemEntries(_d.Path));
    }
}
