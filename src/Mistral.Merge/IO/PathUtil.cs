namespace Mistral.Merge.IO;

/// <summary>Path comparisons that see through symbolic links.</summary>
public static class PathUtil
{
    /// <summary>The absolute path with every symbolic link along it resolved (missing tail components kept as given).</summary>
    public static string RealPath(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var root = Path.GetPathRoot(full) ?? "/";
        var current = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(current, part);
            for (int hops = 0; hops < 40; hops++)
            {
                FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
                if (info.LinkTarget == null) break;
                next = Path.TrimEndingDirectorySeparator(Path.GetFullPath(info.LinkTarget, Path.GetDirectoryName(next)!));
            }
            current = next;
        }
        return current;
    }

    /// <summary>True when <paramref name="inner"/> is <paramref name="outer"/> or lies inside it.</summary>
    public static bool IsSameOrInside(string inner, string outer)
    {
        var i = RealPath(inner);
        var o = RealPath(outer);
        return i == o || i.StartsWith(o.EndsWith(Path.DirectorySeparatorChar) ? o : o + Path.DirectorySeparatorChar, StringComparison.Ordinal);
    }
}
