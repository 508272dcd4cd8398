using Mistral.Merge.Inference.Tokenization;

namespace Mistral.Merge.Tests.Inference.Tokenization;

/// <summary>Hand-derived sentencepiece BPE behaviour on tiny models built in the test (no shared fixtures).</summary>
public class SentencePieceSyntheticTests
{
    private const string Ws = "\u2581";

    /// <summary>Mistral-like: byte fallback, dummy prefix, remove_extra_whitespaces explicitly false.</summary>
    private static SpmModelBuilder MistralLike()
    {
        var b = SpmModelBuilder.WithSpecials(bytes: true);
        b.RemoveExtraWhitespaces = false;
        foreach (var c in new[] { Ws, "a", "b", "c", "d" }) b.Add(c, -100);
        b.Add("bc", -0.5f).Add("ab", -1).Add("cd", -1).Add("aa", -1.5f).Add("aaaa", -1.6f).Add("abc", -2).Add(Ws + "a", -3).Add(Ws + Ws, -4);
        return b;
    }

    private static int[] Ids(SpmModelBuilder b, params string[] pieces) => pieces.Select(p => b.IdOf(p) is var i && i >= 0 ? i : throw new ArgumentException(p)).ToArray();

    [Fact]
    public void HighestScoreMergesFirstThenTheMergedSymbolKeepsMerging()
    {
        // ▁ a b c: bc (-0.5) beats ab (-1); then a+bc = abc (-2); ▁abc is no piece.
        var b = MistralLike();
        Assert.Equal(Ids(b, Ws, "abc"), b.Tokenizer().Encode("abc", false));
        Assert.Equal(Ids(b, Ws, "ab"), b.Tokenizer().Encode("ab", false));
        Assert.Equal(Ids(b, Ws + "a"), b.Tokenizer().Encode("a", false));
    }

    [Fact]
    public void EqualScoresMergeLeftmostFirst()
    {
        // ▁ a a a a a: the four "aa" pairs tie; leftmost-first gives ▁ aa aa a → ▁ aaaa a.
        // (rightmost-first would give ▁a aaaa.)
        var b = MistralLike();
        Assert.Equal(Ids(b, Ws, "aaaa", "a"), b.Tokenizer().Encode("aaaaa", false));
    }

    [Fact]
    public void DummyPrefixAndKeptSpaces()
    {
        var b = MistralLike();
        var t = b.Tokenizer();
        Assert.Equal(Ids(b, Ws, Ws + "a"), t.Encode(" a", false));        // ▁▁a: ▁a (-3) beats ▁▁ (-4)
        Assert.Equal(Ids(b, Ws + Ws), t.Encode(" ", false));
        Assert.Empty(t.Encode("", false));
        Assert.Equal([1, .. Ids(b, Ws + "a")], t.Encode("a", true));
    }

    [Fact]
    public void UnknownCharactersFallBackToUtf8BytePieces()
    {
        var b = MistralLike();
        var t = b.Tokenizer();
        Assert.Equal([b.IdOf(Ws), 3 + 0xC3, 3 + 0xA9, b.IdOf("a")], t.Encode("éa", false));
        // control pieces are not matched in text: "<s>" is three unknown characters
        Assert.Equal([b.IdOf(Ws), 3 + '<', 3 + 's', 3 + '>'], t.Encode("<s>", false));
        Assert.Equal([1], t.EncodeWithSpecialTokens("<s>"));
        Assert.Equal([1, .. Ids(b, Ws + "a"), 2, 1, .. Ids(b, Ws, "ab")], t.EncodeWithSpecialTokens("<s>a</s><s>ab"));
        Assert.Equal([1, .. Ids(b, Ws + "a")], t.EncodeWithSpecialTokens("<s>a", addBos: true)); // no second BOS
    }

    [Fact]
    public void ProtoDefaultRemovesExtraWhitespaceAndMergesUnknownRuns()
    {
        var b = SpmModelBuilder.WithSpecials(bytes: false); // normalizer flags unset: proto defaults (true)
        foreach (var c in new[] { Ws, "a", "b" }) b.Add(c, -100);
        b.Add(Ws + "a", -1);
        var t = b.Tokenizer();
        Assert.True(t.Model.RemoveExtraWhitespaces);
        Assert.Equal(Ids(b, Ws + "a", Ws, "b"), t.Encode("  a   b  ", false));
        Assert.Empty(t.Encode("   ", false));
        Assert.Equal([b.IdOf(Ws + "a"), 0], t.Encode("aéé", false));           // one <unk> for the run
        Assert.Equal([b.IdOf(Ws), 0, b.IdOf("a"), 0], t.Encode("éaé", false));
        Assert.Equal("a \u2047 ", t.Decode(t.Encode("aéé", false)));
        // with remove_extra_whitespaces every leading space piece is dropped on decode
        Assert.Equal("a", t.Decode(Ids(b, Ws, Ws + "a")));
    }

    [Fact]
    public void UnusedPiecesAreResplitAndUserDefinedPiecesAreFrozen()
    {
        var b = SpmModelBuilder.WithSpecials(bytes: false);
        b.AddDummyPrefix = false;
        foreach (var c in new[] { Ws, "a", "b", "c" }) b.Add(c, -100);
        b.Add("ab", -1, PieceType.Unused).Add("abc", -2).Add("<sep>", 0, PieceType.UserDefined).Add("a<", -0.1f);
        var t = b.Tokenizer();
        Assert.False(t.Chunked); // unused pieces: segment the whole text as one, like sentencepiece
        Assert.Equal(Ids(b, "a", "b"), t.Encode("ab", false));
        Assert.Equal(Ids(b, "abc"), t.Encode("abc", false));
        Assert.Equal(Ids(b, "a", "<sep>", "b"), t.Encode("a<sep>b", false)); // "a<" is a piece but <sep> is frozen
        Assert.Equal("a<sep>b", t.Decode(t.Encode("a<sep>b", false)));
    }

    [Fact]
    public void PiecesSpanningASpaceDisableChunkingAndStillMergeAcrossIt()
    {
        var b = SpmModelBuilder.WithSpecials(bytes: false);
        b.AddDummyPrefix = false;
        b.RemoveExtraWhitespaces = false;
        foreach (var c in new[] { Ws, "a", "b" }) b.Add(c, -100);
        b.Add("a" + Ws, -1).Add(Ws + "b", -2);
        var t = b.Tokenizer();
        Assert.False(t.Chunked);
        Assert.Equal(Ids(b, "a" + Ws, "b"), t.Encode("a b", false));
        Assert.True(MistralLike().Tokenizer().Chunked);
    }

    [Fact]
    public void ChunkedEncodingEqualsWholeTextSegmentation()
    {
        // Same model twice: once chunked, once forced whole (an extra never-matching unused piece).
        var plain = MistralLike();
        var whole = MistralLike().Add("zzzz", -50, PieceType.Unused);
        var rng = new Random(7);
        string alphabet = "aabbcd  é!";
        for (int n = 0; n < 300; n++)
        {
            var text = new string(Enumerable.Range(0, rng.Next(0, 30)).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray());
            Assert.Equal(plain.Tokenizer().Encode(text, false), whole.Tokenizer().Encode(text, false));
        }
        Assert.True(plain.Tokenizer().Chunked);
        Assert.False(whole.Tokenizer().Chunked);
    }

    [Fact]
    public void DecodeFollowsSentencepieceDecodeIds()
    {
        var b = MistralLike();
        var t = b.Tokenizer();
        Assert.Equal("abc", t.Decode(Ids(b, Ws, "abc")));
        Assert.Equal(" a", t.Decode(Ids(b, Ws, Ws + "a")));                   // only the dummy-prefix space goes
        Assert.Equal("a", t.Decode([1, .. Ids(b, Ws + "a"), 2]));              // control pieces are invisible
        Assert.Equal("a a", t.Decode(Ids(b, Ws + "a", Ws + "a")));
        Assert.Equal("é", t.Decode([3 + 0xC3, 3 + 0xA9]));
        Assert.Equal("\uFFFD", t.Decode([3 + 0xC3]));                          // incomplete sequence
        Assert.Equal("\uFFFDa", t.Decode([3 + 0xC3, b.IdOf("a")]));
        Assert.Equal("\uFFFD\uFFFDé", t.Decode([3 + 0xFF, 3 + 0x80, 3 + 0xC3, 3 + 0xA9]));
        Assert.Equal("\uFFFD\uFFFD\uFFFD", t.Decode([3 + 0xED, 3 + 0xA0, 3 + 0x80])); // a surrogate is invalid
        Assert.Equal(" \u2047 ", t.Decode([0]));
        foreach (var s in new[] { "abc", " a", "  a  b ", "éa", "ab\ncd!", "" })
            Assert.Equal(s, t.Decode(t.Encode(s, false)));
        var e = Assert.Throws<MergeException>(() => t.Decode([5000]));
        Assert.Contains("token id 5000", e.Message);
    }

    [Fact]
    public void StreamingDecodeHoldsPartialCharactersAndEqualsBatch()
    {
        var b = MistralLike();
        var t = b.Tokenizer();
        var d = t.CreateStreamingDecoder();
        Assert.Equal("", d.Push(b.IdOf(Ws)));
        Assert.Equal("", d.Push(3 + 0xE2));
        Assert.Equal("", d.Push(3 + 0x82));
        Assert.Equal("€", d.Push(3 + 0xAC));
        Assert.Equal(" a", d.Push(b.IdOf(Ws + "a")));
        Assert.Equal("", d.Push(3 + 0xC3));
        Assert.Equal("\uFFFD", d.Flush());
        Assert.Equal("€", t.DecodeNext([b.IdOf(Ws), 3 + 0xE2, 3 + 0x82], 3 + 0xAC));

        var rng = new Random(11);
        for (int n = 0; n < 500; n++)
        {
            var ids = Enumerable.Range(0, rng.Next(0, 12)).Select(_ => rng.Next(3) == 0 ? rng.Next(0, b.Count) : 3 + 0x80 + rng.Next(0, 0x70)).ToArray();
            var s = t.CreateStreamingDecoder();
            Assert.Equal(t.Decode(ids), string.Concat(ids.Select(s.Push)) + s.Flush());
        }
    }

    [Fact]
    public void ChatTemplateV1Layout()
    {
        string p = MistralChatTemplate.FormatV1([("user", "Hi"), ("assistant", "Hello."), ("user", "Bye")], system: "Be brief.");
        Assert.Equal("<s>[INST] Be brief.\n\nHi [/INST] Hello.</s>[INST] Bye [/INST]", p);
        Assert.Throws<MergeException>(() => MistralChatTemplate.FormatV1([("assistant", "x")]));
    }
}
