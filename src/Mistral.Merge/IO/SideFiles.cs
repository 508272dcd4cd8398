namespace Mistral.Merge.IO;

/// <summary>
/// The small files that travel beside the weights of a model folder: one list for every command that writes a
/// model (convert, merge, MoE surgery), so none of them drops a tokenizer or chat-template file another keeps.
/// </summary>
public static class SideFiles
{
    public const string GenerationConfig = "generation_config.json";

    /// <summary>Tokenizer files, chat templates included.</summary>
    public static readonly string[] Tokenizer =
    [
        "tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
        "vocab.json", "merges.txt", "chat_template.json", "chat_template.jinja", "tekken.json",
    ];

    /// <summary>Chat-template files (a recipe's own chat_template replaces them).</summary>
    public static bool IsChatTemplate(string name) => name is "chat_template.json" or "chat_template.jinja";

    /// <summary>Tokenizer files and the generation settings.</summary>
    public static readonly string[] All = [.. Tokenizer, GenerationConfig];

    /// <summary>Copies those of <paramref name="names"/> that exist in <paramref name="sourceFolder"/>.</summary>
    public static void CopyExisting(string sourceFolder, CheckpointWriter writer, IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            var path = Path.Combine(sourceFolder, name);
            if (InputFile.IsPresent(path)) writer.CopyFile(path, name);
        }
    }
}
