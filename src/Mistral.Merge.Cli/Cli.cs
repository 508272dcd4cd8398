using System.CommandLine;
using System.CommandLine.Invocation;
using System.Text.Json.Nodes;
using Mistral.Merge.Models;

namespace Mistral.Merge.Cli;

/// <summary>Exit codes, error printing and the action wrapper shared by every command.</summary>
public static class Cli
{
    public const int Ok = 0;
    public const int UserError = 1;
    public const int UsageError = 2;
    public const int Cancelled = 130;
    public const int InternalError = 70;

    public static int Run(RootCommand root, string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var config = new InvocationConfiguration
        {
            Output = stdout ?? Console.Out,
            Error = stderr ?? Console.Error,
            EnableDefaultExceptionHandler = false,
        };
        IO.Notices.Writer = stderr ?? Console.Error;
        try
        {
            var parse = root.Parse(args);
            if (parse.Errors.Count > 0 && parse.Action is ParseErrorAction) return Usage(parse, config.Error);
            return parse.Invoke(config);
        }
        catch (Exception e)
        {
            return Report(e, stderr ?? Console.Error);
        }
    }

    /// <summary>A malformed command line: the first parse error and where help is, on stderr; exit 2 (never the whole help).</summary>
    private static int Usage(ParseResult parse, TextWriter err)
    {
        var command = parse.CommandResult.Command;
        var name = command is RootCommand ? "mistral-merge" : $"mistral-merge {command.Name}";
        err.WriteLine($"error: {OneLine(parse.Errors[0].Message)}");
        err.WriteLine($"see '{name} --help'");
        return UsageError;
    }

    /// <summary>
    /// The closing line of commands that write a model: what the written folder holds, read back from disk; with
    /// <paramref name="json"/> (the command's inputs) one JSON document with the same facts instead.
    /// </summary>
    public static void ReportWritten(TextWriter o, string outDir, TimeSpan elapsed, JsonObject? json = null)
    {
        using var written = ModelFolder.Open(outDir);
        var ci = System.Globalization.CultureInfo.InvariantCulture;
        if (json != null)
        {
            json["version"] = CommonOptions.Version;
            json["out"] = written.Path;
            json["tensors"] = written.TensorNames.Count;
            json["parameters"] = written.ParameterCount;
            json["bytes"] = written.TotalBytes;
            json["files"] = written.Files.Count;
            json["seconds"] = Math.Round(elapsed.TotalSeconds, 3);
            o.WriteLine(IO.JsonText.Write(json));
            return;
        }
        o.WriteLine($"wrote {outDir}: {written.TensorNames.Count} tensors, {written.ParameterCount.ToString("N0", ci)} parameters, "
            + $"{IO.ByteSize.Format(written.TotalBytes)} in {written.Files.Count} file(s), {elapsed.TotalSeconds.ToString("0.00", ci)} s");
    }

    /// <summary>Turns any exception into one line on stderr and an exit code — never a stack trace.</summary>
    public static int Report(Exception e, TextWriter err)
    {
        if (e is AggregateException a) e = Principal(a);
        switch (e)
        {
            case MergeException m:
                err.WriteLine($"error: {OneLine(m.Message)}");
                return UserError;
            case OperationCanceledException:
                err.WriteLine("cancelled; nothing was written");
                return Cancelled;
            case IOException io:
                err.WriteLine($"error: {OneLine(io.Message)}");
                return UserError;
            case UnauthorizedAccessException ua:
                err.WriteLine($"error: {OneLine(ua.Message)}");
                return UserError;
            case OutOfMemoryException:
                err.WriteLine("error: out of memory");
                return UserError;
            default:
                err.WriteLine($"internal error ({e.GetType().Name}): {OneLine(e.Message)} — please report this");
                return InternalError;
        }
    }

    /// <summary>
    /// The one error to show when worker threads failed together (several may hit a full disk at once): the first
    /// meant for a person, else the first that is not a cancellation set off by the failure, else the first.
    /// </summary>
    private static Exception Principal(AggregateException a)
    {
        var all = a.Flatten().InnerExceptions;
        return all.OfType<MergeException>().FirstOrDefault()
            ?? all.FirstOrDefault(x => x is not OperationCanceledException)
            ?? all.FirstOrDefault() ?? a;
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    /// <summary>Sets a synchronous action that may throw; errors are reported by <see cref="Run"/>.</summary>
    public static Command WithAction(this Command cmd, Func<ParseResult, CancellationToken, int> action)
    {
        cmd.SetAction((parse, token) =>
        {
            try { return Task.FromResult(action(parse, token)); }
            catch (Exception e) { return Task.FromResult(Report(e, parse.InvocationConfiguration.Error)); }
        });
        return cmd;
    }
}
