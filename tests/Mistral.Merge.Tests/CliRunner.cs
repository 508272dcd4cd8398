namespace Mistral.Merge.Tests;

/// <summary>Runs the CLI in-process and captures its output and exit code.</summary>
public static class CliRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs with the process's environment, except HF_HUB_OFFLINE=1: a test never reaches the real Hub.</summary>
    public static Result Run(params string[] args)
        => Run(name => name == "HF_HUB_OFFLINE" ? "1" : Environment.GetEnvironmentVariable(name), args);

    /// <summary>Runs with exactly <paramref name="environment"/> as its environment variables (HF_HOME, HF_ENDPOINT, ...).</summary>
    public static Result RunIn(IReadOnlyDictionary<string, string> environment, params string[] args)
        => Run(name => environment.GetValueOrDefault(name), args);

    private static Result Run(Func<string, string?> environment, string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = Mistral.Merge.Cli.Program.RunInProcessWith(args, o, e, environment);
        return new Result(code, o.ToString(), e.ToString());
    }

    /// <summary>Runs the CLI and fails the test when it has not answered within 30 s (a reader blocked on a FIFO never returns).</summary>
    public static Result RunWithin(params string[] args)
    {
        var task = Task.Run(() => Run(args));
        Assert.True(task.Wait(TimeSpan.FromSeconds(30)), $"mistral-merge {string.Join(' ', args)} hung");
        return task.Result;
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

    /// <summary>A malformed command line: exit code 2 and exactly "error: ..." and "see 'mistral-merge COMMAND --help'" on stderr, no help text.</summary>
    public static void AssertUsageError(Result r, string command, string fragment)
    {
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}: {r.Stderr}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(fragment, lines[0]);
        Assert.Equal($"see 'mistral-merge {command} --help'", lines[1]);
        Assert.Equal("", r.Stdout);
    }
}
