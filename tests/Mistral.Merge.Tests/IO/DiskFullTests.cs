using static Mistral.Merge.Tests.IO.CrashSafety;

namespace Mistral.Merge.Tests.IO;

/// <summary>A disk that really fills up (a small tmpfs): every write command fails with one line and leaves the old model.</summary>
public class DiskFullTests
{
    [TmpfsFact]
    public void FullDiskAtEveryMarginGivesOneLineAndKeepsTheOldModel()
    {
        using var tmp = new TempDir();
        Synth(tmp["a"], seed: 1);
        Synth(tmp["b"], seed: 2);
        File.WriteAllText(tmp["recipe.yml"], $"merge_method: linear\nmodels:\n  - model: {tmp["a"]}\n    parameters: {{weight: 0.5}}\n  - model: {tmp["b"]}\n    parameters: {{weight: 0.5}}\ndtype: bfloat16\n");
        long modelBytes = Directory.GetFiles(tmp["a"], "*.safetensors").Sum(f => new FileInfo(f).Length);
        using var fs = new SmallTmpfs(4 << 20);
        var outDir = Path.Combine(fs.Path, "out");
        var filler = Path.Combine(fs.Path, "filler");
        Synth(outDir, seed: 3);
        string[][] commands =
        [
            ["synth", outDir, .. SmallModel, "--out-shard-size", "100KB", "--force"],
            ["convert", tmp["a"], outDir, "--out-shard-size", "100KB", "--force"],
            ["merge", tmp["recipe.yml"], outDir, "--out-shard-size", "100KB", "--force"],
        ];
        int midWrite = 0;
        foreach (var command in commands)
            for (int pages = -2; pages <= 24; pages += 2) // free space around the model's size: refused up front, full mid-write, or fitting
            {
                File.Delete(filler);
                long free = new DriveInfo(fs.Path).AvailableFreeSpace;
                File.WriteAllBytes(filler, new byte[Math.Max(0, free - modelBytes - pages * 4096L)]);
                var old = Snapshot(outDir);
                var r = CliRunner.Run(command);
                var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('[')).ToArray();
                var what = $"{command[0]} with {pages} pages spare: exit {r.ExitCode}, stderr {r.Stderr}";
                Assert.DoesNotContain("internal error", r.Stderr);
                Assert.Empty(Leftovers(outDir));
                if (r.ExitCode == 0)
                {
                    using var m = Mistral.Merge.Models.ModelFolder.Open(outDir);
                    continue;
                }
                Assert.True(r.ExitCode == 1 && lines.Length == 1, what);
                AssertSame(old, outDir);
                if (lines[0].EndsWith(": no space left on device (ENOSPC); nothing was written", StringComparison.Ordinal))
                {
                    Assert.StartsWith($"error: {outDir}", lines[0]); // the output is to blame, never an input
                    midWrite++;
                }
                else Assert.Contains("is free on that disk", lines[0]);
            }
        Assert.True(midWrite > 0, "no run ran out of space mid-write");
    }
}
