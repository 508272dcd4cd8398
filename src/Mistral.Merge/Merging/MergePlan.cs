using System.Globalization;
using System.Text;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Merging;

/// <summary>A model of the recipe, opened (memory-mapped) once.</summary>
public sealed class InputModel(string text, ModelFolder folder, int layers) : IDisposable
{
    public string Text { get; } = text;
    public ModelFolder Folder { get; } = folder;
    public int Layers { get; } = layers;
    /// <summary>The PEFT adapter of a <c>model+adapter</c> reference, applied to the tensors as they are read.</summary>
    public Models.LoraAdapter? Adapter { get; init; }
    public void Dispose() { Folder.Dispose(); Adapter?.Dispose(); }
}

/// <summary>One input of a task: a tensor of a model, read as the output-shaped top-left block.</summary>
public sealed class TaskInput
{
    public required InputModel Model { get; init; }
    public required string TensorName { get; init; }
    public required SafetensorsFile File { get; init; }
    public required TensorInfo Info { get; init; }
    public bool IsBase { get; init; }
    /// <summary>Its per-model parameters' values (also <see cref="MethodTask.PerModel"/>).</summary>
    public required ParamValues Params { get; init; }
    /// <summary>Elements per row of the stored tensor (may exceed the output's when cropped).</summary>
    public long StoredCols => Info.Shape.Length == 0 ? 1 : Info.Shape[^1];
}

/// <summary>One output tensor: what to read, which method, resolved parameters, output dtype.</summary>
public sealed class MergeTask
{
    public required string OutputName { get; init; }
    public required long[] Shape { get; init; }
    public required DType OutDType { get; init; }
    public required IMergeMethod Method { get; init; }
    public required List<TaskInput> Inputs { get; init; }
    public required MethodTask MethodTask { get; init; }
    /// <summary>Set for an embedding-like tensor under a built tokenizer: how each input's rows are gathered.</summary>
    public EmbeddingRows? Rows { get; init; }
    public long Elements => MethodTask.Elements;
    public long WriteBytes => Elements * OutDType.SizeOf();
    public long ReadBytes => Inputs.Sum(i => i.Info.ByteLength);

    /// <summary>A copying method's one input with no per-model parameter set, same dtype and shape: a byte copy.</summary>
    public bool IsRawCopy => Rows == null && !(Inputs[0].Model.Adapter?.Changes(Inputs[0].TensorName) ?? false) && Method.Spec.CopiesInput && Inputs.Count == 1 && !Inputs[0].Params.AnySet
                             && Inputs[0].Info.DType == OutDType && Inputs[0].Info.Shape.SequenceEqual(Shape);

    public string Describe()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{OutputName} [{string.Join(", ", Shape)}] {OutDType}");
        var mp = MethodTask.Global.Assigned().Select(a => $"{a.Def.Name}={Fmt(a.Value)}").ToList();
        if (mp.Count > 0) sb.Append("  ").Append(string.Join(" ", mp));
        foreach (var i in Inputs)
        {
            sb.Append("\n    <- ").Append(i.Model.Text).Append(':').Append(i.TensorName);
            if (i.IsBase) sb.Append(" (base)");
            var pp = i.Params.Assigned().Select(a => $"{a.Def.Name}={Fmt(a.Value)}").ToList();
            if (pp.Count > 0) sb.Append("  ").Append(string.Join(" ", pp));
        }
        return sb.ToString();
    }

    internal static string Fmt(object? v) => v switch
    {
        double d => d.ToString("G6", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        null => "-",
        _ => v.ToString()!,
    };
}

/// <summary>The plan: one task per output tensor plus what the output folder needs.</summary>
public sealed class MergePlan : IDisposable
{
    public required Recipe Recipe { get; init; }
    public required IMergeMethod Method { get; init; }
    public required IReadOnlyList<InputModel> Models { get; init; }
    public required List<MergeTask> Tasks { get; init; }
    public required List<string> Warnings { get; init; }
    public required InputModel ConfigModel { get; init; }
    public InputModel? TokenizerModel { get; init; }
    /// <summary>The tokenizer the recipe builds (null: the donor's files are copied as they are).</summary>
    public OutputTokenizer? Tokenizer { get; init; }
    /// <summary>num_hidden_layers of the output.</summary>
    public int OutputLayers { get; init; }
    /// <summary>vocab_size of the output when embeddings were cropped or a tokenizer was built, else null.</summary>
    public int? OutputVocab { get; init; }
    public ulong Seed { get; init; }
    public long ReadBytes => Tasks.Sum(t => t.ReadBytes);
    public long WriteBytes => Tasks.Sum(t => t.WriteBytes);

    public IReadOnlyList<PlannedTensor> OutputTensors => Tasks.Select(t => new PlannedTensor(t.OutputName, t.OutDType, t.Shape)).ToList();

    public void Dispose() { foreach (var m in Models) m.Dispose(); }
}
