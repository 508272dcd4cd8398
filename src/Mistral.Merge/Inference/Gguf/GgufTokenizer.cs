using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// The sentencepiece tokenizer of a GGUF file's <c>tokenizer.ggml.*</c> metadata (model <c>llama</c>: tokens, scores,
/// token_type, the special ids and add_bos/add_eos), rebuilt as a BPE <see cref="SentencePieceModel"/> with byte
/// fallback when byte pieces are present, a dummy prefix unless <c>tokenizer.ggml.add_space_prefix</c> is false, and
/// no whitespace collapsing (llama.cpp's SPM tokenizer collapses none either). A <c>gpt2</c> (byte-level BPE) vocabulary
/// is read by <see cref="GgufBpeTokenizer"/>.
/// </summary>
public static class GgufTokenizer
{
    /// <summary>The sentencepiece (<c>llama</c>) or byte-level BPE (<c>gpt2</c>) tokenizer of the GGUF file at <paramref name="path"/>.</summary>
    public static ITokenizer Load(string path)
    {
        var g = GgufReader.Open(path);
        if (ModelName(g) != "gpt2") return FromMetadata(g);
        var tokens = Array<string>(g, "tokenizer.ggml.tokens");
        var types = Array<int>(g, "tokenizer.ggml.token_type");
        if (types.Length != tokens.Length) throw new MergeException($"{path}: tokenizer.ggml.tokens and token_type have {tokens.Length} and {types.Length} entries (must be equal)");
        return GgufBpeTokenizer.FromMetadata(g, tokens, types, ConfigOf(g, tokens));
    }

    /// <summary>The sentencepiece tokenizer of a <c>llama</c> vocabulary.</summary>
    public static SentencePieceTokenizer FromMetadata(GgufReader g)
    {
        var path = g.Path;
        var model = ModelName(g);
        if (model != "llama")
            throw new MergeException($"{path}: tokenizer.ggml.model '{model}' is not supported (the sentencepiece 'llama' and byte-level BPE 'gpt2' vocabularies are read from GGUF)");
        var tokens = Array<string>(g, "tokenizer.ggml.tokens");
        var scores = Array<float>(g, "tokenizer.ggml.scores");
        var types = Array<int>(g, "tokenizer.ggml.token_type");
        if (scores.Length != tokens.Length || types.Length != tokens.Length)
            throw new MergeException($"{path}: tokenizer.ggml.tokens, scores and token_type have {tokens.Length}, {scores.Length} and {types.Length} entries (must be equal)");
        var b = new SentencePieceModelBuilder
        {
            AddDummyPrefix = g.Get("tokenizer.ggml.add_space_prefix")?.Value as bool? ?? true,
            RemoveExtraWhitespaces = false,
            ByteFallback = types.Contains((int)PieceType.Byte),
        };
        for (int i = 0; i < tokens.Length; i++)
        {
            if (types[i] is < (int)PieceType.Normal or > (int)PieceType.Byte)
                throw new MergeException($"{path}: token {i} has token_type {types[i]} (1 to 6)");
            b.Add(tokens[i], scores[i], (PieceType)types[i]);
        }
        var sp = SentencePieceModel.Parse(b.Build(), path);
        var config = ConfigOf(g, tokens);
        return SentencePieceTokenizer.Create(sp, config);
    }

    private static string ModelName(GgufReader g) => g.Get("tokenizer.ggml.model")?.Value as string
        ?? throw new MergeException($"{g.Path}: no tokenizer in this GGUF file (no string 'tokenizer.ggml.model')");

    private static T[] Array<T>(GgufReader g, string key) => g.Get(key)?.Value as T[]
        ?? throw new MergeException($"{g.Path}: '{key}' is missing or not an array of {typeof(T).Name}");

    /// <summary>The special tokens and add_bos/add_eos of a GGUF file, as a tokenizer_config.json would give them (for chat templates).</summary>
    public static TokenizerConfig Config(string path)
    {
        var g = GgufReader.Open(path);
        var tokens = g.Get("tokenizer.ggml.tokens")?.Value as string[] ?? [];
        return ConfigOf(g, tokens);
    }

    private static TokenizerConfig ConfigOf(GgufReader g, string[] tokens)
    {
        var path = g.Path;
        string? Special(string name)
        {
            if (g.Get($"tokenizer.ggml.{name}_token_id")?.Value is not { } v) return null;
            long id = Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture);
            return id >= 0 && id < tokens.Length ? tokens[id]
                : throw new MergeException($"{path}: tokenizer.ggml.{name}_token_id {id} is outside the vocabulary (0..{tokens.Length - 1})");
        }
        return TokenizerConfig.Of(path, g.Get("tokenizer.ggml.add_bos_token")?.Value as bool?, g.Get("tokenizer.ggml.add_eos_token")?.Value as bool?,
            Special("bos"), Special("eos"), Special("unknown"), Special("padding"));
    }
}
