using System.Runtime.InteropServices;
using System.Text;

namespace Mistral.Merge.IO;

/// <summary>
/// Turns SIGBUS into one line on stderr and exit status 1. Weights are read through memory maps, and a mapped
/// file that is truncated while we read it (another program rewriting a model in place) raises SIGBUS, which
/// .NET cannot turn into an exception: the process died with a runtime crash report and exit 134. A signal
/// handler may only make async-signal-safe calls, and managed code is not safe there, so the handler is a few
/// bytes of machine code in an executable page: write(2, message) then exit_group(1). Nothing is committed:
/// every output goes to a temporary folder that only a finished run renames into place, and the next write
/// command removes the folder left behind (its owner marker names a dead process).
/// Installed by the command-line program only (x86-64 Linux; elsewhere the runtime's default stays).
/// </summary>
public static unsafe class SigbusGuard
{
    public const string Message = "error: a memory-mapped file could not be read (SIGBUS): an input model was truncated or rewritten while it was being read, or the disk failed; nothing was written";

    private const int SigBus = 7;
    private const int SaSigInfo = 4;
    private static bool _installed;

    /// <summary>Installs the handler once; returns false where it is not supported.</summary>
    public static bool Install()
    {
        if (_installed) return true;
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return false;
        try
        {
            var code = X64Handler(Encoding.UTF8.GetBytes(Message + "\n"));
            nint page = Mmap(0, 4096, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            if (page == -1 || code.Length > 4096) return false;
            Marshal.Copy(code, 0, page, code.Length);
            if (Mprotect(page, 4096, ProtRead | ProtExec) != 0) return false;
            // glibc's struct sigaction on x86-64: handler (8), sa_mask (128), sa_flags (4, padded to 8), restorer (8).
            byte* act = stackalloc byte[152];
            new Span<byte>(act, 152).Clear();
            *(nint*)act = page;
            *(int*)(act + 136) = SaSigInfo;
            if (Sigaction(SigBus, act, null) != 0) return false;
            _installed = true;
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    /// <summary>lea rsi,[rip+msg]; mov edx,len; mov edi,2; mov eax,1 (write); syscall; mov edi,1; mov eax,231 (exit_group); syscall; msg.</summary>
    private static byte[] X64Handler(byte[] message)
    {
        var c = new List<byte>();
        c.AddRange([0x48, 0x8D, 0x35]); int relAt = c.Count; c.AddRange([0, 0, 0, 0]);
        c.Add(0xBA); c.AddRange(BitConverter.GetBytes(message.Length));
        c.AddRange([0xBF, 2, 0, 0, 0]);
        c.AddRange([0xB8, 1, 0, 0, 0]);
        c.AddRange([0x0F, 0x05]);
        c.AddRange([0xBF, 1, 0, 0, 0]);
        c.AddRange([0xB8, 231, 0, 0, 0]);
        c.AddRange([0x0F, 0x05]);
        int msgAt = c.Count;
        c.AddRange(message);
        var bytes = c.ToArray();
        BitConverter.TryWriteBytes(bytes.AsSpan(relAt, 4), msgAt - (relAt + 4)); // rip-relative: from the end of the lea
        return bytes;
    }

    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2, MapAnonymous = 0x20;

    [DllImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static extern nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [DllImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static extern int Mprotect(nint addr, nuint length, int prot);

    [DllImport("libc", EntryPoint = "sigaction", SetLastError = true)]
    private static extern int Sigaction(int signum, byte* act, byte* oldact);

    [DllImport("libc", EntryPoint = "raise")]
    private static extern int Raise(int sig);

    /// <summary>Raises SIGBUS in this process (the test of the handler runs it in a child process).</summary>
    public static void RaiseForTest() => _ = Raise(SigBus);
}
