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
}
