using System.Text;

namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// An exact re-implementation of Google sentencepiece's BPE <c>EncodeAsIds</c> / <c>DecodeIds</c> for the
/// models used by Mistral and Llama (identity normalizer, byte fallback), with the special-token settings of
/// an HF folder (<see cref="TokenizerConfig"/>). Immutable and thread-safe.
/// </summary>
public sealed class SentencePieceTokenizer : ITokenizer
{
    private readonly Normalizer _normalizer;
    private readonly BpeEncoder _encoder;
    private readonly string[] _surface;            // piece with U+2581 → ' ' (empty for control pieces)
    private readonly bool[] _startsWithSpace;      // piece starts with U+2581
    private readonly SortedDictionary<int, (string Content, bool Special)> _added;
    private readonly Dictionary<char, (string Text, int Id)[]> _specialByFirstChar;

    public SentencePieceModel Model { get; }
    public int BosId { get; }
    public int EosId { get; }
    public int UnkId { get; }
    /// <summary>Padding id, -1 when the model has none.</summary>
    public int PadId { get; }
    public int VocabSize { get; }
    /// <summary>Whether prompts get BOS (tokenizer_config.json add_bos_token; true when unset, as HF LlamaTokenizer).</summary>
    public bool AddBosByDefault { get; }
    /// <summary>tokenizer_config.json add_eos_token (false when unset).</summary>
    public bool AddEosByDefault { get; }
    /// <summary>True when the encoder segments space-separated chunks independently (see <see cref="BpeEncoder"/>).</summary>
    public bool Chunked => _encoder.Chunked;

    private SentencePieceTokenizer(SentencePieceModel model, TokenizerConfig? config)
    {
        Model = model;
        var matcher = UserDefinedMatcher.Create(model);
        _normalizer = new Normalizer(model, matcher);
        _encoder = new BpeEncoder(model, matcher, _normalizer.Space);
        _added = config?.AddedTokens ?? [];

        _surface = new string[model.Count];
        _startsWithSpace = new bool[model.Count];
        for (int i = 0; i < model.Count; i++)
        {
            _surface[i] = model.Types[i] == PieceType.Control ? "" : model.Pieces[i].Replace('\u2581', ' ');
            _startsWithSpace[i] = model.Pieces[i].StartsWith('\u2581');
        }

        int maxAdded = _added.Count == 0 ? -1 : _added.Keys.Max();
        VocabSize = Math.Max(model.Count, maxAdded + 1);
        BosId = config?.BosToken is { } bos ? Resolve(bos, "bos_token", config) : ControlId(model.BosPiece);
        EosId = config?.EosToken is { } eos ? Resolve(eos, "eos_token", config) : ControlId(model.EosPiece);
        UnkId = config?.UnkToken is { } unk ? Resolve(unk, "unk_token", config) : Array.IndexOf(model.Types, PieceType.Unknown);
        PadId = config?.PadToken is { } pad ? Resolve(pad, "pad_token", config) : ControlId(model.PadPiece);
        AddBosByDefault = config?.AddBosToken ?? true;
        AddEosByDefault = config?.AddEosToken ?? false;

        // Strings that EncodeWithSpecialTokens maps straight to ids: control/unknown pieces, configured specials, added tokens.
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < model.Count; i++)
            if (model.Types[i] is PieceType.Control or PieceType.Unknown) specials.TryAdd(model.Pieces[i], i);
        foreach (var (id, (content, _)) in _added) if (content.Length > 0) specials[content] = id;
        foreach (var (text, id) in new[] { (config?.BosToken, BosId), (config?.EosToken, EosId), (config?.UnkToken, UnkId), (config?.PadToken, PadId) })
            if (!string.IsNullOrEmpty(text) && id >= 0) specials[text] = id;
        _specialByFirstChar = specials
            .GroupBy(kv => kv.Key[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(kv => kv.Key.Length).Select(kv => (kv.Key, kv.Value)).ToArray());
    }

    /// <summary>A tokenizer over a parsed model and optional HF special-token settings.</summary>
    public static SentencePieceTokenizer Create(SentencePieceModel model, TokenizerConfig? config = null) => new(model, config);

    /// <summary>Loads a <c>tokenizer.model</c> file (no HF settings).</summary>
    public static SentencePieceTokenizer Load(string modelPath, TokenizerConfig? config = null)
        => new(SentencePieceModel.Load(modelPath), config);

    private int ControlId(string piece)
    {
        int id = _encoder.PieceToId(Encoding.UTF8.GetBytes(piece));
        return Model.Types[id] == PieceType.Control ? id : -1;
    }

    private int Resolve(string token, string key, TokenizerConfig config)
    {
        var bytes = Encoding.UTF8.GetBytes(token);
        int id = _encoder.PieceToId(bytes);
        if (id >= 0 && Model.Pieces[id] == token) return id;
        foreach (var (aid, (content, _)) in _added) if (content == token) return aid;
        throw new MergeException($"{config.SourceOf(key)}: {key} '{token}' is neither a piece of tokenizer.model nor an added token");
    }

    /// <summary>sentencepiece EncodeAsIds(text), with BOS first when <paramref name="addBos"/>.</summary>
    public int[] Encode(string text, bool addBos)
    {
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos) ids.Add(RequireBos());
        EncodeInto(text, ids);
        return [.. ids];
    }

    /// <summary>Appends EncodeAsIds(<paramref name="text"/>) to <paramref name="output"/>.</summary>
    public void EncodeInto(ReadOnlySpan<char> text, List<int> output)
    {
        if (text.IsEmpty) return;
        var utf8 = new byte[Encoding.UTF8.GetByteCount(text)];
        Encoding.UTF8.GetBytes(text, utf8);
        byte[] normalized = [];
        int n = _normalizer.Normalize(utf8, ref normalized);
        _encoder.Encode(normalized.AsSpan(0, n), output);
    }

    /// <summary>The pieces of the ids (for display).</summary>
    public string IdToPiece(int id)
    {
        CheckId(id);
        return id < Model.Count ? Model.Pieces[id] : _added[id].Content;
    }

    /// <summary>The id of a piece of tokenizer.model or of an added token's content; null when neither.</summary>
    public int? TokenToId(string token)
    {
        foreach (var (aid, (content, _)) in _added) if (content == token) return aid;
        int id = _encoder.PieceToId(Encoding.UTF8.GetBytes(token));
        return id >= 0 && Model.Pieces[id] == token ? id : null;
    }

    /// <summary>
    /// Encodes a chat-template text in which special-token strings (control pieces such as <c>&lt;s&gt;</c>,
    /// <c>&lt;/s&gt;</c>, v3's <c>[INST]</c>, the configured bos/eos/unk/pad tokens and added tokens) stand for
    /// their ids; the text between them is encoded with EncodeAsIds, each segment with its dummy prefix
    /// (as mistral-common does). Mistral v1's <c>[INST]</c> is ordinary text and is encoded normally.
    /// With <paramref name="addBos"/>, BOS is prepended unless the text already starts with the BOS token.
    /// </summary>
    public int[] EncodeWithSpecialTokens(string text, bool addBos = false)
    {
        var ids = new List<int>();
        if (addBos) ids.Add(RequireBos());
        int segment = 0;
        for (int i = 0; i < text.Length;)
        {
            if (_specialByFirstChar.TryGetValue(text[i], out var candidates))
            {
                var match = Array.Find(candidates, c => text.AsSpan(i).StartsWith(c.Text, StringComparison.Ordinal));
                if (match.Text != null)
                {
                    EncodeInto(text.AsSpan(segment, i - segment), ids);
                    ids.Add(match.Id);
                    i += match.Text.Length;
                    segment = i;
                    continue;
                }
            }
            i++;
        }
        EncodeInto(text.AsSpan(segment), ids);
        if (addBos && ids.Count > 1 && ids[1] == BosId) ids.RemoveAt(0);
        return [.. ids];
    }

    private int RequireBos() => BosId >= 0 ? BosId : throw new MergeException("this tokenizer has no BOS token; encode without BOS (--no-bos)");

    /// <summary>sentencepiece DecodeIds: control tokens vanish, U+2581 becomes a space, the leading dummy-prefix space is dropped, byte pieces are reassembled into UTF-8 (U+FFFD per invalid byte).</summary>
    public string Decode(IReadOnlyList<int> ids)
    {
        var d = new StreamingDecoder(this);
        var sb = new StringBuilder();
        for (int i = 0; i < ids.Count; i++) d.Push(ids[i], sb);
        d.Flush(sb);
        return sb.ToString();
    }

    /// <summary>A decoder that returns the text of each new token as it is generated.</summary>
    public StreamingDecoder CreateStreamingDecoder() => new(this);

    /// <summary>The text that <paramref name="next"/> adds after <paramref name="previous"/> (replays the prefix; use a <see cref="StreamingDecoder"/> in loops).</summary>
    public string DecodeNext(IReadOnlyList<int> previous, int next)
    {
        var d = new StreamingDecoder(this);
        var sink = new StringBuilder();
        for (int i = 0; i < previous.Count; i++) d.Push(previous[i], sink);
        return d.Push(next);
    }

    internal void CheckId(int id)
    {
        if (id < 0 || id >= VocabSize || (id >= Model.Count && !_added.ContainsKey(id)))
            throw new MergeException($"token id {id} is outside the vocabulary (0..{VocabSize - 1})");
    }

    internal bool IsByte(int id) => id < Model.Count && Model.Types[id] == PieceType.Byte;
    internal int ByteValue(int id) => SentencePieceModel.ByteOfPiece(Model.Pieces[id]);

    /// <summary>sentencepiece's DecodeSentencePiece: the surface of a non-byte piece and whether it consumed the leading space.</summary>
    internal (string Text, bool ConsumedBosSpace) Surface(int id, bool isBosWs)
    {
        if (id >= Model.Count) { var (c, special) = _added[id]; return (special ? "" : c, false); }
        switch (Model.Types[id])
        {
            case PieceType.Control: return ("", false);
            case PieceType.Unknown: return (Model.UnkSurface, false);
        }
        string s = _surface[id];
        if (isBosWs && (Model.AddDummyPrefix || Model.RemoveExtraWhitespaces) && _startsWithSpace[id])
            return (s[1..], !Model.RemoveExtraWhitespaces);
        return (s, false);
    }
}
