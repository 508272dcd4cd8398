using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.Inference.Tokenization.HfJson;
using Mistral.Merge.IO;

namespace Mistral.Merge.Inference;

/// <summary>Loads the tokenizer of a model folder.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// The tokenizer of <paramref name="modelFolder"/>: its sentencepiece <c>tokenizer.model</c> when present (the exact
    /// sentencepiece path, <see cref="LoadSentencePiece"/>), else its Hugging Face <c>tokenizer.json</c>
    /// (<see cref="HfJsonTokenizer"/>); both with the special tokens of <c>tokenizer_config.json</c>/<c>special_tokens_map.json</c>.
    /// A path to a <c>.model</c> or <c>.json</c> file is accepted too. Errors are one-line <see cref="MergeException"/>s.
    /// </summary>
    public static ITokenizer Load(string modelFolder)
    {
        if (Gguf.GgufModelLoader.IsGgufPath(modelFolder)) return Gguf.GgufTokenizer.Load(modelFolder); // tokenizer.ggml.* metadata
        if (Path.Exists(modelFolder) && !Directory.Exists(modelFolder))
            return modelFolder.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? HfJsonTokenizerFile.Load(modelFolder) : LoadSentencePiece(modelFolder);
        if (!Directory.Exists(modelFolder)) throw new MergeException($"{modelFolder}: model folder not found");
        if (Path.Exists(Path.Combine(modelFolder, "tokenizer.model"))) return LoadSentencePiece(modelFolder);
        var json = Path.Combine(modelFolder, "tokenizer.json");
        if (Path.Exists(json)) return HfJsonTokenizerFile.Load(json);
        throw new MergeException($"{modelFolder}: no tokenizer.model or tokenizer.json in this folder");
    }

    /// <summary>The special tokens and add_bos/add_eos of a model folder (its tokenizer_config.json and special_tokens_map.json) or of a .gguf file (its metadata).</summary>
    public static TokenizerConfig Config(string model) =>
        Gguf.GgufModelLoader.IsGgufPath(model) ? Gguf.GgufTokenizer.Config(model) : TokenizerConfig.Load(model);

    /// <summary>
    /// The exact sentencepiece tokenizer of <paramref name="modelFolder"/> (its <c>tokenizer.model</c> with the
    /// special tokens of <c>tokenizer_config.json</c>/<c>special_tokens_map.json</c>); a path to a
    /// <c>.model</c> file is accepted too.
    /// </summary>
    public static SentencePieceTokenizer LoadSentencePiece(string modelFolder)
    {
        if (Gguf.GgufModelLoader.IsGgufPath(modelFolder)) return Gguf.GgufTokenizer.FromMetadata(IO.Gguf.GgufReader.Open(modelFolder));
        if (Path.Exists(modelFolder) && !Directory.Exists(modelFolder))
        {
            InputFile.Require(modelFolder);
            var dir = Path.GetDirectoryName(Path.GetFullPath(modelFolder))!;
            return SentencePieceTokenizer.Load(modelFolder, Path.GetFileName(modelFolder) == "tokenizer.model" ? TokenizerConfig.Load(dir) : null);
        }
        if (!Directory.Exists(modelFolder)) throw new MergeException($"{modelFolder}: model folder not found");
        var path = Path.Combine(modelFolder, "tokenizer.model");
        if (!Path.Exists(path)) throw new MergeException($"{modelFolder}: no tokenizer.model in this folder");
        return SentencePieceTokenizer.Load(path, TokenizerConfig.Load(modelFolder));
    }
}
