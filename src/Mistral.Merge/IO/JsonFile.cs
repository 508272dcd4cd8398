using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mistral.Merge.IO;

/// <summary>
/// Reads the small JSON side files (config.json, tokenizer_config.json, the shard index, ...): size-capped through
/// <see cref="InputFile"/>, duplicate keys and deep nesting refused, and typed getters whose every failure is a
/// one-line <see cref="MergeException"/> naming the file and key.
/// </summary>
public static class JsonFile
{
    /// <summary>Real side files nest a few levels; deeper input is hostile (and would cost stack further on).</summary>
    public const int MaxDepth = 64;

    private static readonly JsonDocumentOptions Options = new()
    {
        AllowTrailingCommas = true,
        MaxDepth = MaxDepth,
        // JsonDocument keeps the last of duplicated keys silently and JsonNode throws ArgumentException on first
        // access; refusing them at parse time gives the one-line error instead.
        AllowDuplicateProperties = false,
    };

    /// <summary>Reads <paramref name="path"/> (at most <see cref="InputFile.Limits.JsonSideFile"/>) as a JSON object.</summary>
    public static JsonObject ReadObject(string path, string what)
        => ParseObject(InputFile.ReadAllBytes(path, InputFile.Limits.JsonSideFile, what), path, what);

    /// <summary>Parses UTF-8 bytes that must hold one JSON object; <paramref name="where"/> names the source in errors.</summary>
    public static JsonObject ParseObject(ReadOnlySpan<byte> utf8, string where, string what)
        => Parse(utf8, where) as JsonObject ?? throw new MergeException($"{where}: {what} is not a JSON object");

    /// <summary>Parses UTF-8 bytes (a leading byte-order mark allowed) into a fully materialized node.</summary>
    public static JsonNode? Parse(ReadOnlySpan<byte> utf8, string where)
    {
        if (utf8.StartsWith("\uFEFF"u8)) utf8 = utf8[3..];
        if (!System.Text.Unicode.Utf8.IsValid(utf8)) throw new MergeException($"{where}: not valid UTF-8");
        try { return JsonNode.Parse(utf8, documentOptions: Options) is { } n ? Materialize(n) : null; }
        catch (JsonException e) { throw new MergeException($"{where}: invalid JSON ({Describe(e)})"); }
        // Lone UTF-16 surrogates in escapes (\ud800) surface as InvalidOperationException when a string is read.
        catch (InvalidOperationException e) { throw new MergeException($"{where}: invalid JSON ({e.Message.Split('\n')[0]})"); }
    }

    private static string Describe(JsonException e)
    {
        var first = e.Message.Split('\n')[0];
        // "Duplicate property 'x' encountered during deserialization." names no place; say what it means.
        const string dup = "Duplicate property ";
        if (first.StartsWith(dup, StringComparison.Ordinal) && first.IndexOf(" encountered", StringComparison.Ordinal) is int end and > 0)
            return $"duplicate key {first[dup.Length..end]}";
        return first;
    }

    // JsonNode builds objects and decodes strings lazily; touching every node and string now means no exception
    // can surface later in a reader.
    private static JsonNode Materialize(JsonNode n)
    {
        switch (n)
        {
            case JsonObject o: foreach (var (_, v) in o) if (v != null) Materialize(v); break;
            case JsonArray a: foreach (var v in a) if (v != null) Materialize(v); break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String: v.GetValue<string>(); break;
        }
        return n;
    }

    /// <summary>An optional integer <paramref name="key"/> of <paramref name="o"/> in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static long? Integer(JsonObject o, string key, string where, long min, long max)
    {
        var n = o[key];
        return n is null ? null : Integer(n, $"'{key}'", where, min, max);
    }

    /// <summary>The integer value of <paramref name="n"/> (1.0 and 1e3 count, 1.5 and "1" do not) within bounds.</summary>
    public static long Integer(JsonNode? n, string what, string where, long min, long max)
    {
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
        {
            if (v.TryGetValue<long>(out var l) && l >= min && l <= max) return l;
            if (double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
                && d == Math.Floor(d) && d >= min && d <= max)
                return (long)d;
        }
        throw new MergeException($"{where}: {what} must be an integer from {min} to {max}, got {Shown(n)}");
    }

    /// <summary>An optional finite number <paramref name="key"/> of <paramref name="o"/> in [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public static double? Number(JsonObject o, string key, string where, double min, double max)
    {
        var n = o[key];
        if (n is null) return null;
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number
            && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            && double.IsFinite(d) && d >= min && d <= max)
            return d;
        throw new MergeException($"{where}: '{key}' must be a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}, got {Shown(n)}");
    }

    /// <summary>An optional string <paramref name="key"/>; any other JSON type is an error.</summary>
    public static string? String(JsonObject o, string key, string where)
    {
        var n = o[key];
        if (n is null) return null;
        if (n is JsonValue v && v.TryGetValue<string>(out var s)) return s;
        throw new MergeException($"{where}: '{key}' must be a string, got {Shown(n)}");
    }

    /// <summary>An optional boolean <paramref name="key"/>; any other JSON type is an error.</summary>
    public static bool? Bool(JsonObject o, string key, string where)
    {
        var n = o[key];
        if (n is null) return null;
        if (n is JsonValue v && v.TryGetValue<bool>(out var b)) return b;
        throw new MergeException($"{where}: '{key}' must be true or false, got {Shown(n)}");
    }

    /// <summary>A JSON value for an error line: compact, and cut when long.</summary>
    public static string Shown(JsonNode? n)
    {
        var s = n?.ToJsonString() ?? "null";
        return s.Length <= 60 ? s : s[..57] + "...";
    }
}
