using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.IO;

/// <summary>Inputs that are not plain files, links to them, files modified during a run, and SIGBUS.</summary>
public sealed class InputFileTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private string Tiny(string name = "tiny")
    {
        var r = CliRunner.Run("synth", _d[name], "--arch", "mistral", "--hidden", "32", "--layers", "2", "--heads", "4", "--intermediate", "48", "--vocab", "448", "--tokenizer", "byte-level");
        Assert.True(r.ExitCode == 0, r.Stderr);
        return _d[name];
    }

    [Fact]
    public void ALinkToADeviceIsRefusedByKindNotRead()
    {
        Directory.CreateDirectory(_d["m"]);
        File.CreateSymbolicLink(Path.Combine(_d["m"], "model.safetensors"), "/dev/zero");
        CliRunner.AssertOneLineError(CliRunner.Run("inspect", _d["m"]), "model.safetensors: is a character device, not a regular file");
    }

    [LinuxFact]
    public void AFifoAsWeightsFailsAtOnce()
    {
        Directory.CreateDirectory(_d["m"]);
        Fifo.Make(Path.Combine(_d["m"], "model.safetensors"));
        CliRunner.AssertOneLineError(CliRunner.RunWithin("inspect", _d["m"]), "model.safetensors: is a FIFO (named pipe), not a regular file");
    }

    [Fact]
    public void ADirectoryNamedLikeAShardIsRefused()
    {
        Directory.CreateDirectory(Path.Combine(_d["m"], "model.safetensors"));
        var r = CliRunner.Run("inspect", _d["m"]);
        Assert.Equal(1, r.ExitCode);
        Assert.DoesNotContain("internal error", r.Stderr);
    }

    [Fact]
    public void DanglingAndLoopingLinksAreFileNotFound()
    {
        Directory.CreateDirectory(_d["m"]);
        File.CreateSymbolicLink(Path.Combine(_d["m"], "model.safetensors"), "missing-blob");
        CliRunner.AssertOneLineError(CliRunner.Run("inspect", _d["m"]), "model.safetensors: file not found");
        Directory.CreateDirectory(_d["loop"]);
        File.CreateSymbolicLink(Path.Combine(_d["loop"], "model.safetensors"), "model.safetensors");
        var r = CliRunner.Run("inspect", _d["loop"]);
        Assert.Equal(1, r.ExitCode);
        Assert.DoesNotContain("internal error", r.Stderr);
    }

    [Fact]
    public void StampOfALinkIsTheStampOfItsTarget()
    {
        File.WriteAllBytes(_d["blob"], new byte[12345]);
        File.CreateSymbolicLink(_d["link"], "blob");
        var s = FileStamp.OfPath(_d["link"]);
        Assert.Equal(FileKind.Regular, s.Kind);
        Assert.Equal(12345, s.Length);
        Assert.Equal(FileStamp.OfPath(_d["blob"]), s);
        Assert.Equal(FileKind.Directory, FileStamp.OfPath(_d.Path).Kind);
        Assert.Equal(FileKind.Missing, FileStamp.OfPath(_d["nothing"]).Kind);
    }

    [Fact]
    public void WholeFileReadsAreCappedAndNameTheLimit()
    {
        using (var f = File.Create(_d["big.txt"])) f.SetLength(5000); // sparse
        var e = Assert.Throws<MergeException>(() => InputFile.ReadAllText(_d["big.txt"], 4096, "a test text"));
        Assert.Equal($"{_d["big.txt"]}: 5.00 KB is over the 4.10 KB limit for a test text", e.Message);
        File.WriteAllText(_d["small.txt"], "\uFEFFhello");
        Assert.Equal("hello", InputFile.ReadAllText(_d["small.txt"], 4096, "a test text"));
    }

    [Fact]
    public void AModelModifiedAfterOpeningIsDetected()
    {
        var dir = Tiny();
        using var model = ModelFolder.Open(dir);
        model.CheckUnchanged();
        var file = Path.Combine(dir, "model.safetensors");
        File.SetLastWriteTimeUtc(file, File.GetLastWriteTimeUtc(file).AddSeconds(-10));
        var e = Assert.Throws<MergeException>(model.CheckUnchanged);
        Assert.Equal($"{file}: the file was modified while it was being read (modification time changed); nothing was written", e.Message);
        using (var f = new FileStream(file, FileMode.Open, FileAccess.Write)) f.SetLength(f.Length + 8);
        e = Assert.Throws<MergeException>(model.CheckUnchanged);
        Assert.Contains("the file was modified while it was being read (size ", e.Message);
    }

    /// <summary>SIGBUS (a mapped input truncated under us) ends the process with one line and exit 1, not a runtime crash report.</summary>
    [LinuxX64Fact]
    public void SigbusIsOneLineAndExit1()
    {
        var r = HfCacheTests.RunChild(new() { ["MISTRAL_MERGE_TEST_RAISE_SIGBUS"] = "1" }, "--version");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal(SigbusGuard.Message + "\n", r.Stderr);
    }
}
