using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Mistral.Merge.Jinja;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Tests.Jinja;

/// <summary>
/// Real chat templates of popular models (templates/*.jinja, provenance.json) and the built-in recipe templates,
/// rendered on several conversations by @huggingface/jinja 0.5.11 (tests/chat-templates/render-models.mjs →
/// model-renderings.json): every rendering must come out byte for byte, every error with the same message.
/// </summary>
public sealed class ModelTemplateRenderingTests
{
    private static readonly string Dir = Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Jinja");
    private static readonly JsonNode Doc = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "model-renderings.json")))!;

    public static TheoryData<string> TemplateNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in Doc["templates"]!.AsObject()) data.Add(name);
        return data;
    }

    private static string TextOf(string name) => name.StartsWith("builtin:", StringComparison.Ordinal)
        ? ChatTemplates.Builtin(name["builtin:".Length..])
        : File.ReadAllText(Path.Combine(Dir, "templates", name + ".jinja"));

    [Theory]
    [MemberData(nameof(TemplateNames))]
    public void EveryConversationRendersByteForByteAsHuggingFaceJinjaDoes(string name)
    {
        var entry = Doc["templates"]![name]!;
        string text = TextOf(name);
        Assert.True(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text))) == (string)entry["sha256"]!,
            $"{name}: the template changed since it was rendered; rerun tests/chat-templates/render-models.mjs");
        var now = DateTime.Parse((string)Doc["now"]!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
        var template = JinjaTemplate.Parse(text, name);
        foreach (var c in entry["cases"]!.AsArray())
        {
            var variables = new JsonObject
            {
                ["messages"] = Doc["conversations"]![(string)c!["conversation"]!]!.DeepClone(),
                ["add_generation_prompt"] = (bool)c["add_generation_prompt"]!,
            };
            foreach (var token in new[] { "bos_token", "eos_token" })
                if (entry[token] is { } t) variables[token] = (string)t!;
            string label = $"{name} / {c["conversation"]} / add_generation_prompt={c["add_generation_prompt"]}";
            if (c["error"] is { } error)
            {
                var e = Assert.Throws<JinjaException>(() => template.Render(variables, () => now));
                Assert.True((string)error! == e.Reason, $"{label}: expected error '{error}', got '{e.Reason}'");
                Assert.DoesNotContain('\n', e.Message);
                Assert.StartsWith($"chat template {name}, line ", e.Message, StringComparison.Ordinal);
            }
            else
            {
                string rendered = template.Render(variables, () => now);
                Assert.True((string)c["rendered"]! == rendered, $"{label}:\nexpected {JsonValue.Create((string)c["rendered"]!).ToJsonString()}\n     got {JsonValue.Create(rendered).ToJsonString()}");
            }
        }
    }

    [Fact]
    public void TheRenderingsCoverTheRequiredModelsBothWaysAndWithAndWithoutASystemMessage()
    {
        var names = Doc["templates"]!.AsObject().Select(p => p.Key).ToList();
        foreach (var model in new[]
        {
            "mistral-7b-instruct-v0.1", "mistral-7b-instruct-v0.3", "mixtral-8x7b-instruct-v0.1", "mistral-nemo-instruct-2407",
            "llama-2-chat", "llama-3-8b-instruct", "llama-3.1-8b-instruct", "dolphin-2.5-mixtral-8x7b", "zephyr-7b-beta",
            "qwen2.5-7b-instruct", "gemma-2-2b-it", "phi-3-mini",
        })
            Assert.Contains(model, names);
        var cases = Doc["templates"]!.AsObject().SelectMany(p => p.Value!["cases"]!.AsArray()).ToList();
        Assert.Equal(names.Count * 10, cases.Count);
        Assert.Contains(cases, c => c!["error"] is { } e && (string)e! == "System role not supported");
    }

    [Fact]
    public void TheBuiltinRecipeTemplatesReproduceTheirEarlierRenderings()
    {
        var doc = JsonNode.Parse(File.ReadAllText(Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Recipes", "chat-template-renderings.json")))!;
        foreach (var name in ChatTemplates.Names)
        {
            var variables = new JsonObject
            {
                ["messages"] = doc["messages"]!.DeepClone(), ["add_generation_prompt"] = true, ["bos_token"] = "<s>", ["eos_token"] = "</s>",
            };
            Assert.Equal((string)doc["templates"]![name]!["rendered"]!, JinjaTemplate.Parse(ChatTemplates.Builtin(name), name).Render(variables));
        }
    }
}
