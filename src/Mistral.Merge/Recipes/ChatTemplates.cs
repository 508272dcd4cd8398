using System.Reflection;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Recipes;

/// <summary>
/// A recipe's <c>chat_template</c>: <c>auto</c>, one of mergekit's built-in names, or a literal Jinja template.
/// The built-ins are this project's own Jinja texts of those well-known formats (Recipes/ChatTemplates/*.jinja).
/// </summary>
public static class ChatTemplates
{
    public const string Auto = "auto";

    /// <summary>The built-in names, as mergekit ships them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["alpaca", "chatml", "exaone", "llama3", "mistral"];

    /// <summary>The Jinja text of a built-in name.</summary>
    public static string Builtin(string name)
    {
        using var s = typeof(ChatTemplates).Assembly.GetManifestResourceStream($"Mistral.Merge.Recipes.ChatTemplates.{name}.jinja")
            ?? throw new InvalidOperationException($"no built-in chat template '{name}'");
        using var r = new StreamReader(s);
        return r.ReadToEnd();
    }

    /// <summary>Null when <paramref name="value"/> is usable; else why not. As mergekit: a value that is neither a name
    /// nor at least 20 characters with a <c>{</c> is not a template.</summary>
    public static string? Problem(string value)
    {
        if (value == Auto || Names.Contains(value) || (value.Length >= 20 && value.Contains('{', StringComparison.Ordinal))) return null;
        return $"chat_template: unknown template '{value}' (expected auto, {string.Join(", ", Names)}, or a Jinja template)";
    }

    /// <summary>
    /// The template to write, or null to keep the tokenizer's own. <c>auto</c>: the template the most models use
    /// (ties to the first in recipe order), none when no model has one.
    /// </summary>
    public static string? Resolve(string? value, IEnumerable<string> modelFolders)
    {
        if (value == null) return null;
        if (value != Auto) return Names.Contains(value) ? Builtin(value) : value;
        var counts = new List<(string Template, int Count)>();
        foreach (var folder in modelFolders.Distinct())
        {
            if (TemplateOf(folder) is not { } t) continue;
            int i = counts.FindIndex(c => c.Template == t);
            if (i < 0) counts.Add((t, 1)); else counts[i] = (t, counts[i].Count + 1);
        }
        return counts.Count == 0 ? null : counts.MaxBy(c => c.Count).Template; // MaxBy keeps the first of equals
    }

    /// <summary>A model's default chat template, whitespace-trimmed (see <see cref="Read"/>).</summary>
    public static string? TemplateOf(string folder) => Read(folder) is { } t ? Trimmed(t.Text) : null;

    /// <summary>A model's default chat template as written, and the file it came from: chat_template.jinja, else
    /// chat_template.json, else tokenizer_config.json (a string, or the entry named "default" of a list of named
    /// templates). Null when there is none, or it is only whitespace. The one reader of a folder's chat template
    /// (a merge's <c>auto</c> and <c>generate --chat-template auto</c> both ask it).</summary>
    public static ModelTemplate? Read(string folder)
    {
        var jinja = Path.Combine(folder, "chat_template.jinja");
        if (InputFile.IsPresent(jinja))
        {
            string text = InputFile.ReadAllText(jinja, InputFile.Limits.JsonSideFile, "a chat template");
            return Trimmed(text) == null ? null : new ModelTemplate(text, jinja);
        }
        foreach (var file in new[] { "chat_template.json", "tokenizer_config.json" })
        {
            var path = Path.Combine(folder, file);
            if (!InputFile.IsPresent(path)) continue;
            var node = JsonFile.ReadObject(path, file)["chat_template"];
            string? text = null;
            if (node is JsonValue v && v.TryGetValue<string>(out var s)) text = s;
            else if (node is JsonArray named)
                foreach (var e in named)
                    if (e is JsonObject o && o["name"] is JsonValue nv && nv.TryGetValue<string>(out var n) && n == "default"
                        && o["template"] is JsonValue tv && tv.TryGetValue<string>(out var d))
                    {
                        text = d;
                        break;
                    }
            if (text != null) return Trimmed(text) == null ? null : new ModelTemplate(text, path);
        }
        return null;
    }

    private static string? Trimmed(string s) => s.Trim() is { Length: > 0 } t ? t : null;
}

/// <summary>A model's own chat template and the file it was read from.</summary>
public sealed record ModelTemplate(string Text, string Path);
