using Mistral.Merge.IO;
using Mistral.Merge.Models;
using static Mistral.Merge.Tests.IO.CrashSafety;

namespace Mistral.Merge.Tests.IO;

/// <summary>What a killed writer leaves behind is cleaned up by the next writer, never taken for a model, never half-replaced.</summary>
public class CrashRecoveryTests
{
    [LinuxFact]
    public void StalePartialsOfDeadOwnersAreRemovedAndReported()
    {
        using var tmp = new TempDir();
        var outDir = tmp["out"];
        int dead = DeadPid(), me = Environment.ProcessId;
        var ofDead = MakePartial(outDir, dead, 12345);
        var reusedPid = MakePartial(outDir, me, ProcessIdentity.Current.StartTime + 1, "4567abcd"); // our pid, another start time
        var noMarker = MakePartial(outDir, dead, null, "89abcdef"); // killed just before its commit's renames
        var parked = MakePartial(outDir, dead, null, "0123abcd", ".old"); // old model of a killed --force run; OUT exists, so it goes

        Directory.CreateDirectory(outDir);
        var r = CliRunner.Run(["synth", outDir, .. SmallModel, "--force", "--quiet"]);
        Assert.Equal(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.Contains($"removed stale partial output {Path.GetFileName(ofDead)} left by process {dead}", lines);
        Assert.Contains($"removed stale partial output {Path.GetFileName(reusedPid)} left by process {me}", lines);
        Assert.Contains($"removed stale partial output {Path.GetFileName(parked)} left by process {dead}", lines);
        Assert.Contains($"removed stale partial output {Path.GetFileName(noMarker)} left by process {dead}", lines);
        Assert.Empty(Leftovers(outDir));
        using var m = ModelFolder.Open(outDir);
    }

    [LinuxFact]
    public void PartialOfALiveProcessIsLeftAlone()
    {
        using var tmp = new TempDir();
        var outDir = tmp["out"];
        int parent = ParentPid();
        var live = MakePartial(outDir, parent, ProcessIdentity.StartTimeOf(parent));
        var liveNoMarker = MakePartial(outDir, parent, null, "4567abcd");

        var r = CliRunner.Run(["synth", outDir, .. SmallModel, "--quiet"]);
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("", r.Stderr);
        Assert.Equal([Path.GetFileName(live), Path.GetFileName(liveNoMarker)], Leftovers(outDir).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void ReadersRefuseAnUnfinishedOutput()
    {
        using var tmp = new TempDir();
        using var w = new CheckpointWriter(tmp["out"], [new PlannedTensor("w", DType.F32, [4])]);
        w.Write("w", new byte[16]);
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(w.TempDir));
        Assert.Equal($"{w.TempDir} is an unfinished output of mistral-merge (process {Environment.ProcessId}); it is still being written", e.Message);
        CliRunner.AssertOneLineError(CliRunner.Run("inspect", w.TempDir), $"is an unfinished output of mistral-merge (process {Environment.ProcessId})");
        File.WriteAllText(tmp["text.txt"], "Once upon a time");
        CliRunner.AssertOneLineError(CliRunner.Run("perplexity", w.TempDir, "--text", tmp["text.txt"]), "is an unfinished output of mistral-merge");
    }

    [Fact]
    public void ReadersNameAKilledWritersFolderAsLeftOver()
    {
        using var tmp = new TempDir();
        var dir = MakePartial(tmp["out"], DeadPid(), 1);
        var r = CliRunner.Run("inspect", dir);
        CliRunner.AssertOneLineError(r, "that run did not finish, and the next write to the same output removes it");
    }

    [LinuxFact]
    public void ForcedCommitExchangesTheFoldersAndLeavesNothingBeside()
    {
        using var tmp = new TempDir();
        var a = tmp["a"]; var b = tmp["b"];
        Directory.CreateDirectory(a); File.WriteAllText(Path.Combine(a, "x"), "a");
        Directory.CreateDirectory(b); File.WriteAllText(Path.Combine(b, "x"), "b");
        Assert.True(DirectoryExchange.TrySwap(a, b), "renameat2(RENAME_EXCHANGE) is not supported on the temp folder's file system");
        Assert.Equal("b", File.ReadAllText(Path.Combine(a, "x")));
        Assert.Equal("a", File.ReadAllText(Path.Combine(b, "x")));

        var outDir = tmp["out"];
        Synth(outDir, seed: 1);
        var before = Snapshot(outDir);
        Synth(outDir, seed: 2, "--force");
        Assert.NotEqual(before["model-00002-of-00003.safetensors"], Snapshot(outDir)["model-00002-of-00003.safetensors"]);
        Assert.Empty(Leftovers(outDir));
        using var m = ModelFolder.Open(outDir);
        Assert.Equal(21, m.TensorNames.Count);
    }

    [LinuxFact]
    public void OldModelParkedByAKilledForcedCommitIsPutBackWhenOutIsAbsent()
    {
        using var tmp = new TempDir();
        var outDir = tmp["out"];
        Synth(tmp["old"], seed: 1);
        Synth(tmp["new"], seed: 2);
        var old = Snapshot(tmp["old"]);
        int dead = DeadPid();
        // killed between the two renames of a --force commit without RENAME_EXCHANGE: OUT absent, old model parked
        var partial = Path.Combine(tmp.Path, $".out.partial-{dead}-0123abcd");
        Directory.Move(tmp["new"], partial);
        Directory.Move(tmp["old"], partial + ".old");

        var r = CliRunner.Run(["synth", outDir, .. SmallModel]);
        Assert.Equal(1, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith($"restored {outDir} from .out.partial-{dead}-0123abcd.old, where a --force run (process {dead}) had moved it", lines[0]);
        Assert.Equal($"removed stale partial output .out.partial-{dead}-0123abcd left by process {dead}", lines[1]);
        Assert.Equal($"error: {outDir}: folder exists and is not empty (use --force to replace it)", lines[2]);
        AssertSame(old, outDir);
        Assert.Empty(Leftovers(outDir));
    }

    [LinuxFact]
    public void SecondWriterOfTheSameOutputIsRefusedAndTheFirstIsUndisturbed()
    {
        using var tmp = new TempDir();
        var outDir = tmp["out"];
        Synth(outDir, seed: 1);
        var old = Snapshot(outDir);
        using (var first = new CheckpointWriter(outDir, [new PlannedTensor("w", DType.F32, [4])], new WriterOptions { Force = true }))
        {
            var r = CliRunner.Run(["synth", outDir, .. SmallModel, "--force"]);
            CliRunner.AssertOneLineError(r, $"error: {outDir} is being written by another mistral-merge process (pid {Environment.ProcessId})");
            Assert.True(Directory.Exists(first.TempDir));
            Assert.True(File.Exists(Path.Combine(first.TempDir, PartialMarker.FileName)));
            AssertSame(old, outDir);
            first.Write("w", new byte[16]);
            first.Commit();
        }
        Assert.Equal(["model.safetensors"], Directory.GetFiles(outDir).Select(Path.GetFileName));
        Assert.Empty(Leftovers(outDir)); // the lock file goes with its holder
        Synth(outDir, seed: 3, "--force");
        Assert.Empty(Leftovers(outDir));
    }

    [LinuxFact]
    public void HeldLockRefusesTheCliAndItsReleaseRemovesTheLockFile()
    {
        using var tmp = new TempDir();
        var outDir = tmp["out"];
        using (OutputLock.Acquire(outDir))
        {
            Assert.True(File.Exists(OutputLock.PathFor(outDir)));
            CliRunner.AssertOneLineError(CliRunner.Run(["synth", outDir, .. SmallModel]), $"is being written by another mistral-merge process (pid {Environment.ProcessId})");
            Assert.False(Directory.Exists(outDir));
        }
        Assert.False(File.Exists(OutputLock.PathFor(outDir)));
        Synth(outDir);
        Assert.Empty(Leftovers(outDir));
    }
}
