using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Moe.Surgery;

/// <summary>
/// A planned MoE surgery: the surgery, its prepared job, and the source checkpoint it holds open. Made by the recipe
/// planner (<c>merge_method: moe_to_dense | moe_prune</c>) or by <c>moe-convert</c>, run by <see cref="SurgeryExecutor"/>.
/// </summary>
public sealed class SurgeryPlan : IDisposable
{
    public required ISurgery Surgery { get; init; }
    public required ISurgeryJob Job { get; init; }
    /// <summary>The source Mixtral, open (memory-mapped) until the plan is disposed.</summary>
    public required ModelFolder Source { get; init; }
    /// <summary>The source as the user wrote it (a recipe's base_model, the command's MIXTRAL).</summary>
    public required string SourceLabel { get; init; }
    /// <summary>The recipe's path for a recipe run, else null.</summary>
    public string? RecipePath { get; init; }
    public List<string> Warnings { get; init; } = [];

    public string Name => Surgery.Spec.Name;
    public IReadOnlyList<string> Describe() => Job.Describe();
    public void Dispose() => Source.Dispose();

    /// <summary>
    /// Checks (and prepares) a surgery from its arguments against an open model; throws one line for the first
    /// problem. The command-line route; the recipe planner collects problems with their line:column instead.
    /// </summary>
    public static SurgeryPlan Prepare(ISurgery surgery, ModelFolder source, string label, Func<Action<string>, SurgeryArgs> args)
    {
        string? first = null;
        var a = args(m => first ??= m);
        surgery.CheckStatic(a);
        if (first != null) throw new MergeException(first);
        var job = surgery.Prepare(a, new MixtralLayout(source));
        if (first != null || job == null) throw new MergeException(first ?? $"{surgery.Spec.Name}: nothing to do");
        return new SurgeryPlan { Surgery = surgery, Job = job, Source = source, SourceLabel = label };
    }
}

/// <summary>Runs a <see cref="SurgeryPlan"/>: the output folder is checked first (not the input, empty or --force), then the job measures and writes.</summary>
public static class SurgeryExecutor
{
    public static SurgeryResult Run(SurgeryPlan plan, string destination, SurgeryRunOptions options)
    {
        OutputFolder.Check(destination, options.Force, [(plan.SourceLabel, plan.Source.Path)]);
        return plan.Job.Run(destination, options);
    }
}
