namespace Mistral.Merge.Tests.Inference.Tokenization;

/// <summary>
/// Where the JS reference (@huggingface/tokenizers) and the Rust tokenizers disagree we follow Rust: GPT-2's
/// ByteLevel split regex uses \s, which is Oniguruma's Unicode White_Space in Rust (U+0085 yes, U+FEFF no) but
/// ECMAScript's in JS (U+FEFF yes, U+0085 no). Expected ids from the native Rust tokenizers through
/// Tokenizers.DotNet 1.4.1 (Tokenizer(vocabPath).Encode) on the same tokenizer.json files; Llama 3 and Qwen2.5 (Split
/// with a Regex) give these ids in both implementations.
/// </summary>
public class HfJsonRustDeviationTests
{
    /// <summary>
    /// Byte-fallback tokens that are not valid UTF-8 together: Rust's ByteFallback decoder gives one U+FFFD per byte
    /// (<c>String::from_utf8</c> failing), tokenizers.js one per maximal bad subsequence (TextDecoder) and keeps the
    /// valid ASCII bytes; ids 3–258 are &lt;0x00&gt;–&lt;0xFF&gt;, 1 is &lt;s&gt; (skipped). Expected from the Rust tokenizers as above.
    /// </summary>
    public static TheoryData<int[], string> ByteRuns => new()
    {
        { [7, 134], "\uFFFD\uFFFD" },
        { [61, 202, 131, 1, 222], "\uFFFD\uFFFD\uFFFD\uFFFD" },
        { [108, 253], "\uFFFD\uFFFD" },
        { [233, 133, 178, 4062], "\u60AFBase" },
    };

    [Theory]
    [MemberData(nameof(ByteRuns))]
    public void AnInvalidRunOfByteFallbackTokensDecodesToOneReplacementCharacterPerByteAsRustDoes(int[] ids, string expected) =>
        Assert.Equal(expected, HfJsonFixtures.Tokenizer("llama2").Decode(ids));

    public static TheoryData<string, string, int[]> Cases => new()
    {
        { "gpt2", "\n \u0085<", [198, 220, 126, 227, 27] },
        { "gpt2", "fooBar< \uFEFF999", [21943, 10374, 27, 27332, 119, 123, 17032] },
        { "gpt2", "a \u0085b", [64, 220, 126, 227, 65] },
        { "gpt2", "x  \uFEFFy", [87, 220, 27332, 119, 123, 88] },
        { "llama3", "\n \u0085<", [198, 220, 116360, 27] },
        { "llama3", "fooBar< \uFEFF999", [8134, 3511, 27, 76880, 5500] },
        { "qwen2_5", "a \u0085b", [64, 220, 126, 227, 65] },
        { "qwen2_5", "x  \uFEFFy", [87, 220, 75780, 88] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void NextLineAndByteOrderMarkSplitAsTheRustTokenizersSplitThem(string name, string text, int[] expected)
    {
        var t = HfJsonFixtures.Tokenizer(name);
        Assert.Equal(expected, t.EncodeExact(text, addSpecialTokens: false));
        Assert.Equal(text, t.Decode(expected));
    }
}
