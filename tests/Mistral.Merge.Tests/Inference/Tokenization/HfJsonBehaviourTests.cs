using System.Text.Json.Nodes;
using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Tokenization.HfJson;
using Mistral.Merge.Tests.IO;

namespace Mistral.Merge.Tests.Inference.Tokenization;

/// <summary>
/// tokenizer.json branches that @huggingface/tokenizers does not implement as tokenizers (Rust) does (Split
/// behaviours MergedWithPrevious/MergedWithNext/Contiguous and invert, Metaspace split, single_word), with
/// expected pieces worked out by hand from tokenizers' <c>NormalizedString::split</c>; the ITokenizer contract
/// (BOS handling, special-token lookup); and bad files.
/// </summary>
public class HfJsonBehaviourTests
{
    private static List<string> PreTokenize(string json, string text, bool atTextStart = true) =>
        JsonPreTokenizer.Parse(JsonNode.Parse(json), "pre_tokenizer")!.PreTokenize(text, atTextStart);

    private static string Split(string behaviour, bool invert = false, string pattern = """{"String": " "}""") =>
        $$"""{"type": "Split", "pattern": {{pattern}}, "behavior": "{{behaviour}}", "invert": {{(invert ? "true" : "false")}}}""";

    [Fact]
    public void SplitBehavioursPlaceTheMatchesAsTokenizersDoes()
    {
        Assert.Equal(["a", " ", "b", " ", " ", "c"], PreTokenize(Split("Isolated"), "a b  c"));
        Assert.Equal(["a", "b", "c"], PreTokenize(Split("Removed"), "a b  c"));
        Assert.Equal(["a ", "b ", " ", "c"], PreTokenize(Split("MergedWithPrevious"), "a b  c"));
        Assert.Equal(["a", " b", " ", " c"], PreTokenize(Split("MergedWithNext"), "a b  c"));
        Assert.Equal(["a", " ", "b", "  ", "c"], PreTokenize(Split("Contiguous"), "a b  c"));
        Assert.Equal(["12"], PreTokenize(Split("Removed", invert: true, pattern: """{"Regex": "\\d+"}"""), "ab12cd"));
        Assert.Equal(["ab", "12", "cd"], PreTokenize(Split("Isolated", invert: true, pattern: """{"Regex": "\\d+"}"""), "ab12cd"));
    }

    [Fact]
    public void MetaspaceSplitsBeforeEveryReplacementAndPrependsByScheme()
    {
        const string always = """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}""";
        Assert.Equal(["▁hello", "▁world", "▁", "▁x"], PreTokenize(always, "hello world  x"));
        Assert.Equal(["▁a", "▁b"], PreTokenize(always, "a b", atTextStart: false));
        const string first = """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true}""";
        Assert.Equal(["▁a", "▁b"], PreTokenize(first, "a b"));
        Assert.Equal(["a", "▁b"], PreTokenize(first, "a b", atTextStart: false));
        Assert.Equal(["a", "▁b"], PreTokenize("""{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"}""", "a b"));
        Assert.Equal(["a", "▁b"], PreTokenize("""{"type": "Metaspace", "replacement": "▁", "add_prefix_space": false}""", "a b"));
    }

    [Fact]
    public void WhitespaceDigitsAndByteLevelWithoutRegexSplitAsTokenizersDoes()
    {
        Assert.Equal(["Hello", ",", "world", "!"], PreTokenize("""{"type": "Whitespace"}""", "Hello, world!"));
        Assert.Equal(["a", "b", "c"], PreTokenize("""{"type": "WhitespaceSplit"}""", "a  b\tc"));
        Assert.Equal(["x", "٣4", "y"], PreTokenize("""{"type": "Digits", "individual_digits": false}""", "x٣4y"));
        Assert.Equal(["aĠbĊ"], PreTokenize("""{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}""", "a b\n"));
    }

    [Fact]
    public void AstralLettersCountAsLettersInTheGpt2Regex()
    {
        // 𝔘 (U+1D518) is a letter: " 𝔘x" is one " ?\p{L}+" match, as in tokenizers (code points), not split at the surrogate pair.
        var pieces = PreTokenize("""{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}""", "a 𝔘x 😂!");
        Assert.Equal(["a", "Ġ" + ByteLevelAlphabet.Encode("𝔘x"), "Ġ" + ByteLevelAlphabet.Encode("😂!")], pieces);
    }

    [Fact]
    public void SingleWordAddedTokensMatchOnlyBetweenNonWordCharacters()
    {
        var w = new AddedToken(7, "<w>", true, false, false, false, SingleWord: true);
        var s = new AddedTokenSplitter([("<w>", w)]);
        Assert.Equal([(0, "ab ", (AddedToken?)null), (3, "<w>", w), (6, " cd<w>e", null)], s.Split("ab <w> cd<w>e"));
    }

    private static HfJsonTokenizer FromJson(string json, string? config = null)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["tokenizer.json"], json);
        if (config != null) File.WriteAllText(dir["tokenizer_config.json"], config);
        return (HfJsonTokenizer)TokenizerLoader.Load(dir.Path);
    }

    private const string TinyBpe = """
        {"added_tokens": [{"id": 0, "content": "<s>", "special": true}, {"id": 1, "content": "</s>", "special": true}],
         "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                            "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}},
         "model": {"type": "BPE", "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "ab": 4}, "merges": [["a", "b"]]}}
        """;

    [Fact]
    public void LlamaTokenizerClassesTakeBosAndEosFromTokenizerConfigAsTransformersDoes()
    {
        var plain = FromJson(TinyBpe, """{"bos_token": "<s>", "eos_token": "</s>"}""");
        Assert.Equal([0, 4, 2], plain.EncodeExact("aba", addSpecialTokens: true));
        Assert.True(plain.AddBosByDefault);
        var llama = FromJson(TinyBpe, """{"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": false, "add_eos_token": true, "bos_token": "<s>", "eos_token": "</s>"}""");
        Assert.Equal([4, 2, 1], llama.EncodeExact("aba", addSpecialTokens: true));
        Assert.False(llama.AddBosByDefault);
        Assert.Equal([0, 4, 2, 1], llama.Encode("aba", addBos: true)); // asked for BOS: it is put first
    }

    [Fact]
    public void EncodeWithBosPutsBosFirstOnlyWhereTheTokenizerHasOne()
    {
        var llama3 = HfJsonFixtures.Tokenizer("llama3");
        Assert.Equal((128000, 128001, 128256, false), (llama3.BosId, llama3.EosId, llama3.VocabSize, llama3.AddBosByDefault));
        Assert.Equal([128000, 9906, 1917], llama3.Encode("Hello world", addBos: true));
        Assert.Equal([128000, 9906], llama3.EncodeWithSpecialTokens("<|begin_of_text|>Hello", addBos: true));
        Assert.Equal(128009, ((ITokenizer)llama3).TokenToId("<|eot_id|>"));
        Assert.Equal("Ġworld", ((ITokenizer)llama3).IdToPiece(1917));
        Assert.Null(llama3.TokenToId("<|no such token|>"));

        var qwen = HfJsonFixtures.Tokenizer("qwen2_5");
        Assert.Equal((-1, 151645, false), (qwen.BosId, qwen.EosId, qwen.AddBosByDefault));
        Assert.Equal([9707, 1879], qwen.Encode("Hello world", addBos: true));
        Assert.Equal([1, 22557, 1526], HfJsonFixtures.Tokenizer("llama2").Encode("Hello world", addBos: true));
    }

    [Fact]
    public void DecodeSkipsSpecialTokensAndRejectsIdsOutsideTheVocabulary()
    {
        var t = HfJsonFixtures.Tokenizer("qwen2_5");
        Assert.Equal("Hi", t.Decode([151644, 13048, 151645]));
        Assert.Equal("<|im_start|>Hi<|im_end|>", t.DecodeExact([151644, 13048, 151645], skipSpecialTokens: false));
        Assert.Equal($"token id 151665 is outside the vocabulary (0..151664)", Assert.Throws<MergeException>(() => t.Decode([151665])).Message);
        var streamed = string.Concat(Enumerable.Range(1, 5).Select(n => ((ITokenizer)t).DecodeNext(t.Encode("héllo wörld", false)[..(n - 1)], t.Encode("héllo wörld", false)[n - 1])));
        Assert.StartsWith("héllo", streamed);
    }

    [Theory]
    [InlineData("{not json", "invalid JSON")]
    [InlineData("[1, 2]", "tokenizer.json is not a JSON object")]
    [InlineData("""{"version": "1.0"}""", "no \"model\"")]
    [InlineData("""{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}""", "model type 'Unigram' is not supported (only BPE)")]
    [InlineData("""{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""", "model type 'WordPiece' is not supported (only BPE)")]
    [InlineData("""{"model": {"type": "BPE", "merges": []}}""", "model.vocab is missing")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}""", "model.vocab[\"a\"] must be a non-negative integer")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}""", "merge 0 'a b' names a token that is not in model.vocab")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}""", "merge 0 'a b' makes 'ab', which is not in model.vocab")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b c"]}}""", "model.merges[0] must be \"a b\" or [\"a\", \"b\"]")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"}}""", "model.unk_token '<unk>' is not in model.vocab")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "dropout": 0.1}}""", "model.dropout is not supported")]
    [InlineData("""{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "continuing_subword_prefix": "##"}}""", "model.continuing_subword_prefix is not supported")]
    [InlineData("""{"pre_tokenizer": {"type": "Punctuation"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "pre_tokenizer: pre_tokenizer type 'Punctuation' is not supported")]
    [InlineData("""{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "invalid regex '('")]
    [InlineData("""{"pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "pre_tokenizer.behavior 'Sideways' is not one of")]
    [InlineData("""{"normalizer": {"type": "Precompiled", "precompiled_charsmap": ""}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "normalizer: normalizer type 'Precompiled' is not supported")]
    [InlineData("""{"decoder": {"type": "WordPiece"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "decoder: decoder type 'WordPiece' is not supported")]
    [InlineData("""{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "post_processor.special_tokens[\"<s>\"] must be an object")]
    [InlineData("""{"added_tokens": [{"id": "x", "content": "<s>"}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "added_tokens[0].id must be a non-negative integer")]
    [InlineData("""{"normalizer": {"type": "Replace", "pattern": {"Glob": "*"}, "content": ""}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""", "normalizer.pattern must be {\"String\": ...} or {\"Regex\": ...}")]
    public void ABadTokenizerJsonIsAOneLineErrorNamingTheFile(string json, string fragment)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["tokenizer.json"], json);
        var e = Assert.Throws<MergeException>(() => TokenizerLoader.Load(dir.Path));
        Assert.StartsWith(dir["tokenizer.json"] + ": ", e.Message);
        Assert.Contains(fragment, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        CliRunner.AssertOneLineError(CliRunner.Run("tokenize", dir.Path, "hi"), fragment);
    }

    [Fact]
    public void ABosTokenMissingFromTheVocabularyIsAOneLineErrorNamingTheFiles()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["tokenizer.json"], TinyBpe);
        File.WriteAllText(dir["tokenizer_config.json"], """{"bos_token": "<|nope|>"}""");
        Assert.Equal($"{dir["tokenizer.json"]}: bos_token '<|nope|>' (from tokenizer_config.json) is neither a vocabulary token nor an added token",
            Assert.Throws<MergeException>(() => TokenizerLoader.Load(dir.Path)).Message);
    }

    [Fact]
    public void MutatedTokenizerJsonLoadsOrFailsWithAOneLineError()
    {
        using var dir = new TempDir();
        var valid = File.ReadAllText(Path.Combine(HfJsonFixtures.Folder, "synthetic", "sp-prepend-nfd.tokenizer.json"));
        File.Copy(Path.Combine(HfJsonFixtures.Folder, "synthetic", "sp-prepend-nfd.tokenizer_config.json"), dir["tokenizer_config.json"]);
        var rng = new Random(404);
        for (int i = 0; i < 300; i++)
        {
            File.WriteAllText(dir["tokenizer.json"], TextMutator.Json(valid, rng));
            try
            {
                var t = TokenizerLoader.Load(dir.Path);
                t.Decode(t.Encode("The cat <tool> in ünï 12 🎉", addBos: true));
            }
            catch (MergeException e) { Assert.DoesNotContain('\n', e.Message); }
        }
    }

    [Fact]
    public void TheTokenizeCommandPrintsTheIdsAndPiecesOfATokenizerJsonFolder()
    {
        using var dir = new TempDir();
        HfJsonFixtures.WriteFolder("llama3", dir.Path);
        var r = CliRunner.Run("tokenize", dir.Path, "Hello world");
        Assert.Equal(0, r.ExitCode);
        Assert.Equal("tokens: 2\nids:    9906 1917\npieces: Hello Ġworld\n", r.Stdout.Replace("\r\n", "\n"));
        var special = CliRunner.Run("tokenize", dir.Path, "<|begin_of_text|>Hi", "--special", "--json");
        Assert.Contains("\"ids\":[128000,13347]", special.Stdout);
    }
}
