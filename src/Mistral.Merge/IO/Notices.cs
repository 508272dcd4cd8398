namespace Mistral.Merge.IO;

/// <summary>
/// Where the library reports what it did on its own that is not an error (a stale temporary folder removed): the
/// CLI points it at its stderr for a run; it flows to worker threads with the execution context.
/// </summary>
public static class Notices
{
    private static readonly AsyncLocal<TextWriter?> Sink = new();

    /// <summary>The writer for notices of this run; stderr when unset.</summary>
    public static TextWriter? Writer { get => Sink.Value; set => Sink.Value = value; }

    internal static void Write(string line) => (Sink.Value ?? Console.Error).WriteLine(line);
}
