using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Planning;
using Mistral.Merge.Recipes;
using Mistral.Merge.Tests.Recipes;

namespace Mistral.Merge.Tests.Merging;

/// <summary>Magnitude-selecting merges give the same bytes in many small chunks as in one chunk per tensor.</summary>
public sealed class ChunkedSelectionMergeTests : IDisposable
{
    private readonly TempDir _d = new();
    public void Dispose() => _d.Dispose();

    [Theory]
    [InlineData("ties", "{density: 0.5, weight: 0.6}", "{density: 0.3, weight: 0.4}", "")]
    [InlineData("ties", "{density: 0.7, weight: 0.6}", "{density: 0.2, weight: 0.5}", "parameters: {rescale: true, lambda: 0.9}\n")]
    [InlineData("breadcrumbs", "{density: 0.8, gamma: 0.05, weight: 0.5}", "{density: 0.6, gamma: 0, weight: 0.5}", "parameters: {rescale: true}\n")]
    [InlineData("breadcrumbs_ties", "{density: 0.9, weight: 0.5}", "{density: 0.5, gamma: 0.2, weight: 0.4}", "")]
    public void TinyMemoryBudgetIsByteIdenticalToOneChunkPerTensor(string method, string b, string c, string extra)
    {
        // bf16 task vectors: many equal magnitudes, so the boundaries cut groups of ties.
        // The 3001×64 embedding spans 3 chunks at the smallest chunk size (65536 elements).
        var cfg = Synthesizer.MakeConfig("mistral", hidden: 64, layers: 1, heads: 4, kvHeads: 2, intermediate: 1100, vocab: 3001);
        foreach (var (m, seed) in new[] { ("a", 1UL), ("b", 2UL), ("c", 3UL) })
            Synthesizer.Write(_d[m], cfg, new SynthOptions { DType = DType.BF16, Seed = seed });
        var recipe = TinyModels.Recipe(_d.Path, $"merge_method: {method}\nbase_model: a\nmodels:\n  - model: b\n    parameters: {b}\n  - model: c\n    parameters: {c}\n{extra}");
        using var plan = MergePlanner.PlanFile(recipe);
        MergeExecutor.Run(plan, _d["huge"], new ExecuteOptions { Threads = 1, MemoryBudget = 1L << 40 });
        MergeExecutor.Run(plan, _d["tiny"], new ExecuteOptions { Threads = 2, MemoryBudget = 1 });
        Assert.Equal(File.ReadAllBytes(Path.Combine(_d["huge"], "model.safetensors")), File.ReadAllBytes(Path.Combine(_d["tiny"], "model.safetensors")));
    }
}
