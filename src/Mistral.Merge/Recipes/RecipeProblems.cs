namespace Mistral.Merge.Recipes;

/// <summary>A position in a recipe file (1-based line and column).</summary>
public readonly record struct Mark(int Line, int Column)
{
    public static Mark From(YamlDotNet.Core.Mark m) => new((int)m.Line, (int)m.Column);
    public override string ToString() => $"{Line}:{Column}";
}

/// <summary>All problems found in a recipe, reported together as one error.</summary>
public sealed class RecipeException : MergeException
{
    public IReadOnlyList<string> Problems { get; }
    public RecipeException(IReadOnlyList<string> problems) : base(string.Join("\n", problems)) => Problems = problems;
}

/// <summary>
/// Collects recipe problems (each one line <c>file:LINE:COL: message</c>) so that every problem is
/// reported at once, before anything is written.
/// </summary>
public sealed class RecipeProblems
{
    private readonly List<(Mark Mark, string Message)> _items = new();
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    public string FileLabel { get; }
    public RecipeProblems(string fileLabel) => FileLabel = fileLabel;

    public int Count => _items.Count;
    public bool Any => _items.Count > 0;

    public void Add(Mark mark, string message)
    {
        // Messages quote recipe values, which may hold line breaks; each problem must stay one line.
        var line = $"{FileLabel}:{mark.Line}:{mark.Column}: {message.ReplaceLineEndings(" ")}";
        if (_seen.Add(line)) _items.Add((mark, line));
    }

    /// <summary>The problem lines, in file order.</summary>
    public IReadOnlyList<string> Lines =>
        _items.Select((x, i) => (x, i)).OrderBy(p => p.x.Mark.Line).ThenBy(p => p.x.Mark.Column).ThenBy(p => p.i)
              .Select(p => p.x.Message).ToList();

    public void ThrowIfAny()
    {
        if (Any) throw new RecipeException(Lines);
    }
}

/// <summary>"Did you mean" suggestions by edit distance.</summary>
public static class Suggest
{
    public static string? Closest(string word, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestD = int.MaxValue;
        foreach (var c in candidates)
        {
            int d = Distance(word.ToLowerInvariant(), c.ToLowerInvariant());
            if (d < bestD) { bestD = d; best = c; }
        }
        // Accept up to a third of the word's length (at least 2 edits) as a plausible misspelling.
        return best != null && bestD <= Math.Max(2, word.Length / 3) ? best : null;
    }

    public static string Hint(string word, IEnumerable<string> candidates)
        => Closest(word, candidates) is { } c ? $" (did you mean '{c}'?)" : "";

    /// <summary>Optimal string alignment distance (Levenshtein plus adjacent transpositions).</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                int v = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = Math.Min(v, d[i - 2, j - 2] + 1);
                d[i, j] = v;
            }
        return d[a.Length, b.Length];
    }
}
