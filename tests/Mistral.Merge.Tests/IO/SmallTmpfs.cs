using System.Diagnostics;

namespace Mistral.Merge.Tests.IO;

/// <summary>A small tmpfs mounted for one test, where a disk really fills up (needs root; see <see cref="TmpfsFactAttribute"/>).</summary>
internal sealed class SmallTmpfs : IDisposable
{
    public string Path { get; }

    public SmallTmpfs(long bytes)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mm-tmpfs-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Path);
        if (Run("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", Path) is { } error)
        {
            Directory.Delete(Path);
            throw new InvalidOperationException(error);
        }
    }

    public void Dispose()
    {
        Run("umount", Path);
        try { Directory.Delete(Path, true); } catch (IOException) { }
    }

    /// <summary>Why no tmpfs can be mounted here, or null when one can (tried once).</summary>
    public static readonly string? WhyNot = Probe();

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux()) return "Linux only";
        try { using var t = new SmallTmpfs(1 << 20); return null; }
        catch (Exception e) { return $"cannot mount a tmpfs here ({e.Message.Trim()}); the disk-full test on a real file system needs root"; }
    }

    /// <summary>Runs a command; its error output when it fails, else null.</summary>
    private static string? Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? null : $"{file} exited {p.ExitCode}: {err}";
    }
}

/// <summary>A fact that needs a mountable tmpfs; skipped with the reason where mount fails (no root, in a container).</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute() { if (SmallTmpfs.WhyNot is { } why) Skip = why; }
}
