using Mistral.Merge.Merging;
using Mistral.Merge.Merging.Methods;

namespace Mistral.Merge.Planning;

/// <summary>
/// The registry: adding a method is one file in Merging/Methods/ and one line here. It lives above Merging and
/// Moe because it lists the merge methods and the MoE surgeries, which build on the merge-method types.
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
        new Moe.Recipes.MoeToDenseMethod(),
        new Moe.Recipes.MoePruneMethod(),
    ];

    /// <summary>Every method, in the order of the README's table (<c>mistral-merge methods</c>).</summary>
    public static IReadOnlyList<IMergeMethod> Methods => All;

    public static IReadOnlyList<string> Names { get; } = All.Select(m => m.Spec.Name).ToArray();

    public static IMergeMethod? Find(string name) => All.FirstOrDefault(m => m.Spec.Name == name);

    public static IMergeMethod Get(string name) => Find(name) ?? throw new MergeException($"unknown merge method '{name}'");
}
