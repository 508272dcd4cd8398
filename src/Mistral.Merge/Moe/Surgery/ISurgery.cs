using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Moe.Surgery;

/// <summary>
/// An MoE surgery: rewrites one whole Mixtral checkpoint (not tensor by tensor, as a merge method does). The recipe
/// methods <c>moe_to_dense</c> / <c>moe_prune</c> and the <c>moe-convert</c> command both go through it: parameters
/// checked (<see cref="CheckStatic"/>, then <see cref="Prepare"/> against the model) into a job, run by
/// <see cref="SurgeryExecutor"/>.
/// </summary>
public interface ISurgery
{
    SurgerySpec Spec { get; }
    /// <summary>Checks that need no model (parameter values and combinations).</summary>
    void CheckStatic(SurgeryArgs a);
    /// <summary>Checks the parameters against the model; returns the job, or null after reporting problems.</summary>
    ISurgeryJob? Prepare(SurgeryArgs a, MixtralLayout m);
}

/// <summary>A prepared surgery.</summary>
public interface ISurgeryJob
{
    /// <summary>Lines of the --dry-run plan.</summary>
    IReadOnlyList<string> Describe();
    /// <summary>Measures what it needs, then writes the output folder atomically (through <see cref="CheckpointWriter"/>).</summary>
    SurgeryResult Run(string destination, SurgeryRunOptions options);
}

/// <summary>How a surgery runs and writes; nothing here changes its result.</summary>
public sealed record SurgeryRunOptions
{
    /// <summary>Worker threads of the forward pass (0 = one per physical core) and of expert alignment (0 = all logical processors).</summary>
    public int Threads { get; init; }
    public long ShardSize { get; init; } = WriterOptions.DefaultShardSize;
    public bool Force { get; init; }
    public bool CopyTokenizer { get; init; } = true;
    public CancellationToken Cancellation { get; init; }
    /// <summary>Receives (layers written, layers).</summary>
    public Action<long, long>? Progress { get; init; }
    /// <summary>Receives progress lines of long steps (the refit's per-layer fit).</summary>
    public Action<string>? Log { get; init; }
    internal WriterOptions Writer => new() { ShardSize = ShardSize, Force = Force };
}

/// <summary>What a surgery wrote: a one-line summary, the output's parameter count, per-layer notes, and the facts for --json.</summary>
public sealed record SurgeryResult(string Summary, long Parameters, IReadOnlyList<string> LayerNotes, JsonObject Facts);
