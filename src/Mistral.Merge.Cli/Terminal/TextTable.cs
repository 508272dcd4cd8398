namespace Mistral.Merge.Cli.Terminal;

/// <summary>
/// The one table printer of the CLI: a header row and rows of cells, columns two spaces apart, text left-aligned and
/// numbers right-aligned, no trailing spaces, plain text only (no box characters, no colour), so that it reads the
/// same on a terminal, in a file and in a test. <see cref="WriteMarkdown"/> prints the same table as Markdown.
/// </summary>
internal sealed class TextTable
{
    private readonly string[] _headers;
    private readonly bool[] _right;
    private readonly List<string[]> _rows = [];

    public TextTable(params string[] headers)
    {
        _headers = headers;
        _right = new bool[headers.Length];
    }

    /// <summary>Right-aligns the given columns (numbers).</summary>
    public TextTable AlignRight(params int[] columns)
    {
        foreach (int c in columns) _right[c] = true;
        return this;
    }

    public int Count => _rows.Count;

    public TextTable Add(params string[] cells)
    {
        if (cells.Length != _headers.Length) throw new ArgumentException($"a row of {cells.Length} cells in a table of {_headers.Length} columns");
        _rows.Add(cells);
        return this;
    }

    /// <summary>Aligned plain text: the header, then every row.</summary>
    public void Write(TextWriter o, bool header = true)
    {
        var all = header ? _rows.Prepend(_headers).ToList() : _rows;
        var width = new int[_headers.Length];
        foreach (var r in all)
            for (int c = 0; c < width.Length; c++) width[c] = Math.Max(width[c], r[c].Length);
        foreach (var r in all)
            o.WriteLine(string.Join("  ", r.Select((s, c) => _right[c] ? s.PadLeft(width[c]) : s.PadRight(width[c]))).TrimEnd());
    }

    /// <summary>A result as "label:  value" lines, the values aligned (a two-column table without header).</summary>
    public static void WriteFields(TextWriter o, params (string Label, string Value)[] fields)
    {
        var table = new TextTable("", "");
        foreach (var (label, value) in fields) table.Add(label + ":", value);
        table.Write(o, header: false);
    }

    /// <summary>A GitHub Markdown table (pipes in cells escaped).</summary>
    public void WriteMarkdown(TextWriter o)
    {
        static string Row(IEnumerable<string> cells) => "| " + string.Join(" | ", cells.Select(s => s.Replace("|", "\\|", StringComparison.Ordinal))) + " |";
        o.WriteLine(Row(_headers));
        o.WriteLine("|" + string.Concat(_right.Select(r => r ? "---:|" : "---|")));
        foreach (var r in _rows) o.WriteLine(Row(r));
    }
}
