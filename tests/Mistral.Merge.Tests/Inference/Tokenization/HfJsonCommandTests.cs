using System.Text.Json.Nodes;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Inference.Tokenization;

/// <summary>perplexity and generate on a model folder whose only tokenizer is a tokenizer.json.</summary>
public class HfJsonCommandTests
{
    private static string TinyModelWithTokenizerJson(TempDir dir)
    {
        var folder = dir["m"];
        var files = new Dictionary<string, byte[]>
        {
            ["tokenizer.json"] = File.ReadAllBytes(Path.Combine(HfJsonFixtures.Folder, "synthetic", "bytelevel-digits.tokenizer.json")),
            ["tokenizer_config.json"] = File.ReadAllBytes(Path.Combine(HfJsonFixtures.Folder, "synthetic", "bytelevel-digits.tokenizer_config.json")),
        };
        Synthesizer.Write(folder, Synthesizer.MakeConfig("mistral", 8, 2, 2, 1, 12, 512), new SynthOptions { TokenizerFiles = files, DType = DType.F32 });
        return folder;
    }

    [Fact]
    public void PerplexityAndGenerateEncodeTheTextWithTheTokenizerJson()
    {
        using var dir = new TempDir();
        var model = TinyModelWithTokenizerJson(dir);
        // reference ids (with the template's BOS) of "the cat in the hat" from @huggingface/tokenizers
        var expected = HfJsonFixtures.Cases("synthetic:bytelevel-digits").Single(c => c.Id == "words").IdsWithSpecial;
        File.WriteAllText(dir["text.txt"], "the cat in the hat");

        var ppl = CliRunner.Run("perplexity", model, "--text", dir["text.txt"], "--json");
        Assert.True(ppl.ExitCode == 0, ppl.Stderr);
        Assert.Equal(expected.Length - 1, (int)JsonNode.Parse(ppl.Stdout)!["tokens"]!);

        var gen = CliRunner.Run("generate", model, "--prompt", "the cat in the hat", "--temperature", "0", "--max-new-tokens", "3", "--json");
        Assert.True(gen.ExitCode == 0, gen.Stderr);
        var j = JsonNode.Parse(gen.Stdout)!;
        Assert.Equal(expected, j["prompt_ids"]!.AsArray().Select(x => (int)x!).ToArray());
        Assert.Equal(3, j["ids"]!.AsArray().Count);
    }
}
