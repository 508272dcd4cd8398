namespace Mistral.Merge.Tests.Layers;

/// <summary>
/// The planner stays split into small parts (issue 15): no member body in src/Mistral.Merge/Planning/*.cs spans more
/// than <see cref="MaxLines"/> lines. A plain brace scan: with the file-scoped namespace a type's body is depth 1,
/// so every block opened at depth 1 is a member's body (method, constructor, property, initializer). Braces in
/// // comments and char literals are skipped; those inside interpolated strings balance out. An unbalanced file
/// fails the test rather than passing it.
/// </summary>
public class PlannerMethodLengthTests
{
    private const int MaxLines = 60;
    private static readonly string Planning = Path.Combine(SharedFixtures.RepoRoot, "src", "Mistral.Merge", "Planning");

    [Fact]
    public void NoPlanningMethodBodyExceeds60Lines()
    {
        var files = Directory.GetFiles(Planning, "*.cs").Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(files);
        var bodies = files.SelectMany(f => MemberBodies(f)).ToList();
        Assert.True(bodies.Count >= 20, $"the scan found only {bodies.Count} member bodies; it no longer reads the sources right");
        var tooLong = bodies.Where(b => b.Lines > MaxLines)
            .Select(b => $"{b.File}:{b.Line}: {b.Declaration} — {b.Lines} lines (at most {MaxLines})").ToList();
        Assert.True(tooLong.Count == 0, string.Join("\n", tooLong));
    }

    [Fact]
    public void TheScanMeasuresABodyBetweenItsBraces()
    {
        string src = "namespace N;\nclass C\n{\n    void M()\n    {\n        var s = $\"{1}\";\n        if (true) { }\n        var c = '{'; // {\n    }\n}\n";
        string path = Path.Combine(Path.GetTempPath(), $"scan-{Guid.NewGuid():N}.cs");
        File.WriteAllText(path, src);
        try
        {
            var b = Assert.Single(MemberBodies(path));
            Assert.Equal(("void M()", 3), (b.Declaration, b.Lines));
        }
        finally { File.Delete(path); }
    }

    private sealed record Body(string File, int Line, string Declaration, int Lines);

    private static List<Body> MemberBodies(string path)
    {
        var lines = File.ReadAllLines(path);
        string name = Path.GetFileName(path);
        Assert.True(lines.Any(l => l.StartsWith("namespace ", StringComparison.Ordinal) && l.TrimEnd().EndsWith(';')),
            $"{name}: the scan expects a file-scoped namespace");
        var found = new List<Body>();
        int depth = 0, open = -1;
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            for (int j = 0; j < line.Length; j++)
            {
                char ch = line[j];
                if (ch == '/' && j + 1 < line.Length && line[j + 1] == '/') break;
                if (ch == '\'' && j + 2 < line.Length && line[j + 2] == '\'') { j += 2; continue; }
                if (ch == '{')
                {
                    if (depth == 1) open = i;
                    depth++;
                }
                else if (ch == '}')
                {
                    depth--;
                    Assert.True(depth >= 0, $"{name}:{i + 1}: unbalanced '}}'");
                    if (depth == 1 && open >= 0)
                    {
                        found.Add(new Body(name, open + 1, Declaration(lines, open), i - open - 1));
                        open = -1;
                    }
                }
            }
        }
        Assert.True(depth == 0, $"{name}: braces do not balance (depth {depth} at the end)");
        return found;
    }

    /// <summary>The member's declaration: the text before its brace, or the line above when the brace stands alone.</summary>
    private static string Declaration(string[] lines, int open)
    {
        string before = lines[open][..lines[open].IndexOf('{')].Trim();
        if (before.Length > 0) return before;
        for (int k = open - 1; k >= 0; k--)
            if (lines[k].Trim().Length > 0) return lines[k].Trim();
        return "?";
    }
}
