using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Inference;

public enum ChatTemplateKind { None, Mistral, ChatML }

/// <summary>
/// The two prompt formats we know: Mistral <c>[INST] … [/INST]</c> and ChatML
/// (<c>&lt;|im_start|&gt;role\n…&lt;|im_end|&gt;</c>). BOS is added by the tokenizer, not here.
/// </summary>
public static class ChatTemplate
{
    public static ChatTemplateKind Parse(string value, string modelFolder) => value.ToLowerInvariant() switch
    {
        "auto" => Detect(modelFolder),
        "mistral" => ChatTemplateKind.Mistral,
        "chatml" => ChatTemplateKind.ChatML,
        "none" => ChatTemplateKind.None,
        _ => throw new MergeException($"--chat-template must be auto, mistral, chatml or none, got '{value}'"),
    };

    /// <summary>From tokenizer_config.json's <c>chat_template</c> (a string or a list of named templates); None when absent or unknown.</summary>
    public static ChatTemplateKind Detect(string modelFolder)
    {
        if (Gguf.GgufModelLoader.IsGgufPath(modelFolder)) // a GGUF file keeps it as tokenizer.chat_template
            return Classify(IO.Gguf.GgufReader.Open(modelFolder).Get("tokenizer.chat_template")?.Value as string);
        var path = Path.Combine(modelFolder, "tokenizer_config.json");
        if (!InputFile.IsPresent(path)) return ChatTemplateKind.None;
        var node = JsonFile.ReadObject(path, "tokenizer_config.json");
        string? template = node["chat_template"] switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonArray a => a.OfType<JsonObject>().Select(o => o["template"] is JsonValue t && t.TryGetValue<string>(out var s) ? s : null).FirstOrDefault(t => t != null),
            _ => null,
        };
        return Classify(template);
    }

    private static ChatTemplateKind Classify(string? template)
    {
        if (template == null) return ChatTemplateKind.None;
        if (template.Contains("<|im_start|>", StringComparison.Ordinal)) return ChatTemplateKind.ChatML;
        if (template.Contains("[INST]", StringComparison.Ordinal)) return ChatTemplateKind.Mistral;
        return ChatTemplateKind.None;
    }

    public static string Apply(ChatTemplateKind kind, string prompt, string? system) => kind switch
    {
        // Mistral folds a system prompt into the first user turn.
        ChatTemplateKind.Mistral => $"[INST] {(string.IsNullOrEmpty(system) ? "" : system + "\n\n")}{prompt} [/INST]",
        ChatTemplateKind.ChatML => (string.IsNullOrEmpty(system) ? "" : $"<|im_start|>system\n{system}<|im_end|>\n")
            + $"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
        _ => string.IsNullOrEmpty(system) ? prompt : system + "\n\n" + prompt,
    };
}
