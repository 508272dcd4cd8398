using Mistral.Merge.Merging;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

public sealed record PlanOptions
{
    public ulong Seed { get; init; }
    /// <summary>Hugging Face hub cache to search (default: from the environment).</summary>
    public string? HubCache { get; init; }
    /// <summary>Hub settings to download a model the cache lacks with; null: the cache is only read.</summary>
    public Hub.HubOptions? Hub { get; init; }
    /// <summary>Merge models whose architectures or dimensions differ (mergekit's <c>--allow-crimes</c>): a warning instead of a refusal.</summary>
    public bool AllowCrimes { get; init; }
}

/// <summary>
/// Recipe → one task per output tensor. Validates the parameters against the method (<see cref="RecipeChecks"/>),
/// resolves the models (<see cref="ModelInputs"/>), walks slices and layers (<see cref="TensorPlanner"/>, with
/// <see cref="ShapePolicy"/> and <see cref="ParameterResolver"/>). Knows nothing of the maths. Every problem is
/// collected and reported at once.
/// </summary>
public sealed class MergePlanner
{
    private readonly PlanContext _c;
    private Recipe _r => _c.Recipe;
    private RecipeProblems _p => _c.Problems;

    private MergePlanner(Recipe r, RecipeProblems p, PlanOptions o) { _c = new PlanContext(r, p, o); }

    /// <summary>Parses <paramref name="recipePath"/> and plans it; throws <see cref="RecipeException"/> listing every problem.</summary>
    public static MergePlan PlanFile(string recipePath, PlanOptions? options = null)
    {
        var problems = new RecipeProblems(recipePath);
        var recipe = RecipeParser.ParseFile(recipePath, problems);
        return Plan(recipe, problems, options ?? new PlanOptions());
    }

    public static MergePlan Plan(Recipe recipe, RecipeProblems problems, PlanOptions options)
    {
        var planner = new MergePlanner(recipe, problems, options);
        try
        {
            var plan = planner.Build();
            problems.ThrowIfAny();
            return plan!;
        }
        catch
        {
            foreach (var m in planner._c.Models.Values) m.Dispose();
            throw;
        }
    }

    private MergePlan? Build()
    {
        bool named = _r.Method.Trim().Length > 0; // an empty or blank name is the parser's problem
        var method = named ? MergeMethods.Find(_r.Method) : null;
        if (method == null && named && MergeMethods.FindSurgery(_r.Method) != null)
            _p.Add(_r.MethodMark, $"merge_method '{_r.Method}' is an MoE surgery, not a merge method: plan it with {nameof(RecipePlanner)}");
        else if (method == null && named)
            _p.Add(_r.MethodMark, $"unknown merge_method '{_r.Method}'{Suggest.Hint(_r.Method, MergeMethods.RecipeNames)} (known: {string.Join(", ", MergeMethods.RecipeNames)})");
        if (_r.SourcesMissing)
            _p.Add(_r.RootMark, "missing 'models' or 'slices' (one of them is required)");
        if (method != null) { _c.Method = method; new RecipeChecks(_c).CheckStatic(); }
        var inputs = new ModelInputs(_c);
        inputs.ResolveModels();
        var ranges = inputs.CheckRanges();
        if (method == null && !_p.Any) _p.Add(_r.MethodMark, "merge_method names no merge method"); // never a null plan without a problem
        if (_p.Any || method == null) return null;
        return new TensorPlanner(_c).BuildTasks(ranges);
    }
}
