using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO;

namespace Mistral.Merge.Inference;

/// <summary>Loads the tokenizer of a model folder.</summary>
public static class TokenizerLoader
{
    /// <summary>
    /// The exact sentencepiece tokenizer of <paramref name="modelFolder"/> (its <c>tokenizer.model</c> with the
    /// special tokens of <c>tokenizer_config.json</c>/<c>special_tokens_map.json</c>); a path to a
    /// <c>.model</c> file is accepted too. Errors are one-line <see cref="MergeException"/>s.
    /// </summary>
    public static SentencePieceTokenizer Load(string modelFolder)
    {
        if (Gguf.GgufModelLoader.IsGgufPath(modelFolder)) return Gguf.GgufTokenizer.Load(modelFolder); // tokenizer.ggml.* metadata
        if (Path.Exists(modelFolder) && !Directory.Exists(modelFolder))
        {
            InputFile.Require(modelFolder);
            var dir = Path.GetDirectoryName(Path.GetFullPath(modelFolder))!;
            return SentencePieceTokenizer.Load(modelFolder, Path.GetFileName(modelFolder) == "tokenizer.model" ? TokenizerConfig.Load(dir) : null);
        }
        if (!Directory.Exists(modelFolder)) throw new MergeException($"{modelFolder}: model folder not found");
        var path = Path.Combine(modelFolder, "tokenizer.model");
        if (!Path.Exists(path))
        {
            string hint = Path.Exists(Path.Combine(modelFolder, "tokenizer.json")) ? " (only tokenizer.json is present; sentencepiece tokenizer.model is required)" : "";
            throw new MergeException($"{modelFolder}: no tokenizer.model in this folder{hint}");
        }
        return SentencePieceTokenizer.Load(path, TokenizerConfig.Load(modelFolder));
    }
}
