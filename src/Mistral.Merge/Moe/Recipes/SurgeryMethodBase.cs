using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Moe.Recipes;

/// <summary>Whole-checkpoint methods have no per-tensor maths: the executor runs their job instead.</summary>
public abstract class SurgeryMethodBase : MergeMethodBase, ICheckpointSurgery
{
    /// <summary>Where routing frequencies / MoE block inputs come from; shared by both surgeries.</summary>
    protected static readonly ParamDef[] CalibrationParams =
    [
        new ParamDef<string>("calibration"),
        new ParamDef<double>("calibration_tokens"),
        new ParamDef<string>("frequencies"),
    ];

    public override string? CheckSources(int sourceCount, bool hasBase) => null;
    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
        => throw new InvalidOperationException($"{Spec.Name} rewrites a whole checkpoint; it has no per-tensor step");

    public abstract void CheckStatic(Recipe recipe, RecipeProblems problems);
    public abstract ISurgeryJob? Prepare(Recipe recipe, InputModel baseModel, RecipeProblems problems);

    internal static WriterOptions Writer(ExecuteOptions o) => new() { ShardSize = o.ShardSize, Force = o.Force };

    /// <summary>The Mixtral layout of the base, or null after reporting why it is not one.</summary>
    internal static MixtralLayout? Layout(Recipe recipe, InputModel model, RecipeProblems problems)
    {
        try { return new MixtralLayout(model.Folder); }
        catch (MergeException e)
        {
            problems.Add(recipe.BaseModel!.Mark, $"base_model '{model.Text}': {e.Message}");
            return null;
        }
    }

    internal static string DescribeSource(MixtralLayout m) =>
        $"{m.Folder.Path} (MixtralForCausalLM, {m.Layers} layers, {m.Experts} experts × intermediate {m.Intermediate}, top-{m.Config.NumExpertsPerTok}, hidden {m.Hidden}, {m.ExpertDType})";

    internal static string RoutingSource(string? text, string? frequencies, int tokens) =>
        frequencies != null ? $"frequencies from {frequencies}"
        : text != null ? $"measured at run time by the forward pass on {text} (first {tokens} tokens with BOS, windows of {MoeForwardPass.Window})"
        : "none";

}
