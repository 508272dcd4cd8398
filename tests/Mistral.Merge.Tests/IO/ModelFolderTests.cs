using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.IO;

/// <summary>Model-folder layouts and index validation.</summary>
public class ModelFolderTests
{
    private static byte[] File1(params string[] names)
    {
        var parts = new List<string>();
        for (int i = 0; i < names.Length; i++)
            parts.Add($"\"{names[i]}\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[{4 * i},{4 * i + 4}]}}");
        var data = new byte[4 * names.Length];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i + names.Length);
        return RawSafetensors.Build("{" + string.Join(",", parts) + "}", data);
    }

    private static string Index(params (string Tensor, string File)[] map) =>
        "{\"metadata\":{\"total_size\":0},\"weight_map\":{" + string.Join(",", map.Select(m => $"\"{m.Tensor}\":\"{m.File}\"")) + "}}";

    private static TempDir Sharded(string index)
    {
        var tmp = new TempDir();
        File.WriteAllBytes(tmp["model-00001-of-00002.safetensors"], File1("model.embed_tokens.weight", "model.layers.0.x"));
        File.WriteAllBytes(tmp["model-00002-of-00002.safetensors"], File1("model.layers.1.x", "lm_head.weight"));
        File.WriteAllText(tmp[CheckpointWriter.IndexFileName], index);
        return tmp;
    }

    private static readonly (string, string)[] GoodMap =
    [
        ("model.embed_tokens.weight", "model-00001-of-00002.safetensors"), ("model.layers.0.x", "model-00001-of-00002.safetensors"),
        ("model.layers.1.x", "model-00002-of-00002.safetensors"), ("lm_head.weight", "model-00002-of-00002.safetensors"),
    ];

    private static void AssertBadIndex(string index, Func<TempDir, string> expected)
    {
        using var tmp = Sharded(index);
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(tmp.Path));
        Assert.Equal(expected(tmp), e.Message);
    }

    [Fact]
    public void ShardedFolderOpensInNaturalOrder()
    {
        using var tmp = Sharded(Index(GoodMap));
        using var m = ModelFolder.Open(tmp.Path);
        Assert.Equal(["model.embed_tokens.weight", "model.layers.0.x", "model.layers.1.x", "lm_head.weight"], m.TensorNames);
        Assert.Equal(2, m.Files.Count);
        Assert.Equal("model-00002-of-00002.safetensors", Path.GetFileName(m.Lookup("lm_head.weight").File.Path));
        Assert.StartsWith("sharded", m.Layout);
        Assert.Equal(4, m.ParameterCount);
        Assert.Equal(16, m.TotalBytes);
        Assert.Null(m.Config);
    }

    [Fact]
    public void IndexNamingAMissingShard()
        => AssertBadIndex(Index([.. GoodMap, ("extra", "model-00003-of-00003.safetensors")]),
            t => $"{t[CheckpointWriter.IndexFileName]}: shard 'model-00003-of-00003.safetensors' is listed but does not exist");

    [Theory]
    [InlineData("../model-00001-of-00002.safetensors")]
    [InlineData("/etc/passwd")]
    [InlineData("sub/../../x.safetensors")]
    [InlineData("..\\\\x.safetensors")]
    public void IndexPathsLeavingTheFolder(string shard)
        => AssertBadIndex(Index([.. GoodMap[..3], ("lm_head.weight", shard)]),
            t => $"{t[CheckpointWriter.IndexFileName]}: tensor 'lm_head.weight' names shard '{shard.Replace("\\\\", "\\")}', a path outside the model folder");

    [Fact]
    public void IndexNamingAnEmptyShard()
        => AssertBadIndex(Index([.. GoodMap[..3], ("lm_head.weight", "")]),
            t => $"{t[CheckpointWriter.IndexFileName]}: tensor 'lm_head.weight' names an empty shard file name");

    [Fact]
    public void TensorListedButAbsentFromItsShard()
        => AssertBadIndex(Index([.. GoodMap, ("model.norm.weight", "model-00002-of-00002.safetensors")]),
            t => $"{t[CheckpointWriter.IndexFileName]}: tensor 'model.norm.weight' is listed in 'model-00002-of-00002.safetensors' but that shard does not contain it");

    [Fact]
    public void TensorInShardButNotInIndex()
        => AssertBadIndex(Index(GoodMap[..3]),
            t => $"{t["model-00002-of-00002.safetensors"]}: tensor 'lm_head.weight' is in the shard but not in model.safetensors.index.json");

    [Fact]
    public void TensorInTheWrongShard()
        => AssertBadIndex(Index([.. GoodMap[..3], ("lm_head.weight", "model-00001-of-00002.safetensors")]),
            t => $"{t["model-00002-of-00002.safetensors"]}: tensor 'lm_head.weight' is in this shard but model.safetensors.index.json says it is in 'model-00001-of-00002.safetensors'");

    [Fact]
    public void TensorListedTwiceInIndex()
        => AssertBadIndex(Index([.. GoodMap, ("lm_head.weight", "model-00002-of-00002.safetensors")]),
            t => $"{t[CheckpointWriter.IndexFileName]}: invalid JSON (duplicate key 'lm_head.weight')");

    [Theory]
    [InlineData("{\"weight_map\": ", "invalid JSON")]
    [InlineData("[]", "missing 'weight_map' object")]
    [InlineData("{\"metadata\":{}}", "missing 'weight_map' object")]
    [InlineData("{\"weight_map\":{}}", "weight_map is empty")]
    [InlineData("{\"weight_map\":{\"a\":3}}", "weight_map entry 'a' is not a file name")]
    public void BrokenIndex(string index, string fragment)
    {
        using var tmp = Sharded(index);
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(tmp.Path));
        Assert.StartsWith($"{tmp[CheckpointWriter.IndexFileName]}: {fragment}", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void BrokenShardBehindAnIndexNamesTheShard()
    {
        using var tmp = Sharded(Index(GoodMap));
        File.WriteAllBytes(tmp["model-00002-of-00002.safetensors"], [1, 2, 3]);
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(tmp.Path));
        Assert.StartsWith($"{tmp["model-00002-of-00002.safetensors"]}: not a safetensors file", e.Message);
    }

    [Fact]
    public void SeveralFilesWithoutIndex()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["b.safetensors"], File1("model.layers.1.x"));
        File.WriteAllBytes(tmp["a.safetensors"], File1("model.embed_tokens.weight", "model.layers.0.x"));
        using var m = ModelFolder.Open(tmp.Path);
        Assert.Equal(["model.embed_tokens.weight", "model.layers.0.x", "model.layers.1.x"], m.TensorNames);
        Assert.Equal("2 files, no index", m.Layout);
    }

    [Fact]
    public void SameTensorInTwoFilesWithoutIndex()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["a.safetensors"], File1("x", "y"));
        File.WriteAllBytes(tmp["b.safetensors"], File1("y"));
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(tmp.Path));
        Assert.Equal($"{tmp.Path}: tensor 'y' appears in both a.safetensors and b.safetensors", e.Message);
    }

    [Theory]
    [InlineData("{\"hidden_size\": \"big\"}", "'hidden_size' must be an integer from 1 to 1048576, got \"big\"")]
    [InlineData("{\"eos_token_id\": []}", "'eos_token_id' must be an integer or a non-empty list of integers")]
    [InlineData("{\"rope_theta\": true}", "'rope_theta' must be a number from 0 to 1000000000000, got true")]
    [InlineData("[1]", "config.json is not a JSON object")]
    [InlineData("{", "invalid JSON")]
    public void BrokenConfig(string config, string fragment)
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["model.safetensors"], File1("x"));
        File.WriteAllText(tmp["config.json"], config);
        var e = Assert.Throws<MergeException>(() => ModelFolder.Open(tmp.Path));
        Assert.StartsWith($"{tmp["config.json"]}: {fragment}", e.Message);
    }

    [Fact]
    public void ReadSingleWidensAndRefusesIntegers()
    {
        using var tmp = new TempDir();
        File.WriteAllBytes(tmp["model.safetensors"], RawSafetensors.Valid());
        using var m = ModelFolder.Open(tmp.Path);
        var raw = RawSafetensors.Parse(RawSafetensors.Valid());
        var a = m.ReadSingle("a");
        for (int i = 0; i < 6; i++) Assert.Equal(BitConverter.ToSingle(raw["a"].Bytes, 4 * i), a[i]);
        var b = m.ReadSingle("b");
        for (int i = 0; i < 4; i++) Assert.Equal(BitConverter.ToUInt16(raw["b"].Bytes, 2 * i) << 16, (int)BitConverter.SingleToUInt32Bits(b[i]));
        var e = Assert.Throws<MergeException>(() => m.ReadSingle("c"));
        Assert.Equal($"{tmp["model.safetensors"]}: tensor 'c' has dtype I8, which has no float math", e.Message);
        Assert.Equal($"{tmp.Path}: model has no tensor 'zz'", Assert.Throws<MergeException>(() => m.Info("zz")).Message);
    }
}
