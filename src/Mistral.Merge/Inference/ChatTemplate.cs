using System.Text.Json.Nodes;
using Mistral.Merge.Inference.Tokenization;
using Mistral.Merge.IO;
using Mistral.Merge.Jinja;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Inference;

/// <summary>
/// The chat template <c>generate</c> formats a conversation with: the model's own (<c>auto</c>), a built-in
/// (<see cref="ChatTemplates.Names"/>), a <c>.jinja</c> file, or <c>none</c> (the text as given). Null
/// <see cref="Template"/> means none. <see cref="Name"/> is what was chosen, <see cref="Source"/> where the text came from.
/// </summary>
public sealed record ChatTemplate(string Name, string Source, JinjaTemplate? Template)
{
    public const string Auto = "auto", None = "none";

    /// <summary>Every accepted value but a path: auto, none and the built-in names.</summary>
    public static IReadOnlyList<string> Choices { get; } = [Auto, None, .. ChatTemplates.Names];

    /// <summary>Null when <paramref name="value"/> is a choice or names a .jinja file; else why not.</summary>
    public static string? Problem(string value) =>
        Choices.Contains(value) || value.EndsWith(".jinja", StringComparison.OrdinalIgnoreCase) ? null
            : $"--chat-template must be {string.Join(", ", Choices)} or a .jinja file, got '{value}'";

    /// <summary>Resolves and parses the template for <paramref name="modelFolder"/>; <c>auto</c> without a template in the
    /// folder is none. A template that does not parse is a one-line error naming its file and line:column.</summary>
    public static ChatTemplate Resolve(string value, string modelFolder)
    {
        if (Problem(value) is { } bad) throw new MergeException(bad);
        if (value == None) return new(None, "none", null);
        if (value == Auto)
        {
            if (Gguf.GgufModelLoader.IsGgufPath(modelFolder))   // a GGUF file keeps it as tokenizer.chat_template
                return IO.Gguf.GgufReader.Open(modelFolder).Get("tokenizer.chat_template")?.Value is string text
                    ? new(Auto, modelFolder, JinjaTemplate.Parse(text, modelFolder + " (tokenizer.chat_template)"))
                    : new(None, "none (the model has no chat template)", null);
            if (ChatTemplates.Read(modelFolder) is not { } own) return new(None, "none (the model has no chat template)", null);
            return new(Auto, own.Path, JinjaTemplate.Parse(own.Text, own.Path));
        }
        if (ChatTemplates.Names.Contains(value))
            return new(value, $"built-in '{value}'", JinjaTemplate.Parse(ChatTemplates.Builtin(value), $"built-in '{value}'"));
        InputFile.Require(value);
        return new(value, value, JinjaTemplate.Parse(InputFile.ReadAllText(value, InputFile.Limits.JsonSideFile, "a chat template"), value));
    }

    /// <summary>
    /// The prompt text for <paramref name="messages"/> (a list of {role, content, ...}), as transformers'
    /// apply_chat_template renders it: add_generation_prompt true, bos_token/eos_token from the tokenizer's settings
    /// (absent when it has none). Without a template: the contents, separated by blank lines.
    /// </summary>
    public string Render(JsonArray messages, TokenizerConfig? tokens, Func<DateTime>? now = null)
    {
        if (Template == null)
            return string.Join("\n\n", messages.Select(m => m?["content"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : ""));
        var variables = new JsonObject
        {
            ["messages"] = messages.DeepClone(),
            ["add_generation_prompt"] = true,
        };
        if (tokens?.BosToken is { } bos) variables["bos_token"] = bos;
        if (tokens?.EosToken is { } eos) variables["eos_token"] = eos;
        return Template.Render(variables, now);
    }

    /// <summary>One user message, after a system message when one is given.</summary>
    public static JsonArray Conversation(string prompt, string? system) => WithSystem([new JsonObject { ["role"] = "user", ["content"] = prompt }], system);

    /// <summary><paramref name="system"/> replaces the content of a leading system message, or is inserted as one.</summary>
    public static JsonArray WithSystem(JsonArray messages, string? system)
    {
        if (system == null) return messages;
        if (messages.Count > 0 && messages[0] is JsonObject first && first["role"] is JsonValue r && r.TryGetValue<string>(out var role) && role == "system")
            first["content"] = system;
        else messages.Insert(0, new JsonObject { ["role"] = "system", ["content"] = system });
        return messages;
    }

    /// <summary>A conversation file: a JSON list of objects, each with a string "role" (and usually "content").</summary>
    public static JsonArray ReadMessages(string path)
    {
        var node = JsonFile.Parse(InputFile.ReadAllBytes(path, InputFile.Limits.JsonSideFile, "a messages file"), path);
        if (node is not JsonArray list || list.Count == 0) throw new MergeException($"{path}: expected a non-empty JSON list of {{\"role\": ..., \"content\": ...}} messages");
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonObject m || m["role"] is not JsonValue r || !r.TryGetValue<string>(out _))
                throw new MergeException($"{path}: message {i} is not an object with a string \"role\"");
            if (m["content"] is { } c && c is not JsonValue && c is not JsonArray)
                throw new MergeException($"{path}: message {i} has a \"content\" that is neither text nor a list");
        }
        return list;
    }
}
