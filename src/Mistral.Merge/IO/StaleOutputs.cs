using System.Globalization;
using System.Text.RegularExpressions;

namespace Mistral.Merge.IO;

/// <summary>
/// Clears what runs killed while writing OUT left beside it; every writer calls it while holding OUT's lock. A
/// temporary folder ".OUT.partial-PID-XXXXXXXX" (and its ".old") is removed only when its owner is provably gone:
/// the marker's pid is not running, or runs with another start time (a reused pid). Where RENAME_EXCHANGE is not
/// available a --force commit parks the old OUT as ".old" for a moment; when a kill left OUT absent, that old model
/// is put back (the killed run never reported success, so the previous model is the one to keep).
/// </summary>
internal static partial class StaleOutputs
{
    [GeneratedRegex(@"^(\d{1,9})-[0-9a-f]{8}(\.old)?$")]
    private static partial Regex Suffix();

    public static void Clean(string destination)
    {
        var parent = Path.GetDirectoryName(destination)!;
        var prefix = $".{Path.GetFileName(destination)}.partial-";
        var found = Directory.EnumerateDirectories(parent)
            .Select(p => (Name: Path.GetFileName(p), Match: Suffix().Match(Path.GetFileName(p) is var n && n.StartsWith(prefix, StringComparison.Ordinal) ? n[prefix.Length..] : "")))
            .Where(f => f.Match.Success)
            .OrderByDescending(f => f.Match.Groups[2].Success) // parked old models first: one may have to go back into place
            .ToList();
        foreach (var (name, match) in found)
        {
            var path = Path.Combine(parent, name);
            bool isOld = match.Groups[2].Success;
            int pid = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            // The marker names the owner exactly; it is removed just before the commit's renames, and then the pid in
            // the folder's name is all there is.
            if (PartialMarker.Read(isOld ? path[..^".old".Length] : path) is { } owner)
            {
                if (owner.IsRunning) continue;
                pid = owner.Pid;
            }
            else if (ProcessIdentity.PidRunning(pid)) continue;
            try
            {
                if (isOld && !Path.Exists(destination))
                {
                    Directory.Move(path, destination);
                    Fsync.Directory(parent);
                    Notices.Write($"restored {destination} from {name}, where a --force run (process {pid}) had moved it before it was stopped");
                }
                else
                {
                    Directory.Delete(path, recursive: true);
                    Notices.Write($"removed stale partial output {name} left by process {pid}");
                }
            }
            catch (Exception e) when (IoErrors.IsIo(e))
            {
                Notices.Write($"warning: cannot clean up stale partial output {path} ({IoErrors.Describe(e)})");
            }
        }
    }
}
