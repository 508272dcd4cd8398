using System.Globalization;
using System.Text.Json.Nodes;
using Mistral.Merge.Jinja;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Tests.Jinja;

/// <summary>
/// Seeded random conversations (tests/chat-templates/fuzz-conversations.mjs → fuzz-renderings.json) rendered by
/// @huggingface/jinja 0.5.11 with every real and built-in template: each rendering must match byte for byte, each
/// error with the same message. MISTRAL_MERGE_FUZZ_RENDERINGS points the test at a larger generated file instead.
/// </summary>
public sealed class ChatTemplateFuzzTests
{
    private static readonly string Dir = Path.Combine(SharedFixtures.RepoRoot, "tests", "Mistral.Merge.Tests", "Jinja");
    private static readonly Lazy<JsonNode> Doc = new(() => JsonNode.Parse(File.ReadAllText(
        Environment.GetEnvironmentVariable("MISTRAL_MERGE_FUZZ_RENDERINGS") is { Length: > 0 } f ? f : Path.Combine(Dir, "fuzz-renderings.json")))!);

    [Fact]
    public void EveryFuzzConversationRendersWithEveryTemplateExactlyAsHuggingFaceJinjaDoes()
    {
        var now = DateTime.Parse((string)Doc.Value["now"]!, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal);
        var conversations = Doc.Value["conversations"]!.AsArray();
        var failures = new List<string>();
        int total = 0;
        foreach (var (name, entry) in Doc.Value["templates"]!.AsObject())
        {
            string text = name.StartsWith("builtin:", StringComparison.Ordinal)
                ? ChatTemplates.Builtin(name["builtin:".Length..])
                : File.ReadAllText(Path.Combine(Dir, "templates", name + ".jinja"));
            var template = JinjaTemplate.Parse(text, name);
            foreach (var c in entry!["cases"]!.AsArray())
            {
                total++;
                int index = (int)c!["conversation"]!;
                var variables = new JsonObject
                {
                    ["messages"] = conversations[index]!.DeepClone(),
                    ["add_generation_prompt"] = (bool)c["add_generation_prompt"]!,
                };
                foreach (var token in new[] { "bos_token", "eos_token" })
                    if (entry[token] is { } t) variables[token] = (string)t!;
                string label = $"{name} / conversation {index} / add_generation_prompt={c["add_generation_prompt"]}";
                string? got, error = null;
                try
                {
                    got = template.Render(variables, () => now);
                }
                catch (JinjaException e)
                {
                    got = null;
                    error = e.Reason;
                    if (e.Message.Contains('\n') || !e.Message.StartsWith($"chat template {name}, line ", StringComparison.Ordinal))
                        failures.Add($"{label}: badly formed error message {e.Message}");
                }
                if (c["error"] is { } expectedError)
                {
                    if (error != (string)expectedError!) failures.Add($"{label}: expected error '{expectedError}', got {(error is null ? "rendering " + JsonValue.Create(got)!.ToJsonString() : $"'{error}'")}");
                }
                else if (got != (string)c["rendered"]!)
                    failures.Add($"{label}:\n  expected {c["rendered"]!.ToJsonString()}\n       got {(error is null ? JsonValue.Create(got)!.ToJsonString() : "error " + error)}");
            }
        }
        Assert.True(total >= 200, $"only {total} cases");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches of {total}:\n{string.Join('\n', failures.Take(40))}");
    }
}
