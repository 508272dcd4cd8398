using System.Text;

namespace Mistral.Merge.Jinja;

/// <summary>@huggingface/jinja's toJSON: the <c>tojson</c> filter and how lists and dicts render.</summary>
internal static class JinjaJson
{
    public sealed record Options(int? Indent = null, bool EnsureAscii = false, (string Item, string Key)? Separators = null, bool SortKeys = false);

    public static string Write(JinjaValue input, Options o, int depth = 0, bool undefinedToNull = true)
    {
        // A namespace may hold itself ({% set ns.me = ns %}): JavaScript runs out of stack, so does this, politely.
        if (depth > 1000) throw new JinjaError("Maximum call stack size exceeded");
        string itemSep, keySep;
        if (o.Separators is { } s) (itemSep, keySep) = s;
        else if (o.Indent is > 0) (itemSep, keySep) = (",", ": ");
        else (itemSep, keySep) = (", ", ": ");
        switch (input)
        {
            case JinjaNull: return "null";
            case JinjaUndefined: return undefinedToNull ? "null" : "undefined";
            case JinjaNumber n: return double.IsFinite(n.Value) ? JsRules.Number(n.Value) : "null";
            case JinjaBool b: return b.Value ? "true" : "false";
            case JinjaString str: return Ascii(JsRules.JsonString(str.Value), o.EnsureAscii);
            case JinjaArray { IsTuple: true }: throw new JinjaError("Cannot convert to JSON: TupleValue");
            case JinjaArray or JinjaObject:
                {
                    bool indent = o.Indent is > 0;
                    string indentValue = indent ? new string(' ', o.Indent!.Value) : "";
                    string basePadding = "\n" + string.Concat(Enumerable.Repeat(indentValue, depth));
                    string childrenPadding = basePadding + indentValue;
                    if (input is JinjaArray a)
                    {
                        var core = a.Items.Select(x => Write(x, o, depth + 1, undefinedToNull)).ToList();
                        return indent && core.Count > 0
                            ? $"[{childrenPadding}{string.Join(itemSep + childrenPadding, core)}{basePadding}]"
                            : $"[{string.Join(itemSep, core)}]";
                    }
                    var entries = ((JinjaObject)input).Map.ToList();
                    // localeCompare: a culture-aware order (approximated by the invariant culture).
                    if (o.SortKeys) entries = [.. entries.OrderBy(e => e.Key, StringComparer.InvariantCulture)];
                    var parts = entries.Select(e =>
                    {
                        string v = $"{Ascii(JsRules.JsonString(e.Key), o.EnsureAscii)}{keySep}{Write(e.Value, o, depth + 1, undefinedToNull)}";
                        return indent ? childrenPadding + v : v;
                    }).ToList();
                    return indent && parts.Count > 0 ? $"{{{string.Join(itemSep, parts)}{basePadding}}}" : $"{{{string.Join(itemSep, parts)}}}";
                }
            default:
                throw new JinjaError($"Cannot convert to JSON: {input.TypeName}");
        }
    }

    private static string Ascii(string json, bool ensureAscii)
    {
        if (!ensureAscii) return json;
        var b = new StringBuilder(json.Length);
        foreach (char c in json)
            if (c >= '\x7f') b.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
            else b.Append(c);
        return b.ToString();
    }
}
