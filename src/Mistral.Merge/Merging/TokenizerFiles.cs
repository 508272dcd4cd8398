using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Merging;

/// <summary>
/// The tokenizer files of a built tokenizer: the donor's tokenizer.json with the stripped tokens left out of
/// <c>model.vocab</c> and <c>merges</c> and <c>added_tokens</c> = every output added token by id (or, for a donor with only
/// tokenizer.model, that file copied); tokenizer_config.json with <c>added_tokens_decoder</c> rebuilt (and the recipe's
/// <c>chat_template</c>); special_tokens_map.json copied. <see cref="Check"/> refuses a tokenizer that disagrees with the
/// embedding it ships with.
/// </summary>
public static class TokenizerFiles
{
    public static void Write(MergePlan plan, CheckpointWriter writer)
    {
        var tok = plan.Tokenizer!;
        var folder = tok.Donor.Folder.Path;
        var template = ChatTemplates.Resolve(plan.Recipe.ChatTemplate, plan.Models.Select(m => m.Folder.Path));
        if (tok.DonorVocabulary.FromJson)
        {
            var path = Path.Combine(folder, Vocabulary.JsonFileName);
            var json = JsonFile.ReadObject(path, Vocabulary.JsonFileName);
            if (json["model"] is JsonObject model && tok.Stripped.Count > 0) Strip(model, tok.Stripped);
            json["added_tokens"] = new JsonArray(tok.Added.Values.Select(a => (JsonNode)a.ToJson(withId: true)).ToArray());
            writer.AddFile(Vocabulary.JsonFileName, JsonText.Write(json) + "\n");
        }
        else writer.CopyFile(Path.Combine(folder, Vocabulary.ModelFileName), Vocabulary.ModelFileName);

        var configPath = Path.Combine(folder, Vocabulary.ConfigFileName);
        var config = InputFile.IsPresent(configPath) ? JsonFile.ReadObject(configPath, Vocabulary.ConfigFileName) : new JsonObject();
        var decoder = new JsonObject();
        foreach (var a in tok.Added.Values) decoder[a.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = a.ToJson(withId: false);
        config["added_tokens_decoder"] = decoder;
        if (template != null) config["chat_template"] = template;
        writer.AddFile(Vocabulary.ConfigFileName, JsonText.Write(config) + "\n");
        var names = template == null ? new[] { "special_tokens_map.json", "chat_template.jinja", "chat_template.json" } : ["special_tokens_map.json"];
        SideFiles.CopyExisting(folder, writer, names);
    }

    /// <summary>Drops <paramref name="stripped"/> from <c>model.vocab</c> and every merge that names or makes one.</summary>
    private static void Strip(JsonObject model, HashSet<string> stripped)
    {
        switch (model["vocab"])
        {
            case JsonObject map:
                foreach (var token in stripped) map.Remove(token);
                break;
            case JsonArray list:
                for (int i = list.Count - 1; i >= 0; i--)
                    if ((list[i] as JsonArray)?[0]?.GetValue<string>() is { } piece && stripped.Contains(piece)) list.RemoveAt(i);
                break;
        }
        if (model["merges"] is not JsonArray merges) return;
        for (int i = merges.Count - 1; i >= 0; i--)
        {
            var (a, b) = merges[i] switch
            {
                JsonValue v when v.GetValue<string>().Split(' ', 2) is [var x, var y] => (x, y),
                JsonArray { Count: 2 } pair => (pair[0]?.GetValue<string>() ?? "", pair[1]?.GetValue<string>() ?? ""),
                _ => ("", ""),
            };
            if (stripped.Contains(a) || stripped.Contains(b) || stripped.Contains(a + b)) merges.RemoveAt(i);
        }
    }

    /// <summary>
    /// Before the output is committed: the tokenizer written to <paramref name="writer"/>'s folder must fit the embedding
    /// it ships with (every id below its rows; a built one holds exactly the planned vocabulary). Throws one line otherwise.
    /// </summary>
    public static void Check(MergePlan plan, CheckpointWriter writer)
    {
        var embedName = plan.ConfigModel.Folder.Names.Embed;
        var embed = plan.Tasks.FirstOrDefault(t => t.OutputName == embedName);
        if (embed == null || embed.Shape.Length != 2 || !Vocabulary.Exists(writer.TempDir)) return;
        var v = Vocabulary.Read(writer.TempDir)!;
        long rows = embed.Shape[0];
        var (token, max) = v.Ids.Count == 0 ? new KeyValuePair<string, int>("", -1) : v.Ids.MaxBy(kv => kv.Value);
        if (max >= rows)
            throw new MergeException($"{writer.Destination}: not written: its tokenizer has token '{token}' with id {max} but {embedName} has {rows} rows (the tokenizer would not fit the model{(plan.Tokenizer == null ? "; set tokenizer_source (base, union or a model) to build one that fits" : "")})");
        if (plan.Tokenizer is { } tok && (v.Count != tok.VocabCount || tok.Ids.Any(kv => !v.Ids.TryGetValue(kv.Key, out var id) || id != kv.Value)))
            throw new MergeException($"{writer.Destination}: not written: the tokenizer written holds {v.Count} tokens, not the {tok.VocabCount} its {embedName} rows were built for");
    }
}
