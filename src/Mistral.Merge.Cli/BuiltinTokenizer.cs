using System.Text;
using Mistral.Merge.Inference.Tokenization;

namespace Mistral.Merge.Cli;

/// <summary>
/// The built-in tokenizer (<c>--tokenizer byte-level</c>): a sentencepiece BPE model with the special pieces,
/// the 256 byte pieces and common merges, so synthesized models can be evaluated and sampled with no download.
/// </summary>
public static class BuiltinTokenizer
{
    public const string Name = "byte-level";

    public static IReadOnlyDictionary<string, byte[]> Files(int modelVocab)
    {
        var model = SentencePieceModelBuilder.ByteLevel();
        if (modelVocab < model.Count)
            throw new MergeException($"--tokenizer {Name}: the built-in tokenizer has {model.Count} pieces, more than the model's vocabulary of {modelVocab}; use --vocab {model.Count} or more");
        return new Dictionary<string, byte[]>
        {
            ["tokenizer.model"] = model.Build(),
            ["tokenizer_config.json"] = Encoding.UTF8.GetBytes(
                """{"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}""" + "\n"),
        };
    }
}
