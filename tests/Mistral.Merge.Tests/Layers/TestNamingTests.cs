using System.Reflection;
using System.Text.RegularExpressions;

namespace Mistral.Merge.Tests.Layers;

/// <summary>
/// One test-naming style: a test's name is a sentence in PascalCase that says what holds
/// (<c>ConvertingTheF32FixtureReproducesTheBf16FixtureByteForByte</c>); an underscore only between two digits (<c>0_05</c>).
/// </summary>
public sealed partial class TestNamingTests
{
    [GeneratedRegex(@"^[A-Z](?:[A-Za-z0-9]|(?<=\d)_(?=\d))*$")]
    private static partial Regex Style();

    [Fact]
    public void EveryTestIsNamedAsOnePascalCaseSentence()
    {
        var bad = typeof(TestNamingTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Where(m => m.GetCustomAttributes<FactAttribute>(inherit: true).Any())
            .Where(m => !Style().IsMatch(m.Name))
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}")
            .ToList();
        Assert.True(bad.Count == 0, "tests not named as one PascalCase sentence: " + string.Join(", ", bad));
    }
}
