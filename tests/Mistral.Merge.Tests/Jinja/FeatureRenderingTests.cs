using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.Jinja;

namespace Mistral.Merge.Tests.Jinja;

/// <summary>
/// One small template per language feature (tests/chat-templates/features.mjs: literals, operators, tests, slicing,
/// string and dict methods, filters, tojson, loops, macros, whitespace control, errors), rendered by @huggingface/jinja
/// 0.5.11 into model-renderings.json; the interpreter must give the same text or the same error message.
/// </summary>
public sealed class FeatureRenderingTests
{
    private static readonly JsonNode Doc = JsonNode.Parse(File.ReadAllText(
        Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Jinja", "model-renderings.json")))!;

    public static TheoryData<string> FeatureNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in Doc["features"]!["cases"]!.AsObject()) data.Add(name);
        return data;
    }

    [Theory]
    [MemberData(nameof(FeatureNames))]
    public void EachFeatureRendersAsHuggingFaceJinjaDoes(string name)
    {
        var c = Doc["features"]!["cases"]![name]!;
        var context = Doc["features"]!["context"]!.AsObject();
        var now = DateTime.Parse((string)Doc["now"]!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
        string text = (string)c["template"]!;
        if (c["error"] is { } error)
        {
            var e = Assert.Throws<JinjaException>(() => JinjaTemplate.Parse(text, name).Render(context, () => now));
            Assert.Equal((string)error!, e.Reason);
            Assert.DoesNotContain('\n', e.Message);
        }
        else
            Assert.Equal((string)c["rendered"]!, JinjaTemplate.Parse(text, name).Render(context, () => now));
    }
}
