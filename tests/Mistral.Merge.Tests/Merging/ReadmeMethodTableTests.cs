using System.Text.RegularExpressions;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Tests.Merging;

/// <summary>The README's "### Methods" tables (under merging) list exactly the registry's merge methods and MoE surgeries, each with its parameters.</summary>
public class ReadmeMethodTableTests
{
    [Fact]
    public void Readme_method_table_matches_the_registry()
    {
        var all = TableRows();
        var rows = all.Where(r => r.Length == 3).Select(c => (Methods: Names(c[0], Method), MethodParams: Names(c[1], Param), ModelParams: Names(c[2], Param))).ToList();
        var listed = rows.SelectMany(r => r.Methods).ToList();
        Assert.Equal(MergeMethods.Names.Order(), listed.Order());
        foreach (var (methods, methodParams, modelParams) in rows)
            foreach (var name in methods)
            {
                var spec = MergeMethods.Get(name).Spec;
                Assert.True(spec.MethodParams.Select(p => p.Name).Order().SequenceEqual(methodParams.Order()),
                    $"{name}: README lists method parameters [{string.Join(", ", methodParams)}], the method takes [{string.Join(", ", spec.MethodParams.Select(p => p.Name))}]");
                Assert.True(spec.ModelParams.Select(p => p.Name).Order().SequenceEqual(modelParams.Order()),
                    $"{name}: README lists per-model parameters [{string.Join(", ", modelParams)}], the method takes [{string.Join(", ", spec.ModelParams.Select(p => p.Name))}]");
            }
    }

    [Fact]
    public void Readme_surgery_table_matches_the_registry()
    {
        var rows = TableRows().Where(r => r.Length == 2).Select(c => (Names: Names(c[0], Method), Params: Names(c[1], Param))).ToList();
        Assert.Equal(MergeMethods.Surgeries.Select(s => s.Spec.Name).Order(), rows.SelectMany(r => r.Names).Order());
        foreach (var (names, parameters) in rows)
            foreach (var name in names)
            {
                var spec = MergeMethods.FindSurgery(name)!.Spec;
                Assert.True(spec.Params.Select(p => p.Name).SequenceEqual(parameters),
                    $"{name}: README lists [{string.Join(", ", parameters)}], the surgery takes [{string.Join(", ", spec.Params.Select(p => p.Name))}]");
            }
    }

    private const string Method = @"`([a-z0-9_]+)`", Param = @"(?:^|,\s*)([a-z0-9_]+)";

    /// <summary>Rows of the tables, as cells: methods in backticks, then the parameter names of each column ("–": none; a default in parentheses).</summary>
    private static List<string[]> TableRows()
    {
        var lines = File.ReadAllLines(Path.Combine(SharedFixtures.RepoRoot, "README.md"));
        int merging = Array.FindIndex(lines, l => l.StartsWith("## Merging models", StringComparison.Ordinal));
        int start = Array.FindIndex(lines, merging, l => l == "### Methods");
        Assert.True(merging >= 0 && start >= 0, "README.md has no '### Methods' under '## Merging models'");
        return lines.Skip(start + 1).TakeWhile(l => !l.StartsWith('#'))
            .Where(l => l.StartsWith("| `", StringComparison.Ordinal))
            .Select(l => l.Split('|')[1..^1].Select(c => c.Trim()).ToArray())
            .ToList();
    }

    private static string[] Names(string cell, string pattern) => Regex.Matches(cell, pattern).Select(m => m.Groups[1].Value).ToArray();
}
