using System.Text.RegularExpressions;

namespace Mistral.Merge.Hub;

/// <summary>
/// One repository's folder in the Hugging Face cache, laid out as huggingface_hub does so both tools share it:
/// <c>models--org--name/blobs/ETAG</c> (file contents named by their etag: the sha256 of an LFS file, the git sha1 of
/// another), <c>snapshots/COMMIT/FILE</c> (relative symlinks into blobs) and <c>refs/REVISION</c> (the commit a branch
/// or tag named when it was downloaded).
/// </summary>
public sealed partial class HubCache
{
    [GeneratedRegex(@"[/\\]models--(?<org>[A-Za-z0-9][\w.\-]*?)--(?<name>[\w.\-]+)[/\\]snapshots[/\\][^/\\]+[/\\]?$")]
    private static partial Regex SnapshotRegex();

    /// <summary>The Hub id <c>org/name</c> of a folder that is a snapshot in a Hugging Face cache; null for any other folder.</summary>
    public static string? IdOfSnapshot(string folder)
    {
        var m = SnapshotRegex().Match(folder);
        return m.Success ? m.Groups["org"].Value + "/" + m.Groups["name"].Value : null;
    }

    public string Root { get; }
    public string Repo { get; }

    public HubCache(string cache, HubId id)
    {
        Root = Path.Combine(Path.GetFullPath(cache), id.FolderName);
        Repo = id.Repo;
    }

    public string Blobs => Path.Combine(Root, "blobs");
    public string Blob(string etag) => Path.Combine(Blobs, etag);
    public string Incomplete(string etag) => Blob(etag) + ".incomplete";
    public string Snapshot(string commit) => Path.Combine(Root, "snapshots", commit);
    public string SnapshotFile(string commit, string file) => Path.Combine(Snapshot(commit), file);
    public string Ref(string revision) => Path.Combine(Root, "refs", revision);

    /// <summary>
    /// The snapshot folder the cache holds for <paramref name="revision"/>: snapshots/REVISION itself (a commit), else the
    /// one refs/REVISION names. Null when there is none; <paramref name="looked"/> then says where it looked.
    /// </summary>
    public string? TryResolve(string revision, out string looked)
    {
        looked = "";
        var direct = Snapshot(revision);
        if (Directory.Exists(direct)) return Complete(direct, out looked);
        var refFile = Ref(revision);
        if (File.Exists(refFile))
        {
            var commit = IO.InputFile.ReadAllText(refFile, 4096, "a Hugging Face cache ref").Trim();
            var snap = Snapshot(commit);
            if (commit.Length > 0 && Directory.Exists(snap)) return Complete(snap, out looked);
            looked = $"Hugging Face cache {snap} (named by {refFile})";
            return null;
        }
        looked = $"Hugging Face cache {Path.Combine(Root, "snapshots", revision == "main" ? "<refs/main>" : revision)}";
        return null;
    }

    /// <summary>The snapshot when it holds its weights; else null, <paramref name="looked"/> naming what it lacks (never a half-downloaded model).</summary>
    private static string? Complete(string snapshot, out string looked)
    {
        var missing = HubFiles.MissingWeights(snapshot);
        looked = missing == null ? "" : $"Hugging Face cache {snapshot}, which lacks {missing} (an interrupted download)";
        return missing == null ? snapshot : null;
    }

    /// <summary>refs/REVISION := commit, as huggingface_hub writes it (no newline); only for a branch or tag name.</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        var path = Ref(revision);
        if (File.Exists(path) && File.ReadAllText(path).Trim() == commit) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var tmp = path + ".tmp" + Environment.ProcessId;
        File.WriteAllText(tmp, commit);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// Puts snapshots/COMMIT/FILE in place as a relative symlink to blobs/ETAG (<c>../../blobs/ETAG</c>, one more
    /// <c>../</c> per subfolder of FILE); where symlinks cannot be made, a copy of the blob.
    /// </summary>
    public void Link(string commit, string file, string etag)
    {
        var pointer = SnapshotFile(commit, file);
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        var depth = file.Count(c => c == '/') + 2;
        var target = string.Concat(Enumerable.Repeat("../", depth)) + "blobs/" + etag;
        File.Delete(pointer); // a stale or dangling link (File.Delete ignores a missing file)
        try { File.CreateSymbolicLink(pointer, target); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(Blob(etag), pointer, overwrite: true);
        }
    }
}
