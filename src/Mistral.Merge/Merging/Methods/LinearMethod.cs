using System.Numerics.Tensors;

namespace Mistral.Merge.Merging.Methods;

/// <summary>linear: Σ wᵢxᵢ (÷ Σ wᵢ when normalize); weights rounded to float32.</summary>
public sealed class LinearMethod : MergeMethodBase
{
    public override MethodSpec Spec { get; } = new("linear",
        [new("normalize", ParamKind.Bool, true)],
        [new("weight", ParamKind.Number, Required: true)],
        BaseRole.Ordinary);

    public override string? CheckSources(int sourceCount, bool hasBase) => sourceCount >= 1 ? null : "linear needs at least one model";

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        float w0 = (float)task.ModelNumber(0, "weight");
        Kernels.Scale(chunk.Input(0), w0, output);
        float sum = w0;
        for (int i = 1; i < task.Count; i++)
        {
            float w = (float)task.ModelNumber(i, "weight");
            Kernels.AddScaled(output, chunk.Input(i), w);
            sum += w;
        }
        if (task.Flag("normalize")) TensorPrimitives.Divide(output, sum, output);
    }
}
