using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Mistral.Merge.IO;

/// <summary>
/// An exclusive flock on ".OUT.lock" beside OUT, held by a writer for its whole life, so that a second writer of the
/// same OUT fails at once with a clear line instead of racing the first for the final rename. The holder writes its
/// pid into the file for that line. The file is removed on release while still locked; whoever then finds the file it
/// locked unlinked takes a fresh one, so two processes never hold locks on different files of the same name.
/// Linux only (flock through libc, /proc); elsewhere writers of one OUT are not serialized.
/// </summary>
internal sealed class OutputLock : IDisposable
{
    private readonly string? _path;
    private readonly SafeFileHandle? _handle;

    private OutputLock(string? path, SafeFileHandle? handle) { _path = path; _handle = handle; }

    public static string PathFor(string destination) =>
        Path.Combine(Path.GetDirectoryName(destination)!, $".{Path.GetFileName(destination)}.lock");

    public static OutputLock Acquire(string destination)
    {
        if (!OperatingSystem.IsLinux()) return new OutputLock(null, null);
        var path = PathFor(destination);
        while (true)
        {
            int fd = Open(path, ORdWr | OCreat | OCloExec, 0x1A4 /* 0644 */);
            if (fd < 0) throw IoErrors.Writing(path, IoErrors.FromErrno(Marshal.GetLastPInvokeError()));
            var handle = new SafeFileHandle(fd, ownsHandle: true);
            if (Flock(fd, LockEx | LockNb) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                handle.Dispose();
                if (errno == EWouldBlock)
                    throw new MergeException($"{destination} is being written by another mistral-merge process (pid {HolderOf(path)})");
                throw IoErrors.Writing(path, IoErrors.FromErrno(errno));
            }
            if (new FileInfo($"/proc/self/fd/{fd}").LinkTarget?.EndsWith(" (deleted)", StringComparison.Ordinal) == true)
            {
                handle.Dispose(); // its holder released and removed it between our open and our flock
                continue;
            }
            try
            {
                RandomAccess.SetLength(handle, 0);
                RandomAccess.Write(handle, Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n"), 0);
            }
            catch (IOException) { } // the pid only serves the other writer's message; a full disk must not stop the run here
            return new OutputLock(path, handle);
        }
    }

    /// <summary>The pid the holder wrote, read without flock (a .NET open would take a shared flock and fail).</summary>
    private static string HolderOf(string path)
    {
        // The holder writes its pid just after it locks: an empty file is a holder a moment old, so look again.
        for (int attempt = 0; attempt < 50; attempt++, Thread.Sleep(2))
        {
            int fd = Open(path, ORdOnly | OCloExec, 0);
            if (fd < 0) break;
            using var handle = new SafeFileHandle(fd, ownsHandle: true);
            var buffer = new byte[32];
            try
            {
                var text = Encoding.ASCII.GetString(buffer, 0, RandomAccess.Read(handle, buffer, 0)).Trim();
                if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var pid)) return pid.ToString(CultureInfo.InvariantCulture);
            }
            catch (IOException) { break; }
        }
        return "unknown";
    }

    public void Dispose()
    {
        if (_handle == null || _handle.IsClosed) return;
        try { File.Delete(_path!); } catch (Exception e) when (IoErrors.IsIo(e)) { } // a left-over lock file is harmless: the next writer locks it
        _handle.Dispose();
    }

    private const int ORdOnly = 0, ORdWr = 2, OCreat = 0x40, OCloExec = 0x80000, LockEx = 2, LockNb = 4, EWouldBlock = 11;

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open(string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static extern int Flock(int fd, int operation);
}
