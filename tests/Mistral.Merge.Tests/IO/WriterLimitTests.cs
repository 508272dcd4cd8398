using Mistral.Merge.IO;

namespace Mistral.Merge.Tests.IO;

/// <summary>The writer refuses, before creating anything, outputs its own reader would reject or that cannot be opened or stored.</summary>
public sealed class WriterLimitTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private void AssertNothingCreated() => Assert.Empty(Directory.GetFileSystemEntries(_d.Path));

    [Fact]
    public void AHeaderOverTheReaderLimitIsRefused()
    {
        // 1.1 M tensors with 80-character names: a header of ~150 MB, over the 100 MB safetensors readers accept
        var plan = Enumerable.Range(0, 1_100_000).Select(i => new PlannedTensor($"model.layers.{i}.{new string('x', 64)}", DType.F32, [1])).ToList();
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(_d["out"], plan).Dispose());
        Assert.StartsWith($"{_d["out"]}: the header of model.safetensors would be ", e.Message);
        Assert.EndsWith("(1,100,000 tensors), over the 100 MB safetensors readers accept; choose a smaller --out-shard-size", e.Message);
        AssertNothingCreated();
    }

    [Fact]
    public void TooManyShardsAreRefused()
    {
        var plan = Enumerable.Range(0, CheckpointWriter.MaxShards + 1).Select(i => new PlannedTensor($"t{i}", DType.F32, [4])).ToList();
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(_d["out"], plan, new WriterOptions { ShardSize = 16 }).Dispose());
        Assert.Equal($"{_d["out"]}: --out-shard-size 16 B makes more than 10,000 shards; choose a larger size", e.Message);
        AssertNothingCreated();
    }

    [Fact]
    public void ASizePastTheDiskIsRefusedBeforeAnyFileExists()
    {
        var plan = new List<PlannedTensor> { new("huge", DType.F32, [1L << 50]) };
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(_d["out"], plan).Dispose());
        Assert.Contains("needs 4504 TB but only", e.Message);
        AssertNothingCreated();
    }

    [Fact]
    public void AByteCountPast2ToThe63IsRefused()
    {
        var plan = new List<PlannedTensor> { new("a", DType.F32, [1L << 60]), new("b", DType.F32, [1L << 60]) };
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(_d["out"], plan).Dispose());
        Assert.Equal($"{_d["out"]}: the model's size overflows a 64-bit byte count (tensor 'b')", e.Message);
        AssertNothingCreated();
    }
}
