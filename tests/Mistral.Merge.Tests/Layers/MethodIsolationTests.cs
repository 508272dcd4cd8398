using System.Text.RegularExpressions;
using Mistral.Merge.Merging;
using Mistral.Merge.Planning;

namespace Mistral.Merge.Tests.Layers;

/// <summary>
/// Adding a method is one file and one registry line: no source file of the library names a registered
/// method (its name as a string literal) or its type (or a base type it builds on) except the files that
/// declare those types and the registry. Everything else reads the facts on the method's spec.
/// </summary>
public class MethodIsolationTests
{
    private static readonly string Library = Path.Combine(SharedFixtures.RepoRoot, "src", "Mistral.Merge");
    private const string Registry = "Planning/MergeMethods.cs";

    [Fact]
    public void NoMethodIsNamedOrTypeTestedOutsideItsOwnFilesAndTheRegistry()
    {
        var files = Directory.EnumerateFiles(Library, "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(Library, f).Replace('\\', '/'))
            .Where(f => !f.StartsWith("obj/", StringComparison.Ordinal) && !f.StartsWith("bin/", StringComparison.Ordinal))
            .ToDictionary(f => f, f => File.ReadAllText(Path.Combine(Library, f)));
        var chains = MergeMethods.Names.Select(MergeMethods.Get).ToDictionary(m => m.Spec.Name, m => Chain(m.GetType()).ToList());
        Assert.Equal(MergeMethods.Names.Count, chains.Count);

        var violations = new List<string>();
        foreach (var (name, chain) in chains)
        {
            var own = Declaring(files, chain);
            violations.AddRange(files.Where(f => !own.Contains(f.Key) && f.Value.Contains($"\"{name}\"", StringComparison.Ordinal))
                .Select(f => $"{f.Key}: names method \"{name}\""));
        }
        foreach (var type in chains.Values.SelectMany(c => c).Distinct())
        {
            var own = Declaring(files, chains.Values.Where(c => c.Contains(type)).SelectMany(c => c));
            var word = new Regex($@"\b{type.Name}\b");
            violations.AddRange(files.Where(f => !own.Contains(f.Key) && word.IsMatch(f.Value)).Select(f => $"{f.Key}: references {type.Name}"));
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    /// <summary>A method's type and the library types it derives from, up to the shared <see cref="MergeMethodBase"/>.</summary>
    private static IEnumerable<Type> Chain(Type t)
    {
        for (; t != typeof(MergeMethodBase) && t.Assembly == typeof(MergeMethodBase).Assembly; t = t.BaseType!) yield return t;
    }

    /// <summary>The registry and the files declaring any of <paramref name="types"/>.</summary>
    private static HashSet<string> Declaring(Dictionary<string, string> files, IEnumerable<Type> types)
    {
        var own = types.Select(t => new Regex($@"\bclass {t.Name}\b")).ToList();
        return files.Where(f => own.Any(r => r.IsMatch(f.Value))).Select(f => f.Key).Append(Registry).ToHashSet();
    }
}
