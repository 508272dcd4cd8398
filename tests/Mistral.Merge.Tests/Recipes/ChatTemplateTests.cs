using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Tests.Recipes;

/// <summary>
/// A recipe's chat_template: mergekit's built-in names, auto, a literal Jinja text, and the error for anything else.
/// The built-ins were rendered by an independent Jinja engine (@huggingface/jinja, tests/chat-templates/render.mjs);
/// the renderings must be each format's documented layout, written out here by hand.
/// </summary>
public sealed class ChatTemplateTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    private static readonly Dictionary<string, string> Expected = new()
    {
        ["alpaca"] = "You are terse.\n\n### Instruction:\nHi!\n\n### Response:\nHello.</s>\n\n### Instruction:\nName a colour.\n\n### Response:\n",
        ["chatml"] = "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n",
        ["exaone"] = "[|system|]You are terse.[|endofturn|]\n[|user|]Hi!\n[|assistant|]Hello.[|endofturn|]\n[|user|]Name a colour.\n[|assistant|]",
        ["llama3"] = "<s><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
                   + "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nName a colour.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        ["mistral"] = "<s>[INST] You are terse.\n\nHi! [/INST]Hello.</s>[INST] Name a colour. [/INST]",
    };

    [Fact]
    public void EveryBuiltinRendersItsFormatInAnIndependentJinjaEngine()
    {
        var doc = JsonNode.Parse(File.ReadAllText(Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Recipes", "chat-template-renderings.json")))!;
        Assert.Equal(Expected.Keys.Order(), ChatTemplates.Names);
        foreach (var name in ChatTemplates.Names)
        {
            var entry = doc["templates"]![name]!;
            var sha = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ChatTemplates.Builtin(name))));
            Assert.True(sha == (string)entry["sha256"]!, $"{name}: the shipped template changed since it was rendered; rerun tests/chat-templates/render.mjs");
            Assert.Equal(Expected[name], (string)entry["rendered"]!);
        }
    }

    /// <summary>Merges models a, b, c of <paramref name="set"/> (see <see cref="Models"/>) and returns the output's tokenizer_config.json.</summary>
    private string Merge(string set, string chatTemplate)
    {
        var recipe = TinyModels.Recipe(_d[set], "merge_method: linear\nmodels:\n  - model: a\n    parameters: {weight: 1}\n  - model: b\n    parameters: {weight: 1}\n"
                                                + "  - model: c\n    parameters: {weight: 1}\nchat_template: " + chatTemplate + "\n");
        var r = CliRunner.Run("merge", recipe, _d[set + "-out"]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        return Path.Combine(_d[set + "-out"], "tokenizer_config.json");
    }

    /// <summary>Three tiny models a, b, c in folder <paramref name="set"/>, each with a tokenizer_config.json holding the given template (none for null).</summary>
    private string Models(string set, string? a, string? b, string? c)
    {
        foreach (var (name, template, seed) in new[] { ("a", a, 1UL), ("b", b, 2UL), ("c", c, 3UL) })
        {
            TinyModels.Write(Path.Combine(_d[set], name), seed);
            var cfg = new JsonObject { ["add_bos_token"] = true };
            if (template != null) cfg["chat_template"] = template;
            File.WriteAllText(Path.Combine(_d[set], name, "tokenizer_config.json"), cfg.ToJsonString());
        }
        return set;
    }

    private static string? TemplateIn(string tokenizerConfig) => (string?)JsonNode.Parse(File.ReadAllText(tokenizerConfig))!["chat_template"];

    [Theory]
    [InlineData("alpaca")]
    [InlineData("chatml")]
    [InlineData("exaone")]
    [InlineData("llama3")]
    [InlineData("mistral")]
    public void ABuiltinNameWritesItsJinjaText(string name)
    {
        Assert.Equal(ChatTemplates.Builtin(name), TemplateIn(Merge(Models("s", "{{ first }}", null, null), name)));
    }

    [Fact]
    public void AutoTakesTheMostUsedTemplateTiesToTheFirstModelAndKeepsTheOwnWhenNoneHasOne()
    {
        Assert.Equal("{{ b }}", TemplateIn(Merge(Models("most", "  {{ a }}  ", "{{ b }}", "\n{{ b }}\n"), "auto")));
        Assert.Equal("{{ a }}", TemplateIn(Merge(Models("tie", "{{ a }}", "{{ b }}", null), "auto")));
        Assert.Null(TemplateIn(Merge(Models("none", null, null, null), "auto")));
        // a list of named templates counts as its "default"
        Models("named", null, null, null);
        File.WriteAllText(Path.Combine(_d["named"], "b", "tokenizer_config.json"), "{\"chat_template\": [{\"name\": \"tool_use\", \"template\": \"{{ t }}\"}, {\"name\": \"default\", \"template\": \"{{ d }}\"}]}");
        Assert.Equal("{{ d }}", TemplateIn(Merge("named", "auto")));
    }

    [Fact]
    public void ALiteralJinjaTemplateIsWrittenAsItIs()
    {
        Assert.Equal("{% for m in messages %}{{ m.content }}{% endfor %}",
            TemplateIn(Merge(Models("s", null, null, null), "\"{% for m in messages %}{{ m.content }}{% endfor %}\"")));
    }

    [Theory]
    [InlineData("llama2")]
    [InlineData("not a template at all, but long")]
    public void AnythingElseIsAnErrorListingTheNames(string value)
    {
        Models("s", null, null, null);
        var recipe = TinyModels.Recipe(_d["s"], $"merge_method: linear\nmodels:\n  - model: a\n    parameters: {{weight: 1}}\nchat_template: {value}\n");
        var r = CliRunner.Run("merge", recipe, _d["s-out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal([$"{recipe}:5:16: chat_template: unknown template '{value}' (expected auto, alpaca, chatml, exaone, llama3, mistral, or a Jinja template)",
                      $"error: 1 problem in {recipe}; nothing was written"], r.Stderr.TrimEnd().Split('\n'));
        Assert.False(Directory.Exists(_d["s-out"]));
    }
}
