using System.Runtime.InteropServices;

namespace Mistral.Merge.IO;

/// <summary>
/// One-line messages for failed file operations, "PATH: no space left on device (ENOSPC)": the path is the file the
/// failing call was about, the output file for a write, the source for a read, so a full disk is never blamed on an input.
/// </summary>
public static class IoErrors
{
    private static readonly Dictionary<int, string> Names = new()
    {
        [1] = "EPERM", [2] = "ENOENT", [5] = "EIO", [6] = "ENXIO", [9] = "EBADF", [11] = "EAGAIN", [12] = "ENOMEM",
        [13] = "EACCES", [16] = "EBUSY", [17] = "EEXIST", [18] = "EXDEV", [20] = "ENOTDIR", [21] = "EISDIR",
        [22] = "EINVAL", [23] = "ENFILE", [24] = "EMFILE", [27] = "EFBIG", [28] = "ENOSPC", [30] = "EROFS",
        [31] = "EMLINK", [36] = "ENAMETOOLONG", [38] = "ENOSYS", [39] = "ENOTEMPTY", [40] = "ELOOP", [95] = "EOPNOTSUPP",
        [116] = "ESTALE", [122] = "EDQUOT",
    };

    /// <summary>The errno behind an exception from a file operation, 0 when unknown.</summary>
    public static int ErrnoOf(Exception e) => e switch
    {
        FileNotFoundException or DirectoryNotFoundException => 2,
        UnauthorizedAccessException => 13,
        PathTooLongException => 36,
        // On Unix .NET raises most errno failures as a plain IOException whose HResult is the errno itself.
        IOException when e.HResult is > 0 and < 4096 => e.HResult,
        _ => 0,
    };

    /// <summary>"no space left on device (ENOSPC)"; the exception's own message when there is no errno.</summary>
    public static string Describe(Exception e) => ErrnoOf(e) is var errno and not 0 ? Describe(errno) : e.Message;

    public static string Describe(int errno)
    {
        var text = Marshal.GetPInvokeErrorMessage(errno);
        text = text.Length > 0 ? char.ToLowerInvariant(text[0]) + text[1..] : $"errno {errno}";
        return Names.TryGetValue(errno, out var name) ? $"{text} ({name})" : text;
    }

    /// <summary>An exception for a failed libc call, shaped as .NET's own (HResult = errno).</summary>
    public static IOException FromErrno(int errno) => new(Describe(errno), errno);

    /// <summary>A failure writing an output file (or folder): the run writes nothing.</summary>
    public static MergeException Writing(string outputPath, Exception e) => new($"{outputPath}: {Describe(e)}; nothing was written", e);

    /// <summary>A failure reading an input file while writing an output.</summary>
    public static MergeException Reading(string sourcePath, Exception e) => new($"{sourcePath}: cannot read ({Describe(e)}); nothing was written", e);

    public static bool IsIo(Exception e) => e is IOException or UnauthorizedAccessException;
}
