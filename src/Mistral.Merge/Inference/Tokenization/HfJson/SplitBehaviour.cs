namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>tokenizers' <c>NormalizedString::split</c>: how the matches of a pattern and the text between them become pieces.</summary>
internal static class SplitBehaviour
{
    public const string Removed = "Removed", Isolated = "Isolated", MergedWithPrevious = "MergedWithPrevious",
        MergedWithNext = "MergedWithNext", Contiguous = "Contiguous";

    public static string Parse(string value, string where) => value switch
    {
        Removed or Isolated or MergedWithPrevious or MergedWithNext or Contiguous => value,
        _ => throw new FormatException($"{where}.behavior '{value}' is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous"),
    };

    /// <summary>The pieces of <paramref name="text"/> given the pattern's non-empty <paramref name="matches"/> (in order).</summary>
    public static List<string> Apply(string text, List<(int Start, int Length)> matches, string behaviour, bool invert)
    {
        // Alternating spans covering the text: (start, end, isMatch); gaps are never empty.
        var spans = new List<(int Start, int End, bool IsMatch)>(matches.Count * 2 + 1);
        int at = 0;
        foreach (var (s, l) in matches)
        {
            if (s > at) spans.Add((at, s, invert));
            spans.Add((s, s + l, !invert));
            at = s + l;
        }
        if (at < text.Length) spans.Add((at, text.Length, invert));

        var merged = new List<(int Start, int End)>(spans.Count);
        bool previousMatch = false;
        switch (behaviour)
        {
            case Removed:
                foreach (var s in spans) if (!s.IsMatch) merged.Add((s.Start, s.End));
                break;
            case Isolated:
                foreach (var s in spans) merged.Add((s.Start, s.End));
                break;
            case MergedWithPrevious:
                foreach (var s in spans)
                {
                    if (s.IsMatch && !previousMatch && merged.Count > 0) merged[^1] = (merged[^1].Start, s.End);
                    else merged.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
            case MergedWithNext:
                for (int i = spans.Count - 1; i >= 0; i--)
                {
                    var s = spans[i];
                    if (s.IsMatch && !previousMatch && merged.Count > 0) merged[^1] = (s.Start, merged[^1].End);
                    else merged.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                merged.Reverse();
                break;
            case Contiguous:
                foreach (var s in spans)
                {
                    if (s.IsMatch == previousMatch && merged.Count > 0) merged[^1] = (merged[^1].Start, s.End);
                    else merged.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
        }
        var pieces = new List<string>(merged.Count);
        foreach (var (s, e) in merged) if (e > s) pieces.Add(text[s..e]);
        return pieces;
    }
}
