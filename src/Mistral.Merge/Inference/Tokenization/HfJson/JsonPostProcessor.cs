using System.Text.Json.Nodes;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// The single-sequence template that tokenizer.json's "post_processor" applies when special tokens are added:
/// TemplateProcessing ("single"), Bert/RobertaProcessing (cls … sep), ByteLevel (no ids), Sequence of them.
/// </summary>
internal sealed class JsonPostProcessor
{
    /// <summary>The template: special-token ids, with null standing for the sequence.</summary>
    private readonly List<int[]?> _single;

    public JsonPostProcessor(List<int[]?> single) => _single = single;

    /// <summary>No post-processor: the sequence alone.</summary>
    public static readonly JsonPostProcessor None = new([null]);

    public int[] Apply(List<int> sequence)
    {
        var result = new List<int>(sequence.Count + 4);
        foreach (var item in _single)
            if (item == null) result.AddRange(sequence);
            else result.AddRange(item);
        return [.. result];
    }

    /// <summary>The ids placed before the sequence (e.g. BOS).</summary>
    public int[] Prefix => [.. _single.TakeWhile(i => i != null).SelectMany(i => i!)];

    /// <summary>The template [bos]? $A [eos]? that transformers' LlamaTokenizerFast builds from add_bos_token/add_eos_token.</summary>
    public static JsonPostProcessor BosEos(int? bos, int? eos) =>
        new([.. bos is { } b ? new[] { new[] { b } } : [], null, .. eos is { } e ? new[] { new[] { e } } : []]);

    public static JsonPostProcessor Parse(JsonNode? node, string where)
    {
        if (node is null) return None;
        var o = JsonParts.Object(node, where);
        switch (JsonParts.Type(o, where))
        {
            case "ByteLevel":
                return None;
            case "Sequence":
                // Each processor wraps the result of the previous one; only templates add ids.
                var result = None;
                foreach (var (n, i) in JsonParts.Array(o, "processors", where).Select((n, i) => (n, i)))
                {
                    var p = Parse(n, $"{where}.processors[{i}]");
                    var combined = new List<int[]?>();
                    foreach (var item in p._single) if (item == null) combined.AddRange(result._single); else combined.Add(item);
                    result = new JsonPostProcessor(combined);
                }
                return result;
            case "BertProcessing" or "RobertaProcessing":
                return new([[IdOf(o, "cls", where)], null, [IdOf(o, "sep", where)]]);
            case "TemplateProcessing":
                var specials = JsonParts.Object(o["special_tokens"], where + ".special_tokens");
                var single = new List<int[]?>();
                foreach (var (item, i) in JsonParts.Array(o, "single", where).Select((n, i) => (n, i)))
                {
                    string w = $"{where}.single[{i}]";
                    var it = JsonParts.Object(item, w);
                    if (it["Sequence"] is JsonObject seq)
                    {
                        if (JsonParts.String(seq, "id", w + ".Sequence") != "A") throw new FormatException($"{w}: a single-sequence template can only use sequence A");
                        single.Add(null);
                    }
                    else if (it["SpecialToken"] is JsonObject sp)
                    {
                        var name = JsonParts.String(sp, "id", w + ".SpecialToken");
                        var entry = JsonParts.Object(specials[name], $"{where}.special_tokens[\"{name}\"]");
                        single.Add([.. JsonParts.Array(entry, "ids", $"{where}.special_tokens[\"{name}\"]").Select((x, k) => JsonParts.Int(x, $"{where}.special_tokens[\"{name}\"].ids[{k}]"))]);
                    }
                    else throw new FormatException($"{w} must be {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}}");
                }
                return new JsonPostProcessor(single);
            case var t:
                throw new FormatException($"{where}: post_processor type '{t}' is not supported (supported: TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, Sequence)");
        }
    }

    private static int IdOf(JsonObject o, string key, string where) =>
        o[key] is JsonArray { Count: 2 } a ? JsonParts.Int(a[1], $"{where}.{key}[1]") : throw new FormatException($"{where}.{key} must be [token, id]");
}
