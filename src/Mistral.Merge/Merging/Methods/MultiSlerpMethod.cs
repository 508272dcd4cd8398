using System.Buffers;

namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// multislerp: one exponential-map step of the weighted spherical mean of N vectors (whole tensors, flattened):
/// vᵢ = xᵢ − base (with a base) or xᵢ; wᵢ = f32(weightᵢ / Σ weight) (normalize_weights) or f32(weightᵢ);
/// uᵢ = vᵢ / f32(‖vᵢ‖ + eps); m = Σ wᵢuᵢ; m̂ = m / f32(‖m‖); T = Σ wᵢ(uᵢ − f32(⟨uᵢ, m̂⟩)·m̂); τ = ‖T‖ + eps;
/// out = (m̂·f32(cos τ) + T·f32(sin τ / τ))·f32(Σ wᵢ‖vᵢ‖) (+ base). When ‖m‖ &lt; eps two vectors are mixed linearly
/// (more is an error). Element-wise maths is float32, norms and dots float64. Each norm and dot is one reduction pass
/// that recomputes uᵢ, m (and T) from the chunk, so memory stays bounded: ‖vᵢ‖, ‖m‖, ⟨uᵢ, m̂⟩, ‖T‖.
/// </summary>
public sealed class MultiSlerpMethod : MergeMethodBase
{
    private static readonly ParamDef<bool> NormalizeWeights = new("normalize_weights", true);
    private static readonly ParamDef<double> Eps = new("eps", 1e-8, Range: new(0, double.PositiveInfinity));
    private static readonly ParamDef<double> Weight = new("weight", Required: true, Scope: ParamScope.PerModel);

    public override MethodSpec Spec { get; } = new("multislerp", [NormalizeWeights, Eps, Weight], BaseRole.Optional) { SameShapes = true, Title = "Multi-SLERP" };

    public override string? CheckSources(int sourceCount, bool hasBase)
        => sourceCount - (hasBase ? 1 : 0) >= 1 ? null : "multislerp needs at least one model besides the base";

    /// <summary>normalize_weights divides by Σ weight: a zero sum is refused when planning (mergekit writes NaN).</summary>
    public override string? CheckTask(MethodTask task, IReadOnlyList<string> models)
    {
        if (!task.Get(NormalizeWeights) || Others(task).Any(i => !task.PerModel[i].IsSet(Weight))) return null;
        if (Others(task).Sum(i => task.Get(Weight, i)) != 0) return null;
        var weights = string.Join(", ", Others(task).Select(i => $"{models[i]} {MergeTask.Fmt(task.Get(Weight, i))}"));
        return $"multislerp: all-zero weight sum for tensor '{task.OutputName}' ({weights}); normalize_weights would divide by 0";
    }

    private static int[] Others(MethodTask task) => Enumerable.Range(0, task.Count).Where(i => i != task.BaseIndex).ToArray();

    private enum Phase { Norms, Mean, Dots, Tangent, Done }

    private sealed class State(int n)
    {
        public Phase Phase;
        public readonly double[] Sq = new double[n], Dot = new double[n];
        public readonly float[] W = new float[n], Div = new float[n], FDot = new float[n];
        public double MSq, TSq;
        public float MNorm, Cos, SinOverTau, Scale;
        public bool Linear;
    }

    public override bool NeedsReduction(MethodTask task) => Others(task).Length > 1;

    public override object? Begin(MethodTask task)
    {
        var others = Others(task);
        var s = new State(task.Count);
        double sum = others.Sum(i => task.Get(Weight, i));
        foreach (int i in others) s.W[i] = (float)(task.Get(NormalizeWeights) ? task.Get(Weight, i) / sum : task.Get(Weight, i));
        return s;
    }

    /// <summary>vᵢ of the chunk into <paramref name="v"/>.</summary>
    private static void V(MethodTask task, Chunk chunk, int i, Span<float> v)
    {
        chunk.Input(i).CopyTo(v);
        if (task.BaseIndex >= 0) Kernels.SubtractInPlace(v, chunk.Input(task.BaseIndex));
    }

    /// <summary>uᵢ = vᵢ / f32(‖vᵢ‖ + eps) for every other input, in place of the given buffers.</summary>
    private static void U(State s, MethodTask task, Chunk chunk, float[][] u)
    {
        foreach (int i in Others(task))
        {
            var ui = u[i].AsSpan(0, chunk.Length);
            V(task, chunk, i, ui);
            float div = s.Div[i];
            for (int e = 0; e < ui.Length; e++) ui[e] /= div;
        }
    }

    /// <summary>m = Σ wᵢuᵢ (float32, source order), or m̂ = m / f32(‖m‖) once that is known.</summary>
    private static void Mean(State s, MethodTask task, float[][] u, Span<float> m, bool unit)
    {
        m.Clear();
        foreach (int i in Others(task))
        {
            var ui = u[i];
            float w = s.W[i];
            for (int e = 0; e < m.Length; e++) m[e] += w * ui[e];
        }
        if (unit) for (int e = 0; e < m.Length; e++) m[e] /= s.MNorm;
    }

    /// <summary>T = Σ wᵢ(uᵢ − f32(⟨uᵢ, m̂⟩)·m̂) (float32, source order).</summary>
    private static void Tangent(State s, MethodTask task, float[][] u, ReadOnlySpan<float> mh, Span<float> t)
    {
        t.Clear();
        foreach (int i in Others(task))
        {
            var ui = u[i];
            float w = s.W[i], d = s.FDot[i];
            for (int e = 0; e < t.Length; e++) t[e] += w * (ui[e] - d * mh[e]);
        }
    }

    /// <summary>Rented chunk-sized buffers: uᵢ per other input, m (or m̂) and T.</summary>
    private sealed class Scratch : IDisposable
    {
        public readonly float[][] U;
        public readonly float[] M, T;

        public Scratch(MethodTask task, int length)
        {
            U = new float[task.Count][];
            foreach (int i in Others(task)) U[i] = ArrayPool<float>.Shared.Rent(length);
            M = ArrayPool<float>.Shared.Rent(length);
            T = ArrayPool<float>.Shared.Rent(length);
        }

        public void Dispose()
        {
            foreach (var a in U) if (a != null) ArrayPool<float>.Shared.Return(a);
            ArrayPool<float>.Shared.Return(M);
            ArrayPool<float>.Shared.Return(T);
        }
    }

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        if (s.Phase == Phase.Norms)
        {
            var v = ArrayPool<float>.Shared.Rent(chunk.Length);
            try
            {
                foreach (int i in Others(task))
                {
                    var vi = v.AsSpan(0, chunk.Length);
                    V(task, chunk, i, vi);
                    s.Sq[i] += Kernels.Dot(vi, vi);
                }
            }
            finally { ArrayPool<float>.Shared.Return(v); }
            return;
        }
        using var b = new Scratch(task, chunk.Length);
        var m = b.M.AsSpan(0, chunk.Length);
        U(s, task, chunk, b.U);
        Mean(s, task, b.U, m, unit: s.Phase != Phase.Mean);
        switch (s.Phase)
        {
            case Phase.Mean: s.MSq += Kernels.Dot(m, m); break;
            case Phase.Dots:
                foreach (int i in Others(task)) s.Dot[i] += Kernels.Dot(b.U[i].AsSpan(0, chunk.Length), m);
                break;
            case Phase.Tangent:
                var t = b.T.AsSpan(0, chunk.Length);
                Tangent(s, task, b.U, m, t);
                s.TSq += Kernels.Dot(t, t);
                break;
        }
    }

    public override bool Finish(object? state, MethodTask task)
    {
        var s = (State)state!;
        var others = Others(task);
        double eps = task.Get(Eps);
        switch (s.Phase)
        {
            case Phase.Norms:
                foreach (int i in others) s.Div[i] = (float)(Math.Sqrt(s.Sq[i]) + eps);
                double scale = 0;
                foreach (int i in others) scale += s.W[i] * Math.Sqrt(s.Sq[i]);
                s.Scale = (float)scale;
                s.Phase = Phase.Mean;
                return true;
            case Phase.Mean:
                double norm = Math.Sqrt(s.MSq);
                if (norm < eps)
                {
                    if (others.Length > 2)
                        throw new MergeException($"multislerp: the weighted mean of the {others.Length} directions of tensor '{task.OutputName}' is zero (‖m‖ < eps); it has no direction");
                    s.Linear = true;
                    s.Phase = Phase.Done;
                    return false;
                }
                s.MNorm = (float)norm;
                s.Phase = Phase.Dots;
                return true;
            case Phase.Dots:
                foreach (int i in others) s.FDot[i] = (float)s.Dot[i];
                s.Phase = Phase.Tangent;
                return true;
            default:
                double tau = Math.Sqrt(s.TSq) + eps;
                s.Cos = (float)Math.Cos(tau);
                s.SinOverTau = (float)(Math.Sin(tau) / tau);
                s.Phase = Phase.Done;
                return false;
        }
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var others = Others(task);
        if (others.Length == 1)
        {
            chunk.Input(others[0]).CopyTo(output);
            return;
        }
        var s = (State)state!;
        if (s.Linear)
        {
            // ‖m‖ < eps with two vectors: w₁v₁ + w₂v₂ (+ base).
            output.Clear();
            foreach (int i in others)
            {
                var v = chunk.Input(i);
                if (task.BaseIndex >= 0) Kernels.SubtractInPlace(v, chunk.Input(task.BaseIndex));
                for (int e = 0; e < output.Length; e++) output[e] += s.W[i] * v[e];
            }
        }
        else
        {
            using var b = new Scratch(task, chunk.Length);
            var mh = b.M.AsSpan(0, chunk.Length);
            var t = b.T.AsSpan(0, chunk.Length);
            U(s, task, chunk, b.U);
            Mean(s, task, b.U, mh, unit: true);
            Tangent(s, task, b.U, mh, t);
            for (int e = 0; e < t.Length; e++) output[e] = (mh[e] * s.Cos + t[e] * s.SinOverTau) * s.Scale;
        }
        if (task.BaseIndex >= 0) Kernels.AddScaled(output, chunk.Input(task.BaseIndex), 1f);
    }
}
