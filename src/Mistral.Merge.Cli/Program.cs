using System.CommandLine;
using Mistral.Merge.Cli.Commands;

namespace Mistral.Merge.Cli;

public static class Program
{
    /// <summary>Every subcommand lives in Commands/&lt;Name&gt;Command.cs and exposes Create(); register it here.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("mistral-merge: merge, convert, inspect and evaluate Mistral-family checkpoints")
    {
        InspectCommand.Create(),
        TokenizeCommand.Create(),
        MergeCommand.Create(),
        MethodsCommand.Create(),
        SynthCommand.Create(),
        ConvertCommand.Create(),
        ExportGgufCommand.Create(),
        MoeConvertCommand.Create(),
        MoeBuildCommand.Create(),
        MoeStatsCommand.Create(),
        MoeReportCommand.Create(),
        PerplexityCommand.Create(),
        GenerateCommand.Create(),
        CompareCommand.Create(),
        DownloadCommand.Create(),
        QuickstartCommand.Create(),
        };
        root.Options.Add(CommonOptions.Quiet()); // recursive: every command takes --quiet
        return root;
    }

    public static int Main(string[] args)
    {
        IO.SigbusGuard.Install();
        // Fault injection for the test of the handler (it must run in a child process).
        if (Environment.GetEnvironmentVariable("MISTRAL_MERGE_TEST_RAISE_SIGBUS") == "1") IO.SigbusGuard.RaiseForTest();
        return Cli.Run(BuildRoot(), args);
    }

    /// <summary>In-process entry for tests: output captured by the given writers.</summary>
    public static int RunInProcess(string[] args, TextWriter stdout, TextWriter stderr) => RunInProcessWith(args, stdout, stderr, null);

    /// <summary>As <see cref="RunInProcess"/>, reading environment variables (HF_HOME, HF_TOKEN, ...) from <paramref name="environment"/> instead of the process's.</summary>
    public static int RunInProcessWith(string[] args, TextWriter stdout, TextWriter stderr, Func<string, string?>? environment)
    {
        using (CliEnvironment.Use(environment)) return Cli.Run(BuildRoot(), args, stdout, stderr);
    }
}
