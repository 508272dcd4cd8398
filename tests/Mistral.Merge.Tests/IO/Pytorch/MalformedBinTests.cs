using Mistral.Merge.IO.Pickle;

namespace Mistral.Merge.Tests.IO.Pytorch;

/// <summary>Broken zip archives and legacy files: one line naming the file and what is wrong.</summary>
public class MalformedBinTests
{
    private static string Open(byte[] bytes)
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["m.bin"], bytes);
        var e = Assert.Throws<MergeException>(() => PytorchCheckpoint.Open(tmp["m.bin"]));
        Assert.StartsWith(tmp["m.bin"] + ": ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e.Message[(tmp["m.bin"].Length + 2)..];
    }

    private static List<(string Name, byte[] Bytes)> Dtypes() => RawPickles.Members("dtypes-zip.bin");

    [Fact]
    public void AZipRebuiltWithStoredMembersStillReads()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["m.bin"], RawPickles.Zip(Dtypes())); // .NET's writer, not torch's: another valid layout
        using var f = PytorchCheckpoint.Open(tmp["m.bin"]);
        using var r = Mistral.Merge.IO.SafetensorsFile.Open(PytorchFixtures.PathOf("dtypes-reference.safetensors"));
        foreach (var t in r.Tensors) Assert.True(r.GetBytes(t).SequenceEqual(f.GetBytes(f.Get(t.Name))), t.Name);
    }

    [Fact]
    public void AZip64ArchiveReadsLikeTheOriginal()
    {
        // also read by Python's zipfile and torch.load(weights_only=True) when this test was written
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["m.bin"], RawPickles.Zip64(Dtypes()));
        using var f = PytorchCheckpoint.Open(tmp["m.bin"]);
        using var r = Mistral.Merge.IO.SafetensorsFile.Open(PytorchFixtures.PathOf("dtypes-reference.safetensors"));
        Assert.Equal(r.Tensors.Count, f.Tensors.Count);
        foreach (var t in r.Tensors) Assert.True(r.GetBytes(t).SequenceEqual(f.GetBytes(f.Get(t.Name))), t.Name);
    }

    [Fact]
    public void AZip64ArchiveWithoutItsLocatorIsRefused()
    {
        var z = RawPickles.Zip64(Dtypes());
        z[^42] ^= 0xFF; // the locator's signature, 20 + 22 bytes from the end
        Assert.Equal("not a valid zip archive (ZIP64 locator missing)", Open(z));
    }

    [Fact]
    public void ACompressedStorageMemberIsRefused()
        => Assert.Equal("member dtypes-zip/data/0 is compressed (method 8); torch.save stores every member uncompressed",
            Open(RawPickles.Zip(Dtypes(), "dtypes-zip/data/0")));

    [Fact]
    public void AZipWithoutDataPklIsRefused()
        => Assert.Equal("a zip archive without a NAME/data.pkl member (not a torch.save checkpoint)",
            Open(RawPickles.Zip(Dtypes().Where(m => !m.Name.EndsWith("data.pkl", StringComparison.Ordinal)))));

    [Fact]
    public void AMissingStorageMemberIsRefused()
        => Assert.Equal("storage '3' has no member dtypes-zip/data/3",
            Open(RawPickles.Zip(Dtypes().Where(m => m.Name != "dtypes-zip/data/3"))));

    [Fact]
    public void AStorageMemberOfTheWrongSizeIsRefused()
        => Assert.Equal("member dtypes-zip/data/0 holds 92 bytes but its FloatStorage of 24 elements needs 96",
            Open(RawPickles.Zip(Dtypes().Select(m => m.Name == "dtypes-zip/data/0" ? (m.Name, m.Bytes[..92]) : m))));

    [Fact]
    public void ABigEndianByteOrderIsRefused()
        => Assert.Equal("byte order 'big' (member dtypes-zip/byteorder); only little-endian checkpoints are supported",
            Open(RawPickles.Zip([.. Dtypes(), ("dtypes-zip/byteorder", "big"u8.ToArray())])));

    [Fact]
    public void TwoDataPicklesAreRefused()
        => Assert.StartsWith("a zip archive with 2 NAME/data.pkl members",
            Open(RawPickles.Zip([.. Dtypes(), ("other/data.pkl", Dtypes()[0].Bytes)])));

    [Fact]
    public void ATruncatedZipHasNoCentralDirectory()
        => Assert.Equal("not a valid zip archive (no end-of-central-directory record; truncated?)",
            Open(File.ReadAllBytes(PytorchFixtures.PathOf("dtypes-zip.bin"))[..2000]));

    [Theory]
    [InlineData(100, "legacy system info: the pickle ends")]
    [InlineData(1000, "pickle: the pickle ends")]
    [InlineData(1693, "storage '")]
    public void ATruncatedLegacyFileIsRefused(int keep, string start)
        => Assert.StartsWith(start, Open(File.ReadAllBytes(PytorchFixtures.PathOf("dtypes-legacy.bin"))[..keep]));

    [Fact]
    public void TrailingBytesAfterTheLastLegacyStorageAreRefused()
        => Assert.Equal("3 trailing bytes after the last storage",
            Open([.. File.ReadAllBytes(PytorchFixtures.PathOf("dtypes-legacy.bin")), 1, 2, 3]));

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy pickle)")]
    [InlineData(new byte[] { 0x80, 2, (byte)'N', (byte)'.' }, "a pickle without the PyTorch magic number (not a torch.save checkpoint)")]
    [InlineData(new byte[0], "an empty file, not a PyTorch checkpoint")]
    public void AFileThatIsNoCheckpointIsRefused(byte[] bytes, string message) => Assert.Equal(message, Open(bytes));

    [Fact]
    public void ATarCheckpointOfOldTorchIsRefused()
    {
        var tar = new byte[1024];
        "ustar"u8.CopyTo(tar.AsSpan(257));
        Assert.Equal("a tar-format PyTorch checkpoint (torch < 0.4), which is not supported; re-save it with a current torch.save", Open(tar));
    }
}
