using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Mistral.Merge.IO;

/// <summary>
/// The one place that decides how the JSON the tool writes looks (stdout documents, config.json, tokenizer_config.json,
/// safetensors headers and index, report caches): they keep <c>&lt;</c>, <c>&gt;</c>, <c>&amp;</c>, <c>'</c> and
/// non-ASCII characters as they are instead of <c>\u003C</c>-style escapes, so chat templates and paths stay readable.
/// </summary>
public static class JsonText
{
    public static readonly JavaScriptEncoder Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;

    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = Encoder };
    public static readonly JsonSerializerOptions Compact = new() { Encoder = Encoder };

    public static string Write(JsonNode node, bool indented = true) => node.ToJsonString(indented ? Indented : Compact);

    public static string Serialize<T>(T value, bool indented = true) => JsonSerializer.Serialize(value, indented ? Indented : Compact);
}
