using System.Text;
using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace Mistral.Merge.Recipes;

/// <summary>
/// One stage of a multi-document recipe (mergekit-multi): its own document as a recipe text in which every other
/// document's lines are blank, so that line:column in its problems are those of the file.
/// </summary>
public sealed record RecipeStage(string? Name, string Text, string OwnText, IReadOnlyList<string> DependsOn, int Line);

/// <summary>
/// mergekit-multi's recipes: several YAML documents, each a recipe plus an optional <c>name</c>. A named stage writes to
/// <c>WORK/NAME</c>; at most one stage is unnamed (it writes to the output). Any string value whose model part (before
/// <c>+adapter</c> and <c>@revision</c>) is a stage's name becomes that stage's folder (suffixes kept) and makes it a
/// dependency; stages run in dependency order.
/// </summary>
public static class RecipeStages
{
    /// <summary>True when the text holds more than one YAML document (unparsable text: false, the parser reports it).</summary>
    public static bool IsMultiDocument(string text)
    {
        if (YamlGuard.Check(text) != null) return false; // too deep or alias-heavy: not loaded here, the parser reports it
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlDotNet.Core.YamlException) { return false; }
        return stream.Documents.Count > 1;
    }

    /// <summary>The stages in the order they run; problems (names, cycles) are added with the file's line:column.</summary>
    public static List<RecipeStage> Split(string text, string workDir, RecipeProblems problems)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        var docs = stream.Documents.Select(d => d.RootNode).ToList();
        var names = new List<string?>();
        foreach (var root in docs)
        {
            string? name = root is YamlMappingNode m && m.Children.TryGetValue(new YamlScalarNode("name"), out var n) && n is YamlScalarNode s ? s.Value : null;
            if (root is not YamlMappingNode) problems.Add(Mark.From(root.Start), "every document of a multi-stage recipe must be a recipe (a mapping of keys)");
            if (name != null && names.Contains(name)) problems.Add(Mark.From(root.Start), $"two stages are named '{name}'");
            names.Add(name);
        }
        if (names.Count(n => n == null) > 1)
            problems.Add(Mark.From(docs[names.LastIndexOf(null)].Start), "only one stage may be unnamed (it writes to the output folder); give the others a 'name'");
        var lines = text.Split('\n');
        var stages = new List<RecipeStage>();
        for (int i = 0; i < docs.Count; i++)
        {
            var deps = new List<string>();
            var own = Substitute(text, docs[i], names, workDir, deps);
            int first = (int)docs[i].Start.Line, last = i + 1 < docs.Count ? (int)docs[i + 1].Start.Line - 1 : lines.Length;
            var ownLines = own.Split('\n');
            // this document's lines (the '---' separators excluded); every other line is kept blank in the stage's text
            bool Mine(int line) => line >= first && line <= last && ownLines[line - 1].TrimEnd() != "---";
            var blanked = string.Join('\n', ownLines.Select((line, k) => Mine(k + 1) ? line : ""));
            var ownText = string.Join('\n', ownLines.Where((_, k) => Mine(k + 1))).Trim('\n') + "\n";
            stages.Add(new RecipeStage(names[i], blanked, ownText, deps, first));
        }
        return Order(stages, problems);
    }

    /// <summary>The text with this document's stage references replaced by the stages' folders (as quoted YAML strings).</summary>
    private static string Substitute(string text, YamlNode root, List<string?> names, string workDir, List<string> deps)
    {
        var edits = new List<(int Start, int End, string Value)>();
        foreach (var node in root.AllNodes)
        {
            if (node is not YamlScalarNode { Value: { } v } s || IsKeyNamed(root, s)) continue;
            int cut = v.IndexOfAny(['+', '@']);
            var model = cut < 0 ? v : v[..cut];
            if (!names.Contains(model) || model.Length == 0) continue;
            if (!deps.Contains(model)) deps.Add(model);
            edits.Add(((int)s.Start.Index, (int)s.End.Index, JsonSerializer.Serialize(Path.Combine(workDir, model) + (cut < 0 ? "" : v[cut..]))));
        }
        var sb = new StringBuilder(text);
        foreach (var (start, end, value) in edits.OrderByDescending(e => e.Start)) sb.Remove(start, end - start).Insert(start, value);
        return sb.ToString();
    }

    // A stage's own 'name' value is not a reference to itself.
    private static bool IsKeyNamed(YamlNode root, YamlScalarNode s) =>
        root is YamlMappingNode m && m.Children.TryGetValue(new YamlScalarNode("name"), out var n) && ReferenceEquals(n, s);

    private static List<RecipeStage> Order(List<RecipeStage> stages, RecipeProblems problems)
    {
        var done = new List<RecipeStage>();
        var pending = stages.ToList();
        while (pending.Count > 0)
        {
            var ready = pending.FirstOrDefault(s => s.DependsOn.All(d => done.Any(x => x.Name == d)));
            if (ready == null)
            {
                problems.Add(new Mark(pending[0].Line, 1), $"the stages {string.Join(", ", pending.Select(s => $"'{s.Name ?? "(unnamed)"}'"))} depend on each other in a cycle");
                return done;
            }
            done.Add(ready);
            pending.Remove(ready);
        }
        return done;
    }
}
