using System.Buffers;
using System.Numerics.Tensors;

namespace Mistral.Merge.Merging.Methods;

public enum Sparsification { None, Magnitude, MagnitudeOutliers, Random, DellaMagprune }

/// <summary>
/// The task-vector family (task_arithmetic, ties, dare_*, breadcrumbs*, della*): δᵢ = xᵢ − base,
/// sparsified per model by its density, optionally L1-rescaled, weighted, mixed with or without
/// TIES sign consensus, normalised, multiplied by lambda, and added to the base.
/// </summary>
public abstract class TaskVectorMethod(string name, Sparsification sparsification, bool consensus, bool defaultNormalize, bool defaultRescale)
    : MergeMethodBase
{
    public Sparsification Sparsification { get; } = sparsification;
    public bool Consensus { get; } = consensus;

    public override MethodSpec Spec { get; } = new(name,
        [
            new("normalize", ParamKind.Bool, defaultNormalize),
            new("lambda", ParamKind.Number, 1.0, Range: new(double.NegativeInfinity, double.PositiveInfinity)
                { Warn = l => l == 0 ? "the output is the base model" : l < 0 ? "the task vectors are subtracted from the base" : null }),
            new("rescale", ParamKind.Bool, defaultRescale),
            new("int8_mask", ParamKind.Bool, false),
        ],
        [
            new("weight", ParamKind.Number, Required: true),
            new("density", ParamKind.Number, 1.0, Range: DensityRange(sparsification)),
            .. sparsification == Sparsification.MagnitudeOutliers
                ? new ParamDef[] { new("gamma", ParamKind.Number, 0.01, Range: new(0, 1, Meaning: "the fraction of the largest differences removed")) } : [],
            .. sparsification == Sparsification.DellaMagprune
                ? new ParamDef[] { new("epsilon", ParamKind.Number, 0.15, Range: new(0, 1, Meaning: "keep probabilities range over density ± epsilon")) } : [],
        ],
        BaseRole.Required);

    public override string? CheckSources(int sourceCount, bool hasBase) => hasBase ? null : $"{name} needs the base model among the sources";

    /// <summary>The kept fraction: magnitude pruning refuses to keep nothing (mergekit asserts k &gt; 0); the random ones drop the model at 0.</summary>
    private static ParamRange DensityRange(Sparsification sparsification) => sparsification == Sparsification.Magnitude
        ? new(0, 1, MinOpen: true, Meaning: "the fraction of each task vector kept; ties cannot keep nothing")
        : new(0, 1, Meaning: "the fraction of each task vector kept") { Warn = d => d == 0 && sparsification != Sparsification.None ? "the model's task vector is dropped entirely" : null };

    private bool Sparsifies(MethodTask task, int i) => Sparsification != Sparsification.None && i != task.BaseIndex && task.ModelNumber(i, "density") < 1;
    private bool AnySparse(MethodTask task) => Enumerable.Range(0, task.Count).Any(i => Sparsifies(task, i));

    public override bool NeedsWholeTensor(MethodTask task)
        => Sparsification is Sparsification.Magnitude or Sparsification.MagnitudeOutliers && AnySparse(task);

    /// <summary>A reduction pass computes the L1 rescale factors when masks are drawn chunk by chunk.</summary>
    public override bool NeedsReduction(MethodTask task)
        => task.Flag("rescale") && Sparsification is Sparsification.Random or Sparsification.DellaMagprune && AnySparse(task);

    private sealed class State(int n) { public readonly double[] Before = new double[n], After = new double[n]; public bool Reduced; }

    public override object? Begin(MethodTask task) => new State(task.Count);

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        s.Reduced = true;
        var scratch = ArrayPool<float>.Shared.Rent(chunk.Length);
        try
        {
            var b = chunk.Input(task.BaseIndex);
            for (int i = 0; i < task.Count; i++)
            {
                if (!Sparsifies(task, i)) continue;
                var d = scratch.AsSpan(0, chunk.Length);
                TensorPrimitives.Subtract(chunk.Input(i), b, d);
                s.Before[i] += Kernels.L1(d);
                Mask(task, i, chunk, d);
                s.After[i] += Kernels.L1(d);
            }
        }
        finally { ArrayPool<float>.Shared.Return(scratch); }
    }

    /// <summary>Zeroes the dropped elements of δ (a chunk of whole rows, the whole tensor for magnitude).</summary>
    private void Mask(MethodTask task, int i, Chunk chunk, Span<float> d)
    {
        double density = task.ModelNumber(i, "density");
        long n = task.Elements;
        switch (Sparsification)
        {
            case Sparsification.Magnitude:
                MagnitudeSelection.KeepTopK(d, (long)(density * n));
                break;
            case Sparsification.MagnitudeOutliers:
                {
                    long top = (long)(task.ModelNumber(i, "gamma") * n);
                    long bot = n - (long)(density * n) - top;
                    if (bot < 0) { top += bot; bot = 0; }
                    // mergekit's [bot:-top] keeps nothing when top = 0; we keep [bot:n] (documented).
                    MagnitudeSelection.KeepAscendingRange(d, bot, n - top);
                    break;
                }
            case Sparsification.Random:
                {
                    ulong key = MaskGenerator.Key(task.Seed, task.OutputName, task.Ordinals[i]);
                    long f0 = chunk.FlatOffset(task.Cols);
                    for (int e = 0; e < d.Length; e++)
                        if (!MaskGenerator.Keep(key, f0 + e, density)) d[e] = 0;
                    break;
                }
            case Sparsification.DellaMagprune:
                DellaMask(task, i, chunk, d, density);
                break;
        }
    }

    private static void DellaMask(MethodTask task, int i, Chunk chunk, Span<float> d, double density)
    {
        if (density <= 0) { d.Clear(); return; }
        double eps = task.ModelNumber(i, "epsilon");
        ulong key = MaskGenerator.Key(task.Seed, task.OutputName, task.Ordinals[i]);
        int m = (int)task.Cols;
        long f0 = chunk.FlatOffset(task.Cols);
        var keys = ArrayPool<ulong>.Shared.Rent(m);
        try
        {
            for (int r = 0; r < chunk.RowCount; r++)
            {
                var row = d.Slice(r * m, m);
                // Stable ascending rank of |δ|: sort (bits of |δ|, index) pairs.
                for (int j = 0; j < m; j++)
                {
                    float a = Math.Abs(row[j]);
                    uint bits = float.IsNaN(a) ? 0x7F800000u : BitConverter.SingleToUInt32Bits(a);
                    keys[j] = ((ulong)bits << 32) | (uint)j;
                }
                keys.AsSpan(0, m).Sort();
                for (int rank = 0; rank < m; rank++)
                {
                    int j = (int)(uint)keys[rank];
                    double p = density - eps + (m > 1 ? 2 * eps * rank / (m - 1) : 0);
                    if (!MaskGenerator.Keep(key, f0 + (long)r * m + j, p)) row[j] = 0;
                }
            }
        }
        finally { ArrayPool<ulong>.Shared.Return(keys); }
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var s = (State)state!;
        var b = chunk.Input(task.BaseIndex);
        bool rescale = task.Flag("rescale");
        Span<float> w = stackalloc float[task.Count];
        for (int i = 0; i < task.Count; i++)
        {
            if (i == task.BaseIndex) continue;
            var d = chunk.Input(i);
            Kernels.SubtractInPlace(d, b);
            if (Sparsifies(task, i))
            {
                double before = s.Reduced ? s.Before[i] : rescale ? Kernels.L1(d) : 0;
                Mask(task, i, chunk, d);
                if (rescale)
                {
                    double after = s.Reduced ? s.After[i] : Kernels.L1(d);
                    if (before >= 1e-7 && after >= 1e-7) Kernels.Scale(d, (float)(before / after), d);
                }
            }
            w[i] = (float)task.ModelNumber(i, "weight");
            Kernels.Scale(d, w[i], d);
        }
        Mix(task, chunk, w, output);
        if (task.Flag("normalize") && !Consensus)
        {
            float div = 0;
            for (int i = 0; i < task.Count; i++) if (i != task.BaseIndex) div += w[i];
            if (Math.Abs(div) < 1e-8f) div = 1;
            TensorPrimitives.Divide(output, div, output);
        }
        double lambda = task.Number("lambda");
        if (lambda != 1) TensorPrimitives.Multiply(output, (float)lambda, output);
        TensorPrimitives.Add(output, b, output);
    }

    /// <summary>output = Σ wdᵢ, or with consensus the sum of the wdᵢ agreeing with the majority sign
    /// (÷ the sum of their weights when normalize).</summary>
    private void Mix(MethodTask task, Chunk chunk, ReadOnlySpan<float> w, Span<float> output)
    {
        output.Clear();
        if (!Consensus)
        {
            for (int i = 0; i < task.Count; i++)
                if (i != task.BaseIndex) TensorPrimitives.Add(output, chunk.Input(i), output);
            return;
        }
        bool normalize = task.Flag("normalize");
        var inputs = chunk.Inputs;
        int count = task.Count, baseIndex = task.BaseIndex;
        for (int e = 0; e < chunk.Length; e++)
        {
            float sum = 0;
            for (int i = 0; i < count; i++) if (i != baseIndex) sum += inputs[i][e];
            float majority = sum >= 0 ? 1f : -1f;
            float mixed = 0, div = 0;
            for (int i = 0; i < count; i++)
            {
                if (i == baseIndex) continue;
                float v = inputs[i][e];
                if ((v > 0 ? 1f : v < 0 ? -1f : 0f) == majority) { mixed += v; div += w[i]; }
            }
            if (normalize) mixed /= div == 0 ? 1 : div;
            output[e] = mixed;
        }
    }
}
