using System.Text.Json.Nodes;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>tokenizer.json "normalizer": NFC/NFD, Prepend, Replace, Lowercase, Strip and Sequence of them.</summary>
internal abstract class JsonNormalizer
{
    public abstract string Normalize(string text);

    public static JsonNormalizer? Parse(JsonNode? node, string where)
    {
        if (node is null) return null;
        var o = JsonParts.Object(node, where);
        return JsonParts.Type(o, where) switch
        {
            "Sequence" => new SequenceNormalizer([.. JsonParts.Array(o, "normalizers", where).Select((n, i) => Parse(n, $"{where}.normalizers[{i}]")!)]),
            "NFC" => new FuncNormalizer(UnicodeNormalization.Nfc),
            "NFD" => new FuncNormalizer(UnicodeNormalization.Nfd),
            "Prepend" => new PrependNormalizer(JsonParts.String(o, "prepend", where)),
            "Replace" => new ReplaceNormalizer(ReplacePattern.Parse(o, where)),
            "Lowercase" => new FuncNormalizer(s => s.ToLowerInvariant()),
            "Strip" => new StripNormalizer(JsonParts.Bool(o, "strip_left", where, false), JsonParts.Bool(o, "strip_right", where, false)),
            var t => throw new FormatException($"{where}: normalizer type '{t}' is not supported (supported: Sequence, NFC, NFD, Prepend, Replace, Lowercase, Strip)"),
        };
    }

    private sealed class SequenceNormalizer(JsonNormalizer[] parts) : JsonNormalizer
    {
        public override string Normalize(string text)
        {
            foreach (var p in parts) text = p.Normalize(text);
            return text;
        }
    }

    private sealed class FuncNormalizer(Func<string, string> f) : JsonNormalizer
    {
        public override string Normalize(string text) => f(text);
    }

    // tokenizers' Prepend adds nothing to an empty string.
    private sealed class PrependNormalizer(string prefix) : JsonNormalizer
    {
        public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
    }

    private sealed class ReplaceNormalizer(ReplacePattern pattern) : JsonNormalizer
    {
        public override string Normalize(string text) => pattern.Replace(text);
    }

    private sealed class StripNormalizer(bool left, bool right) : JsonNormalizer
    {
        public override string Normalize(string text) => (left, right) switch
        {
            (true, true) => text.Trim(),
            (true, false) => text.TrimStart(),
            (false, true) => text.TrimEnd(),
            _ => text,
        };
    }
}

/// <summary>The {"pattern": {"String"|"Regex": ...}, "content": ...} of Replace normalizers and decoders.</summary>
internal sealed class ReplacePattern(string? literal, CodePointRegex? regex, string content)
{
    public static ReplacePattern Parse(JsonObject o, string where)
    {
        var (literal, regex) = JsonParts.Pattern(o, where);
        return new ReplacePattern(literal, regex, JsonParts.String(o, "content", where));
    }

    public string Replace(string text)
    {
        if (literal != null) return literal.Length == 0 ? text : text.Replace(literal, content, StringComparison.Ordinal);
        var matches = regex!.Matches(text);
        if (matches.Count == 0) return text;
        var sb = new System.Text.StringBuilder(text.Length);
        int at = 0;
        foreach (var (s, l) in matches) { sb.Append(text, at, s - at).Append(content); at = s + l; }
        return sb.Append(text, at, text.Length - at).ToString();
    }
}
