namespace Mistral.Merge.Tests.Cli;

/// <summary>--quiet on every command: no progress or informational stderr lines; results on stdout unchanged.</summary>
public sealed class QuietTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private string Model(string name, int seed)
    {
        var r = CliRunner.Run("synth", _d[name], "--arch", "mistral", "--hidden", "32", "--layers", "2", "--heads", "4", "--intermediate", "48", "--vocab", "448", "--tokenizer", "byte-level", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--quiet");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("", r.Stderr);
        return _d[name];
    }

    [Fact]
    public void EveryCommandListsQuietInItsHelp()
    {
        foreach (var cmd in new[] { "inspect", "tokenize", "merge", "methods", "synth", "convert", "moe-convert", "moe-stats", "moe-report", "perplexity", "generate", "compare", "quickstart" })
            Assert.Contains("--quiet", CliRunner.Run(cmd, "--help").Stdout);
    }

    [Fact]
    public void MergePerplexityCompareAndGenerateWriteNothingToStderr()
    {
        var a = Model("a", 1);
        var b = Model("b", 2);
        File.WriteAllText(_d["t.txt"], string.Concat(Enumerable.Repeat("hello world ", 30)));
        File.WriteAllText(_d["r.yml"], $"merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {{weight: 0.5}}\n  - model: {b}\n    parameters: {{weight: 0.5}}\n");
        foreach (var args in new[]
        {
            new[] { "merge", _d["r.yml"], _d["m"], "--quiet" },
            ["perplexity", a, "--text", _d["t.txt"], "--ctx", "64", "-q"],
            ["compare", a, b, "--text", _d["t.txt"], "--ctx", "64", "--quiet"],
            ["generate", a, "--prompt", "hello", "--max-new-tokens", "4", "--temperature", "0", "--quiet"],
        })
        {
            var r = CliRunner.Run(args);
            Assert.True(r.ExitCode == 0, r.Stderr);
            Assert.Equal("", r.Stderr);
            Assert.NotEqual("", r.Stdout);
        }
        // loud by default: the same perplexity reports progress on stderr
        Assert.Contains("perplexity: 100%", CliRunner.Run("perplexity", a, "--text", _d["t.txt"], "--ctx", "64").Stderr);
    }
}
