using System.Text;
using Mistral.Merge.IO;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Merging;

/// <summary>
/// README.md of a merged model, laid out like mergekit's card so the Hub files it the same way: front matter with
/// <c>base_model</c> = the inputs' Hub ids (never a local path), <c>library_name: transformers</c> and the merge tags;
/// the method linked to its paper; the models; the recipe as written. Recipe text reaches it only escaped
/// (<see cref="CardText"/>).
/// </summary>
public static class ModelCard
{
    public static string Write(MergePlan plan)
    {
        var r = plan.Recipe;
        var spec = plan.Method.Spec;
        var baseText = r.BaseModel?.Text;
        var hubIds = plan.Models.Select(m => ModelResolver.HubIdOf(m.Folder.Path)).OfType<string>().Distinct().ToList();
        var sb = new StringBuilder("---\n");
        if (hubIds.Count > 0)
        {
            sb.Append("base_model:\n");
            foreach (var id in hubIds) sb.Append("- ").Append(CardText.YamlString(id)).Append('\n');
        }
        sb.Append("library_name: transformers\ntags:\n- mergekit\n- merge\n- mistral-merge\n---\n\n");
        sb.Append("# ").Append(CardText.Inline(r.Name ?? Path.GetFileNameWithoutExtension(r.Path))).Append("\n\n");
        sb.Append("This is a merge of pre-trained language models created with mistral-merge, a mergekit-compatible merge tool");
        sb.Append(r.DType is { } d ? $" (float32 maths, dtype {d.ToTorchName()})" : " (float32 maths)");
        sb.Append(".\n\n## Merge Details\n\n### Merge Method\n\nThis model was merged using the ");
        var title = CardText.Inline(spec.Title ?? spec.Name);
        sb.Append(spec.Paper is { } paper ? $"[{title}]({paper})" : title).Append(" merge method");
        var baseModel = plan.Models.FirstOrDefault(m => m.Text == baseText);
        if (baseModel != null) sb.Append(" using ").Append(Reference(baseModel)).Append(" as a base");
        sb.Append(".\n\n### Models Merged\n\nThe following models were included in the merge:\n\n");
        foreach (var m in plan.Models)
        {
            if (m == baseModel && plan.Models.Count > 1) continue;
            sb.Append("* ").Append(Reference(m)).Append($" — {m.Layers} layers\n");
        }
        sb.Append($"\nOutput: {plan.Tasks.Count} tensors, {plan.OutputLayers} layers, {ByteSize.Format(plan.WriteBytes)}");
        if (spec.UsesRandomMasks) sb.Append($", mask seed {plan.Seed}");
        // The recipe as written, in a fence no line of it can close.
        var recipe = r.Text.TrimEnd('\n');
        var fence = CardText.Fence(recipe);
        sb.Append(".\n\n## Recipe\n\nThe following YAML configuration was used to produce this model:\n\n")
          .Append(fence).Append("yaml\n").Append(recipe).Append('\n').Append(fence).Append('\n');
        return sb.ToString();
    }

    /// <summary>A Hub model as a link to its page; a local one as its path in a code span.</summary>
    private static string Reference(InputModel m) => ModelResolver.HubIdOf(m.Folder.Path) is { } id
        ? $"[{CardText.Inline(id)}](https://huggingface.co/{id})"
        : CardText.Code(m.Text);
}
