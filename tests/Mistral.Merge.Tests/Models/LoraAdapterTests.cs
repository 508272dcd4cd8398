using System.Text.Json.Nodes;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Models;

/// <summary>PEFT adapters applied row by row; every expected value worked out by hand in the comments.</summary>
public sealed class LoraAdapterTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private string Adapter(string name, JsonObject config, params (string Tensor, long[] Shape, float[] Values)[] tensors)
        => PeftAdapter.Write(_d[name], config, tensors);

    private static JsonObject Config(int r, double alpha, bool rslora = false, bool fanInFanOut = false) =>
        new() { ["r"] = r, ["lora_alpha"] = alpha, ["use_rslora"] = rslora, ["fan_in_fan_out"] = fanInFanOut };

    private const string Up = "model.layers.0.mlp.up_proj";

    [Fact]
    public void LinearUpdateIsScaleTimesBTimesAAddedToEachRow()
    {
        // A = [[1, 0, 2]], B = [[1], [3]], s = alpha/r = 2: Δ = [[2, 0, 4], [6, 0, 12]]
        using var a = LoraAdapter.Open(Adapter("lin", Config(1, 2), (Up + ".lora_A.weight", [1, 3], [1, 0, 2]), (Up + ".lora_B.weight", [2, 1], [1, 3])));
        float[] w = [1, 2, 3, 4, 5, 6];
        a.CheckShape(Up + ".weight", [2, 3]);
        a.Apply(Up + ".weight", 0, 2, w);
        Assert.Equal([3f, 2, 7, 10, 5, 18], w);
        // a chunk of rows: row 1 alone gets row 1's update
        float[] row1 = [4, 5, 6];
        a.Apply(Up + ".weight", 1, 1, row1);
        Assert.Equal([10f, 5, 18], row1);
        Assert.Equal([Up + ".weight"], a.AdaptedTensors);
    }

    [Fact]
    public void RsLoraScalesByAlphaOverRootRAndPatternsOverrideRankAndAlpha()
    {
        // r = 4, alpha = 8: rsLoRA s = 8/√4 = 4 (plain LoRA would be 2). B·A = [[1, 1]] with A rows [0.25, 0.25] × 4 and B = [[1, 1, 1, 1]]
        var cfg = Config(4, 8, rslora: true);
        using (var a = LoraAdapter.Open(Adapter("rs", cfg, (Up + ".lora_A.weight", [4, 2], [0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f]), (Up + ".lora_B.weight", [1, 4], [1, 1, 1, 1]))))
        {
            float[] w = [0, 0];
            a.Apply(Up + ".weight", 0, 1, w);
            Assert.Equal([4f, 4], w);
        }
        // rank_pattern gives up_proj r = 1 and alpha_pattern alpha = 3 (keys match the module name's end): s = 3
        var pat = Config(8, 16);
        pat["rank_pattern"] = new JsonObject { ["up_proj"] = 1 };
        pat["alpha_pattern"] = new JsonObject { ["mlp\\.up_proj"] = 3 };
        using var p = LoraAdapter.Open(Adapter("pat", pat, (Up + ".lora_A.weight", [1, 2], [1, 2]), (Up + ".lora_B.weight", [1, 1], [1])));
        float[] v = [0, 0];
        p.Apply(Up + ".weight", 0, 1, v);
        Assert.Equal([3f, 6], v);
    }

    [Fact]
    public void EmbeddingAndFanInFanOutUpdatesAreTransposed()
    {
        // embedding [vocab 3, hidden 2]: A [1, 3] = [[1, 2, 3]], B [2, 1] = [[1], [-1]], s = 1: (B·A)ᵀ = [[1, -1], [2, -2], [3, -3]]
        const string Embed = "model.embed_tokens";
        using var a = LoraAdapter.Open(Adapter("emb", Config(1, 1), (Embed + ".lora_embedding_A", [1, 3], [1, 2, 3]), (Embed + ".lora_embedding_B", [2, 1], [1, -1])));
        a.CheckShape(Embed + ".weight", [3, 2]);
        float[] w = [0, 0, 10, 10, 0, 0];
        a.Apply(Embed + ".weight", 0, 3, w);
        Assert.Equal([1f, -1, 12, 8, 3, -3], w);
        var bad = Assert.Throws<MergeException>(() => a.CheckShape(Embed + ".weight", [2, 3]));
        Assert.Contains("the adapter's update of 'model.embed_tokens.weight' is [3, 2], the base tensor is [2, 3]", bad.Message);
        // fan_in_fan_out: the base is stored [in, out], the same transposed update
        using var f = LoraAdapter.Open(Adapter("fifo", Config(1, 1, fanInFanOut: true), (Up + ".lora_A.weight", [1, 3], [1, 2, 3]), (Up + ".lora_B.weight", [2, 1], [1, -1])));
        float[] g = new float[6];
        f.Apply(Up + ".weight", 0, 3, g);
        Assert.Equal([1f, -1, 2, -2, 3, -3], g);
    }

    [Fact]
    public void DoraRescalesEachRowToItsMagnitudeAndBiasesAndSavedModulesApply()
    {
        // W = [[3, 0]], s·B·A = 1·[[4]]·[[0, 1]] = [[0, 4]]: W + Δ = [[3, 4]], norm 5, m = 10 → [[6, 8]]
        using var a = LoraAdapter.Open(Adapter("dora", Config(1, 1),
            (Up + ".lora_A.weight", [1, 2], [0, 1]), (Up + ".lora_B.weight", [1, 1], [4]), (Up + ".lora_B.bias", [1], [0.5f]),
            (Up + ".lora_magnitude_vector", [1], [10]), ("lm_head.weight", [2, 2], [7, 7, 7, 7])));
        float[] w = [3, 0];
        a.Apply(Up + ".weight", 0, 1, w);
        Assert.Equal([6f, 8], w);
        // a bias on lora_B adds s·bias to the layer's bias
        float[] bias = [1];
        a.Apply(Up + ".bias", 0, 1, bias);
        Assert.Equal([1.5f], bias);
        // modules_to_save: the adapter's own lm_head replaces the base's
        var lm = a.Replacement("lm_head.weight");
        Assert.NotNull(lm);
        Assert.Equal([2L, 2], lm!.Shape);
        Assert.Null(a.Replacement(Up + ".weight"));
    }

    [Fact]
    public void MalformedAdaptersAreOneLineErrors()
    {
        var noB = Adapter("nob", Config(1, 1), (Up + ".lora_A.weight", [1, 2], [0, 1]));
        Assert.Contains($"'base_model.model.{Up}.lora_A.weight' has no matching 'base_model.model.{Up}.lora_B.weight'", Assert.Throws<MergeException>(() => LoraAdapter.Open(noB)).Message);
        var rank = Adapter("rank", Config(2, 1), (Up + ".lora_A.weight", [1, 2], [0, 1]), (Up + ".lora_B.weight", [1, 1], [4]));
        Assert.Contains($"'{Up}': lora_A [1, 2] and lora_B [1, 1] do not have rank 2", Assert.Throws<MergeException>(() => LoraAdapter.Open(rank)).Message);
        var badPattern = Config(1, 1);
        badPattern["rank_pattern"] = new JsonObject { ["up_proj("] = 2 };
        var e = Assert.Throws<MergeException>(() => LoraAdapter.Open(Adapter("regex", badPattern, (Up + ".lora_A.weight", [1, 2], [0, 1]), (Up + ".lora_B.weight", [1, 1], [4]))));
        Assert.StartsWith(Path.Combine(_d["regex"], LoraAdapter.ConfigFileName) + ": rank_pattern key 'up_proj(' is not a regular expression (", e.Message);
        var noWeights = _d["empty"];
        Directory.CreateDirectory(noWeights);
        File.WriteAllText(Path.Combine(noWeights, LoraAdapter.ConfigFileName), "{\"r\": 8}");
        Assert.Contains("adapter_model.safetensors: file not found", Assert.Throws<MergeException>(() => LoraAdapter.Open(noWeights)).Message);
    }
}
