using System.Buffers;

namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// sce (select, calculate, erase) on δᵢ = xᵢ − base. Select (select_topk &lt; 1): keep the k positions of largest
/// variance across models, var_j = f32(mean_i (δᵢⱼ − μⱼ)²) in float64, k = trunc(f32(f32(nz)·f32(select_topk))) with nz
/// the non-zero variances (ties: lower flat index), zero the rest in every δᵢ. Calculate: mᵢ = f32(mean δᵢ²),
/// wᵢ = f32(mᵢ / Σm), or f32(1/N) when |Σm| &lt; 1e-6. Erase: the majority sign sⱼ of the float32 Σᵢ δᵢⱼ (≥ 0: +1);
/// out = base + Σᵢ wᵢ·keepᵢⱼ·δᵢⱼ / max(Σᵢ wᵢ·keepᵢⱼ, 1e-6). Reduction passes: nz, the selection's counting passes over
/// the variances (bounded memory, as ties selects), then the weights' sums of squares.
/// </summary>
public sealed class SceMethod : MergeMethodBase
{
    private static readonly ParamDef<double> SelectTopK = new("select_topk", 1.0, Range: new(double.NegativeInfinity, double.PositiveInfinity)
    { Warn = k => k <= 0 ? "every task vector is zeroed: the output is the base model" : k > 1 ? "values above 1 keep every position, as 1 does" : null });
    private static readonly ParamDef<bool> Int8Mask = new("int8_mask", false);

    public override MethodSpec Spec { get; } = new("sce", [SelectTopK, Int8Mask], BaseRole.Required) { SameShapes = true, Title = "SCE", Paper = "https://arxiv.org/abs/2408.07990" };

    public override string? CheckSources(int sourceCount, bool hasBase) => hasBase ? null : "sce needs the base model among the sources";

    private enum Phase { CountNonZero, Select, Weights, Done }

    private sealed class State(int n)
    {
        public Phase Phase;
        public long NonZero;
        public MagnitudeSelector? Selector;
        public readonly double[] Squares = new double[n];
        public readonly float[] W = new float[n];
    }

    private static bool Selects(MethodTask task) => task.Get(SelectTopK) < 1;

    public override bool NeedsReduction(MethodTask task) => task.Count > 1;

    public override object? Begin(MethodTask task)
    {
        var s = new State(task.Count);
        double topk = task.Get(SelectTopK);
        if (!Selects(task)) s.Phase = Phase.Weights;
        else if (topk <= 0) { s.Selector = MagnitudeSelector.TopK(task.Elements, 0); s.Phase = Phase.Weights; }
        return s;
    }

    /// <summary>f32 of the population variance across the other models of each element (float64).</summary>
    private static void Variances(MethodTask task, Chunk chunk, Span<float> var)
    {
        var b = chunk.Inputs[task.BaseIndex];
        int n = task.Count - 1;
        for (int e = 0; e < chunk.Length; e++)
        {
            double sum = 0;
            for (int i = 0; i < task.Count; i++) if (i != task.BaseIndex) sum += chunk.Inputs[i][e] - b[e];
            double mu = sum / n, sq = 0;
            for (int i = 0; i < task.Count; i++)
            {
                if (i == task.BaseIndex) continue;
                double d = (chunk.Inputs[i][e] - b[e]) - mu;
                sq += d * d;
            }
            var[e] = (float)(sq / n);
        }
    }

    /// <summary>The kept positions of a chunk (all when nothing is selected), as a mask of 1s and 0s.</summary>
    private static void Kept(State s, MethodTask task, Chunk chunk, Span<float> keep)
    {
        if (s.Selector == null) { keep.Fill(1f); return; }
        Variances(task, chunk, keep);
        s.Selector.Mask(keep, chunk.FlatOffset(task.Cols));
        for (int e = 0; e < keep.Length; e++) keep[e] = keep[e] != 0 ? 1f : 0f;
    }

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        var scratch = ArrayPool<float>.Shared.Rent(chunk.Length);
        try
        {
            var buf = scratch.AsSpan(0, chunk.Length);
            switch (s.Phase)
            {
                case Phase.CountNonZero:
                    Variances(task, chunk, buf);
                    foreach (float v in buf) if (v != 0) s.NonZero++;
                    break;
                case Phase.Select:
                    Variances(task, chunk, buf);
                    s.Selector!.Count(buf, chunk.FlatOffset(task.Cols));
                    break;
                case Phase.Weights:
                    Kept(s, task, chunk, buf);
                    var b = chunk.Inputs[task.BaseIndex];
                    for (int i = 0; i < task.Count; i++)
                    {
                        if (i == task.BaseIndex) continue;
                        var x = chunk.Inputs[i];
                        double sq = 0;
                        for (int e = 0; e < chunk.Length; e++)
                        {
                            float d = (x[e] - b[e]) * buf[e];
                            sq += (double)d * d;
                        }
                        s.Squares[i] += sq;
                    }
                    break;
            }
        }
        finally { ArrayPool<float>.Shared.Return(scratch); }
    }

    public override bool Finish(object? state, MethodTask task)
    {
        var s = (State)state!;
        switch (s.Phase)
        {
            case Phase.CountNonZero:
                long k = (long)(float)((float)s.NonZero * (float)task.Get(SelectTopK));
                s.Selector = MagnitudeSelector.TopK(task.Elements, k);
                s.Phase = s.Selector.NeedsPass ? Phase.Select : Phase.Weights;
                return true;
            case Phase.Select:
                s.Selector!.EndPass();
                if (!s.Selector.NeedsPass) s.Phase = Phase.Weights;
                return true;
            default:
                Weights(s, task);
                s.Phase = Phase.Done;
                return false;
        }
    }

    private static void Weights(State s, MethodTask task)
    {
        int n = task.Count - 1;
        var m = new float[task.Count];
        double sum = 0;
        for (int i = 0; i < task.Count; i++)
        {
            if (i == task.BaseIndex) continue;
            m[i] = (float)(s.Squares[i] / task.Elements);
            sum += m[i];
        }
        for (int i = 0; i < task.Count; i++)
            if (i != task.BaseIndex) s.W[i] = Math.Abs(sum) < 1e-6 ? (float)(1.0 / n) : (float)(m[i] / sum);
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var b = chunk.Input(task.BaseIndex);
        if (task.Count == 1) { b.CopyTo(output); return; }
        var s = (State)state!;
        // The kept positions go to the output buffer first; then δ in place of each other input, masked.
        Kept(s, task, chunk, output);
        for (int i = 0; i < task.Count; i++)
        {
            if (i == task.BaseIndex) continue;
            var d = chunk.Input(i);
            Kernels.SubtractInPlace(d, b);
            for (int e = 0; e < d.Length; e++) d[e] *= output[e];
        }
        for (int e = 0; e < chunk.Length; e++)
        {
            float sum = 0;
            for (int i = 0; i < task.Count; i++) if (i != task.BaseIndex) sum += chunk.Inputs[i][e];
            float sign = sum >= 0 ? 1f : -1f;
            float num = 0, den = 0;
            for (int i = 0; i < task.Count; i++)
            {
                if (i == task.BaseIndex) continue;
                float d = chunk.Inputs[i][e];
                if ((d > 0 ? 1f : d < 0 ? -1f : 0f) != sign) continue;
                num += s.W[i] * d;
                den += s.W[i];
            }
            output[e] = b[e] + num / Math.Max(den, 1e-6f);
        }
    }
}
