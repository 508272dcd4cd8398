namespace Mistral.Merge.Inference;

/// <summary>Text ↔ token ids for a model folder (sentencepiece <c>tokenizer.model</c>).</summary>
public interface ITokenizer
{
    int BosId { get; }
    int EosId { get; }
    int VocabSize { get; }
    /// <summary>Encodes <paramref name="text"/> as sentencepiece's EncodeAsIds does, with BOS prepended when asked.</summary>
    int[] Encode(string text, bool addBos);
    string Decode(IReadOnlyList<int> ids);
}
