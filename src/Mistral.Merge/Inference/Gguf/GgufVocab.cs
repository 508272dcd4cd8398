using System.Text.Json.Nodes;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Models;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// The tokenizer.ggml.* metadata of a model folder, as llama.cpp's convert_hf_to_gguf.py writes it:
/// a sentencepiece <c>tokenizer.model</c> becomes the <c>llama</c> vocabulary (<c>_create_vocab_sentencepiece</c>:
/// pieces, scores, types; <c>[PADn]</c> fillers up to config.json's vocab_size; tokenizer_config.json's
/// added_tokens_decoder and added_tokens.json override entries with score −1000), a byte-level BPE
/// <c>tokenizer.json</c> becomes the <c>gpt2</c> vocabulary (<c>get_vocab_base</c>: vocab tokens, added tokens as
/// CONTROL or USER_DEFINED, merges); then gguf-py's SpecialVocab: special token ids, add_bos/add_eos, the chat template.
/// </summary>
public static class GgufVocab
{
    // gguf-py TokenType / sentencepiece's piece types.
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    private static readonly string[] SpecialTypes = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"];

    private static readonly Dictionary<string, string> SpecialKeys = new()
    {
        ["bos"] = "tokenizer.ggml.bos_token_id", ["eos"] = "tokenizer.ggml.eos_token_id", ["unk"] = "tokenizer.ggml.unknown_token_id",
        ["sep"] = "tokenizer.ggml.seperator_token_id", ["pad"] = "tokenizer.ggml.padding_token_id",
        ["cls"] = "tokenizer.ggml.cls_token_id", ["mask"] = "tokenizer.ggml.mask_token_id",
    };

    public static List<(string Key, GgufValue Value)> Build(string folder, ModelConfig config)
    {
        var meta = new List<(string, GgufValue)>();
        var spm = Path.Combine(folder, Vocabulary.ModelFileName);
        var json = Path.Combine(folder, Vocabulary.JsonFileName);
        JsonObject? tokenizerJson = InputFile.IsPresent(json) ? JsonFile.ReadObject(json, Vocabulary.JsonFileName) : null;
        int nVocab;
        if (InputFile.IsPresent(spm)) nVocab = SentencePieceVocab(folder, spm, config, meta);
        else if (tokenizerJson != null) nVocab = BpeVocab(folder, json, tokenizerJson, config, meta);
        else throw new MergeException($"{folder}: no tokenizer.model or tokenizer.json; a GGUF file must hold the vocabulary");
        SpecialVocab(folder, tokenizerJson, config, nVocab, meta);
        return meta;
    }

    private static int SentencePieceVocab(string folder, string path, ModelConfig config, List<(string, GgufValue)> meta)
    {
        var sp = SentencePieceModel.Load(path);
        int n = config.VocabSize > 0 ? config.VocabSize : sp.Count;
        var tokens = Enumerable.Range(0, n).Select(i => $"[PAD{i}]").ToArray();
        var scores = Enumerable.Repeat(-10000.0f, n).ToArray();
        var types = Enumerable.Repeat(Unused, n).ToArray();
        for (int id = 0; id < Math.Min(n, sp.Count); id++)
        {
            tokens[id] = sp.Pieces[id];
            scores[id] = sp.Scores[id];
            // sentencepiece's IsUnknown / IsControl / IsUnused / IsByte, else NORMAL (a USER_DEFINED piece too).
            types[id] = sp.Types[id] switch
            {
                PieceType.Unknown => Unknown,
                PieceType.Control => Control,
                PieceType.Unused => Unused,
                PieceType.Byte => Byte,
                _ => Normal,
            };
        }
        var added = Path.Combine(folder, Vocabulary.AddedFileName);
        if (InputFile.IsPresent(added))
            foreach (var (content, node) in JsonFile.ReadObject(added, Vocabulary.AddedFileName))
            {
                int id = (int)JsonFile.Integer(node, $"added token '{content}'", added, 0, int.MaxValue);
                if (id >= n) continue;
                tokens[id] = content; scores[id] = -1000.0f; types[id] = UserDefined;
            }
        var tc = Path.Combine(folder, Vocabulary.ConfigFileName);
        if (InputFile.IsPresent(tc) && JsonFile.ReadObject(tc, Vocabulary.ConfigFileName)["added_tokens_decoder"] is JsonObject decoder)
            foreach (var (key, node) in decoder)
            {
                if (!int.TryParse(key, out var id) || id < 0 || node is not JsonObject o || JsonFile.String(o, "content", tc) is not { } content)
                    throw new MergeException($"{tc}: added_tokens_decoder entry '{key}' is not an id with a content");
                if (id >= n) continue;
                if (JsonFile.Bool(o, "special", tc) == true || LooksSpecial(content)) types[id] = Control;
                else { content = content.Replace('\u2581', ' '); types[id] = UserDefined; }
                scores[id] = -1000.0f;
                tokens[id] = content;
            }
        meta.Add(("tokenizer.ggml.model", GgufValue.Str("llama")));
        meta.Add(("tokenizer.ggml.pre", GgufValue.Str("default")));
        meta.Add(("tokenizer.ggml.tokens", GgufValue.Strings(tokens)));
        meta.Add(("tokenizer.ggml.scores", GgufValue.F32s(scores)));
        meta.Add(("tokenizer.ggml.token_type", GgufValue.I32s(types)));
        return n;
    }

    private static int BpeVocab(string folder, string path, JsonObject root, ModelConfig config, List<(string, GgufValue)> meta)
    {
        var model = root["model"] as JsonObject;
        if (model?["type"]?.GetValue<string>() != "BPE" || model["byte_fallback"]?.GetValue<bool>() == true)
            throw new MergeException($"{path}: only a byte-level BPE tokenizer.json (or a tokenizer.model) can be exported; this one is {(string?)model?["type"] ?? "unknown"}"
                + (model?["byte_fallback"]?.GetValue<bool>() == true ? " with byte_fallback (sentencepiece-style: add its tokenizer.model)" : ""));
        var vocab = Vocabulary.Read(folder)!;
        var byId = new Dictionary<int, string>();
        foreach (var (token, id) in vocab.Ids) byId.TryAdd(id, token);
        int n = config.VocabSize > 0 ? config.VocabSize : vocab.Count;
        var tokens = new string[n];
        var types = new int[n];
        for (int i = 0; i < n; i++)
        {
            if (!byId.TryGetValue(i, out var token)) { tokens[i] = $"[PAD{i}]"; types[i] = Unused; continue; }
            if (vocab.Added.TryGetValue(i, out var a) && a.Content == token)
            {
                if (a.Special || LooksSpecial(token)) types[i] = Control;
                else { token = token.Replace('\u2581', ' '); types[i] = UserDefined; }
            }
            else types[i] = Normal;
            tokens[i] = token;
        }
        var merges = new List<string>();
        if (model["merges"] is JsonArray ms)
            foreach (var m in ms)
                merges.Add(m switch
                {
                    JsonValue v when v.TryGetValue<string>(out var s) => s,
                    JsonArray pair when pair.Count == 2 => $"{(string?)pair[0]} {(string?)pair[1]}",
                    _ => throw new MergeException($"{path}: a model.merges entry is neither \"a b\" nor [a, b]"),
                });
        meta.Add(("tokenizer.ggml.model", GgufValue.Str("gpt2")));
        meta.Add(("tokenizer.ggml.pre", GgufValue.Str(GgufPreTokenizer.Name(root))));
        meta.Add(("tokenizer.ggml.tokens", GgufValue.Strings(tokens)));
        meta.Add(("tokenizer.ggml.token_type", GgufValue.I32s(types)));
        meta.Add(("tokenizer.ggml.merges", GgufValue.Strings([.. merges])));
        return n;
    }

    /// <summary>gguf-py SpecialVocab: ids from tokenizer_config.json's *_token (resolved in tokenizer.json's added_tokens), then config.json's *_token_id.</summary>
    private static void SpecialVocab(string folder, JsonObject? tokenizerJson, ModelConfig config, int nVocab, List<(string, GgufValue)> meta)
    {
        var ids = new Dictionary<string, int>();
        var add = new List<(string, bool)>();
        string? chatTemplate = null;
        var named = new List<(string, string)>();
        var tcPath = Path.Combine(folder, Vocabulary.ConfigFileName);
        if (InputFile.IsPresent(tcPath))
        {
            var tc = JsonFile.ReadObject(tcPath, Vocabulary.ConfigFileName);
            var addedTokens = tokenizerJson?["added_tokens"] as JsonArray ?? [];
            foreach (var typ in SpecialTypes)
            {
                if (tc[$"add_{typ}_token"] is JsonValue av && av.TryGetValue<bool>(out var b)) add.Add((typ, b));
                string? content = tc[$"{typ}_token"] switch
                {
                    JsonValue v when v.TryGetValue<string>(out var s) => s,
                    JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var s) => s,
                    _ => null,
                };
                if (content == null) continue;
                var id = addedTokens.OfType<JsonObject>().FirstOrDefault(a => (a["content"] as JsonValue)?.TryGetValue<string>(out var s) == true && s == content)?["id"];
                if (id is JsonValue iv && iv.TryGetValue<int>(out var i)) SetSpecial(ids, typ, i, nVocab);
            }
            switch (tc["chat_template"])
            {
                case JsonValue v when v.TryGetValue<string>(out var s): chatTemplate = s; break;
                case JsonArray list:
                    foreach (var e in list.OfType<JsonObject>())
                        if (e["name"]?.GetValue<string>() is { } name && e["template"]?.GetValue<string>() is { } t)
                        {
                            if (name == "default") chatTemplate = t; else named.Add((name, t));
                        }
                    break;
            }
        }
        var jinja = Path.Combine(folder, "chat_template.jinja");
        if (chatTemplate == null && InputFile.IsPresent(jinja)) chatTemplate = File.ReadAllText(jinja);
        foreach (var typ in SpecialTypes)
            if (config.Json[$"{typ}_token_id"] is JsonValue v && v.TryGetValue<long>(out var id) && id is >= 0 and <= int.MaxValue)
                SetSpecial(ids, typ, (int)id, nVocab);
        foreach (var typ in SpecialTypes)
            if (ids.TryGetValue(typ, out var id)) meta.Add((SpecialKeys[typ], GgufValue.U32((uint)id)));
        foreach (var (typ, value) in add) meta.Add(($"tokenizer.ggml.add_{typ}_token", GgufValue.Bool(value)));
        if (chatTemplate != null) meta.Add(("tokenizer.chat_template", GgufValue.Str(chatTemplate)));
        foreach (var (name, t) in named) meta.Add(($"tokenizer.chat_template.{name}", GgufValue.Str(t)));
        if (named.Count > 0) meta.Add(("tokenizer.chat_templates", GgufValue.Strings([.. named.Select(x => x.Item1)])));
    }

    private static void SetSpecial(Dictionary<string, int> ids, string typ, int id, int nVocab)
    {
        if (id >= 0 && id < nVocab) ids.TryAdd(typ, id);
    }

    /// <summary>convert_hf_to_gguf's <c>does_token_look_special</c>.</summary>
    public static bool LooksSpecial(string t) =>
        t is "<pad>" or "<mask>" or "<2mass>" or "[@BOS@]"
        || (t.StartsWith("<|", StringComparison.Ordinal) && t.EndsWith("|>", StringComparison.Ordinal))
        || (t.StartsWith("<\uff5c", StringComparison.Ordinal) && t.EndsWith("\uff5c>", StringComparison.Ordinal))
        || (t.StartsWith("<unused", StringComparison.Ordinal) && t.EndsWith('>'));
}
