using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Mistral.Merge.Recipes;

/// <summary>
/// A pass over the YAML events before the representation model is built, refusing what would make that model or
/// the reader that walks it blow up: nesting deeper than <see cref="MaxDepth"/> (YamlDotNet builds nodes
/// recursively: a stack overflow kills the process), aliases that expand to more than <see cref="MaxNodes"/> nodes
/// ("billion laughs": aliases are shared, but walking them is exponential) and aliases inside their own anchor.
/// Syntax errors are left to the real load, which reports them with their position (but one the parser cannot
/// report as such is reported here).
/// </summary>
internal static class YamlGuard
{
    public const int MaxDepth = 64;
    public const long MaxNodes = 100_000;

    /// <summary>The first problem found, with its position; null when the text is safe to load.</summary>
    public static (Mark Mark, string Message)? Check(string text)
    {
        var open = new List<(string? Anchor, long Size)>();
        var anchors = new Dictionary<string, long>(StringComparer.Ordinal);
        long total = 0;
        var parser = new Parser(new StringReader(text));
        try
        {
            while (parser.MoveNext())
            {
                var ev = parser.Current!;
                long added;
                switch (ev)
                {
                    case NodeEvent n and (SequenceStart or MappingStart):
                        if (open.Count == MaxDepth) return (Mark.From(ev.Start), $"the recipe nests more than {MaxDepth} levels deep");
                        open.Add((n.Anchor.IsEmpty ? null : n.Anchor.Value, 1));
                        continue;
                    case SequenceEnd or MappingEnd:
                        var (anchor, size) = open[^1];
                        open.RemoveAt(open.Count - 1);
                        if (anchor != null) anchors[anchor] = size;
                        added = size;
                        break;
                    case Scalar s:
                        if (!s.Anchor.IsEmpty) anchors[s.Anchor.Value] = 1;
                        added = 1;
                        break;
                    case AnchorAlias a:
                        if (open.Any(o => o.Anchor == a.Value.Value))
                            return (Mark.From(ev.Start), $"alias *{a.Value.Value} refers to a node that contains it");
                        // An unknown anchor is a syntax error the real load reports.
                        added = anchors.GetValueOrDefault(a.Value.Value, 1);
                        break;
                    default: continue;
                }
                // Every count stays at most 2 × MaxNodes, so nothing can overflow.
                if (open.Count > 0) open[^1] = (open[^1].Anchor, open[^1].Size + added);
                else total += added;
                if ((open.Count > 0 ? open[^1].Size : total) > MaxNodes)
                    return (Mark.From(ev.Start), $"the recipe expands to more than {MaxNodes} YAML nodes (aliases of aliases?)");
            }
        }
        catch (YamlException) { }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this on some malformed flow collections instead of a YamlException.
            var at = parser.Current is { } last ? Mark.From(last.End) : new Mark(1, 1);
            return (at, "YAML syntax error: malformed flow collection ({...} or [...]) after this point");
        }
        return null;
    }
}
