using Microsoft.ML.Tokenizers;

namespace Mistral.Merge.Inference;

/// <summary>Loads the tokenizer of a model folder.</summary>
public static class TokenizerLoader
{
    public static ITokenizer Load(string modelFolder)
    {
        var path = Path.Combine(modelFolder, "tokenizer.model");
        if (!File.Exists(path)) throw new MergeException($"{modelFolder}: no tokenizer.model in this folder");
        try
        {
            using var s = File.OpenRead(path);
            return new LlamaTokenizerAdapter(LlamaTokenizer.Create(s, addBeginOfSentence: false, addEndOfSentence: false));
        }
        catch (Exception e) when (e is not MergeException)
        {
            throw new MergeException($"{path}: cannot load sentencepiece model ({e.Message.Split('\n')[0]})");
        }
    }

    // Placeholder over Microsoft.ML.Tokenizers; the exact sentencepiece encoder replaces Encode.
    private sealed class LlamaTokenizerAdapter(LlamaTokenizer t) : ITokenizer
    {
        public int BosId => t.BeginningOfSentenceId;
        public int EosId => t.EndOfSentenceId;
        public int VocabSize => t.Vocabulary.Count;
        public int[] Encode(string text, bool addBos)
        {
            var ids = t.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);
            return addBos ? [BosId, .. ids] : [.. ids];
        }
        public string Decode(IReadOnlyList<int> ids) => t.Decode(ids) ?? "";
    }
}
