using Mistral.Merge.Inference;
using Mistral.Merge.Tests.Inference.Tokenization;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>
/// A byte-level BPE (<c>gpt2</c>) vocabulary read back from an exported GGUF encodes every reference case of the real
/// GPT-2 tokenizer.json to the ids @huggingface/tokenizers gave (tests/tokenizer-json/generate.mjs), and decodes alike.
/// </summary>
public sealed class GgufBpeTokenizerTests : IDisposable
{
    private readonly TempDir _d = new();

    public void Dispose() => _d.Dispose();

    [Fact]
    public void AGpt2VocabularyFromGgufMetadataEncodesEveryReferenceCaseAsTheTokenizerJson()
    {
        string folder = _d["m"];
        var r = CliRunner.Run("synth", folder, "--arch", "llama", "--hidden", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1",
            "--intermediate", "32", "--vocab", "50257", "--dtype", "float32", "--seed", "3", "--quiet");
        Assert.True(r.ExitCode == 0, r.Stderr);
        foreach (var f in new[] { "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json" }) File.Delete(Path.Combine(folder, f));
        HfJsonFixtures.WriteFolder("gpt2", folder);
        var g = GgufExport.Run(folder, _d["m.gguf"], "--type", "q8_0");
        Assert.Equal("gpt2", GgufExport.Value(g, "tokenizer.ggml.model"));

        var fromJson = TokenizerLoader.Load(folder);
        var fromGguf = TokenizerLoader.Load(_d["m.gguf"]);
        Assert.Equal((fromJson.BosId, fromJson.EosId, fromJson.VocabSize), (fromGguf.BosId, fromGguf.EosId, fromGguf.VocabSize));
        int n = 0;
        foreach (var c in HfJsonFixtures.Cases("gpt2"))
        {
            Assert.True(c.Ids.SequenceEqual(fromGguf.Encode(c.Text, addBos: false)), $"case {c.Id}");
            Assert.Equal(c.Decoded, fromGguf.Decode(c.Ids));
            n++;
        }
        Assert.True(n >= 30, $"{n} cases");

        // Without its merges (the key renamed in place) the vocabulary cannot be rebuilt: one line naming the file and key.
        var bytes = File.ReadAllBytes(_d["m.gguf"]);
        var key = System.Text.Encoding.ASCII.GetBytes("tokenizer.ggml.merges");
        int at = bytes.AsSpan().IndexOf(key);
        Assert.True(at > 0);
        bytes[at + key.Length - 1] = (byte)'z';
        File.WriteAllBytes(_d["nomerges.gguf"], bytes);
        CliRunner.AssertOneLineError(CliRunner.Run("tokenize", _d["nomerges.gguf"], "hello"),
            $"{_d["nomerges.gguf"]}: 'tokenizer.ggml.merges' is missing or not an array of String (a gpt2 vocabulary needs its merges)");
    }
}
