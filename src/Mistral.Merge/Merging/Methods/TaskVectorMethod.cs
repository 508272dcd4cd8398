using System.Buffers;
using System.Numerics.Tensors;

namespace Mistral.Merge.Merging.Methods;

public enum Sparsification { None, Magnitude, MagnitudeOutliers, Random, DellaMagprune }

/// <summary>
/// The task-vector family (task_arithmetic, ties, dare_*, breadcrumbs*, della*): δᵢ = xᵢ − base,
/// sparsified per model by its density, optionally L1-rescaled, weighted, mixed with or without
/// TIES sign consensus, normalised, multiplied by lambda, and added to the base.
/// </summary>
public abstract class TaskVectorMethod : MergeMethodBase
{
    private readonly string _name;
    public Sparsification Sparsification { get; }
    public bool Consensus { get; }

    // Declarations are per instance: each method of the family owns its own (their defaults differ), and a
    // declaration takes its slot from the one spec that lists it.
    private readonly ParamDef<bool> _normalize, _rescale, _int8Mask;
    private readonly ParamDef<double> _lambda, _weight, _density, _gamma, _epsilon;

    protected TaskVectorMethod(string name, Sparsification sparsification, bool consensus, bool defaultNormalize, bool defaultRescale, string title, string paper)
    {
        _name = name;
        Sparsification = sparsification;
        Consensus = consensus;
        _normalize = new("normalize", defaultNormalize);
        _lambda = new("lambda", 1.0, Range: new(double.NegativeInfinity, double.PositiveInfinity)
        { Warn = l => l == 0 ? "the output is the base model" : l < 0 ? "the task vectors are subtracted from the base" : null });
        _rescale = new("rescale", defaultRescale);
        _int8Mask = new("int8_mask", false);
        _weight = new("weight", Required: true, Scope: ParamScope.PerModel);
        _density = new("density", 1.0, Range: DensityRange(sparsification), Scope: ParamScope.PerModel);
        _gamma = new("gamma", 0.01, Range: new(0, 1, Meaning: "the fraction of the largest differences removed"), Scope: ParamScope.PerModel);
        _epsilon = new("epsilon", 0.15, Range: new(0, 1, Meaning: "keep probabilities range over density ± epsilon"), Scope: ParamScope.PerModel);
        Spec = new(name,
            [
                _normalize, _lambda, _rescale, _int8Mask, _weight, _density,
                .. sparsification == Sparsification.MagnitudeOutliers ? new ParamDef[] { _gamma } : [],
                .. sparsification == Sparsification.DellaMagprune ? new ParamDef[] { _epsilon } : [],
            ],
            BaseRole.Required)
        {
            Title = title,
            Paper = paper,
            UsesRandomMasks = sparsification is Sparsification.Random or Sparsification.DellaMagprune,
            BaseShapesOutput = true,
        };
    }

    public override MethodSpec Spec { get; }

    public override string? CheckSources(int sourceCount, bool hasBase) => hasBase ? null : $"{_name} needs the base model among the sources";

    /// <summary>della's keep probabilities range over density ± epsilon, which must stay inside (0, 1).</summary>
    public override string? CheckInput(ParamValues modelParams, string where)
        => Sparsification == Sparsification.DellaMagprune && modelParams.TryGet(_density, out var d) && d is > 0 and < 1
           && modelParams.TryGet(_epsilon, out var e) && (d + e >= 1 || d - e <= 0)
            ? $"{_name}: density ± epsilon must lie in (0, 1) ({where}: density {d}, epsilon {e})" : null;

    /// <summary>The kept fraction: magnitude pruning refuses to keep nothing (mergekit asserts k &gt; 0); the random ones drop the model at 0.</summary>
    private static ParamRange DensityRange(Sparsification sparsification) => sparsification == Sparsification.Magnitude
        ? new(0, 1, MinOpen: true, Meaning: "the fraction of each task vector kept; ties cannot keep nothing")
        : new(0, 1, Meaning: "the fraction of each task vector kept") { Warn = d => d == 0 && sparsification != Sparsification.None ? "the model's task vector is dropped entirely" : null };

    private bool Sparsifies(MethodTask task, int i) => Sparsification != Sparsification.None && i != task.BaseIndex && task.Get(_density, i) < 1;
    private bool AnySparse(MethodTask task) => Enumerable.Range(0, task.Count).Any(i => Sparsifies(task, i));

    private bool ByMagnitude => Sparsification is Sparsification.Magnitude or Sparsification.MagnitudeOutliers;

    /// <summary>Reduction passes select by magnitude over the whole tensor, or compute the L1 rescale
    /// factors when random masks are drawn chunk by chunk.</summary>
    public override bool NeedsReduction(MethodTask task)
        => AnySparse(task) && (ByMagnitude || task.Get(_rescale) && Sparsification is Sparsification.Random or Sparsification.DellaMagprune);

    private sealed class State(int n)
    {
        /// <summary>Per model, with rescale: L1 of δ and of its kept part.</summary>
        public readonly double[] Before = new double[n], After = new double[n];
        public readonly MagnitudeReduction?[] Magnitude = new MagnitudeReduction?[n];
    }

    public override object? Begin(MethodTask task)
    {
        var s = new State(task.Count);
        if (ByMagnitude)
            for (int i = 0; i < task.Count; i++)
                if (Sparsifies(task, i)) s.Magnitude[i] = new MagnitudeReduction(Selector(task, i), task.Elements, task.Get(_rescale));
        return s;
    }

    /// <summary>Which |δ| a model keeps, over the whole tensor.</summary>
    private MagnitudeSelector Selector(MethodTask task, int i)
    {
        double density = task.Get(_density, i);
        long n = task.Elements;
        if (Sparsification == Sparsification.Magnitude) return MagnitudeSelector.TopK(n, (long)(density * n));
        long top = (long)(task.Get(_gamma, i) * n);
        long bot = n - (long)(density * n) - top;
        if (bot < 0) { top += bot; bot = 0; }
        // mergekit's [bot:-top] keeps nothing when top = 0; we keep [bot:n] (documented).
        return MagnitudeSelector.AscendingRange(n, bot, n - top);
    }

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        if (ByMagnitude) { CountMagnitudes(s, task, chunk); return; }
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
                Mask(s, task, i, chunk, d);
                s.After[i] += Kernels.L1(d);
            }
        }
        finally { ArrayPool<float>.Shared.Return(scratch); }
    }

    private const int Piece = 1 << 16;

    /// <summary>Feeds δ to each model's magnitude reduction in pieces of flat order (the inputs stay untouched).</summary>
    private static void CountMagnitudes(State s, MethodTask task, Chunk chunk)
    {
        var scratch = ArrayPool<float>.Shared.Rent(Math.Min(chunk.Length, Piece));
        try
        {
            var b = chunk.Input(task.BaseIndex);
            long f0 = chunk.FlatOffset(task.Cols);
            for (int i = 0; i < task.Count; i++)
            {
                var r = s.Magnitude[i];
                if (r == null || !r.NeedsPass) continue;
                var x = chunk.Input(i);
                for (int done = 0; done < chunk.Length; done += Piece)
                {
                    int n = Math.Min(Piece, chunk.Length - done);
                    var d = scratch.AsSpan(0, n);
                    TensorPrimitives.Subtract(x.Slice(done, n), b.Slice(done, n), d);
                    r.Count(d, f0 + done);
                }
            }
        }
        finally { ArrayPool<float>.Shared.Return(scratch); }
    }

    public override bool Finish(object? state, MethodTask task)
    {
        var s = (State)state!;
        bool again = false;
        for (int i = 0; i < task.Count; i++)
        {
            var r = s.Magnitude[i];
            if (r == null || !r.NeedsPass) continue;
            r.EndPass();
            if (r.NeedsPass) again = true;
            else if (task.Get(_rescale)) (s.Before[i], s.After[i]) = (r.Before, r.After);
        }
        return again;
    }

    /// <summary>Zeroes the dropped elements of δ (a chunk of whole rows).</summary>
    private void Mask(State s, MethodTask task, int i, Chunk chunk, Span<float> d)
    {
        double density = task.Get(_density, i);
        switch (Sparsification)
        {
            case Sparsification.Magnitude or Sparsification.MagnitudeOutliers:
                s.Magnitude[i]!.Selector.Mask(d, chunk.FlatOffset(task.Cols));
                break;
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

    private void DellaMask(MethodTask task, int i, Chunk chunk, Span<float> d, double density)
    {
        if (density <= 0) { d.Clear(); return; }
        double eps = task.Get(_epsilon, i);
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
        bool rescale = task.Get(_rescale);
        Span<float> w = stackalloc float[task.Count];
        for (int i = 0; i < task.Count; i++)
        {
            if (i == task.BaseIndex) continue;
            var d = chunk.Input(i);
            Kernels.SubtractInPlace(d, b);
            if (Sparsifies(task, i))
            {
                Mask(s, task, i, chunk, d);
                if (rescale && s.Before[i] >= 1e-7 && s.After[i] >= 1e-7) Kernels.Scale(d, (float)(s.Before[i] / s.After[i]), d);
            }
            w[i] = (float)task.Get(_weight, i);
            Kernels.Scale(d, w[i], d);
        }
        Mix(task, chunk, w, output);
        if (task.Get(_normalize) && !Consensus)
        {
            float div = 0;
            for (int i = 0; i < task.Count; i++) if (i != task.BaseIndex) div += w[i];
            if (Math.Abs(div) < 1e-8f) div = 1;
            TensorPrimitives.Divide(output, div, output);
        }
        double lambda = task.Get(_lambda);
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
        bool normalize = task.Get(_normalize);
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
