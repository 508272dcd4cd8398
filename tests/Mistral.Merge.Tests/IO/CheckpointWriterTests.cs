using System.Text.Json;
using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.IO;

public class CheckpointWriterTests
{
    private static List<PlannedTensor> Plan(int count, long elements, DType dtype = DType.F32)
    {
        var plan = new List<PlannedTensor>();
        for (int i = 0; i < count; i++) plan.Add(new PlannedTensor($"model.layers.{i}.w", dtype, [elements]));
        return plan;
    }

    private static byte[] Bytes(string name, long length)
    {
        var b = new byte[length];
        new Random(name.GetHashCode(StringComparison.Ordinal) ^ (int)length).NextBytes(b);
        return b;
    }

    private static void WriteAll(CheckpointWriter w)
    {
        foreach (var t in w.Plan) w.Write(t.Name, Bytes(t.Name, t.ByteLength));
    }

    private static string[] Partials(string parent) =>
        Directory.GetFileSystemEntries(parent).Select(Path.GetFileName).Where(n => n!.Contains(".partial-")).ToArray()!;

    [Fact]
    public void ShardsSplitAtTheSizeWithIndexAndAlignedHeaders()
    {
        using var tmp = new TempDir();
        var plan = Plan(5, 25); // 100 bytes each
        using (var w = new CheckpointWriter(tmp["out"], plan, new WriterOptions { ShardSize = 250 }))
        {
            Assert.Equal(3, w.ShardCount);
            Assert.Equal(500, w.TotalBytes);
            WriteAll(w);
            w.Commit();
        }
        var files = Directory.GetFiles(tmp["out"]).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", "model.safetensors.index.json"], files);
        using var index = JsonDocument.Parse(File.ReadAllBytes(tmp["out/model.safetensors.index.json"]));
        Assert.Equal(500, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        Assert.Equal(new Dictionary<string, string?>
        {
            ["model.layers.0.w"] = "model-00001-of-00003.safetensors", ["model.layers.1.w"] = "model-00001-of-00003.safetensors",
            ["model.layers.2.w"] = "model-00002-of-00003.safetensors", ["model.layers.3.w"] = "model-00002-of-00003.safetensors",
            ["model.layers.4.w"] = "model-00003-of-00003.safetensors",
        }, map);
        foreach (var f in files[..3])
        {
            var raw = File.ReadAllBytes(Path.Combine(tmp["out"], f));
            ulong n = BitConverter.ToUInt64(raw, 0);
            Assert.Equal(0UL, n % 8); // data starts 8-byte aligned
            using var header = JsonDocument.Parse(raw.AsMemory(8, (int)n));
            Assert.Equal("pt", header.RootElement.GetProperty("__metadata__").GetProperty("format").GetString());
            foreach (var (name, e) in RawSafetensors.Parse(raw))
                Assert.Equal(Bytes(name, 100), e.Bytes); // independent read-back
        }
        using var m = ModelFolder.Open(tmp["out"]);
        Assert.Equal(5, m.TensorNames.Count);
    }

    [Fact]
    public void OneShardIsModelSafetensorsWithoutIndex()
    {
        using var tmp = new TempDir();
        using (var w = new CheckpointWriter(tmp["out"], Plan(3, 10)))
        {
            Assert.Equal(1, w.ShardCount);
            WriteAll(w);
            w.AddFile("config.json", "{}");
            w.Commit();
        }
        Assert.Equal(["config.json", "model.safetensors"], Directory.GetFiles(tmp["out"]).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        using var f = SafetensorsFile.Open(tmp["out/model.safetensors"]);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(0, (8 + f.DataStart - 8) % 8);
    }

    [Fact]
    public void TensorLargerThanTheShardSizeGetsItsOwnShard()
    {
        using var tmp = new TempDir();
        var plan = new List<PlannedTensor> { new("a", DType.U8, [10]), new("big", DType.U8, [1000]), new("c", DType.U8, [10]) };
        using var w = new CheckpointWriter(tmp["out"], plan, new WriterOptions { ShardSize = 100 });
        Assert.Equal(3, w.ShardCount);
    }

    [Fact]
    public void RoundTripWithChunksInAnyOrderFromManyThreads()
    {
        using var tmp = new TempDir();
        var plan = new List<PlannedTensor>
        {
            new("model.embed_tokens.weight", DType.BF16, [300, 7]), new("x.bool", DType.BOOL, [13]), new("e", DType.F32, [0, 5]),
            new("model.layers.0.q", DType.F16, [1001]), new("model.norm.weight", DType.I64, [3]),
        };
        var expected = plan.ToDictionary(t => t.Name, t => Bytes(t.Name, t.ByteLength));
        using (var w = new CheckpointWriter(tmp["out"], plan, new WriterOptions { ShardSize = 1000 }))
        {
            var chunks = plan.SelectMany(t => Enumerable.Range(0, (int)((t.ByteLength + 16) / 17)).Select(c => (t.Name, Offset: c * 17L))).ToList();
            chunks.Reverse();
            Parallel.ForEach(chunks, c =>
            {
                var all = expected[c.Name];
                w.Write(c.Name, all.AsSpan((int)c.Offset, (int)Math.Min(17, all.Length - c.Offset)), c.Offset);
            });
            w.Commit();
        }
        using var m = ModelFolder.Open(tmp["out"]);
        foreach (var t in plan)
        {
            Assert.Equal(t.DType, m.Info(t.Name).DType);
            Assert.Equal(t.Shape, m.Info(t.Name).Shape);
            Assert.Equal(expected[t.Name], m.GetBytes(t.Name).ToArray());
        }
    }

    [Fact]
    public void NonEmptyDestinationIsRefusedWithoutForceAndReplacedWithIt()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["out"]);
        File.WriteAllText(tmp["out/old.txt"], "old");
        var e = Assert.Throws<MergeException>(() => new CheckpointWriter(tmp["out"], Plan(1, 1)));
        Assert.Equal($"{tmp["out"]}: folder exists and is not empty (use --force to replace it)", e.Message);
        Assert.Empty(Partials(tmp.Path));
        using (var w = new CheckpointWriter(tmp["out"], Plan(1, 1), new WriterOptions { Force = true }))
        {
            WriteAll(w);
            w.Commit();
        }
        Assert.Equal(["model.safetensors"], Directory.GetFiles(tmp["out"]).Select(Path.GetFileName));
        Assert.Empty(Partials(tmp.Path));
    }

    [Fact]
    public void EmptyExistingDestinationIsFine()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["out"]);
        using var w = new CheckpointWriter(tmp["out/"], Plan(1, 1)); // trailing slash names the same folder
        WriteAll(w);
        w.Commit();
        Assert.True(File.Exists(tmp["out/model.safetensors"]));
        Assert.Empty(Partials(tmp.Path));
        Assert.Empty(Partials(tmp["out"]));
    }

    [Fact]
    public void FailedRunLeavesNoDestinationAndNoTempFolder()
    {
        using var tmp = new TempDir();
        using (var w = new CheckpointWriter(tmp["out"], Plan(2, 10)))
        {
            Assert.Single(Partials(tmp.Path)); // work happens beside the destination, hidden
            w.Write("model.layers.0.w", new byte[40]);
            // no Commit: the run failed
        }
        Assert.False(Directory.Exists(tmp["out"]));
        Assert.Empty(Partials(tmp.Path));
    }

    [Fact]
    public void IncompleteWriteIsRefusedByCommit()
    {
        using var tmp = new TempDir();
        using (var w = new CheckpointWriter(tmp["out"], Plan(2, 10)))
        {
            w.Write("model.layers.0.w", new byte[40]);
            w.Write("model.layers.1.w", new byte[39]);
            var e = Assert.Throws<MergeException>(() => w.Commit());
            Assert.Equal($"{tmp["out"]}: tensor 'model.layers.1.w' is incomplete (39 of 40 bytes written); nothing was written", e.Message);
        }
        Assert.False(Directory.Exists(tmp["out"]));
        Assert.Empty(Partials(tmp.Path));
    }

    [Fact]
    public void DestinationAppearingDuringTheRunIsNotClobbered()
    {
        using var tmp = new TempDir();
        using (var w = new CheckpointWriter(tmp["out"], Plan(1, 1)))
        {
            WriteAll(w);
            Directory.CreateDirectory(tmp["out"]);
            File.WriteAllText(tmp["out/other.txt"], "x");
            Assert.Throws<MergeException>(() => w.Commit());
        }
        Assert.Equal(["other.txt"], Directory.GetFiles(tmp["out"]).Select(Path.GetFileName));
        Assert.Empty(Partials(tmp.Path));
    }

    [Fact]
    public void BadPlansAndWritesAreRefused()
    {
        using var tmp = new TempDir();
        Assert.Throws<MergeException>(() => new CheckpointWriter(tmp["a"], [new("x", DType.F32, [1]), new("x", DType.F32, [1])]));
        Assert.Throws<MergeException>(() => new CheckpointWriter(tmp["a"], [new("x", DType.F32, [-1])]));
        Assert.Throws<MergeException>(() => new CheckpointWriter(tmp["a"], Plan(1, 1), new WriterOptions { ShardSize = 0 }));
        File.WriteAllText(tmp["file"], "x");
        Assert.Equal($"{tmp["file"]}: exists and is a file, not a folder",
            Assert.Throws<MergeException>(() => new CheckpointWriter(tmp["file"], Plan(1, 1))).Message);
        using var w = new CheckpointWriter(tmp["b"], Plan(1, 2));
        Assert.Throws<InvalidOperationException>(() => w.Write("model.layers.0.w", new byte[9]));
        Assert.Throws<InvalidOperationException>(() => w.Write("model.layers.0.w", new byte[4], 5));
        Assert.Throws<InvalidOperationException>(() => w.Write("nope", new byte[1]));
        Assert.Throws<InvalidOperationException>(() => w.AddFile("../escape.json", "{}"));
        Assert.DoesNotContain(Partials(tmp.Path), p => !p.StartsWith(".b.", StringComparison.Ordinal));
    }
}
