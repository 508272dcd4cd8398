using Mistral.Merge.IO;
using static Mistral.Merge.Tests.IO.CrashSafety;

namespace Mistral.Merge.Tests.IO;

/// <summary>
/// Disk full, failing fsync and a file system without RENAME_EXCHANGE, through the writer's fault-injection seam
/// (one class: the seam is process-wide, and tests of one class do not run in parallel; each fails only paths
/// under its own temporary folder, so other test classes are unaffected).
/// </summary>
public class WriterFaultTests
{
    private const int ENOSPC = 28, EIO = 5, ENOSYS = 38;

    private static T WithFault<T>(string root, Func<string, string, int> fault, Func<T> body)
    {
        FaultInjection.Hook = (op, path) => path.StartsWith(root, StringComparison.Ordinal) ? fault(op, path) : 0;
        try { return body(); }
        finally { FaultInjection.Hook = null; }
    }

    private static string Recipe(TempDir tmp)
    {
        var path = tmp["recipe.yml"];
        File.WriteAllText(path, $"""
            merge_method: linear
            models:
              - model: {tmp["a"]}
                parameters: {"{"}weight: 0.5{"}"}
              - model: {tmp["b"]}
                parameters: {"{"}weight: 0.5{"}"}
            dtype: bfloat16
            """);
        return path;
    }

    /// <summary>The command under test, writing tmp/out (--force over an existing model); inputs tmp/a, tmp/b.</summary>
    private static string[] Command(string name, TempDir tmp) => name switch
    {
        "synth" => ["synth", tmp["out"], .. SmallModel, "--out-shard-size", "100KB", "--force"],
        "convert" => ["convert", tmp["a"], tmp["out"], "--out-shard-size", "100KB", "--force"],
        "convert-f32" => ["convert", tmp["a"], tmp["out"], "--dtype", "float32", "--out-shard-size", "200KB", "--force"],
        "merge" => ["merge", Recipe(tmp), tmp["out"], "--out-shard-size", "100KB", "--force"],
        _ => throw new ArgumentException(name),
    };

    private static TempDir Setup(out Dictionary<string, byte[]> old)
    {
        var tmp = new TempDir();
        Synth(tmp["a"], seed: 1);
        Synth(tmp["b"], seed: 2);
        Synth(tmp["out"], seed: 3);
        old = Snapshot(tmp["out"]);
        return tmp;
    }

    /// <summary>Exit 1 and one error line (merge also draws its progress bar on stderr, lines starting "[").</summary>
    private static void AssertOneLineError(CliRunner.Result r, string fragment) =>
        CliRunner.AssertOneLineError(r with { Stderr = string.Join('\n', r.Stderr.Split('\n').Where(l => !l.StartsWith('['))) }, fragment);

    private static void AssertNothingWritten(TempDir tmp, Dictionary<string, byte[]> old)
    {
        AssertSame(old, tmp["out"]);
        Assert.Empty(Leftovers(tmp["out"]));
    }

    [Theory]
    [InlineData("synth", "model-00002-of-00003.safetensors")]
    [InlineData("convert", "model-00002-of-00003.safetensors")] // kernel copies, then the fallback write, fail
    [InlineData("convert-f32", "model-00002-of-00003.safetensors")]
    [InlineData("merge", "model-00002-of-00003.safetensors")]
    [InlineData("merge", "tokenizer.model")] // a copied input: the output file is to blame, not the source
    [InlineData("synth", "config.json")]
    [InlineData("merge", "model.safetensors.index.json")]
    public void DiskFullIsOneLineNamingTheOutputFileAndWritesNothing(string command, string file)
    {
        using var tmp = Setup(out var old);
        var r = WithFault(tmp.Path, (op, path) => op == "write" && Path.GetFileName(path) == file ? ENOSPC : 0, () => CliRunner.Run(Command(command, tmp)));
        AssertOneLineError(r, $"error: {tmp["out"]}/{file}: no space left on device (ENOSPC); nothing was written");
        AssertNothingWritten(tmp, old);
    }

    [Fact]
    public void DiskFullInEveryWorkerAtOnceIsStillOneLine()
    {
        using var tmp = Setup(out var old);
        // armed once the shards are laid out and config.json is written: then every worker's next write fails
        bool armed = false;
        var r = WithFault(tmp.Path, (op, path) =>
            {
                if (Path.GetFileName(path) == "config.json") armed = true;
                return armed && op == "write" && path.EndsWith(".safetensors", StringComparison.Ordinal) ? ENOSPC : 0;
            },
            () => CliRunner.Run("synth", tmp["out"], "--arch", "mistral", "--hidden", "1024", "--layers", "2", "--heads", "4", "--intermediate", "2048",
                "--vocab", "448", "--out-shard-size", "4MB", "--force"));
        AssertOneLineError(r, "no space left on device (ENOSPC); nothing was written");
        AssertNothingWritten(tmp, old);
    }

    [Theory]
    [InlineData("model-00003-of-00003.safetensors")]
    [InlineData("config.json")]
    [InlineData("tokenizer.model")]
    [InlineData("model.safetensors.index.json")]
    [InlineData("README.md")]
    [InlineData("mergekit_config.yml")]
    [InlineData("temporary folder")]
    [InlineData("parent folder")]
    public void FailedFsyncCommitsNothing(string what)
    {
        using var tmp = Setup(out var old);
        bool Target(string path) => what switch
        {
            "temporary folder" => Path.GetFileName(path).StartsWith(".out.partial-", StringComparison.Ordinal),
            "parent folder" => path == tmp.Path,
            _ => Path.GetFileName(path) == what,
        };
        var r = WithFault(tmp.Path, (op, path) => op == "fsync" && Target(path) ? EIO : 0, () => CliRunner.Run(Command("merge", tmp)));
        var named = what.EndsWith("folder", StringComparison.Ordinal) ? tmp["out"] : $"{tmp["out"]}/{what}";
        AssertOneLineError(r, $"error: {named}: input/output error (EIO); nothing was written");
        AssertNothingWritten(tmp, old);
    }

    [Fact]
    public void WithoutExchangeTheForcedCommitRenamesTwiceAndLeavesNothingBeside()
    {
        using var tmp = Setup(out var old);
        int exchanges = 0;
        WithFault(tmp.Path, (op, _) => op == "exchange" && Interlocked.Increment(ref exchanges) > 0 ? ENOSYS : 0, () => { Synth(tmp["out"], seed: 4, "--force"); return 0; });
        Assert.Equal(1, exchanges);
        Assert.NotEqual(old["model-00001-of-00003.safetensors"], Snapshot(tmp["out"])["model-00001-of-00003.safetensors"]);
        Assert.Empty(Leftovers(tmp["out"]));
    }

    [Fact]
    public void FailedParentFsyncAfterTheTwoRenamesPutsTheOldModelBack()
    {
        using var tmp = Setup(out var old);
        var r = WithFault(tmp.Path, (op, path) => op == "exchange" ? ENOSYS : op == "fsync" && path == tmp.Path ? EIO : 0, () => CliRunner.Run(Command("synth", tmp)));
        AssertOneLineError(r, $"error: {tmp["out"]}: input/output error (EIO); nothing was written");
        AssertNothingWritten(tmp, old);
    }

    [Fact]
    public void UnreadableSourceIsNamedAsTheSource()
    {
        using var tmp = new TempDir();
        using var w = new CheckpointWriter(tmp["out"], [new PlannedTensor("w", DType.F32, [1])]);
        var e = Assert.Throws<MergeException>(() => w.CopyFile(tmp["missing/tokenizer.model"], "tokenizer.model"));
        Assert.Equal($"{tmp["missing/tokenizer.model"]}: cannot read (no such file or directory (ENOENT)); nothing was written", e.Message);
    }

    [Fact]
    public void WorkerFailuresTogetherAreReportedAsOneUserError()
    {
        var err = new StringWriter();
        var all = new AggregateException(new IOException("No space left on device", ENOSPC), new AggregateException(new MergeException("x: no space left on device (ENOSPC); nothing was written")));
        Assert.Equal(1, Mistral.Merge.Cli.Cli.Report(all, err));
        Assert.Equal("error: x: no space left on device (ENOSPC); nothing was written\n", err.ToString().ReplaceLineEndings("\n"));
        err = new StringWriter();
        Assert.Equal(1, Mistral.Merge.Cli.Cli.Report(new AggregateException(new OperationCanceledException(), new IOException("disk gone", EIO), new IOException("disk gone", EIO)), err));
        Assert.Equal("error: disk gone\n", err.ToString().ReplaceLineEndings("\n"));
    }
    [Theory]
    [InlineData("write", ENOSPC, "no space left on device (ENOSPC); nothing was written")]
    [InlineData("fsync", EIO, "(EIO); nothing was written")]
    public void AGgufExportThatCannotWriteOrFsyncKeepsTheOldFileAndLeavesNoTemporary(string op, int errno, string message)
    {
        using var tmp = new TempDir();
        var model = Gguf.GgufExport.Synth(tmp["m"], "mistral");
        File.WriteAllText(tmp["o.gguf"], "old");
        var r = WithFault(tmp.Path, (o, p) => o == op && p.Contains(".o.gguf.partial-", StringComparison.Ordinal) ? errno : 0,
            () => CliRunner.Run("export-gguf", model, tmp["o.gguf"], "--force", "--quiet"));
        CliRunner.AssertOneLineError(r, $"{tmp["o.gguf"]}: ");
        Assert.EndsWith(message, r.Stderr.TrimEnd());
        Assert.Equal("old", File.ReadAllText(tmp["o.gguf"]));
        Assert.Equal(["m", "o.gguf"], Directory.EnumerateFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }
}
