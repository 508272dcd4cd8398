using Mistral.Merge.Tests.IO;

namespace Mistral.Merge.Tests.Moe;

/// <summary>MoE surgery refuses to write NaN/Inf: one line naming the output tensor, and no output folder.</summary>
public sealed class MoeNonFiniteTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    [Fact]
    public void NanInAnExpertFailsTheDenseTensor()
    {
        TinyMixtral.Write(_d["in"], 4);
        PlantedValues.Plant(_d["in"], "model.layers.1.block_sparse_moe.experts.2.w1.weight", 3, float.NaN);
        var r = CliRunner.Run("moe-convert", _d["in"], _d["out"], "--strategy", "mean");
        CliRunner.AssertOneLineError(r, "error: model.layers.1.mlp.gate_proj.weight: the result holds NaN or Inf (inspect --check lists the source's non-finite tensors); nothing was written");
        Assert.False(Directory.Exists(_d["out"]));
    }

    [Fact]
    public void InfInACarriedTensorIsRefused()
    {
        TinyMixtral.Write(_d["in"], 4);
        PlantedValues.Plant(_d["in"], "model.layers.0.self_attn.q_proj.weight", 0, float.NegativeInfinity);
        var r = CliRunner.Run("moe-convert", _d["in"], _d["out"], "--strategy", "expert", "--expert", "0");
        CliRunner.AssertOneLineError(r, "error: model.layers.0.self_attn.q_proj.weight: non-finite values in the source tensor (inspect --check lists them); nothing was written");
        Assert.False(Directory.Exists(_d["out"]));
    }
}
