using System.Text;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// A Hugging Face fast tokenizer (<c>tokenizer.json</c>, BPE model) that encodes and decodes exactly as the
/// <c>tokenizers</c> library: added tokens are split out first (special or not, as with
/// split_special_tokens=false), the rest is normalized, pre-tokenized and BPE-encoded; the post-processor adds
/// BOS/EOS when special tokens are asked for. Immutable and thread-safe. Load with <see cref="HfJsonTokenizerFile"/>.
/// </summary>
public sealed class HfJsonTokenizer : ITokenizer
{
    private readonly JsonNormalizer? _normalizer;
    private readonly JsonPreTokenizer? _preTokenizer;
    private readonly BytePairModel _model;
    private readonly JsonPostProcessor _post;
    private readonly JsonDecoder? _decoder;
    private readonly AddedTokenSplitter _rawSplitter, _normalizedSplitter;
    private readonly Dictionary<int, AddedToken> _added;
    private readonly Dictionary<string, int> _addedByContent;

    public int BosId { get; }
    public int EosId { get; }
    public int VocabSize { get; }
    /// <summary>Whether the post-processor puts BOS first (transformers' add_special_tokens=True gives BOS).</summary>
    public bool AddBosByDefault { get; }

    /// <summary><paramref name="specialIds"/> finds BOS/EOS by token string; <paramref name="template"/> then picks the post-processor.</summary>
    internal HfJsonTokenizer(JsonNormalizer? normalizer, JsonPreTokenizer? preTokenizer, BytePairModel model, JsonDecoder? decoder,
        List<AddedToken> added, Func<HfJsonTokenizer, (int Bos, int Eos)> specialIds, Func<int, int, JsonPostProcessor> template)
    {
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _post = JsonPostProcessor.None;
        _decoder = decoder;
        _added = [];
        _addedByContent = new(StringComparer.Ordinal);
        foreach (var t in added) { _added[t.Id] = t; _addedByContent[t.Content] = t.Id; }
        _rawSplitter = new(added.Where(t => !t.Normalized || normalizer == null).Select(t => (t.Content, t)));
        _normalizedSplitter = new(added.Where(t => t.Normalized && normalizer != null).Select(t => (normalizer!.Normalize(t.Content), t)));
        VocabSize = Math.Max(model.Tokens.Length, added.Count == 0 ? 0 : added.Max(t => t.Id) + 1);
        (BosId, EosId) = specialIds(this);
        _post = template(BosId, EosId);
        var prefix = _post.Prefix;
        AddBosByDefault = BosId >= 0 && prefix.Length > 0 && prefix[0] == BosId;
    }

    /// <summary>The id of a token string: an added token's content or a vocabulary token (e.g. "Ġworld"); null when neither.</summary>
    public int? TokenToId(string token) => _addedByContent.TryGetValue(token, out int id) ? id : _model.TokenToId(token);

    /// <summary>The token string of an id (tokenizers' id_to_token: byte-level or ▁ form).</summary>
    public string IdToPiece(int id)
    {
        CheckId(id);
        return _added.TryGetValue(id, out var t) ? t.Content : _model.Tokens[id]!;
    }

    /// <summary>
    /// tokenizers' <c>encode(text, add_special_tokens)</c>: the ids of <paramref name="text"/>, with the
    /// post-processor's special tokens (BOS/EOS) when <paramref name="addSpecialTokens"/>.
    /// </summary>
    public int[] EncodeExact(string text, bool addSpecialTokens)
    {
        var ids = EncodeCore(text);
        return addSpecialTokens ? _post.Apply(ids) : [.. ids];
    }

    /// <summary>
    /// The ids of <paramref name="text"/> (added/special-token strings in it become their ids, as in tokenizers);
    /// with <paramref name="addBos"/> the post-processor's special tokens are added and BOS is put first when the
    /// tokenizer has one and the template did not (old Llama 3 tokenizer.json files add nothing).
    /// </summary>
    public int[] Encode(string text, bool addBos)
    {
        var ids = EncodeExact(text, addBos);
        if (addBos && BosId >= 0 && (ids.Length == 0 || ids[0] != BosId)) ids = [BosId, .. ids];
        return ids;
    }

    /// <summary>As <see cref="Encode"/>; with <paramref name="addBos"/> a text that already starts with BOS keeps only that one.</summary>
    public int[] EncodeWithSpecialTokens(string text, bool addBos)
    {
        var ids = Encode(text, addBos);
        if (addBos && ids.Length > 1 && ids[0] == BosId && ids[1] == BosId) ids = ids[1..];
        return ids;
    }

    private List<int> EncodeCore(string text)
    {
        text = WithoutLoneSurrogates(text);
        var ids = new List<int>(text.Length / 3 + 2);
        foreach (var (start, raw, token) in _rawSplitter.Split(text))
        {
            if (token != null) { ids.Add(token.Id); continue; }
            var normalized = _normalizer?.Normalize(raw) ?? raw;
            foreach (var (subStart, sub, subToken) in _normalizedSplitter.Split(normalized))
            {
                if (subToken != null) { ids.Add(subToken.Id); continue; }
                bool atTextStart = start == 0 && subStart == 0;
                if (_preTokenizer == null) _model.EncodeWord(sub, ids);
                else foreach (var word in _preTokenizer.PreTokenize(sub, atTextStart)) _model.EncodeWord(word, ids);
            }
        }
        return ids;
    }

    // Rust strings cannot hold a lone surrogate; UTF-8 encoding of the text would turn each into U+FFFD.
    private static string WithoutLoneSurrogates(string text)
    {
        int i = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (i < 0) return text;
        var chars = text.ToCharArray();
        for (; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) { i++; continue; }
            if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    /// <summary>Decodes as tokenizers' <c>decode(ids, skip_special_tokens=true)</c> (no clean-up of spaces).</summary>
    public string Decode(IReadOnlyList<int> ids) => DecodeExact(ids, skipSpecialTokens: true);

    /// <summary>tokenizers' <c>decode(ids, skip_special_tokens)</c>.</summary>
    public string DecodeExact(IReadOnlyList<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>(ids.Count);
        foreach (int id in ids)
        {
            CheckId(id);
            if (_added.TryGetValue(id, out var t))
            {
                if (!(skipSpecialTokens && t.Special)) tokens.Add(t.Content);
            }
            else tokens.Add(_model.Tokens[id]!);
        }
        if (_decoder == null) return string.Join(' ', tokens);
        var sb = new StringBuilder();
        foreach (var s in _decoder.DecodeChain(tokens)) sb.Append(s);
        return sb.ToString();
    }

    private void CheckId(int id)
    {
        if (id < 0 || id >= VocabSize || (!_added.ContainsKey(id) && (id >= _model.Tokens.Length || _model.Tokens[id] == null)))
            throw new MergeException($"token id {id} is outside the vocabulary (0..{VocabSize - 1})");
    }
}
