using System.Text.Json;
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
        ReadOnlyMemory<byte> utf8 = InputFile.ReadAllBytes(path, InputFile.Limits.JsonSideFile, "tokenizer.json");
        if (utf8.Span.StartsWith("\uFEFF"u8)) utf8 = utf8[3..];
        if (!System.Text.Unicode.Utf8.IsValid(utf8.Span)) throw new MergeException($"{path}: not valid UTF-8");
        try
        {
            // JsonDocument, not JsonFile's materialized JsonNode: a 9 MB vocabulary+merges parses ~30x faster.
            using var doc = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = JsonFile.MaxDepth, AllowDuplicateProperties = false });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new MergeException($"{path}: tokenizer.json is not a JSON object");
            return Parse(doc.RootElement, config, tokenizerClass);
        }
        catch (JsonException e) { throw new MergeException($"{path}: invalid JSON ({e.Message.Split('\n')[0]})"); }
        catch (InvalidOperationException e) { throw new MergeException($"{path}: invalid JSON ({e.Message.Split('\n')[0]})"); } // e.g. a lone surrogate escape
        catch (FormatException e) { throw new MergeException($"{path}: {e.Message}"); }
    }

    /// <summary>A small part of the document as a node (the large vocabulary and merges are read from the element).</summary>
    private static JsonNode? Node(JsonElement parent, string key) =>
        parent.TryGetProperty(key, out var e) && e.ValueKind != JsonValueKind.Null ? JsonNode.Parse(e.GetRawText()) : null;

    private static string? ReadTokenizerClass(string folder)
    {
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        if (!InputFile.IsPresent(configPath)) return null;
        return JsonFile.ReadObject(configPath, "tokenizer_config.json")["tokenizer_class"] is JsonValue v && v.TryGetValue(out string? s) ? s : null;
    }

    internal static HfJsonTokenizer Parse(JsonElement root, TokenizerConfig config, string? tokenizerClass)
    {
        if (!root.TryGetProperty("model", out var modelElement)) throw new FormatException("no \"model\"");
        var model = ParseModel(modelElement);
        var added = ParseAddedTokens(Node(root, "added_tokens"));
        var normalizer = JsonNormalizer.Parse(Node(root, "normalizer"), "normalizer");
        var preTokenizer = JsonPreTokenizer.Parse(Node(root, "pre_tokenizer"), "pre_tokenizer");
        var decoder = JsonDecoder.Parse(Node(root, "decoder"), "decoder");
        var post = JsonPostProcessor.Parse(Node(root, "post_processor"), "post_processor");
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

    private static BytePairModel ParseModel(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object) throw new FormatException("model must be an object");
        var m = new JsonObject(); // the settings, without the large vocab and merges
        foreach (var prop in element.EnumerateObject())
            if (prop.Name is not ("vocab" or "merges")) m[prop.Name] = JsonNode.Parse(prop.Value.GetRawText());
        bool hasVocab = element.TryGetProperty("vocab", out var vocabElement), hasMerges = element.TryGetProperty("merges", out var mergesElement);
        string type = JsonParts.OptionalString(m, "type", "model") ?? (hasMerges ? "BPE" : "");
        if (type != "BPE") throw new FormatException($"model type '{type}' is not supported (only BPE)");
        if (m["dropout"] is JsonValue d && d.TryGetValue(out double p) && p > 0) throw new FormatException("model.dropout is not supported (encoding would be random)");
        foreach (var key in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (!string.IsNullOrEmpty(JsonParts.OptionalString(m, key, "model"))) throw new FormatException($"model.{key} is not supported");
        if (!hasVocab || vocabElement.ValueKind != JsonValueKind.Object) throw new FormatException("model.vocab is missing (it must map tokens to ids)");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocabElement.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int value) || value < 0)
                throw new FormatException($"model.vocab[\"{entry.Name}\"] must be a non-negative integer");
            if (value > TokenizerConfig.MaxTokenId) throw new FormatException($"model.vocab[\"{entry.Name}\"] = {value} is above the largest allowed id {TokenizerConfig.MaxTokenId}");
            vocab[entry.Name] = value;
        }
        var merges = new List<(string, string)>();
        if (hasMerges && mergesElement.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var merge in mergesElement.EnumerateArray())
            {
                if (merge.ValueKind == JsonValueKind.String && merge.GetString()!.Split(' ') is { Length: 2 } parts)
                    merges.Add((parts[0], parts[1]));
                else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2 &&
                         merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
                    merges.Add((merge[0].GetString()!, merge[1].GetString()!));
                else throw new FormatException($"model.merges[{i}] must be \"a b\" or [\"a\", \"b\"]");
                i++;
            }
        }
        else if (hasMerges && mergesElement.ValueKind != JsonValueKind.Null) throw new FormatException("model.merges must be an array");
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
