namespace Mistral.Merge.Merging.Methods;

/// <summary>passthrough: the one source's tensor, times <c>scale</c> when set (frankenmerges via slices).</summary>
public sealed class PassthroughMethod : MergeMethodBase
{
    private static readonly ParamDef<double> Scale = new("scale", Scope: ParamScope.PerModel);

    public override MethodSpec Spec { get; } = new("passthrough", [Scale], BaseRole.Ordinary) { CopiesInput = true, Title = "Passthrough" };

    public override string? CheckSources(int sourceCount, bool hasBase)
        => sourceCount == 1 ? null : $"passthrough takes exactly one source per slice (got {sourceCount})";

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        if (task.TryGet(Scale, 0, out var scale)) Kernels.Scale(chunk.Input(0), (float)scale, output);
        else chunk.Input(0).CopyTo(output);
    }
}
