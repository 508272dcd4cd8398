using System.Globalization;

namespace Mistral.Merge.IO;

/// <summary>
/// The file in a writer's temporary folder that names the process writing it ("pid N", "start T"): a later writer
/// can then prove a left-over folder dead before removing it, and readers refuse the folder as a model.
/// </summary>
public static class PartialMarker
{
    public const string FileName = ".mistral-merge-partial";

    internal static void Write(string folder, ProcessIdentity owner) =>
        File.WriteAllText(Path.Combine(folder, FileName), string.Create(CultureInfo.InvariantCulture, $"pid {owner.Pid}\nstart {owner.StartTime}\n"));

    /// <summary>The owner named by the folder's marker; null when there is no readable marker.</summary>
    internal static ProcessIdentity? Read(string folder)
    {
        string[] lines;
        try { lines = File.ReadAllLines(Path.Combine(folder, FileName)); }
        catch (Exception e) when (IoErrors.IsIo(e)) { return null; }
        long? Field(string key) => lines.Select(l => l.Split(' ', 2)).Where(p => p.Length == 2 && p[0] == key)
            .Select(p => long.TryParse(p[1], NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : (long?)null).FirstOrDefault();
        return Field("pid") is { } pid and > 0 and <= int.MaxValue && Field("start") is { } start ? new ProcessIdentity((int)pid, start) : null;
    }

    /// <summary>Refuses a folder that is an unfinished output, for every reader of models.</summary>
    public static void ThrowIfPartial(string folder, string shownPath)
    {
        if (!File.Exists(Path.Combine(folder, FileName))) return;
        var owner = Read(folder);
        var who = owner is { } o ? $"process {o.Pid}" : "process unknown";
        var state = owner is { IsRunning: true } ? "it is still being written"
            : "that run did not finish, and the next write to the same output removes it";
        throw new MergeException($"{shownPath} is an unfinished output of mistral-merge ({who}); {state}");
    }
}
