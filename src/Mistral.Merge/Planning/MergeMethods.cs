using Mistral.Merge.Merging;
using Mistral.Merge.Merging.Methods;
using Mistral.Merge.Moe.Surgery;

namespace Mistral.Merge.Planning;

/// <summary>
/// The registry of every name a recipe's <c>merge_method</c> can give: the merge methods (adding one is one file in
/// Merging/Methods/ and one line here) and, separately, the MoE surgeries (a pipeline of their own, see
/// <see cref="SurgeryPlanner"/>). It lives in Planning, above Merging and Moe, because it lists both.
/// </summary>
public static class MergeMethods
{
    private static readonly IMergeMethod[] All =
    [
        new LinearMethod(),
        new SlerpMethod(),
        new NuSlerpMethod(),
        new TaskArithmeticMethod(),
        new TiesMethod(),
        new DareLinearMethod(),
        new DareTiesMethod(),
        new BreadcrumbsMethod(),
        new BreadcrumbsTiesMethod(),
        new DellaMethod(),
        new DellaLinearMethod(),
        new ModelStockMethod(),
        new PassthroughMethod(),
        new SceMethod(),
        new MultiSlerpMethod(),
        new KarcherMethod(),
        new NearSwapMethod(),
        new ArceeFusionMethod(),
        new RamMethod(),
        new RamPlusTlMethod(),
    ];

    private static readonly ISurgery[] AllSurgeries =
    [
        new MoeToDenseSurgery(),
        new MoePruneSurgery(),
    ];

    /// <summary>Every method, in the order of the README's table (<c>mistral-merge methods</c>).</summary>
    public static IReadOnlyList<IMergeMethod> Methods => All;

    /// <summary>The merge methods' names.</summary>
    public static IReadOnlyList<string> Names { get; } = All.Select(m => m.Spec.Name).ToArray();

    /// <summary>The MoE surgeries a recipe (or moe-convert) can name.</summary>
    public static IReadOnlyList<ISurgery> Surgeries => AllSurgeries;

    /// <summary>Every name a recipe's merge_method may give: merge methods, then surgeries.</summary>
    public static IReadOnlyList<string> RecipeNames { get; } = [.. All.Select(m => m.Spec.Name), .. AllSurgeries.Select(s => s.Spec.Name)];

    public static IMergeMethod? Find(string name) => All.FirstOrDefault(m => m.Spec.Name == name);

    public static IMergeMethod Get(string name) => Find(name) ?? throw new MergeException($"unknown merge method '{name}'");

    public static ISurgery? FindSurgery(string name) => AllSurgeries.FirstOrDefault(s => s.Spec.Name == name);
}
