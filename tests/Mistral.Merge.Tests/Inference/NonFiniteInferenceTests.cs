using Mistral.Merge.Inference;
using Mistral.Merge.Tests.IO;

namespace Mistral.Merge.Tests.Inference;

/// <summary>perplexity, compare and generate on a model with a NaN planted in layer k fail with one line naming layer k.</summary>
public sealed class NonFiniteInferenceTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    /// <summary>A copy of stories260k with <paramref name="value"/> planted in one element of <paramref name="tensor"/>.</summary>
    private string Broken(string tensor, float value = float.NaN)
    {
        var dir = _d["broken"];
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(SharedFixtures.PathOf("stories260k"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        PlantedValues.Plant(dir, tensor, 5, value);
        return dir;
    }

    /// <summary>Exit 1, nothing on stdout, and exactly <paramref name="line"/> on stderr besides progress lines.</summary>
    private static void AssertFails(CliRunner.Result r, string line)
    {
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout.Trim());
        Assert.Equal([line], r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("perplexity:") && !l.StartsWith("compare:")));
    }

    private static string Message(string model, string where, int position)
        => $"error: {model}: non-finite values appear at {where} at token position {position}; the model's weights are probably broken";

    [FixtureFact]
    public void PerplexityNamesTheLayer()
    {
        var m = Broken("model.layers.3.mlp.down_proj.weight");
        var r = CliRunner.Run("perplexity", m, "--text", SharedFixtures.PathOf("text", "tinystories-eval.txt"), "--ctx", "32", "--max-tokens", "100");
        AssertFails(r, Message(m, "layer 3 (mlp output)", 0));
    }

    [FixtureFact]
    public void CompareNamesTheBrokenModelAndLayer()
    {
        var m = Broken("model.layers.1.self_attn.q_proj.weight", float.PositiveInfinity);
        var r = CliRunner.Run("compare", SharedFixtures.PathOf("stories260k"), m, "--text", SharedFixtures.PathOf("text", "tinystories-eval.txt"), "--ctx", "32", "--max-tokens", "100");
        AssertFails(r, Message(m, "layer 1 (attention output)", 0));
    }

    [FixtureFact]
    public void GenerateNamesTheLayerAtTheLastPromptToken()
    {
        var m = Broken("model.layers.2.mlp.up_proj.weight");
        int last = TokenizerLoader.Load(m).Encode("Once upon a time", addBos: true).Length - 1;
        var r = CliRunner.Run("generate", m, "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "8");
        AssertFails(r, Message(m, "layer 2 (mlp output)", last));
    }

    [FixtureFact]
    public void TiedEmbeddingRowIsTheOutputHead()
    {
        // Row 0 of the tied embedding is never an input here (token 0 is <unk>), so only the logits turn NaN.
        var m = Broken("model.embed_tokens.weight");
        var r = CliRunner.Run("perplexity", m, "--text", SharedFixtures.PathOf("text", "tinystories-eval.txt"), "--ctx", "32", "--max-tokens", "100");
        AssertFails(r, Message(m, "the output head (final norm and lm_head)", 0));
    }

    [Fact]
    public void LocateNonFiniteFindsTheFirstBlockOfTheProbedPosition()
    {
        var tiny = new TinyModel().Init(3);
        tiny.Tensors["model.layers.1.self_attn.v_proj.weight"].Data[0] = float.NaN;
        tiny.Write(_d["tiny"]);
        using var model = TransformerModel.Load(_d["tiny"]);
        using var cpu = new CpuBackend(model, threads: 1);
        Assert.Equal("layer 1 (attention output)", cpu.LocateNonFinite([1, 2, 3]));
        var logits = new float[3 * model.Shape.Vocab];
        using var cache = cpu.CreateCache(3);
        cpu.Forward([1, 2, 3], [0, 1, 2], cache, logits);
        var e = Assert.Throws<MergeException>(() => LogitsGuard.Check(cpu, logits, [1, 2, 3], 40));
        Assert.Equal($"{model.Path}: non-finite values appear at layer 1 (attention output) at token position 40; the model's weights are probably broken", e.Message);
    }
}
