using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// The special-token settings of an HF model folder: <c>tokenizer_config.json</c> (add_bos_token, add_eos_token,
/// *_token, added_tokens_decoder), overridden by <c>special_tokens_map.json</c> as transformers does, plus
/// <c>added_tokens.json</c>. Token values may be a string or an object with "content".
/// </summary>
public sealed class TokenizerConfig
{
    public bool? AddBosToken { get; private set; }
    public bool? AddEosToken { get; private set; }
    public string? BosToken { get; private set; }
    public string? EosToken { get; private set; }
    public string? UnkToken { get; private set; }
    public string? PadToken { get; private set; }
    /// <summary>Added tokens: id → (content, special).</summary>
    public SortedDictionary<int, (string Content, bool Special)> AddedTokens { get; } = [];
    /// <summary>Token ids size the vocabulary; far above any real one (Gemma: 256000) yet no allocation can explode.</summary>
    public const int MaxTokenId = (1 << 24) - 1;
    private readonly Dictionary<string, string> _sources = [];

    /// <summary>The file a setting (e.g. "bos_token") came from, for error messages.</summary>
    public string SourceOf(string key) => _sources.GetValueOrDefault(key, "tokenizer_config.json");

    /// <summary>Settings given directly (a GGUF file's tokenizer.ggml.* keys); <paramref name="source"/> names them in errors.</summary>
    public static TokenizerConfig Of(string source, bool? addBos, bool? addEos, string? bos, string? eos, string? unk, string? pad)
    {
        var c = new TokenizerConfig { AddBosToken = addBos, AddEosToken = addEos, BosToken = bos, EosToken = eos, UnkToken = unk, PadToken = pad };
        foreach (var key in new[] { "bos_token", "eos_token", "unk_token", "pad_token" }) c._sources[key] = source;
        return c;
    }

    /// <summary>Reads whichever of the three files exist in <paramref name="folder"/> (none is fine).</summary>
    public static TokenizerConfig Load(string folder)
    {
        var c = new TokenizerConfig();
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        if (InputFile.IsPresent(configPath))
        {
            var o = JsonFile.ReadObject(configPath, "tokenizer_config.json");
            c.AddBosToken = JsonFile.Bool(o, "add_bos_token", configPath);
            c.AddEosToken = JsonFile.Bool(o, "add_eos_token", configPath);
            c.BosToken = c.Token(o, "bos_token", configPath, null);
            c.EosToken = c.Token(o, "eos_token", configPath, null);
            c.UnkToken = c.Token(o, "unk_token", configPath, null);
            c.PadToken = c.Token(o, "pad_token", configPath, null);
            if (o["added_tokens_decoder"] is JsonObject added)
                foreach (var (key, value) in added)
                {
                    if (!int.TryParse(key, out int id) || id < 0 || id > MaxTokenId || value is not JsonObject t || Token(t, "content", configPath) is not { } content)
                        throw new MergeException($"{configPath}: added_tokens_decoder entry '{key}' is not {{\"content\": ...}} under a token id");
                    c.AddedTokens[id] = (content, JsonFile.Bool(t, "special", configPath) ?? false);
                }
        }
        var addedPath = Path.Combine(folder, "added_tokens.json");
        if (InputFile.IsPresent(addedPath))
            foreach (var (content, value) in JsonFile.ReadObject(addedPath, "added_tokens.json"))
            {
                if (value is not JsonValue v || !v.TryGetValue(out int id) || id < 0 || id > MaxTokenId)
                    throw new MergeException($"{addedPath}: '{content}' must map to a token id from 0 to {MaxTokenId}");
                if (!c.AddedTokens.ContainsKey(id)) c.AddedTokens[id] = (content, false);
            }
        var mapPath = Path.Combine(folder, "special_tokens_map.json");
        if (InputFile.IsPresent(mapPath))
        {
            var o = JsonFile.ReadObject(mapPath, "special_tokens_map.json");
            c.BosToken = c.Token(o, "bos_token", mapPath, c.BosToken);
            c.EosToken = c.Token(o, "eos_token", mapPath, c.EosToken);
            c.UnkToken = c.Token(o, "unk_token", mapPath, c.UnkToken);
            c.PadToken = c.Token(o, "pad_token", mapPath, c.PadToken);
        }
        return c;
    }

    /// <summary>Reads a token setting; a value present in <paramref name="path"/> replaces <paramref name="previous"/>.</summary>
    private string? Token(JsonObject o, string key, string path, string? previous)
    {
        if (Token(o, key, path) is not { } value) return previous;
        _sources[key] = path;
        return value;
    }

    private static string? Token(JsonObject o, string key, string path)
    {
        var n = o[key];
        switch (n)
        {
            case null: return null;
            case JsonValue v when v.TryGetValue(out string? s): return s;
            case JsonObject t when t["content"] is JsonValue cv && cv.TryGetValue(out string? s): return s;
            default: throw new MergeException($"{path}: '{key}' must be a string or {{\"content\": \"...\"}}");
        }
    }
}
