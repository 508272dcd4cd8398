using System.CommandLine;
using System.CommandLine.Parsing;
using System.Reflection;
using System.Text.Json.Nodes;

namespace Mistral.Merge.Cli;

/// <summary>
/// The options every command shares (--json, --threads) and the validators that make a malformed command
/// line a usage error (exit 2, see <see cref="Cli.Run"/>): they run while parsing, before any action.
/// </summary>
internal static class CommonOptions
{
    public const int MaxThreads = 1024;

    /// <summary>The dtypes a --dtype option offers (aliases such as bf16 are accepted too).</summary>
    public static readonly string[] DTypes = ["bfloat16", "float16", "float32"];

    public static Option<bool> Json(string? keys = null) => new("--json")
    {
        Description = "Print one JSON document on stdout (the inputs, \"version\"" + (keys == null ? "" : ", " + keys) + "); progress stays on stderr",
    };

    public static Option<int> Threads() => new Option<int>("--threads")
    {
        Description = $"Worker threads: 0 = the default (all logical processors; one per physical core for the forward pass), N = N (at most {MaxThreads})",
        DefaultValueFactory = _ => 0,
    }.Check(t =>
    {
        if (t < 0 || t > MaxThreads) throw new MergeException($"--threads must be between 0 (the default) and {MaxThreads}, got {t}");
    });

    /// <summary>--out-shard-size, the same on every command that writes a model.</summary>
    public static Option<string> OutShardSize() => new Option<string>("--out-shard-size")
    {
        Description = "Maximum shard size: bytes or a size such as 5GB, 500MB, 1.5GiB",
        DefaultValueFactory = _ => "5GB",
    }.Check(v => IO.ByteSize.Parse(v));

    /// <summary>--force, the same on every command that writes a model folder.</summary>
    public static Option<bool> Force() => new("--force") { Description = "Replace a non-empty output folder" };

    /// <summary>--threads as a count: 0 = all logical processors.</summary>
    public static int ThreadCount(int threads) => Numerics.WorkerPool.Resolve(threads);

    /// <summary>Adds a validator: <paramref name="check"/> throws a <see cref="MergeException"/> for a bad value, which becomes a parse error.</summary>
    public static Option<T> Check<T>(this Option<T> option, Action<T> check)
    {
        option.Validators.Add(r =>
        {
            T value;
            try { value = r.GetValueOrDefault<T>(); }
            catch (InvalidOperationException e) { r.AddError(e.Message); return; } // does not parse as a T
            try { check(value); }
            catch (MergeException e) { r.AddError(e.Message); }
        });
        return option;
    }

    /// <summary>An enumerated option: <paramref name="values"/> shows in --help as &lt;a|b|c&gt;, <paramref name="check"/> rejects the rest.</summary>
    public static Option<T> OneOf<T>(this Option<T> option, string[] values, Action<T> check)
    {
        option.HelpName = string.Join('|', values);
        return option.Check(check);
    }

    /// <summary>An enumerated string option, case-insensitive; a value outside <paramref name="values"/> is "OPTION: expected a, b or c, got 'x'".</summary>
    public static Option<T> OneOf<T>(this Option<T> option, params string[] values) where T : class? => option.OneOf(values, v =>
    {
        if (v is string s && !values.Contains(s, StringComparer.OrdinalIgnoreCase))
            throw new MergeException($"{option.Name}: expected {Alternatives(values)}, got '{s}'");
    });

    public static Option<int> AtLeast(this Option<int> option, int min) => option.Check(v =>
    {
        if (v < min) throw new MergeException($"{option.Name} must be at least {min}, got {v}");
    });

    public static Option<int?> AtLeast(this Option<int?> option, int min) => option.Check(v =>
    {
        if (v < min) throw new MergeException($"{option.Name} must be at least {min}, got {v}");
    });

    /// <summary>A validator over several options of <paramref name="command"/> (e.g. --stride against --ctx).</summary>
    public static Command Check(this Command command, Action<CommandResult> check)
    {
        command.Validators.Add(r =>
        {
            try { check(r); }
            catch (MergeException e) { r.AddError(e.Message); }
            catch (InvalidOperationException) { } // an option that does not parse: its own error is reported
        });
        return command;
    }

    /// <summary>The tool's version as --version prints it; every --json document carries it.</summary>
    public static string Version { get; } =
        typeof(CommonOptions).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>Prints a --json document on stdout (one document, readable escapes).</summary>
    public static void Print(ParseResult p, JsonObject doc) => p.InvocationConfiguration.Output.WriteLine(IO.JsonText.Write(doc, indented: false));

    private static string Alternatives(string[] v) => v.Length == 1 ? v[0] : string.Join(", ", v[..^1]) + " or " + v[^1];

    /// <summary>
    /// Checks an output file option before any long computation: its folder must exist and the path must not name a
    /// folder or anything but a regular file (a FIFO would block the write at the end of a long run).
    /// </summary>
    public static void CheckOutputFile(string? path, string option)
    {
        if (path == null) return;
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full);
        if (folder == null || !Directory.Exists(folder))
            throw new MergeException($"{option} {path}: cannot write (the folder {folder} does not exist)");
        var kind = IO.FileStamp.OfPath(full).Kind;
        if (kind is not (IO.FileKind.Missing or IO.FileKind.Regular))
            throw new MergeException($"{option} {path}: cannot write ({IO.FileStamp.Describe(kind)}, not a regular file)");
    }

    /// <summary>--quiet, on the root and so on every command: no progress and no informational lines on stderr;
    /// warnings, errors and notices of removed leftovers still appear.</summary>
    public static Option<bool> Quiet() => new("--quiet", "-q")
    {
        Description = "No progress or informational lines on stderr (warnings and errors still appear)",
        Recursive = true,
    };

    public static bool IsQuiet(ParseResult p) => p.GetValue<bool>("--quiet");
}
