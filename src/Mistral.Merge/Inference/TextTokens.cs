using Mistral.Merge.IO;

namespace Mistral.Merge.Inference;

/// <summary>
/// Text → token ids, the one way every forward pass over a text gets its input (perplexity, compare, the
/// quickstart table, MoE routing statistics and calibration): [BOS] + encode(text), cut to a limit.
/// </summary>
public static class TextTokens
{
    /// <summary>A text file read within the text size limit (a missing file is one clear line).</summary>
    public static string ReadText(string path)
    {
        if (!Path.Exists(path)) throw new MergeException($"{path}: text file not found");
        return InputFile.ReadAllText(path, InputFile.Limits.Text, "a text");
    }

    /// <summary>[BOS] + encode(<paramref name="text"/>), cut to <paramref name="maxTokens"/> (0 = all); at least 2 ids.</summary>
    public static int[] Encode(ITokenizer tokenizer, string text, int maxTokens, string source)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        var ids = tokenizer.Encode(text, addBos: true);
        if (maxTokens > 0 && ids.Length > maxTokens) ids = ids[..maxTokens];
        if (ids.Length < 2) throw new MergeException($"{source}: the text gives {ids.Length} token(s) with BOS; at least 2 are needed");
        return ids;
    }

    /// <summary>[BOS] + encode(text file) with the model's tokenizer, cut to <paramref name="maxTokens"/> (0 = all).</summary>
    public static int[] FromFile(string model, string textFile, int maxTokens)
    {
        var text = ReadText(textFile); // a missing text is reported before the tokenizer is loaded
        return Encode(TokenizerLoader.Load(model), text, maxTokens, textFile);
    }
}
