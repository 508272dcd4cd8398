using System.Text;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Models;

/// <summary>An added token: its text, id and the flags a tokenizer keeps for it (special, lstrip, rstrip, normalized, single_word).</summary>
public sealed record AddedToken(string Content, int Id, bool Special, bool LStrip = false, bool RStrip = false, bool Normalized = false, bool SingleWord = false)
{
    /// <summary>A token appended by a merge: not special, normalized (transformers' default for a non-special token).</summary>
    public static AddedToken Plain(string content, int id) => new(content, id, false, Normalized: true);

    public static AddedToken FromJson(JsonObject o, string content, int id, string where) => new(content, id,
        JsonFile.Bool(o, "special", where) ?? false, JsonFile.Bool(o, "lstrip", where) ?? false, JsonFile.Bool(o, "rstrip", where) ?? false,
        JsonFile.Bool(o, "normalized", where) ?? !(JsonFile.Bool(o, "special", where) ?? false), JsonFile.Bool(o, "single_word", where) ?? false);

    /// <summary>The entry of tokenizer.json <c>added_tokens</c> (with id) or of <c>added_tokens_decoder</c> (without).</summary>
    public JsonObject ToJson(bool withId)
    {
        var o = new JsonObject();
        if (withId) o["id"] = Id;
        o["content"] = Content;
        o["single_word"] = SingleWord;
        o["lstrip"] = LStrip;
        o["rstrip"] = RStrip;
        o["normalized"] = Normalized;
        o["special"] = Special;
        return o;
    }
}

/// <summary>
/// A model folder's vocabulary: every token with its id (tokenizer.json <c>model.vocab</c> plus <c>added_tokens</c>; or
/// the pieces of tokenizer.model plus tokenizer_config.json <c>added_tokens_decoder</c> and added_tokens.json) and which
/// of them are added tokens.
/// </summary>
public sealed class Vocabulary
{
    public const string JsonFileName = "tokenizer.json", ModelFileName = "tokenizer.model", ConfigFileName = "tokenizer_config.json", AddedFileName = "added_tokens.json";

    /// <summary>Token → id (a token listed twice keeps its last id, as a tokenizer's <c>get_vocab</c> does).</summary>
    public Dictionary<string, int> Ids { get; } = new(StringComparer.Ordinal);
    /// <summary>Added tokens by id.</summary>
    public SortedDictionary<int, AddedToken> Added { get; } = new();
    /// <summary>True when read from tokenizer.json (else from tokenizer.model).</summary>
    public bool FromJson { get; init; }

    public int Count => Ids.Count;

    /// <summary>Tokens by ascending id (ties by text).</summary>
    public IEnumerable<KeyValuePair<string, int>> ById() => Ids.OrderBy(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal);

    public bool IsAdded(string token) => Ids.TryGetValue(token, out var id) && Added.TryGetValue(id, out var a) && a.Content == token;

    /// <summary>Whether <paramref name="folder"/> has a tokenizer to read a vocabulary from.</summary>
    public static bool Exists(string folder) =>
        InputFile.IsPresent(Path.Combine(folder, JsonFileName)) || InputFile.IsPresent(Path.Combine(folder, ModelFileName));

    /// <summary>The folder's vocabulary (tokenizer.json first, else tokenizer.model), or null when it has neither.</summary>
    public static Vocabulary? Read(string folder)
    {
        var json = Path.Combine(folder, JsonFileName);
        if (InputFile.IsPresent(json)) return ReadJson(json);
        var model = Path.Combine(folder, ModelFileName);
        if (!InputFile.IsPresent(model)) return null;
        var v = new Vocabulary { FromJson = false };
        var pieces = SentencePieces.Read(model);
        for (int id = 0; id < pieces.Count; id++)
        {
            var (piece, type) = pieces[id];
            v.Ids[piece] = id;
            if (type is SentencePieces.Unknown or SentencePieces.Control) v.Added[id] = new AddedToken(piece, id, true);
            else if (type == SentencePieces.UserDefined) v.Added[id] = new AddedToken(piece, id, false);
        }
        var config = Path.Combine(folder, ConfigFileName);
        if (InputFile.IsPresent(config) && JsonFile.ReadObject(config, ConfigFileName)["added_tokens_decoder"] is JsonObject decoder)
            foreach (var (key, node) in decoder)
            {
                if (!int.TryParse(key, out var id) || id < 0 || node is not JsonObject o || JsonFile.String(o, "content", config) is not { } content)
                    throw new MergeException($"{config}: added_tokens_decoder entry '{key}' is not an id with a content");
                v.Ids[content] = id;
                v.Added[id] = AddedToken.FromJson(o, content, id, config);
            }
        var added = Path.Combine(folder, AddedFileName);
        if (InputFile.IsPresent(added))
            foreach (var (content, node) in JsonFile.ReadObject(added, AddedFileName))
            {
                int id = (int)JsonFile.Integer(node, $"added token '{content}'", added, 0, int.MaxValue);
                v.Ids[content] = id;
                if (!v.Added.ContainsKey(id)) v.Added[id] = new AddedToken(content, id, false, Normalized: true);
            }
        return v;
    }

    private static Vocabulary ReadJson(string path)
    {
        var root = JsonFile.ReadObject(path, JsonFileName);
        var v = new Vocabulary { FromJson = true };
        switch ((root["model"] as JsonObject)?["vocab"])
        {
            case JsonObject map:
                foreach (var (token, id) in map) v.Ids[token] = (int)JsonFile.Integer(id, $"model.vocab '{token}'", path, 0, int.MaxValue);
                break;
            case JsonArray list: // Unigram: [piece, score] pairs, id = position
                for (int i = 0; i < list.Count; i++)
                    v.Ids[(list[i] as JsonArray)?[0]?.GetValue<string>() ?? throw new MergeException($"{path}: model.vocab entry {i} is not [piece, score]")] = i;
                break;
            default: throw new MergeException($"{path}: has no model.vocab");
        }
        if (root["added_tokens"] is JsonArray addedTokens)
            foreach (var node in addedTokens)
            {
                if (node is not JsonObject o || JsonFile.String(o, "content", path) is not { } content)
                    throw new MergeException($"{path}: an added_tokens entry has no content");
                int id = (int)JsonFile.Integer(o["id"], $"added token '{content}'", path, 0, int.MaxValue);
                v.Ids[content] = id;
                v.Added[id] = AddedToken.FromJson(o, content, id, path);
            }
        return v;
    }
}

/// <summary>The pieces of a sentencepiece <c>tokenizer.model</c> (ModelProto field 1) with their types; nothing else of it.</summary>
public static class SentencePieces
{
    public const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4;

    public static List<(string Piece, int Type)> Read(string path)
    {
        var data = InputFile.ReadAllBytes(path, InputFile.Limits.TokenizerModel, "a tokenizer.model");
        var pieces = new List<(string, int)>();
        try
        {
            int pos = 0;
            while (pos < data.Length)
            {
                var (field, wire) = Key(data, ref pos);
                if (field == 1 && wire == 2)
                {
                    var body = Bytes(data, ref pos);
                    string? piece = null;
                    int type = Normal, p = 0;
                    while (p < body.Length)
                    {
                        var (f, w) = Key(body, ref p);
                        if (f == 1 && w == 2) piece = Encoding.UTF8.GetString(Bytes(body, ref p));
                        else if (f == 3 && w == 0) type = (int)Varint(body, ref p);
                        else Skip(body, ref p, w);
                    }
                    pieces.Add((piece ?? throw new InvalidDataException("a piece without text"), type));
                }
                else Skip(data, ref pos, wire);
            }
        }
        catch (Exception e) when (e is InvalidDataException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            throw new MergeException($"{path}: not a valid sentencepiece model ({e.Message})");
        }
        if (pieces.Count == 0) throw new MergeException($"{path}: not a valid sentencepiece model (no pieces)");
        return pieces;
    }

    private static (int Field, int Wire) Key(ReadOnlySpan<byte> d, ref int pos)
    {
        ulong k = Varint(d, ref pos);
        return ((int)(k >> 3), (int)(k & 7));
    }

    private static ulong Varint(ReadOnlySpan<byte> d, ref int pos)
    {
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = d[pos++];
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return v;
        }
        throw new InvalidDataException("a varint longer than 10 bytes");
    }

    private static ReadOnlySpan<byte> Bytes(ReadOnlySpan<byte> d, ref int pos)
    {
        ulong n = Varint(d, ref pos);
        if (n > (ulong)(d.Length - pos)) throw new InvalidDataException("a field runs past the end");
        var s = d.Slice(pos, (int)n);
        pos += (int)n;
        return s;
    }

    private static void Skip(ReadOnlySpan<byte> d, ref int pos, int wire)
    {
        switch (wire)
        {
            case 0: Varint(d, ref pos); break;
            case 1: pos += 8; break;
            case 2: Bytes(d, ref pos); break;
            case 5: pos += 4; break;
            default: throw new InvalidDataException($"wire type {wire}");
        }
        if (pos > d.Length) throw new InvalidDataException("a field runs past the end");
    }
}
