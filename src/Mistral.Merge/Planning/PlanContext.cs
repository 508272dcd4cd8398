using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>
/// What the parts of one planning run share: the recipe, where problems and warnings go, the options, the models
/// opened so far and the method. <see cref="Once"/> keeps a problem or warning that many tensors would repeat to one.
/// </summary>
internal sealed class PlanContext
{
    private readonly HashSet<string> _onceKeys = new(StringComparer.Ordinal);

    public PlanContext(Recipe recipe, RecipeProblems problems, PlanOptions options)
    {
        Recipe = recipe;
        Problems = problems;
        Options = options;
    }

    public Recipe Recipe { get; }
    public RecipeProblems Problems { get; }
    public PlanOptions Options { get; }
    public Dictionary<string, InputModel> Models { get; } = new(StringComparer.Ordinal);
    public List<string> Warnings { get; } = new();
    public IMergeMethod Method { get; set; } = null!;
    /// <summary>The declaration the output's tensor names follow: the config model's (set when tensors are planned).</summary>
    public Architecture Names { get; set; } = Architecture.Default;
    /// <summary>The tokenizer the recipe builds (set before the tensors are planned), else null.</summary>
    public OutputTokenizer? Tokenizer { get; set; }

    public void Once(string key, Action action) { if (_onceKeys.Add(key)) action(); }
}
