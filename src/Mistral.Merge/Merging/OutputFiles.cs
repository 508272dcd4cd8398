using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Recipes;

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

    public static void Write(MergePlan plan, CheckpointWriter writer, bool copyTokenizer, bool writeModelCard = true)
    {
        writer.AddFile("config.json", JsonText.Write(BuildConfig(plan)) + "\n");
        SideFiles.CopyExisting(plan.ConfigModel.Folder.Path, writer, [SideFiles.GenerationConfig]);
        if (plan.Tokenizer != null) TokenizerFiles.Write(plan, writer); // built: always written, its embeddings need it
        else if (copyTokenizer && plan.TokenizerModel != null) CopyTokenizer(plan, writer);
        TokenizerFiles.Check(plan, writer);
        if (!writeModelCard) return; // mergekit's --no-write-model-card leaves out both
        writer.AddFile("README.md", ModelCard.Write(plan));
        writer.AddFile(RecipeFileName, plan.Recipe.Text);
    }

    private static void CopyTokenizer(MergePlan plan, CheckpointWriter writer)
    {
        var folder = plan.TokenizerModel!.Folder.Path;
        // The recipe's template (a name, a Jinja text, or auto's pick) goes into tokenizer_config.json and replaces the
        // donor's chat_template.jinja/.json, which readers would otherwise prefer; null keeps the donor's own.
        var template = ChatTemplates.Resolve(plan.Recipe.ChatTemplate, plan.Models.Select(m => m.Folder.Path));
        foreach (var name in SideFiles.Tokenizer)
        {
            var src = Path.Combine(folder, name);
            if (!InputFile.IsPresent(src) || (template != null && SideFiles.IsChatTemplate(name))) continue;
            if (name == "tokenizer_config.json" && template != null)
            {
                var obj = JsonFile.ReadObject(src, "tokenizer_config.json");
                obj["chat_template"] = template;
                writer.AddFile(name, JsonText.Write(obj) + "\n");
            }
            else writer.CopyFile(src, name);
        }
        if (template != null && !InputFile.IsPresent(Path.Combine(folder, "tokenizer_config.json")))
            writer.AddFile("tokenizer_config.json", JsonText.Write(new JsonObject { ["chat_template"] = template }) + "\n");
    }
}
