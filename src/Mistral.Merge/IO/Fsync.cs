using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Mistral.Merge.IO;

/// <summary>
/// Durability of what the writer leaves behind: every file flushed and closed with both results checked, and the
/// folders whose entries changed flushed too (a renamed folder is only durable once its parent is).
/// </summary>
internal static class Fsync
{
    /// <summary>fsync, then close, of a file written through <paramref name="handle"/>; throws IOException when either fails.</summary>
    public static void FileAndClose(SafeFileHandle handle, string path)
    {
        try
        {
            FaultInjection.Check("fsync", path);
            RandomAccess.FlushToDisk(handle);
        }
        catch { handle.Dispose(); throw; }
        if (OperatingSystem.IsWindows()) { handle.Dispose(); return; }
        // SafeFileHandle.Dispose ignores a failed close(2), which is where some file systems (NFS) report write errors.
        int fd = (int)handle.DangerousGetHandle();
        handle.SetHandleAsInvalid();
        if (Close(fd) != 0) throw IoErrors.FromErrno(Marshal.GetLastPInvokeError());
    }

    /// <summary>fsync of a folder, making the creation, removal and renaming of its entries durable.</summary>
    public static void Directory(string path)
    {
        if (OperatingSystem.IsWindows()) return; // folders cannot be opened for flushing there; NTFS journals its metadata
        FaultInjection.Check("fsync", path);
        int fd = Open(path, 0 /* O_RDONLY */);
        if (fd < 0) throw IoErrors.FromErrno(Marshal.GetLastPInvokeError());
        int rc = FsyncFd(fd), errno = Marshal.GetLastPInvokeError();
        _ = Close(fd); // a read-only folder handle: its close cannot lose written data, the fsync result decides
        if (rc != 0) throw IoErrors.FromErrno(errno);
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open(string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int FsyncFd(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);
}
