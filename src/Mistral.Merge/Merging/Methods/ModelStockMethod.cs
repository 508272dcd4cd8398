using System.Numerics.Tensors;

namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// model_stock: offsets oᵢ = wᵢ − w₀, cos = mean over pairs of ⟨oᵢ,oⱼ⟩ / max(‖oᵢ‖‖oⱼ‖, 1e-6) clamped
/// to [-1, 1] (per row with filter_wise), t = N·cos / (1 + (N−1)·cos), out = t·mean(wᵢ) + (1−t)·w₀.
/// </summary>
public sealed class ModelStockMethod : MergeMethodBase
{
    private static readonly ParamDef<bool> FilterWise = new("filter_wise", false);

    public override MethodSpec Spec { get; } = new("model_stock", [FilterWise], BaseRole.Required) { Title = "Model Stock", Paper = "https://arxiv.org/abs/2403.19522" };

    public override string? CheckSources(int sourceCount, bool hasBase)
        => hasBase && sourceCount >= 3 ? null : $"model_stock needs the base and at least two other models (got {(hasBase ? $"{sourceCount - 1} besides the base" : $"{sourceCount} and no base")})";

    private sealed class State(int n) { public readonly double[] Sums = new double[n * n]; public float T; }

    public override bool NeedsReduction(MethodTask task) => !task.Get(FilterWise);
    public override object? Begin(MethodTask task) => new State(task.Count);

    private static int[] Others(MethodTask task) => Enumerable.Range(0, task.Count).Where(i => i != task.BaseIndex).ToArray();

    /// <summary>Adds Σ oᵢoⱼ (float32 offsets, float64 products) over [start, start+len) into sums[i*n+j].</summary>
    private static void Pairs(float[][] inputs, int baseIndex, int[] others, int start, int len, double[] sums)
    {
        int n = others.Length;
        Span<float> o = stackalloc float[n];
        var b = inputs[baseIndex];
        for (int e = start; e < start + len; e++)
        {
            for (int i = 0; i < n; i++) o[i] = inputs[others[i]][e] - b[e];
            for (int i = 0; i < n; i++)
                for (int j = i; j < n; j++) sums[i * n + j] += (double)o[i] * o[j];
        }
    }

    private static float T(double[] sums, int n)
    {
        double cos = 0; int pairs = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
            {
                double norm = Math.Sqrt(sums[i * n + i]) * Math.Sqrt(sums[j * n + j]);
                cos += Math.Clamp(sums[i * n + j] / Math.Max(norm, 1e-6), -1, 1);
                pairs++;
            }
        cos /= pairs;
        return (float)(n * cos / (1 + (n - 1) * cos));
    }

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var others = Others(task);
        Pairs(chunk.Inputs, task.BaseIndex, others, 0, chunk.Length, ((State)state!).Sums);
    }

    public override bool Finish(object? state, MethodTask task)
    {
        var s = (State)state!;
        s.T = T(s.Sums, task.Count - 1);
        return false;
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var s = (State)state!;
        var others = Others(task);
        int n = others.Length;
        // mean(wᵢ): a float32 running sum, then a division by N.
        chunk.Input(others[0]).CopyTo(output);
        for (int i = 1; i < n; i++) TensorPrimitives.Add(output, chunk.Input(others[i]), output);
        TensorPrimitives.Divide(output, (float)n, output);
        var w0 = chunk.Input(task.BaseIndex);
        if (!task.Get(FilterWise))
        {
            Kernels.Combine(output, s.T, w0, 1f - s.T, output);
            return;
        }
        int cols = (int)task.Cols;
        var sums = new double[n * n];
        for (int r = 0; r < chunk.RowCount; r++)
        {
            Array.Clear(sums);
            Pairs(chunk.Inputs, task.BaseIndex, others, r * cols, cols, sums);
            float t = T(sums, n);
            var row = output.Slice(r * cols, cols);
            Kernels.Combine(row, t, w0.Slice(r * cols, cols), 1f - t, row);
        }
    }
}
