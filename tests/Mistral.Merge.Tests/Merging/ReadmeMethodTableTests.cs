using System.Text.RegularExpressions;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Tests.Merging;

/// <summary>The README's "### Methods" table (under merging) lists exactly the registry's methods, each with its parameters.</summary>
public class ReadmeMethodTableTests
{
    [Fact]
    public void Readme_method_table_matches_the_registry()
    {
        var rows = TableRows();
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

    /// <summary>Rows of the table: methods in backticks, then the parameter names of each column ("–": none; a default in parentheses).</summary>
    private static List<(string[] Methods, string[] MethodParams, string[] ModelParams)> TableRows()
    {
        var lines = File.ReadAllLines(Path.Combine(SharedFixtures.RepoRoot, "README.md"));
        int merging = Array.FindIndex(lines, l => l.StartsWith("## Merging models", StringComparison.Ordinal));
        int start = Array.FindIndex(lines, merging, l => l == "### Methods");
        Assert.True(merging >= 0 && start >= 0, "README.md has no '### Methods' under '## Merging models'");
        return lines.Skip(start + 1).TakeWhile(l => !l.StartsWith('#'))
            .Where(l => l.StartsWith("| `", StringComparison.Ordinal))
            .Select(l => l.Split('|')[1..^1].Select(c => c.Trim()).ToArray())
            .Select(c => (Names(c[0], @"`([a-z0-9_]+)`"), Names(c[1], @"(?:^|,\s*)([a-z0-9_]+)"), Names(c[2], @"(?:^|,\s*)([a-z0-9_]+)")))
            .ToList();
    }

    private static string[] Names(string cell, string pattern) => Regex.Matches(cell, pattern).Select(m => m.Groups[1].Value).ToArray();
}
