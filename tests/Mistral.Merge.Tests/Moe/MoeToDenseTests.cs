using Mistral.Merge.Models;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

/// <summary>moe_to_dense on checkpoints the test writes itself.</summary>
public class MoeToDenseTests
{
    [Fact]
    public void WritesAMistralCheckpointWithTheCollapsedMlpsAndAConsistentConfig()
    {
        using var tmp = new TempDir();
        TinyMixtral.Write(tmp["in"], 3);
        foreach (var side in new[] { "chat_template.jinja", "added_tokens.json", "generation_config.json" }) File.WriteAllText(Path.Combine(tmp["in"], side), side);
        var r = MoeToDense.Convert(tmp["in"], tmp["out"], new MoeToDenseOptions { Strategy = DenseStrategy.Concat, OutDType = DType.BF16 });
        foreach (var side in new[] { "chat_template.jinja", "added_tokens.json", "generation_config.json" }) Assert.Equal(side, File.ReadAllText(Path.Combine(tmp["out"], side)));
        using var got = ModelFolder.Open(tmp["out"]);
        using var src = ModelFolder.Open(tmp["in"]);
        var c = got.Config!;
        Assert.Equal("MistralForCausalLM", c.ArchitectureName);
        Assert.Equal(3 * TinyMixtral.Inter, c.IntermediateSize);
        Assert.Equal("bfloat16", c.TorchDtype);
        Assert.Equal("kept", c.Json["custom_key"]!.GetValue<string>());
        foreach (var k in MoeConfigs.MoeKeys) Assert.False(c.Json.ContainsKey(k));
        Assert.Equal(r.Parameters, got.ParameterCount);
        Assert.All(got.TensorNames, n => Assert.Equal(DType.BF16, got.Info(n).DType));
        // BF16 output = RNE of the float32 result
        var gate = got.ReadSingle("model.layers.1.mlp.gate_proj.weight");
        var e2 = src.ReadSingle(MixtralLayout.ExpertTensor(1, 2, "w1"));
        for (int i = 0; i < e2.Length; i++)
            Assert.Equal(BFloat16.BitsToSingle(BFloat16.RoundToBits(e2[i])), gate[2 * e2.Length + i]);
        Assert.True(File.Exists(tmp["out/README.md"]));
    }

    [Fact]
    public void AlignedMeanOfPermutedCopiesEqualsTheOriginalExpert()
    {
        using var tmp = new TempDir();
        var rng = new Random(9);
        var bases = new[] { MoeStrategiesTests.RandomExpert(rng, TinyMixtral.Hidden, TinyMixtral.Inter), MoeStrategiesTests.RandomExpert(rng, TinyMixtral.Hidden, TinyMixtral.Inter) };
        var perms = Enumerable.Range(0, 4).Select(e => e == 0 ? Enumerable.Range(0, TinyMixtral.Inter).ToArray() : Enumerable.Range(0, TinyMixtral.Inter).OrderBy(_ => rng.Next()).ToArray()).ToArray();
        TinyMixtral.Write(tmp["in"], 4, expert: (l, e) => MoeStrategies.Permute(bases[l], perms[e]));
        MoeToDense.Convert(tmp["in"], tmp["out"], new MoeToDenseOptions { Strategy = DenseStrategy.AlignedMean });
        using var got = ModelFolder.Open(tmp["out"]);
        for (int l = 0; l < 2; l++)
        {
            Assert.Equal(bases[l].W1, got.ReadSingle($"model.layers.{l}.mlp.gate_proj.weight"));
            Assert.Equal(bases[l].W3, got.ReadSingle($"model.layers.{l}.mlp.up_proj.weight"));
            Assert.Equal(bases[l].W2, got.ReadSingle($"model.layers.{l}.mlp.down_proj.weight"));
        }
    }

    [Fact]
    public void BadRequestsAreOneLineErrors()
    {
        using var tmp = new TempDir();
        TinyMixtral.Write(tmp["in"], 4);
        string Err(MoeToDenseOptions o, string src = "in") => Assert.Throws<MergeException>(() => MoeToDense.Convert(tmp[src], tmp["out"], o)).Message;
        Assert.Contains("needs routing frequencies", Err(new MoeToDenseOptions { Strategy = DenseStrategy.Frequency }));
        Assert.Contains("expert 7 for layer 1 does not exist", Err(new MoeToDenseOptions { Strategy = DenseStrategy.Expert, ExpertPerLayer = [0, 7] }));
        Assert.Contains("'expert' gives 1 values for 2 layers", Err(new MoeToDenseOptions { Strategy = DenseStrategy.Expert, ExpertPerLayer = [0] }));
        Assert.Contains("frequency table has 1 layers", Err(new MoeToDenseOptions { Strategy = DenseStrategy.Frequency, Frequencies = [[1, 1, 1, 1]] }));
        Assert.Contains("cannot keep 5 of 4", Err(new MoeToDenseOptions { Strategy = DenseStrategy.Concat, ConcatTopK = 5 }));
        Assert.Contains("unknown strategy 'avg'", Assert.Throws<MergeException>(() => MoeToDense.ParseStrategy("avg", "recipe")).Message);
        Assert.False(Directory.Exists(tmp["out"]));
        // a dense model is not Mixtral
        MoeToDense.Convert(tmp["in"], tmp["dense"], new MoeToDenseOptions());
        Assert.Contains("not a Mixtral model", Err(new MoeToDenseOptions(), "dense"));
        // non-empty destination
        Directory.CreateDirectory(tmp["out"]); File.WriteAllText(tmp["out/x"], "x");
        Assert.Throws<MergeException>(() => MoeToDense.Convert(tmp["in"], tmp["out"], new MoeToDenseOptions()));
    }

    [Fact]
    public void MissingOrMisshapenExpertTensorsAreNamed()
    {
        using var tmp = new TempDir();
        TinyMixtral.Write(tmp["in"], 2, perTok: 2);
        var cfg = File.ReadAllText(tmp["in/config.json"]).Replace("\"num_local_experts\":2", "\"num_local_experts\":3");
        File.WriteAllText(tmp["in/config.json"], cfg);
        Assert.Contains("tensor 'model.layers.0.block_sparse_moe.gate.weight' has shape [2, 8], expected [3, 8]", Assert.Throws<MergeException>(() => MoeToDense.Convert(tmp["in"], tmp["out"], new MoeToDenseOptions())).Message);
    }
}
