using System.Text.Json.Nodes;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>Typed reads of tokenizer.json parts; each failure is a <see cref="FormatException"/> naming the JSON path (the loader adds the file).</summary>
internal static class JsonParts
{
    public static JsonObject Object(JsonNode? n, string where) => n as JsonObject ?? throw new FormatException($"{where} must be an object");

    public static string Type(JsonObject o, string where) =>
        o["type"] is JsonValue v && v.TryGetValue(out string? t) ? t : throw new FormatException($"{where} has no \"type\"");

    public static JsonArray Array(JsonObject o, string key, string where) =>
        o[key] as JsonArray ?? throw new FormatException($"{where}.{key} must be an array");

    public static string String(JsonObject o, string key, string where) =>
        OptionalString(o, key, where) ?? throw new FormatException($"{where}.{key} must be a string");

    public static string? OptionalString(JsonObject o, string key, string where) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        _ => throw new FormatException($"{where}.{key} must be a string"),
    };

    public static bool Bool(JsonObject o, string key, string where, bool fallback) => o[key] switch
    {
        null => fallback,
        JsonValue v when v.TryGetValue(out bool b) => b,
        _ => throw new FormatException($"{where}.{key} must be true or false"),
    };

    public static int Int(JsonNode? n, string where) =>
        n is JsonValue v && v.TryGetValue(out int i) && i >= 0 ? i : throw new FormatException($"{where} must be a non-negative integer");

    /// <summary>{"pattern": {"String": s}} or {"pattern": {"Regex": r}}.</summary>
    public static (string? Literal, CodePointRegex? Regex) Pattern(JsonObject o, string where)
    {
        var p = Object(o["pattern"], where + ".pattern");
        if (OptionalString(p, "String", where + ".pattern") is { } s) return (s, null);
        if (OptionalString(p, "Regex", where + ".pattern") is { } r) return (null, new CodePointRegex(r));
        throw new FormatException($"{where}.pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}");
    }
}
