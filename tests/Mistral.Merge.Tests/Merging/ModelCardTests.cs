using Mistral.Merge.Merging;
using Mistral.Merge.Planning;
using Mistral.Merge.Tests.Recipes;
using YamlDotNet.RepresentationModel;

namespace Mistral.Merge.Tests.Merging;

/// <summary>What a recipe says reaches README.md as text: no Markdown or HTML markup, no broken front matter.</summary>
public sealed class ModelCardTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private string Card(string baseDir, string yamlTail)
    {
        TinyModels.Write(_d[baseDir], 11);
        TinyModels.Write(_d["tiny-b"], 12);
        var recipe = TinyModels.Recipe(_d.Path,
            $"merge_method: slerp\nbase_model: '{baseDir}'\nmodels:\n  - model: '{baseDir}'\n  - model: tiny-b\nparameters: {{t: 0.5}}\n" + yamlTail);
        using var plan = MergePlanner.PlanFile(recipe);
        return ModelCard.Write(plan);
    }

    [Fact]
    public void HostileNameIsOneLineOfPlainText()
    {
        var card = Card("tiny-a", "name: \"x</h1><script>alert(1)</script>\\n# injected [link](javascript:x)\"\n");
        var lines = card.Split('\n');
        Assert.Contains(@"# x&lt;/h1&gt;&lt;script&gt;alert\(1\)&lt;/script&gt; \# injected \[link\]\(javascript:x\)", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("# injected", StringComparison.Ordinal));
        Assert.DoesNotContain("<script>", card.Split("## Recipe")[0]);
    }

    [Fact]
    public void HostileModelPathStaysInACodeSpanAndTheFrontMatterStaysYaml()
    {
        var card = Card("we`ird\" dir: <b>", "name: ok\n");
        Assert.Contains("merge method using ``we`ird\" dir: <b>`` as a base.", card);
        var front = card.Split("---\n")[1];
        var yaml = new YamlStream();
        yaml.Load(new StringReader(front));
        var root = (YamlMappingNode)yaml.Documents[0].RootNode;
        Assert.False(root.Children.ContainsKey("base_model")); // a local path is never a base_model
        Assert.Equal("transformers", ((YamlScalarNode)root["library_name"]).Value);
    }

    [Fact]
    public void HubModelsAreTheBaseModelListAndLinkTheirPagesAndTheMethodLinksItsPaper()
    {
        // two models in a Hugging Face cache layout (snapshots + refs/main), one local
        foreach (var (id, seed) in new[] { ("org/base-7b", 21UL), ("org2/tuned.v2", 22UL) })
        {
            var repo = _d["hub/models--" + id.Replace("/", "--")];
            TinyModels.Write(Path.Combine(repo, "snapshots", "abc123"), seed);
            Directory.CreateDirectory(Path.Combine(repo, "refs"));
            File.WriteAllText(Path.Combine(repo, "refs", "main"), "abc123");
        }
        TinyModels.Write(_d["local"], 23);
        var recipe = TinyModels.Recipe(_d.Path, "merge_method: ties\nbase_model: org/base-7b\nmodels:\n  - model: org2/tuned.v2\n    parameters: {weight: 1, density: 0.5}\n"
                                                + "  - model: local\n    parameters: {weight: 1, density: 0.5}\nname: hub-card\n");
        using var plan = MergePlanner.PlanFile(recipe, new PlanOptions { HubCache = _d["hub"] });
        var card = ModelCard.Write(plan);
        Assert.StartsWith("---\nbase_model:\n- \"org/base-7b\"\n- \"org2/tuned.v2\"\nlibrary_name: transformers\ntags:\n- mergekit\n- merge\n- mistral-merge\n---\n\n# hub-card\n", card);
        Assert.Contains("This model was merged using the [TIES](https://arxiv.org/abs/2306.01708) merge method using [org/base-7b](https://huggingface.co/org/base-7b) as a base.", card);
        Assert.Contains("\n* [org2/tuned.v2](https://huggingface.co/org2/tuned.v2) — 2 layers\n* `local` — 2 layers\n", card);
    }

    [Fact]
    public void RecipeFenceCannotBeClosedByTheRecipe()
    {
        var card = Card("tiny-a", "name: fenced\n# ```\n# </pre><script>x</script>\n");
        Assert.Contains("\n````yaml\nmerge_method: slerp\n", card);
        Assert.EndsWith("# </pre><script>x</script>\n````\n", card);
    }

    [Theory]
    [InlineData("plain-name_1", @"plain-name\_1")]
    [InlineData("a\r\nb\tc", "a  b c")]
    [InlineData("<&>", "&lt;&amp;&gt;")]
    [InlineData(@"\*`|!~{}", @"\\\*\`\|\!\~\{\}")]
    public void InlineEscapes(string value, string expected) => Assert.Equal(expected, CardText.Inline(value));

    [Theory]
    [InlineData("a", "`a`")]
    [InlineData("a`b", "``a`b``")]
    [InlineData("`a``", "``` `a`` ```")]
    [InlineData("a\nb", "`a b`")]
    public void CodeSpans(string value, string expected) => Assert.Equal(expected, CardText.Code(value));

    [Theory]
    [InlineData("org/model", "\"org/model\"")]
    [InlineData("a\"b\\c\nd: e", "\"a\\\"b\\\\c\\nd: e\"")]
    [InlineData("\u0001", "\"\\u0001\"")]
    public void YamlStrings(string value, string expected) => Assert.Equal(expected, CardText.YamlString(value));
}
