using System.Text;
using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;
using Mistral.Merge.Tests.Recipes;
using static Mistral.Merge.Tests.CliRunner;

namespace Mistral.Merge.Tests.IO;

/// <summary>FIFOs, devices, oversized files, duplicate keys, hostile values and YAML bombs: one line, exit 1, no hang.</summary>
public sealed class HostileSideFileTests : IDisposable
{
    private const string FifoError = "is a FIFO (named pipe), not a regular file";
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    /// <summary>A tiny model with the built-in tokenizer, so that tokenize and perplexity run.</summary>
    private string Model(string name = "m")
    {
        var dir = _d[name];
        var cfg = Synthesizer.MakeConfig("mistral", 8, 1, 2, 1, 12, 512);
        Synthesizer.Write(dir, cfg, new SynthOptions { TokenizerFiles = Mistral.Merge.Cli.BuiltinTokenizer.Files(512), DType = DType.F32 });
        return dir;
    }

    private static void Replace(string path, Action<string> make)
    {
        File.Delete(path);
        make(path);
    }

    [LinuxFact]
    public void FifoAsTokenizerModel()
    {
        var m = Model();
        Replace(Path.Combine(m, "tokenizer.model"), Fifo.Make);
        AssertOneLineError(RunWithin("tokenize", m, "hi"), $"tokenizer.model: {FifoError}");
    }

    [LinuxFact]
    public void FifoAsConfigJson()
    {
        var m = Model();
        Replace(Path.Combine(m, "config.json"), Fifo.Make);
        AssertOneLineError(RunWithin("inspect", m), $"config.json: {FifoError}");
    }

    [LinuxFact]
    public void FifoAsTokenizerConfigJson()
    {
        var m = Model();
        Replace(Path.Combine(m, "tokenizer_config.json"), Fifo.Make);
        AssertOneLineError(RunWithin("tokenize", m, "hi"), $"tokenizer_config.json: {FifoError}");
    }

    [LinuxFact]
    public void FifoAsText()
    {
        var m = Model();
        Fifo.Make(_d["text.fifo"]);
        AssertOneLineError(RunWithin("perplexity", m, "--text", _d["text.fifo"]), $"text.fifo: {FifoError}");
        AssertOneLineError(RunWithin("tokenize", m, "--text", _d["text.fifo"]), $"text.fifo: {FifoError}");
    }

    [LinuxFact]
    public void FifoAsRecipe()
    {
        Fifo.Make(_d["recipe.yml"]);
        AssertOneLineError(RunWithin("merge", _d["recipe.yml"], "--dry-run"), $"recipe.yml: {FifoError}");
    }

    [LinuxFact]
    public void DevZeroAsTextAndAsTokenizerModel()
    {
        var m = Model();
        AssertOneLineError(RunWithin("perplexity", m, "--text", "/dev/zero"), "/dev/zero: is a character device, not a regular file");
        Replace(Path.Combine(m, "tokenizer.model"), p => File.CreateSymbolicLink(p, "/dev/zero"));
        AssertOneLineError(RunWithin("tokenize", m, "hi"), "tokenizer.model: is a character device, not a regular file");
    }

    [Fact]
    public void TextOverTheLimit()
    {
        var m = Model();
        using (var f = File.Create(_d["big.txt"])) f.SetLength(InputFile.Limits.Text + 1); // sparse: nothing written
        AssertOneLineError(RunWithin("perplexity", m, "--text", _d["big.txt"]), "big.txt: 67.1 MB is over the 67.1 MB limit for a text");
    }

    [Fact]
    public void RecipeOverTheLimit()
    {
        using (var f = File.Create(_d["big.yml"])) f.SetLength(InputFile.Limits.Recipe + 1);
        var r = RunWithin("merge", _d["big.yml"], "--dry-run");
        AssertOneLineError(r, "big.yml: ");
        Assert.Contains("big.yml: 4.19 MB is over the 4.19 MB limit for a recipe", r.Stderr);
    }

    [Theory]
    [InlineData("config.json", "{\"hidden_size\": 8,\n \"hidden_size\": 9}", "hidden_size")]
    [InlineData("tokenizer_config.json", "{\"add_bos_token\": true, \"add_bos_token\": false}", "add_bos_token")]
    [InlineData("added_tokens.json", "{\"<x>\": 512, \"<x>\": 513}", "<x>")]
    [InlineData("special_tokens_map.json", "{\"bos_token\": \"<s>\", \"x\": {\"a\": 1, \"a\": 2}}", "a")]
    public void DuplicateKeysInJsonSideFiles(string file, string json, string key)
    {
        var m = Model();
        File.WriteAllText(Path.Combine(m, file), json);
        var r = Run(file == "config.json" ? ["inspect", m] : ["tokenize", m, "hi"]);
        AssertOneLineError(r, $"{Path.Combine(m, file)}: invalid JSON (duplicate key '{key}')");
    }

    [Fact]
    public void DuplicateKeysInTheIndex()
    {
        var dir = _d["sharded"];
        Synthesizer.Write(dir, Synthesizer.MakeConfig("mistral", 8, 1, 2, 1, 12, 16), new SynthOptions { Writer = new WriterOptions { ShardSize = 512 } });
        var index = Path.Combine(dir, CheckpointWriter.IndexFileName);
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"weight_map\": {", "\"weight_map\": {\"lm_head.weight\": \"x\", "));
        AssertOneLineError(Run("inspect", dir), $"{index}: invalid JSON (duplicate key 'lm_head.weight')");
    }

    [Theory]
    [InlineData("\"vocab_size\": 1099511627776", "'vocab_size' must be an integer from 1 to 16777216, got 1099511627776")]
    [InlineData("\"num_hidden_layers\": -1", "'num_hidden_layers' must be an integer from 0 to 10000, got -1")]
    [InlineData("\"num_hidden_layers\": 1000000000", "'num_hidden_layers' must be an integer from 0 to 10000, got 1000000000")]
    [InlineData("\"hidden_size\": 8.5", "'hidden_size' must be an integer from 1 to 1048576, got 8.5")]
    [InlineData("\"hidden_size\": \"8\"", "'hidden_size' must be an integer from 1 to 1048576, got \"8\"")]
    [InlineData("\"hidden_size\": 1e400", "'hidden_size' must be an integer from 1 to 1048576, got 1e400")]
    [InlineData("\"rope_theta\": 1e400", "'rope_theta' must be a number from 0 to 1000000000000, got 1e400")]
    [InlineData("\"sliding_window\": 2147483647", "'sliding_window' must be an integer from 0 to 268435456, got 2147483647")]
    [InlineData("\"eos_token_id\": [2, \"x\"]", "'eos_token_id[1]' must be an integer from 0 to 16777216, got \"x\"")]
    [InlineData("\"x\": " + "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "invalid JSON (The maximum configured depth of 64 has been exceeded")]
    public void HostileConfigValues(string entry, string fragment)
    {
        var path = _d["config.json"];
        File.WriteAllText(path, "{\"model_type\": \"mistral\", " + entry + "}");
        var e = Assert.Throws<MergeException>(() => ModelConfig.Load(path));
        Assert.StartsWith($"{path}: {fragment}", e.Message);
    }

    [Fact]
    public void SynthRefusesConfigsNoDiskHolds()
    {
        var cfg = Synthesizer.MakeConfig("mixtral", 8, 10_000, 2, 1, 12, 16, experts: 4096, expertsPerToken: 1);
        var e = Assert.Throws<MergeException>(() => Synthesizer.Write(_d["s"], cfg, new SynthOptions()));
        Assert.Contains("10000 layers make 122,950,000 tensors, more than the 500,000 a checkpoint header can list", e.Message);
        cfg = ModelConfig.FromJson(System.Text.Json.Nodes.JsonNode.Parse(
            "{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 10, \"num_attention_heads\": 3, \"intermediate_size\": 4, \"vocab_size\": 8, \"num_hidden_layers\": 1}")!.AsObject());
        e = Assert.Throws<MergeException>(() => Synthesizer.Write(_d["s"], cfg, new SynthOptions()));
        Assert.Contains("hidden_size 10 is not divisible by num_attention_heads 3", e.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F }, "length-delimited field of 4294967295 bytes runs past the end (0 left)")]
    [InlineData(new byte[] { 0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }, "varint longer than 10 bytes")]
    [InlineData(new byte[] { 0x0B }, "field 1 has wire type 3, expected 2")]
    [InlineData(new byte[] { 0x0A, 0x03, 0x0A, 0x01, 0xC3 }, "a string field is not valid UTF-8")]
    [InlineData(new byte[] { 0x0F }, "field 1 has wire type 7, expected 2")]
    public void HostileTokenizerModels(byte[] bytes, string fragment)
    {
        var e = Assert.Throws<MergeException>(() => SentencePieceModel.Parse(bytes, "t.model"));
        Assert.Equal($"t.model: not a valid sentencepiece model ({fragment})", e.Message);
    }

    [Theory]
    [InlineData("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
        "recipe.yml:5:44: the recipe expands to more than 100000 YAML nodes (aliases of aliases?)")]
    [InlineData("models: &a [1, *a]\n", "recipe.yml:1:16: alias *a refers to a node that contains it")]
    [InlineData("merge_method: linear\nmerge_method: ties\n", "recipe.yml:2:1: YAML syntax error: Duplicate key merge_method")]
    public void HostileRecipes(string yaml, string expected)
    {
        var path = TinyModels.Recipe(_d.Path, yaml);
        var e = Assert.ThrowsAny<MergeException>(() => Mistral.Merge.Planning.MergePlanner.PlanFile(path).Dispose());
        Assert.Equal($"{path.Replace("recipe.yml", "")}{expected}", e.Message.Split('\n')[0]);
    }

    [Fact]
    public void DeeplyNestedRecipe()
    {
        var path = TinyModels.Recipe(_d.Path, "models: " + new string('[', 100_000) + new string(']', 100_000) + "\n");
        var e = Assert.ThrowsAny<MergeException>(() => Mistral.Merge.Planning.MergePlanner.PlanFile(path).Dispose());
        Assert.Contains("recipe.yml:1:72: the recipe nests more than 64 levels deep", e.Message);
    }

    /// <summary>The merge command looks for several YAML documents before it parses: the guard runs first there too.</summary>
    [Fact]
    public void HostileRecipesThroughTheMergeCommandAreRecipeErrors()
    {
        var deep = TinyModels.Recipe(_d.Path, "models: " + new string('[', 100_000) + new string(']', 100_000) + "\n", "deep.yml");
        var r = CliRunner.Run("merge", deep, _d["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith($"{deep}:1:72: the recipe nests more than 64 levels deep", r.Stderr);
        var bomb = TinyModels.Recipe(_d.Path, "models: &a [1, *a]\n---\nmerge_method: linear\n", "bomb.yml");
        r = CliRunner.Run("merge", bomb, _d["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith($"{bomb}:1:16: alias *a refers to a node that contains it", r.Stderr);
    }
}
