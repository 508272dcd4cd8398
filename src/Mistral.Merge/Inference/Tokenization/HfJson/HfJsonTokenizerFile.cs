using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// Reads a Hugging Face <c>tokenizer.json</c> (model type BPE) with the special-token settings of the folder's
/// <c>tokenizer_config.json</c>/<c>special_tokens_map.json</c>. Every problem is a one-line
/// <see cref="MergeException"/> naming the file and the JSON path.
/// </summary>
public static class HfJsonTokenizerFile
{
    // transformers' LlamaTokenizerFast (and Gemma/CodeLlama) rebuild the post-processor from add_bos_token/add_eos_token.
    private static readonly HashSet<string> BosEosClasses =
        ["LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"];

    /// <summary>Loads <paramref name="path"/> (a tokenizer.json file); settings come from the files beside it.</summary>
    public static HfJsonTokenizer Load(string path)
    {
        InputFile.Require(path);
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var config = TokenizerConfig.Load(folder);
        string? tokenizerClass = ReadTokenizerClass(folder);
        var root = JsonFile.ParseObject(InputFile.ReadAllBytes(path, InputFile.Limits.JsonSideFile, "tokenizer.json"), path, "tokenizer.json");
        try { return Parse(root, config, tokenizerClass); }
        catch (FormatException e) { throw new MergeException($"{path}: {e.Message}"); }
    }

    private static string? ReadTokenizerClass(string folder)
    {
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        if (!InputFile.IsPresent(configPath)) return null;
        return JsonFile.ReadObject(configPath, "tokenizer_config.json")["tokenizer_class"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
    }

    internal static HfJsonTokenizer Parse(JsonObject root, TokenizerConfig config, string? tokenizerClass)
    {
        var model = ParseModel(JsonParts.Object(root["model"] ?? throw new FormatException("no \"model\""), "model"));
        var added = ParseAddedTokens(root["added_tokens"]);
        var normalizer = JsonNormalizer.Parse(root["normalizer"], "normalizer");
        var preTokenizer = JsonPreTokenizer.Parse(root["pre_tokenizer"], "pre_tokenizer");
        var decoder = JsonDecoder.Parse(root["decoder"], "decoder");
        var post = JsonPostProcessor.Parse(root["post_processor"], "post_processor");
        return new HfJsonTokenizer(normalizer, preTokenizer, model, decoder, added, t =>
        {
            int bos = config.BosToken is { } b ? Resolve(t, b, "bos_token", config) : post.Prefix is [var first] ? first : -1;
            int eos = config.EosToken is { } e ? Resolve(t, e, "eos_token", config) : -1;
            return (bos, eos);
        }, (bos, eos) =>
        {
            if (tokenizerClass != null && BosEosClasses.Contains(tokenizerClass))
                return JsonPostProcessor.BosEos(config.AddBosToken ?? true ? Nullable(bos) : null, config.AddEosToken ?? false ? Nullable(eos) : null);
            return post;
        });
    }

    private static int? Nullable(int id) => id >= 0 ? id : null;

    private static int Resolve(HfJsonTokenizer t, string token, string key, TokenizerConfig config) =>
        t.TokenToId(token) ?? throw new FormatException($"{key} '{token}' (from {Path.GetFileName(config.SourceOf(key))}) is neither a vocabulary token nor an added token");

    private static BytePairModel ParseModel(JsonObject m)
    {
        string type = JsonParts.OptionalString(m, "type", "model") ?? (m["merges"] != null ? "BPE" : "");
        if (type != "BPE") throw new FormatException($"model type '{type}' is not supported (only BPE)");
        if (m["dropout"] is JsonValue d && d.TryGetValue(out double p) && p > 0) throw new FormatException("model.dropout is not supported (encoding would be random)");
        foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (!string.IsNullOrEmpty(JsonParts.OptionalString(m, key, "model"))) throw new FormatException($"model.{key} is not supported");
        if (m["vocab"] is not JsonObject vocabNode) throw new FormatException("model.vocab is missing (it must map tokens to ids)");
        var vocab = new Dictionary<string, int>(vocabNode.Count, StringComparer.Ordinal);
        foreach (var (token, id) in vocabNode)
        {
            int value = JsonParts.Int(id, $"model.vocab[\"{token}\"]");
            if (value > TokenizerConfig.MaxTokenId) throw new FormatException($"model.vocab[\"{token}\"] = {value} is above the largest allowed id {TokenizerConfig.MaxTokenId}");
            vocab[token] = value;
        }
        var merges = new List<(string, string)>();
        if (m["merges"] is JsonArray mergeNodes)
            for (int i = 0; i < mergeNodes.Count; i++)
            {
                switch (mergeNodes[i])
                {
                    case JsonValue v when v.TryGetValue(out string? s) && s.Split(' ') is { Length: 2 } parts:
                        merges.Add((parts[0], parts[1]));
                        break;
                    case JsonArray { Count: 2 } a when a[0] is JsonValue x && x.TryGetValue(out string? left) && a[1] is JsonValue y && y.TryGetValue(out string? right):
                        merges.Add((left, right));
                        break;
                    default:
                        throw new FormatException($"model.merges[{i}] must be \"a b\" or [\"a\", \"b\"]");
                }
            }
        else if (m["merges"] != null) throw new FormatException("model.merges must be an array");
        return new BytePairModel(vocab, merges, JsonParts.OptionalString(m, "unk_token", "model"),
            JsonParts.Bool(m, "byte_fallback", "model", false), JsonParts.Bool(m, "fuse_unk", "model", false), JsonParts.Bool(m, "ignore_merges", "model", false));
    }

    private static List<AddedToken> ParseAddedTokens(JsonNode? node)
    {
        var result = new List<AddedToken>();
        if (node is null) return result;
        if (node is not JsonArray a) throw new FormatException("added_tokens must be an array");
        for (int i = 0; i < a.Count; i++)
        {
            string w = $"added_tokens[{i}]";
            var o = JsonParts.Object(a[i], w);
            int id = JsonParts.Int(o["id"], w + ".id");
            if (id > TokenizerConfig.MaxTokenId) throw new FormatException($"{w}.id {id} is above the largest allowed id {TokenizerConfig.MaxTokenId}");
            bool special = JsonParts.Bool(o, "special", w, false);
            result.Add(new AddedToken(id, JsonParts.String(o, "content", w), special, JsonParts.Bool(o, "lstrip", w, false), JsonParts.Bool(o, "rstrip", w, false),
                JsonParts.Bool(o, "normalized", w, !special), JsonParts.Bool(o, "single_word", w, false)));
        }
        return result;
    }
}
