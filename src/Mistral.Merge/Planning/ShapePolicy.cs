using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>
/// The shape and dtype of each output tensor: equal shapes, or the base's when the method is base-shaped;
/// embeddings (embed_tokens, lm_head) of differing vocabularies are cropped to their common top-left; the output
/// dtype is out_dtype, else dtype, else the base's (or first input's), with F64 written as F32.
/// </summary>
internal sealed class ShapePolicy
{
    private readonly PlanContext _c;

    public ShapePolicy(PlanContext context) { _c = context; }

    /// <summary>The input embedding or the output head, as the output's architecture names them.</summary>
    private bool IsEmbed(string name) => _c.Names.IsVocabTensor(name);

    /// <summary>The output's shape, or null when the inputs' shapes differ and cannot be reconciled (reported at <paramref name="first"/>).</summary>
    public long[]? OutputShape(List<LocatedInput> located, TensorInfo? baseInfo, bool baseShaped, string outName, SourceSpec first, bool sameShapes = false)
    {
        long[] shape;
        var shapes = located.Select(x => x.I.Shape).ToList();
        bool same = shapes.All(s => s.SequenceEqual(shapes[0]));
        if (baseShaped && baseInfo != null) shape = baseInfo.Shape;
        else if (same) shape = shapes[0];
        else if (!sameShapes && IsEmbed(outName) && shapes.All(s => s.Length == 2))
        {
            shape = [shapes.Min(s => s[0]), shapes.Min(s => s[1])];
            _c.Once($"crop:{outName}", () => _c.Warnings.Add($"{outName}: shapes differ ({string.Join(" vs ", located.Select(x => $"{x.M.Text} [{string.Join(", ", x.I.Shape)}]"))}); using the common top-left [{shape[0]}, {shape[1]}] (vocabularies are not merged)"));
        }
        else
        {
            _c.Problems.Add(first.Mark, $"tensor '{outName}': shapes differ between models ({string.Join(" vs ", located.Select(x => $"{x.M.Text} [{string.Join(", ", x.I.Shape)}]"))})");
            return null;
        }
        return shape;
    }

    /// <summary>An embedding-like tensor under a built tokenizer: [rows, cols] when every input is a matrix of the same width, else null (reported).</summary>
    public long[]? VocabShape(List<LocatedInput> located, int rows, string outName, SourceSpec first)
    {
        if (located.All(x => x.I.Shape.Length == 2 && x.I.Shape[1] == located[0].I.Shape[1])) return [rows, located[0].I.Shape[1]];
        _c.Problems.Add(first.Mark, $"tensor '{outName}': the widths differ between models ({string.Join(" vs ", located.Select(x => $"{x.M.Text} [{string.Join(", ", x.I.Shape)}]"))}); its rows cannot be rebuilt for the tokenizer");
        return null;
    }

    /// <summary>Whether input <paramref name="x"/> feeds an output of <paramref name="shape"/> (an embedding cropped to it does); warns when it is skipped or cropped.</summary>
    public bool Fits(LocatedInput x, long[] shape, string outName, bool baseShaped)
    {
        if (x.I.Shape.SequenceEqual(shape)) return true;
        bool croppable = x.I.Shape.Length == 2 && shape.Length == 2 && x.I.Shape[0] >= shape[0] && x.I.Shape[1] >= shape[1];
        if (!(IsEmbed(outName) && croppable))
        {
            _c.Once($"skip:{x.M.Text}:{outName}", () => _c.Warnings.Add($"skipping model '{x.M.Text}' for {outName}: shape [{string.Join(", ", x.I.Shape)}] differs from the base's [{string.Join(", ", shape)}]"));
            return false;
        }
        if (baseShaped) _c.Once($"crop:{x.M.Text}:{outName}", () => _c.Warnings.Add($"{outName}: using the top-left [{shape[0]}, {shape[1]}] of model '{x.M.Text}' [{string.Join(", ", x.I.Shape)}]"));
        return true;
    }

    /// <summary>out_dtype, else dtype, else that of <paramref name="template"/> (the base's or the first input's); F64 is written as F32.</summary>
    public DType OutputDType(TensorInfo template)
    {
        var outDType = _c.Recipe.OutDType ?? _c.Recipe.DType ?? template.DType;
        if (outDType == DType.F64) outDType = DType.F32;
        return outDType;
    }

    /// <summary>The merged embedding's row count when it differs from the config model's vocab_size (the config is then rewritten).</summary>
    public static int? OutputVocab(List<MergeTask> tasks, InputModel configModel)
    {
        int? vocab = null;
        var embed = tasks.FirstOrDefault(t => t.OutputName == configModel.Folder.Names.Embed);
        if (embed != null && configModel.Folder.Config is { VocabSize: > 0 } cfg && embed.Shape.Length == 2 && embed.Shape[0] != cfg.VocabSize)
            vocab = (int)embed.Shape[0];
        return vocab;
    }
}
