namespace Mistral.Merge.Tests;

/// <summary>Runs the CLI in-process and captures its output and exit code.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    public static Result Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = Mistral.Merge.Cli.Program.RunInProcess(args, o, e);
        return new Result(code, o.ToString(), e.ToString());
    }

    /// <summary>A bad input: exit code 1 and one stderr line, "error: ..." containing <paramref name="fragment"/> (no stack trace).</summary>
    public static void AssertOneLineError(Result r, string fragment)
    {
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(fragment, lines[0]);
    }
}
