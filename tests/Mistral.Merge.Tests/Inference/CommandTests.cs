using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mistral.Merge.Tests.Inference;

/// <summary>perplexity / generate / compare through the CLI: outputs and one-line errors.</summary>
public class CommandTests
{
    private static string Fx(params string[] p) => SharedFixtures.PathOf(p);

    [FixtureFact]
    public void PerplexityJsonReproducesExpectedJson()
    {
        var r = CliRunner.Run("perplexity", Fx("stories260k-bf16"), "--text", Fx("text", "code-eval.txt"), "--ctx", "256", "--max-tokens", "20000", "--threads", "2", "--json");
        Assert.Equal(0, r.ExitCode);
        var j = JsonNode.Parse(r.Stdout)!;
        Assert.Equal(19921, (int)j["tokens"]!);
        Assert.True(Math.Abs((double)j["perplexity"]! / 645.151546 - 1) < 1e-4, r.Stdout);
        Assert.True(Math.Abs((double)j["nll"]! - 6.4694852) < 1e-5);
        Assert.True((double)j["tokens_per_second"]! > 0);
        Assert.Contains("perplexity: 100%", r.Stderr); // plain progress lines when stderr is not a terminal
    }

    [FixtureFact]
    public void PerplexityTextOutput()
    {
        var r = CliRunner.Run("perplexity", Fx("stories260k"), "--text", Fx("text", "tinystories-eval.txt"), "--ctx", "64", "--stride", "32", "--max-tokens", "300");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("perplexity:", r.Stdout);
        Assert.Contains("299 scored of 300 (ctx 64, stride 32)", r.Stdout);
    }

    [FixtureFact]
    public void GenerateGreedyStreamsTheExpectedContinuation()
    {
        var r = CliRunner.Run("generate", Fx("stories260k"), "--prompt", "Once upon a time", "--temperature", "0", "--max-new-tokens", "32");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal(", there was a little girl named Lily. She loved to play outside in the park. One day, she saw\n", r.Stdout);
        Assert.Contains("32 tokens", r.Stderr);
    }

    [FixtureFact]
    public void GenerateWithASeedIsReproducible()
    {
        string[] args = ["generate", Fx("stories260k-moe4"), "--prompt", "Once upon a time", "--temperature", "0.9", "--top-k", "40", "--top-p", "0.95", "--repetition-penalty", "1.1", "--seed", "7", "--max-new-tokens", "24", "--json"];
        var a = CliRunner.Run(args);
        var b = CliRunner.Run(args);
        Assert.Equal(0, a.ExitCode);
        var ja = JsonNode.Parse(a.Stdout)!;
        var jb = JsonNode.Parse(b.Stdout)!;
        Assert.Equal(ja["ids"]!.ToJsonString(), jb["ids"]!.ToJsonString());
        Assert.Equal("none", (string)ja["chat_template"]!);
        Assert.Equal("[1,403,407,261,378]", ja["prompt_ids"]!.ToJsonString());
        var other = JsonNode.Parse(CliRunner.Run([.. args[..^4], "8", "--max-new-tokens", "24", "--json"]).Stdout)!;
        Assert.NotEqual(ja["ids"]!.ToJsonString(), other["ids"]!.ToJsonString());
    }

    [FixtureFact]
    public void GenerateAppliesTheRequestedChatTemplate()
    {
        var r = CliRunner.Run("generate", Fx("stories260k"), "--prompt", "Hi", "--system", "S", "--chat-template", "mistral", "--temperature", "0", "--max-new-tokens", "2", "--json");
        Assert.Equal(0, r.ExitCode);
        var j = JsonNode.Parse(r.Stdout)!;
        // The built-in mistral template writes BOS itself; it is not added a second time.
        Assert.Equal("<s>[INST] S\n\nHi [/INST]", (string)j["prompt"]!);
        Assert.Equal(1, (int)j["prompt_ids"]![0]!);
        Assert.NotEqual(1, (int)j["prompt_ids"]![1]!);
    }

    [FixtureFact]
    public void CompareIdentityMoeAgainstItsBase()
    {
        var r = CliRunner.Run("compare", Fx("stories260k"), Fx("stories260k-moe4-identity"), "--text", Fx("text", "wiki-eval.txt"), "--ctx", "128", "--max-tokens", "1000", "--json");
        Assert.Equal(0, r.ExitCode);
        var j = JsonNode.Parse(r.Stdout)!;
        Assert.True((double)j["kl_max"]! < 1e-6);
        Assert.Equal(1.0, (double)j["top1_agreement"]!);
        Assert.Equal((double)j["perplexity_a"]!, (double)j["perplexity_b"]!, 4);
        var t = CliRunner.Run("compare", Fx("stories260k"), Fx("stories260k-wiki"), "--text", Fx("text", "wiki-eval.txt"), "--ctx", "128", "--max-tokens", "1000");
        Assert.Equal(0, t.ExitCode);
        Assert.Contains("top-1 agreement:", t.Stdout);
        Assert.Contains("KL(A‖B):", t.Stdout);
    }

    // ---- bad inputs: exit 1, one line naming the problem ----

    private static void AssertOneLineError(CliRunner.Result r, string fragment)
    {
        CliRunner.AssertOneLineError(r, fragment);
        Assert.Equal("", r.Stdout);
    }

    private static string Tiny(TempDir dir, Action<TinyModel, JsonObject>? edit = null)
    {
        var m = new TinyModel().Init(1);
        var config = m.Config();
        edit?.Invoke(m, config);
        m.Write(dir["m"], config);
        File.WriteAllText(dir["t.txt"], "hello");
        return dir["m"];
    }

    [Fact]
    public void MissingTextFile()
    {
        using var dir = new TempDir();
        AssertOneLineError(CliRunner.Run("perplexity", Tiny(dir), "--text", dir["nope.txt"]), "nope.txt: text file not found");
    }

    [Fact]
    public void ContextAndStrideAreChecked()
    {
        using var dir = new TempDir();
        var m = Tiny(dir);
        CliRunner.AssertUsageError(CliRunner.Run("perplexity", m, "--text", dir["t.txt"], "--ctx", "1"), "perplexity", "--ctx must be at least 2");
        CliRunner.AssertUsageError(CliRunner.Run("perplexity", m, "--text", dir["t.txt"], "--ctx", "8", "--stride", "9"), "perplexity", "--stride must be between 1 and --ctx");
        CliRunner.AssertUsageError(CliRunner.Run("perplexity", m, "--text", dir["t.txt"], "--stride", "513"), "perplexity", "--stride must be between 1 and --ctx (512)");
        CliRunner.AssertUsageError(CliRunner.Run("compare", m, m, "--text", dir["t.txt"], "--ctx", "0"), "compare", "--ctx must be at least 2");
    }

    [Fact]
    public void UnsupportedArchitecture()
    {
        using var dir = new TempDir();
        var m = Tiny(dir, (_, c) => { c["architectures"] = new JsonArray("GPT2LMHeadModel"); c["model_type"] = "gpt2"; });
        AssertOneLineError(CliRunner.Run("perplexity", m, "--text", dir["t.txt"]), "unsupported architecture 'GPT2LMHeadModel'");
    }

    [Fact]
    public void MissingTensor()
    {
        using var dir = new TempDir();
        var m = Tiny(dir, (t, _) => t.Tensors.Remove("model.layers.1.self_attn.v_proj.weight"));
        AssertOneLineError(CliRunner.Run("perplexity", m, "--text", dir["t.txt"]), "model has no tensor 'model.layers.1.self_attn.v_proj.weight'");
    }

    [Fact]
    public void ShapeMismatchBetweenConfigAndTensors()
    {
        using var dir = new TempDir();
        var m = Tiny(dir, (_, c) => c["intermediate_size"] = 48);
        AssertOneLineError(CliRunner.Run("generate", m, "--prompt", "x"), "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [40, 32], expected [48, 32]");
    }

    [Fact]
    public void InconsistentHeadCountsInConfig()
    {
        using var dir = new TempDir();
        var m = Tiny(dir, (_, c) => c["num_key_value_heads"] = 3);
        AssertOneLineError(CliRunner.Run("perplexity", m, "--text", dir["t.txt"]), "num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
    }

    [Fact]
    public void MissingTokenizerAndBadSamplingOptions()
    {
        using var dir = new TempDir();
        var m = Tiny(dir);
        AssertOneLineError(CliRunner.Run("perplexity", m, "--text", dir["t.txt"]), "no tokenizer.model");
        CliRunner.AssertUsageError(CliRunner.Run("generate", m, "--prompt", "x", "--temperature", "-1"), "generate", "--temperature must be ≥ 0");
        CliRunner.AssertUsageError(CliRunner.Run("generate", m, "--prompt", "x", "--top-p", "0"), "generate", "--top-p must be in (0, 1]");
        CliRunner.AssertUsageError(CliRunner.Run("generate", m, "--prompt", "x", "--chat-template", "vicuna"), "generate", "--chat-template must be auto, none, alpaca, chatml, exaone, llama3, mistral or a .jinja file, got 'vicuna'");
        AssertOneLineError(CliRunner.Run("generate", dir["missing"], "--prompt", "x"), "model folder not found");
        CliRunner.AssertUsageError(CliRunner.Run("perplexity", m, "--text", dir["t.txt"], "--threads", "-2"), "perplexity", "--threads must be");
    }

    [Fact]
    public void CompareNeedsTheSameVocabulary()
    {
        using var dir = new TempDir();
        var a = Tiny(dir);
        var other = new TinyModel { Vocab = 70 }.Init(2);
        other.Write(dir["b"]);
        AssertOneLineError(CliRunner.Run("compare", a, dir["b"], "--text", dir["t.txt"]), "vocabulary of 70 tokens");
    }
}
