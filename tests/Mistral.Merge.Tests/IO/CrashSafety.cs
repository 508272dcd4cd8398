using System.Diagnostics;
using System.Globalization;
using Mistral.Merge.IO;

namespace Mistral.Merge.Tests.IO;

/// <summary>Helpers of the crash-safety and I/O-failure tests: small synthesized models and the leftovers beside an output.</summary>
internal static class CrashSafety
{
    public static readonly string[] SmallModel =
        ["--arch", "mistral", "--hidden", "64", "--layers", "2", "--heads", "4", "--intermediate", "128", "--vocab", "448", "--tokenizer", "byte-level"];

    /// <summary>Synthesizes the small model (3 shards at 100 KB) through the CLI and checks it worked.</summary>
    public static void Synth(string outDir, int seed = 1, params string[] extra)
    {
        var r = CliRunner.Run(["synth", outDir, .. SmallModel, "--seed", seed.ToString(CultureInfo.InvariantCulture), "--out-shard-size", "100KB", .. extra]);
        Assert.True(r.ExitCode == 0, r.Stderr);
    }

    /// <summary>Everything the writer may leave beside <paramref name="outDir"/>: temporary folders, parked old models, the lock file.</summary>
    public static string[] Leftovers(string outDir)
    {
        var name = Path.GetFileName(outDir);
        return Directory.GetFileSystemEntries(Path.GetDirectoryName(outDir)!).Select(Path.GetFileName)
            .Where(n => n!.StartsWith($".{name}.partial-", StringComparison.Ordinal) || n == $".{name}.lock").ToArray()!;
    }

    /// <summary>File name → bytes of a folder, to check a model was left exactly as it was.</summary>
    public static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);

    public static void AssertSame(Dictionary<string, byte[]> expected, string dir)
    {
        var actual = Snapshot(dir);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, bytes) in expected) Assert.True(bytes.AsSpan().SequenceEqual(actual[name]), $"{name} changed");
    }

    /// <summary>The pid of a process that has exited and been reaped: certainly not running.</summary>
    public static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }

    /// <summary>Our parent process (the test host's launcher), running for the whole test run.</summary>
    public static int ParentPid()
    {
        var stat = File.ReadAllText("/proc/self/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
    }

    /// <summary>A temporary folder as a killed writer leaves it: some bytes and a marker naming its owner.</summary>
    public static string MakePartial(string outDir, int pid, long? startTime, string tag = "0123abcd", string suffix = "")
    {
        var dir = Path.Combine(Path.GetDirectoryName(outDir)!, $".{Path.GetFileName(outDir)}.partial-{pid}-{tag}{suffix}");
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "model-00001-of-00002.safetensors"), new byte[1000]);
        if (startTime is { } t) PartialMarker.Write(dir, new ProcessIdentity(pid, t));
        return dir;
    }
}
