namespace Mistral.Merge.IO;

/// <summary>
/// Test seam: a full disk, a failing fsync (EIO) or a file system without RENAME_EXCHANGE cannot be provoked
/// portably, so tests set <see cref="Hook"/> to fail chosen output operations with a chosen errno. Null in normal runs.
/// </summary>
internal static class FaultInjection
{
    /// <summary>Called with the operation ("write", "fsync" or "exchange") and the path; returns an errno to fail it with, or 0.</summary>
    public static volatile Func<string, string, int>? Hook;

    public static int Errno(string operation, string path) => Hook?.Invoke(operation, path) ?? 0;

    public static void Check(string operation, string path)
    {
        if (Errno(operation, path) is var errno and not 0) throw IoErrors.FromErrno(errno);
    }
}
