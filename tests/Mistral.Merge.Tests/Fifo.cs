using System.Diagnostics;

namespace Mistral.Merge.Tests;

/// <summary>Named pipes for the tests of inputs that would block a reader (Linux: mkfifo).</summary>
public static class Fifo
{
    public static void Make(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }
}
