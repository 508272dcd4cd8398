using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Mistral.Merge.IO;

/// <summary>The kind of thing a path names, after following symbolic links.</summary>
public enum FileKind { Missing, Regular, Directory, Fifo, CharDevice, BlockDevice, Socket, Other }

/// <summary>
/// What identifies the contents of an opened file: kind, size, modification time and inode. Taken from the
/// file a path finally resolves to (symbolic links followed, as in the Hugging Face cache's snapshots/ → blobs/),
/// so a link is never mistaken for its target. On Linux it comes from statx(2), whose record has the same layout
/// on every architecture; elsewhere from .NET's FileInfo of the resolved target.
/// </summary>
public readonly record struct FileStamp(FileKind Kind, long Length, long MTimeSeconds, uint MTimeNanoseconds, ulong Inode)
{
    /// <summary>Of the file <paramref name="path"/> resolves to; <see cref="FileKind.Missing"/> when nothing is there.</summary>
    public static FileStamp OfPath(string path)
    {
        if (OperatingSystem.IsLinux() && TryStatx(AtFdCwd, path, 0, out var s)) return s;
        return Portable(path);
    }

    /// <summary>Of an opened file (no path race: the file we read is the one we measured).</summary>
    public static FileStamp OfHandle(SafeFileHandle handle, string pathForFallback)
    {
        if (OperatingSystem.IsLinux())
        {
            bool added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                if (TryStatx((int)handle.DangerousGetHandle(), "", AtEmptyPath, out var s)) return s;
            }
            finally { if (added) handle.DangerousRelease(); }
        }
        return Portable(pathForFallback) with { Length = RandomAccess.GetLength(handle) };
    }

    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a directory",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.Missing => "missing",
        _ => "not a regular file",
    };

    private static FileStamp Portable(string path)
    {
        FileSystemInfo info = new FileInfo(path);
        try
        {
            if (info.LinkTarget != null) info = info.ResolveLinkTarget(returnFinalTarget: true) ?? info;
        }
        catch (IOException) { return default; } // a link cycle or a dangling link: nothing readable there
        if (Directory.Exists(info.FullName)) return new FileStamp(FileKind.Directory, 0, 0, 0, 0);
        if (!info.Exists) return default;
        var t = info.LastWriteTimeUtc - DateTime.UnixEpoch;
        return new FileStamp(FileKind.Regular, new FileInfo(info.FullName).Length, (long)t.TotalSeconds, (uint)(t.Ticks % TimeSpan.TicksPerSecond * 100), 0);
    }

    private const int AtFdCwd = -100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxBasicStats = 0x7ff;

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern unsafe int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte* buffer);

    private static volatile bool _noStatx;

    /// <summary>statx(2); false when the call is unavailable (then the portable path answers). A missing file
    /// (ENOENT, ENOTDIR, ELOOP) is a <see cref="FileKind.Missing"/> stamp, other errors are I/O errors.</summary>
    private static unsafe bool TryStatx(int dirfd, string path, int flags, out FileStamp stamp)
    {
        stamp = default;
        if (_noStatx) return false;
        byte* buf = stackalloc byte[256];
        int rc;
        try { rc = Statx(dirfd, path, flags, StatxBasicStats, buf); }
        catch (EntryPointNotFoundException) { _noStatx = true; return false; }
        catch (DllNotFoundException) { _noStatx = true; return false; }
        if (rc != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == 38 /* ENOSYS */) { _noStatx = true; return false; }
            if (errno is 2 /* ENOENT */ or 20 /* ENOTDIR */ or 40 /* ELOOP */) return true;
            throw new IOException($"{path}: cannot stat ({Marshal.GetPInvokeErrorMessage(errno)})", errno);
        }
        // struct statx: stx_mode u16 @28, stx_ino u64 @32, stx_size u64 @40, stx_mtime {s64 sec @112, u32 nsec @120}
        ushort mode = *(ushort*)(buf + 28);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Other,
        };
        stamp = new FileStamp(kind, (long)*(ulong*)(buf + 40), *(long*)(buf + 112), *(uint*)(buf + 120), *(ulong*)(buf + 32));
        return true;
    }
}
