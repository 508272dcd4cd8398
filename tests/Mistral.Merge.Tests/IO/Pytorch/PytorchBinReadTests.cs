using Mistral.Merge.IO;
using Mistral.Merge.IO.Pickle;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.IO.Pytorch;

/// <summary>Real torch.save outputs read in place and compared byte for byte with the safetensors the generator wrote.</summary>
public class PytorchBinReadTests
{
    private static void AssertSameTensors(string reference, string bin)
    {
        using var r = SafetensorsFile.Open(reference);
        using var b = PytorchCheckpoint.Open(bin);
        var want = PytorchFixtures.Contents(r);
        var got = PytorchFixtures.Contents(b);
        Assert.Equal(want.Keys.Order(StringComparer.Ordinal), got.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, w) in want)
        {
            Assert.Equal(w.DType, got[name].DType);
            Assert.Equal(w.Shape, got[name].Shape);
            Assert.True(w.Bytes.AsSpan().SequenceEqual(got[name].Bytes), $"{bin}: tensor '{name}' differs from the reference");
        }
    }

    [Theory]
    [InlineData("dtypes-zip.bin", PytorchCheckpoint.ZipFormat)]
    [InlineData("dtypes-legacy.bin", PytorchCheckpoint.LegacyFormat)]
    public void EveryDtypeViewAndTiedTensorEqualsTheReferenceBytes(string file, string format)
    {
        AssertSameTensors(PytorchFixtures.PathOf("dtypes-reference.safetensors"), PytorchFixtures.PathOf(file));
        using var b = PytorchCheckpoint.Open(PytorchFixtures.PathOf(file));
        Assert.Equal(format, b.Format);
        Assert.Equal(0, b.DataStart);
    }

    [Theory]
    [InlineData("dtypes-zip.bin")]
    [InlineData("dtypes-legacy.bin")]
    public void TiedTensorsAndViewsShareTheirStoragesBytesInTheFile(string file)
    {
        using var b = PytorchCheckpoint.Open(PytorchFixtures.PathOf(file));
        var a = b.Get("tied_a");
        var tied = b.Get("tied_b");
        var rows = b.Get("rows_2_to_4");
        var row = b.Get("row_3");
        Assert.Equal((a.Begin, a.End), (tied.Begin, tied.End)); // one storage, not a copy
        Assert.Equal(a.Begin + 2 * 8 * 4, rows.Begin);           // storage offset 16 elements of F32
        Assert.Equal("[2, 8]", rows.ShapeText);
        Assert.Equal(a.Begin + 3 * 8 * 4, row.Begin);
        Assert.Equal([3 * 8 / 4f - 3, 3 * 8 / 4f - 3 + 0.25f], System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b.GetBytes(row))[..2].ToArray());
        Assert.Equal(0, b.Get("empty").ByteLength);
        Assert.Equal("[]", b.Get("scalar").ShapeText);
        Assert.Equal(2.5f, BitConverter.ToSingle(b.GetBytes(b.Get("scalar"))));
        Assert.Equal(1L << 40, BitConverter.ToInt64(b.GetBytes(b.Get("i64")).ToArray(), 24));
    }

    [Theory]
    [InlineData("llama-zip")]
    [InlineData("llama-legacy")]
    [InlineData("llama-sharded")]
    public void TheLlamaCheckpointEqualsTheReferenceInEveryLayout(string folder)
    {
        using var reference = ModelFolder.Open(PytorchFixtures.PathOf("llama-reference"));
        using var bin = ModelFolder.Open(PytorchFixtures.PathOf(folder));
        Assert.Equal(reference.TensorNames, bin.TensorNames);
        foreach (var name in reference.TensorNames)
        {
            Assert.Equal(reference.Info(name).DType, bin.Info(name).DType);
            Assert.Equal(reference.Info(name).ShapeText, bin.Info(name).ShapeText);
            Assert.True(reference.GetBytes(name).SequenceEqual(bin.GetBytes(name)), $"{folder}: '{name}' differs");
        }
        Assert.Equal("llama", bin.Names.Name);
        Assert.Equal(bin.Lookup("model.embed_tokens.weight").Info.Begin, bin.Lookup("lm_head.weight").Info.Begin);
    }

    [Theory]
    [InlineData("llama-zip", "single file, PyTorch zip format", 1)]
    [InlineData("llama-legacy", "single file, PyTorch legacy format", 1)]
    [InlineData("llama-sharded", "sharded (2 files, index), PyTorch .bin", 2)]
    public void ModelFolderDescribesThePytorchLayout(string folder, string layout, int files)
    {
        using var m = ModelFolder.Open(PytorchFixtures.PathOf(folder));
        Assert.Equal(layout, m.Layout);
        Assert.Equal(files, m.Files.Count);
    }

    [Fact]
    public void SafetensorsInTheFolderArePreferredOverABinFile()
    {
        using var tmp = new TempDir();
        PytorchFixtures.CopyFolder("llama-zip", tmp.Path);
        File.Copy(PytorchFixtures.PathOf("llama-reference", "model.safetensors"), tmp["model.safetensors"]);
        using var m = ModelFolder.Open(tmp.Path);
        Assert.Equal("single file", m.Layout);
        Assert.Equal("safetensors", m.Files[0].Format);
    }

    [Theory]
    [InlineData("transposed-zip.bin")]
    [InlineData("transposed-legacy.bin")]
    public void ANonContiguousViewIsRefusedInOneLine(string file)
    {
        var path = PytorchFixtures.PathOf(file);
        var e = Assert.Throws<MergeException>(() => PytorchCheckpoint.Open(path));
        Assert.Equal($"{path}: tensor 'transposed': a non-contiguous view (shape [8, 5], strides [1, 8]), which is not supported; save it with .contiguous()", e.Message);
    }

    [Fact]
    public void AShardedBinIndexIsCheckedAgainstItsShards()
    {
        using var tmp = new TempDir();
        PytorchFixtures.CopyFolder("llama-sharded", tmp.Path);
        var index = File.ReadAllText(tmp[ModelFolder.BinIndexFileName]).Replace("\"model.norm.weight\": \"pytorch_model-00002-of-00002.bin\"", "\"model.norm.weight\": \"pytorch_model-00001-of-00002.bin\"");
        File.WriteAllText(tmp[ModelFolder.BinIndexFileName], index);
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(tmp.Path));
        Assert.Equal($"{tmp["pytorch_model-00002-of-00002.bin"]}: tensor 'model.norm.weight' is in this shard but pytorch_model.bin.index.json says it is in 'pytorch_model-00001-of-00002.bin'", e.Message);
    }

    [Fact]
    public void AFolderWithoutWeightsNamesEveryAcceptedLayout()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(tmp.Path));
        Assert.Equal($"{tmp.Path}: no model.safetensors, model.safetensors.index.json, *.safetensors, pytorch_model.bin or pytorch_model.bin.index.json in this folder", e.Message);
    }
}
