using System.Numerics.Tensors;

namespace Mistral.Merge.Merging.Methods;

/// <summary>linear: Σ wᵢxᵢ (÷ Σ wᵢ when normalize); weights rounded to float32.</summary>
public sealed class LinearMethod : MergeMethodBase
{
    private static readonly ParamDef<bool> Normalize = new("normalize", true);
    private static readonly ParamDef<double> Weight = new("weight", Required: true, Scope: ParamScope.PerModel);

    public override MethodSpec Spec { get; } = new("linear", [Normalize, Weight], BaseRole.Ordinary) { Title = "Linear", Paper = "https://arxiv.org/abs/2203.05482" };

    public override string? CheckSources(int sourceCount, bool hasBase) => sourceCount >= 1 ? null : "linear needs at least one model";

    /// <summary>normalize divides by Σ weights: a zero sum would write NaN/Inf, so it is refused when planning.</summary>
    public override string? CheckTask(MethodTask task, IReadOnlyList<string> models)
    {
        if (!task.Get(Normalize) || task.PerModel.Any(p => !p.IsSet(Weight)) || WeightSum(task) != 0) return null;
        var weights = string.Join(", ", models.Select((m, i) => $"{m} {MergeTask.Fmt(task.Get(Weight, i))}"));
        return $"linear: all-zero weight sum for tensor '{task.OutputName}' ({weights}); normalize would divide by 0 (set normalize: false or change the weights)";
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        Kernels.Scale(chunk.Input(0), (float)task.Get(Weight, 0), output);
        for (int i = 1; i < task.Count; i++) Kernels.AddScaled(output, chunk.Input(i), (float)task.Get(Weight, i));
        if (task.Get(Normalize)) TensorPrimitives.Divide(output, WeightSum(task), output);
    }

    /// <summary>Σ wᵢ in float32, in source order: the divisor of normalize (<see cref="CheckTask"/> refuses 0).</summary>
    private static float WeightSum(MethodTask task)
    {
        float sum = 0;
        for (int i = 0; i < task.Count; i++) sum += (float)task.Get(Weight, i);
        return sum;
    }
}
