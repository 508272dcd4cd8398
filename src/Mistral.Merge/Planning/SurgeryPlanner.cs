using Mistral.Merge.Merging;
using Mistral.Merge.Moe;
using Mistral.Merge.Moe.Surgery;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>What a recipe plans to: a merge (tensor by tensor) or an MoE surgery (one whole checkpoint); exactly one is set.</summary>
public sealed class RecipePlan : IDisposable
{
    public MergePlan? Merge { get; init; }
    public SurgeryPlan? Surgery { get; init; }
    public IReadOnlyList<string> Warnings => Merge?.Warnings ?? Surgery!.Warnings;
    public void Dispose() { Merge?.Dispose(); Surgery?.Dispose(); }
}

/// <summary>
/// The one dispatch between the two pipelines: a recipe whose merge_method is an MoE surgery becomes a
/// <see cref="SurgeryPlan"/>, any other a <see cref="MergePlan"/> (<see cref="MergePlanner"/>).
/// </summary>
public static class RecipePlanner
{
    /// <summary>Parses <paramref name="recipePath"/> and plans it; throws <see cref="RecipeException"/> listing every problem.</summary>
    public static RecipePlan PlanFile(string recipePath, PlanOptions? options = null)
    {
        var problems = new RecipeProblems(recipePath);
        return Plan(RecipeParser.ParseFile(recipePath, problems), problems, options);
    }

    /// <summary>Plans one stage of a multi-stage recipe file (<see cref="RecipeStages"/>).</summary>
    public static RecipePlan PlanStage(RecipeStage stage, string recipePath, PlanOptions? options = null)
    {
        var problems = new RecipeProblems(recipePath);
        return Plan(RecipeParser.Parse(stage.Text, recipePath, problems, stage.OwnText), problems, options);
    }

    private static RecipePlan Plan(Recipe recipe, RecipeProblems problems, PlanOptions? options)
    {
        options ??= new PlanOptions();
        return MergeMethods.FindSurgery(recipe.Method) is { } surgery
            ? new RecipePlan { Surgery = SurgeryPlanner.Plan(recipe, problems, options, surgery) }
            : new RecipePlan { Merge = MergePlanner.Plan(recipe, problems, options) };
    }
}

/// <summary>
/// A surgery recipe → <see cref="SurgeryPlan"/>: only base_model and parameters, checked by the surgery's own
/// declarations (<see cref="SurgeryArgs.FromRecipe"/>) with the recipe's line:column, then against the model.
/// </summary>
public static class SurgeryPlanner
{
    public static SurgeryPlan Plan(Recipe recipe, RecipeProblems problems, PlanOptions options, ISurgery surgery)
    {
        var c = new PlanContext(recipe, problems, options);
        SurgeryPlan? plan = null;
        try { plan = Build(c, surgery); }
        finally
        {
            if (plan == null || problems.Any) foreach (var m in c.Models.Values) m.Dispose();
        }
        problems.ThrowIfAny();
        return plan ?? throw new RecipeException([$"{problems.FileLabel}: nothing to plan"]);
    }

    private static SurgeryPlan? Build(PlanContext c, ISurgery surgery)
    {
        var (r, p, spec) = (c.Recipe, c.Problems, surgery.Spec);
        var args = SurgeryArgs.FromRecipe(r, p, spec);
        if (r.Slices.Count > 0)
            p.Add(r.Slices[0].Mark, $"merge_method '{spec.Name}' rewrites one checkpoint: give only base_model (and parameters), not '{(r.FromModels ? "models" : "slices")}'");
        if (r.BaseModel == null) p.Add(r.MethodMark, $"merge_method '{spec.Name}' needs a base_model (the Mixtral checkpoint to convert)");
        if (r.Tokenizer != null) p.Add(r.Tokenizer.Mark, $"tokenizer_source / tokenizer (vocabulary merging) does not apply to {spec.Name}, which keeps the base model's tokenizer");
        foreach (var def in spec.Params.Where(d => d.Required && !r.Parameters.Mentions(d.Name)))
            p.Add(r.MethodMark, $"merge_method '{spec.Name}' requires parameter '{def.Name}' (set it under parameters:)");
        surgery.CheckStatic(args);
        new ModelInputs(c).ResolveModels();
        if (p.Any || r.BaseModel == null || !c.Models.TryGetValue(r.BaseModel.Text, out var model)) return null;
        MixtralLayout layout;
        try { layout = new MixtralLayout(model.Folder); }
        catch (MergeException e)
        {
            p.Add(r.BaseModel.Mark, $"base_model '{model.Text}': {e.Message}");
            return null;
        }
        var job = surgery.Prepare(args, layout);
        if (job == null || p.Any) return null;
        return new SurgeryPlan { Surgery = surgery, Job = job, Source = model.Folder, SourceLabel = model.Text, RecipePath = r.Path, Warnings = c.Warnings };
    }
}
