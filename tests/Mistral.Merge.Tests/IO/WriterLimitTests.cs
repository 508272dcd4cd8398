using Mistral.Merge.IO;

namespace Mistral.Merge.Tests.IO;

/// <summary>The writer refuses, before creating anything, outputs its own reader would reject or that cannot be opened or stored.</summary>
public sealed class WriterLimitTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private void AssertNothingCreated() => Assert.Empty(Directory.GetFileSystemEntries(_d.Path));

    [Fact]
    public void A_header_over_the_reader_limit_is_refused()
    {
        // 1.1 M tensors with 80-character names: a header of ~150 MB, over the 100 MB safetensors readers accept
        var plan = Enumerable.Range(0, 1_100_000).Select(i => new PlannedTensor($"model.layers.{i}.{new string('x', 64)}", DType.F32, [1])).ToList();
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(_d["out"], plan).Dispose());
        Assert.StartsWith($"{_d["out"]}: the header of model.safetensors would be ", e.Message);
        Assert.EndsWith("(1,100,000 tensors), over the 100 MB safetensors readers accept; choose a smaller --out-shard-size", e.Message);
        AssertNothingCreated();
    }

    [Fact]
    public void Too_many_shards_are_refused()
    {
        var plan = Enumerable.Range(0, CheckpointWriter.MaxShards + 1).Select(i => new PlannedTensor($"t{i}", DType.F32, [4])).ToList();
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(_d["out"], plan, new WriterOptions { ShardSize = 16 }).Dispose());
        Assert.Equal($"{_d["out"]}: --out-shard-size 16 B makes more than 10,000 shards; choose a larger size", e.Message);
        AssertNothingCreated();
    }

    [Fact]
    public void A_size_past_the_disk_is_refused_before_any_file_exists()
    {
        var plan = new List<PlannedTensor> { new("huge", DType.F32, [1L << 50]) };
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(_d["out"], plan).Dispose());
        Assert.Contains("needs 4504 TB but only", e.Message);
        AssertNothingCreated();
    }

    [Fact]
    public void A_byte_count_past_2_to_the_63_is_refused()
    {
        var plan = new List<PlannedTensor> { new("a", DType.F32, [1L << 60]), new("b", DType.F32, [1L << 60]) };
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(_d["out"], plan).Dispose());
        Assert.Equal($"{_d["out"]}: the model's size overflows a 64-bit byte count (tensor 'b')", e.Message);
        AssertNothingCreated();
    }
}
