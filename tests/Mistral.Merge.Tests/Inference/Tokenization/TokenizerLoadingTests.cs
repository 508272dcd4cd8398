using Mistral.Merge.Inference;
using Mistral.Merge.Inference.Tokenization;

namespace Mistral.Merge.Tests.Inference.Tokenization;

/// <summary>Loading: corrupt or unsupported model files and HF special-token settings give one-line errors.</summary>
public class TokenizerLoadingTests
{
    private static SpmModelBuilder Small()
    {
        var b = SpmModelBuilder.WithSpecials(bytes: true);
        foreach (var c in new[] { "\u2581", "a", "b" }) b.Add(c, -100);
        return b.Add("ab", -1);
    }

    private static MergeException ParseFails(byte[] data) => Assert.Throws<MergeException>(() => SentencePieceModel.Parse(data, "x/tokenizer.model"));

    [Fact]
    public void EveryTruncationOrGarbageIsAMergeExceptionOrAValidPrefix()
    {
        var data = Small().Build();
        int failures = 0;
        for (int n = 0; n < data.Length; n++)
        {
            try { SentencePieceTokenizer.Create(SentencePieceModel.Parse(data.AsSpan(0, n), "x")).Encode("ab a", true); }
            catch (MergeException e) { failures++; Assert.StartsWith("x", e.Message); Assert.DoesNotContain('\n', e.Message); }
        }
        // Only cuts exactly between whole fields can still parse (as sentencepiece would accept them).
        Assert.True(failures > data.Length - 5, $"{failures} of {data.Length}");

        var rng = new Random(3);
        for (int n = 0; n < 300; n++)
        {
            var junk = new byte[rng.Next(0, 200)];
            rng.NextBytes(junk);
            Assert.Throws<MergeException>(() => SentencePieceModel.Parse(junk, "junk"));
        }
    }

    [Fact]
    public void SpecificCorruptionsAreNamed()
    {
        Assert.Contains("no pieces", ParseFails([]).Message);
        Assert.Contains("Git LFS pointer", ParseFails("version https://git-lfs.github.com/spec/v1\noid sha256:00\n"u8.ToArray()).Message);
        Assert.Contains("not a valid sentencepiece model", ParseFails("{\"not\": \"a model\"}"u8.ToArray()).Message);

        var unigram = Small(); unigram.ModelType = null; // proto default: UNIGRAM
        Assert.Contains("unigram models are not supported", ParseFails(unigram.Build()).Message);
        var nfkc = Small(); nfkc.NormalizerName = "nmt_nfkc"; nfkc.Charsmap = [1, 2, 3, 4];
        Assert.Contains("normalizer 'nmt_nfkc'", ParseFails(nfkc.Build()).Message);
        var noFallback = Small(); noFallback.ByteFallback = false;
        Assert.Contains("byte_fallback is false", ParseFails(noFallback.Build()).Message);
        Assert.Contains("defined twice", ParseFails(Small().Add("ab", -2).Build()).Message);
        var noUnk = new SpmModelBuilder().Add("a");
        Assert.Contains("no unknown piece", ParseFails(noUnk.Build()).Message);
        Assert.Contains("is empty", ParseFails(Small().Add("").Build()).Message);
    }

    [Fact]
    public void LoaderErrorsNameTheFolderOrFile()
    {
        using var dir = new TempDir();
        Assert.Equal($"{dir["nope"]}: model folder not found", Assert.Throws<MergeException>(() => TokenizerLoader.Load(dir["nope"])).Message);
        Assert.Equal($"{dir.Path}: no tokenizer.model or tokenizer.json in this folder", Assert.Throws<MergeException>(() => TokenizerLoader.Load(dir.Path)).Message);
        File.WriteAllBytes(dir["tokenizer.model"], [0x0A, 0xFF, 0xFF, 0xFF]);
        var e = Assert.Throws<MergeException>(() => TokenizerLoader.Load(dir.Path));
        Assert.StartsWith(dir["tokenizer.model"] + ": not a valid sentencepiece model", e.Message);
    }

    [Fact]
    public void SpecialTokensComeFromTokenizerConfigAndSpecialTokensMap()
    {
        using var dir = new TempDir();
        var b = Small().Add("<|end|>", 0, PieceType.Control);
        b.WriteFolder(dir.Path, """
            {"add_bos_token": false, "bos_token": {"content": "<s>", "special": true}, "eos_token": "</s>",
             "added_tokens_decoder": {"300": {"content": "<|tool|>", "special": true}, "301": {"content": "xyz", "special": false}}}
            """);
        var t = TokenizerLoader.LoadSentencePiece(dir.Path);
        Assert.Equal((1, 2, false, 302), (t.BosId, t.EosId, t.AddBosByDefault, t.VocabSize));
        Assert.Equal([1, .. t.Encode("ab", false), 300, 301, b.IdOf("<|end|>")], t.EncodeWithSpecialTokens("<s>ab<|tool|>xyz<|end|>"));
        Assert.Equal("abxyz", t.Decode([1, .. t.Encode("ab", false), 300, 301, 2]));

        File.WriteAllText(Path.Combine(dir.Path, "special_tokens_map.json"), """{"eos_token": {"content": "<|end|>"}}""");
        Assert.Equal(b.IdOf("<|end|>"), TokenizerLoader.Load(dir.Path).EosId);

        File.WriteAllText(Path.Combine(dir.Path, "special_tokens_map.json"), """{"eos_token": "<|nope|>"}""");
        var e = Assert.Throws<MergeException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains("special_tokens_map.json: eos_token '<|nope|>' is neither a piece", e.Message);

        File.WriteAllText(Path.Combine(dir.Path, "special_tokens_map.json"), "{not json");
        Assert.Contains("special_tokens_map.json: invalid JSON", Assert.Throws<MergeException>(() => TokenizerLoader.Load(dir.Path)).Message);
        File.WriteAllText(Path.Combine(dir.Path, "special_tokens_map.json"), """{"bos_token": 5}""");
        Assert.Contains("'bos_token' must be a string", Assert.Throws<MergeException>(() => TokenizerLoader.Load(dir.Path)).Message);
    }

    [Fact]
    public void WithoutConfigTheModelDefinesBosEosAndBosIsAddedByDefault()
    {
        using var dir = new TempDir();
        Small().WriteFolder(dir.Path);
        var t = TokenizerLoader.LoadSentencePiece(dir.Path);
        Assert.Equal((1, 2, 0, -1, true), (t.BosId, t.EosId, t.UnkId, t.PadId, t.AddBosByDefault));
        Assert.Equal(t.Encode("ab", true), TokenizerLoader.Load(dir["tokenizer.model"]).Encode("ab", true));
    }
}
