namespace Mistral.Merge.Inference;

/// <summary>Text ↔ token ids for a model folder (sentencepiece <c>tokenizer.model</c> or Hugging Face <c>tokenizer.json</c>).</summary>
public interface ITokenizer
{
    int BosId { get; }
    int EosId { get; }
    int VocabSize { get; }
    /// <summary>Encodes <paramref name="text"/> as sentencepiece's EncodeAsIds does, with BOS prepended when asked.</summary>
    int[] Encode(string text, bool addBos);
    /// <summary>Decodes as sentencepiece's DecodeIds does.</summary>
    string Decode(IReadOnlyList<int> ids);

    /// <summary>Whether prompts should start with BOS (tokenizer_config.json add_bos_token).</summary>
    bool AddBosByDefault => true;

    /// <summary>Encodes chat-template text in which special-token strings (<c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>, ...) stand for their ids.</summary>
    int[] EncodeWithSpecialTokens(string text, bool addBos) => Encode(text, addBos);

    /// <summary>The text <paramref name="next"/> adds after <paramref name="previous"/> (empty while a UTF-8 character is incomplete).</summary>
    string DecodeNext(IReadOnlyList<int> previous, int next)
    {
        string before = Decode(previous);
        string after = Decode([.. previous, next]);
        return after.StartsWith(before, StringComparison.Ordinal) ? after[before.Length..] : "";
    }

    /// <summary>The token string of an id (a sentencepiece piece, a byte-level BPE token, an added token's content).</summary>
    string IdToPiece(int id) => Decode([id]);

    /// <summary>The id of a token string (e.g. a special token such as <c>&lt;|eot_id|&gt;</c>), null when the vocabulary has none.</summary>
    int? TokenToId(string token) => null;
}
