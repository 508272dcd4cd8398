namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// nearswap: the other model where it is near the base, the base where it is far. Per element, in float32:
/// w = clamp(f32(t) · (1 / max(|base − x|, 1e-6)), 0, 1) (the reciprocal rounded first, as mergekit's t / d
/// evaluates), out = w·x + (1 − w)·base. Exactly one other model; none gives the base.
/// </summary>
public sealed class NearSwapMethod : MergeMethodBase
{
    private static readonly ParamDef<double> T = new("t", Required: true, Range: new(double.NegativeInfinity, double.PositiveInfinity)
    { Warn = t => t <= 0 ? "the output is the base model" : null });

    public override MethodSpec Spec { get; } = new("nearswap", [T], BaseRole.Required) { SameShapes = true, Title = "NearSwap" };

    public override string? CheckSources(int sourceCount, bool hasBase)
        => !hasBase ? "nearswap needs the base model among the sources"
         : sourceCount > 2 ? $"nearswap takes the base and exactly one other model (got {sourceCount - 1} besides the base)" : null;

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var b = chunk.Input(task.BaseIndex);
        if (task.Count == 1)
        {
            b.CopyTo(output);
            return;
        }
        var x = chunk.Input(task.BaseIndex == 0 ? 1 : 0);
        float t = (float)task.Get(T);
        for (int e = 0; e < output.Length; e++)
        {
            float d = Math.Max(Math.Abs(b[e] - x[e]), 1e-6f);
            float w = Math.Clamp(t * (1f / d), 0f, 1f);
            output[e] = w * x[e] + (1f - w) * b[e];
        }
    }
}
