using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Merging;

/// <summary>The non-tensor files of a merged model: config, generation config, tokenizer, model card, recipe.</summary>
public static class OutputFiles
{
    public const string RecipeFileName = "mergekit_config.yml";


    /// <summary>config.json: the base's (else the first model's) with torch_dtype, and layer/vocab counts updated.</summary>
    public static JsonObject BuildConfig(MergePlan plan)
    {
        var cfg = plan.ConfigModel.Folder.Config?.CloneJson() ?? new JsonObject();
        var dtype = plan.Recipe.OutDType ?? plan.Recipe.DType ?? plan.Tasks.FirstOrDefault()?.OutDType;
        if (dtype is { } d) cfg["torch_dtype"] = d.ToTorchName();
        if (cfg.ContainsKey("num_hidden_layers") || !plan.Recipe.FromModels) cfg["num_hidden_layers"] = plan.OutputLayers;
        if (plan.OutputVocab is int v) cfg["vocab_size"] = v;
        return cfg;
    }

    public static void Write(MergePlan plan, CheckpointWriter writer, bool copyTokenizer)
    {
        writer.AddFile("config.json", JsonText.Write(BuildConfig(plan)) + "\n");
        SideFiles.CopyExisting(plan.ConfigModel.Folder.Path, writer, [SideFiles.GenerationConfig]);
        if (copyTokenizer && plan.TokenizerModel != null) CopyTokenizer(plan, writer);
        writer.AddFile("README.md", ModelCard(plan));
        writer.AddFile(RecipeFileName, plan.Recipe.Text);
    }

    private static void CopyTokenizer(MergePlan plan, CheckpointWriter writer)
    {
        var folder = plan.TokenizerModel!.Folder.Path;
        bool ownTemplate = plan.Recipe.ChatTemplate is { } own && own != "auto";
        foreach (var name in SideFiles.Tokenizer)
        {
            var src = Path.Combine(folder, name);
            if (!InputFile.IsPresent(src) || (ownTemplate && SideFiles.IsChatTemplate(name))) continue; // the recipe's template wins
            if (name == "tokenizer_config.json" && plan.Recipe.ChatTemplate is { } tpl && tpl != "auto")
            {
                var obj = JsonFile.ReadObject(src, "tokenizer_config.json");
                obj["chat_template"] = ChatTemplates.Resolve(tpl);
                writer.AddFile(name, JsonText.Write(obj) + "\n");
            }
            else writer.CopyFile(src, name);
        }
        if (plan.Recipe.ChatTemplate is { } t && t != "auto" && !InputFile.IsPresent(Path.Combine(folder, "tokenizer_config.json")))
            writer.AddFile("tokenizer_config.json", JsonText.Write(new JsonObject { ["chat_template"] = ChatTemplates.Resolve(t) }) + "\n");
    }

    public static string ModelCard(MergePlan plan)
    {
        var r = plan.Recipe;
        var sb = new StringBuilder();
        var baseText = r.BaseModel?.Text;
        sb.Append("---\n");
        if (baseText != null) sb.Append("base_model: ").Append(CardText.YamlString(baseText)).Append('\n');
        sb.Append("tags:\n- merge\n- mistral-merge\n---\n\n");
        sb.Append("# ").Append(CardText.Inline(r.Name ?? Path.GetFileNameWithoutExtension(r.Path))).Append("\n\n");
        sb.Append($"This model was merged with mistral-merge using the **{plan.Method.Spec.Name}** method");
        sb.Append(r.DType is { } d ? $" (float32 maths, dtype {d.ToTorchName()})" : " (float32 maths)");
        sb.Append(".\n\n## Inputs\n\n");
        foreach (var m in plan.Models)
        {
            sb.Append("* ").Append(CardText.Code(m.Text));
            if (m.Text == baseText) sb.Append(" (base)");
            sb.Append($" — {m.Layers} layers\n");
        }
        sb.Append($"\nOutput: {plan.Tasks.Count} tensors, {plan.OutputLayers} layers, {ByteSize.Format(plan.WriteBytes)}");
        if (plan.Method.Spec.UsesRandomMasks) sb.Append($", mask seed {plan.Seed}");
        // The recipe as written, in a fence no line of it can close.
        var recipe = r.Text.TrimEnd('\n');
        var fence = CardText.Fence(recipe);
        sb.Append(".\n\n## Recipe\n\n").Append(fence).Append("yaml\n").Append(recipe).Append('\n').Append(fence).Append('\n');
        return sb.ToString();
    }
}

/// <summary>chat_template values: a Jinja template copied through, or a well-known name.</summary>
public static class ChatTemplates
{
    public const string ChatMl =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    public static string Resolve(string value) => value switch
    {
        "chatml" => ChatMl,
        _ => value,
    };
}
