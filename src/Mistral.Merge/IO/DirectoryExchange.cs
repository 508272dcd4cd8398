using System.Runtime.InteropServices;

namespace Mistral.Merge.IO;

/// <summary>
/// Atomic swap of two folders (Linux renameat2 with RENAME_EXCHANGE): a --force commit puts the new model in place
/// and the old one aside in one step, so OUT is never absent, whenever the process is killed.
/// </summary>
internal static class DirectoryExchange
{
    /// <summary>Swaps <paramref name="a"/> and <paramref name="b"/>; false where the system or file system cannot, and nothing changed.</summary>
    public static bool TrySwap(string a, string b)
    {
        int errno = FaultInjection.Errno("exchange", b);
        if (errno == 0)
        {
            if (!OperatingSystem.IsLinux()) return false;
            try { if (Renameat2(AtFdCwd, a, AtFdCwd, b, RenameExchange) == 0) return true; }
            catch (EntryPointNotFoundException) { return false; } // a C library older than renameat2 (glibc 2.28)
            errno = Marshal.GetLastPInvokeError();
        }
        // not supported by this kernel or file system: the caller falls back to two renames
        if (errno is EInval or ENoSys or EXDev or EOpNotSupp) return false;
        throw IoErrors.FromErrno(errno);
    }

    private const int AtFdCwd = -100;
    private const uint RenameExchange = 2;
    private const int EXDev = 18, EInval = 22, ENoSys = 38, EOpNotSupp = 95;

    [DllImport("libc", EntryPoint = "renameat2", SetLastError = true)]
    private static extern int Renameat2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);
}
