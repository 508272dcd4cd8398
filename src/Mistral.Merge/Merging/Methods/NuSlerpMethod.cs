namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// nuslerp: t = w₂/(w₁+w₂) (0.5 when |w₁+w₂| &lt; 1e-6); with a base, the two task vectors are
/// slerped and added to the base. Vectors: the whole tensor (nuslerp_flatten, default), else each
/// row (last axis), or each column (axis 0) with nuslerp_row_wise. No 0.9995 threshold; vectors
/// with |sin θ| &lt; 1e-8 are lerped.
/// </summary>
public sealed class NuSlerpMethod : MergeMethodBase
{
    private static readonly ParamDef<bool> Flatten = new("nuslerp_flatten", true);
    private static readonly ParamDef<bool> RowWise = new("nuslerp_row_wise", false);
    private static readonly ParamDef<double> Weight = new("weight", Required: true, Scope: ParamScope.PerModel, Range: new(double.NegativeInfinity, double.PositiveInfinity)
    { Warn = w => w < 0 ? "with a negative weight t = w2/(w1+w2) leaves [0, 1] and nuslerp extrapolates" : null });

    public override MethodSpec Spec { get; } = new("nuslerp", [Flatten, RowWise, Weight], BaseRole.Optional) { Title = "NuSLERP" };

    public override string? CheckSources(int sourceCount, bool hasBase)
        => sourceCount - (hasBase ? 1 : 0) == 2 ? null : $"nuslerp needs exactly two models besides the optional base (got {sourceCount - (hasBase ? 1 : 0)})";

    private enum Mode { Flat, Rows, Columns }

    private static Mode ModeOf(MethodTask task)
        => task.Get(Flatten) || task.Rows == 1 ? Mode.Flat : task.Get(RowWise) ? Mode.Columns : Mode.Rows;

    private sealed class State(long vectors)
    {
        public readonly double[] Aa = new double[vectors], Bb = new double[vectors], Ab = new double[vectors];
    }

    private static (int A, int B) Pair(MethodTask task)
    {
        int a = -1, b = -1;
        for (int i = 0; i < task.Count; i++)
        {
            if (i == task.BaseIndex) continue;
            if (a < 0) a = i; else b = i;
        }
        return (a, b);
    }

    public static double T(double w1, double w2) => Math.Abs(w1 + w2) < 1e-6 ? 0.5 : w2 / (w1 + w2);

    public override bool NeedsReduction(MethodTask task) => ModeOf(task) != Mode.Rows;
    public override object? Begin(MethodTask task) => new State(ModeOf(task) switch { Mode.Flat => 1, Mode.Columns => task.Cols, _ => 0 });

    /// <summary>Element e of input i as a vector component: the task vector when there is a base.</summary>
    private static float V(Chunk c, int i, int baseIndex, int e) => baseIndex < 0 ? c.Inputs[i][e] : c.Inputs[i][e] - c.Inputs[baseIndex][e];

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        var (a, b) = Pair(task);
        int cols = (int)task.Cols;
        bool flat = ModeOf(task) == Mode.Flat;
        for (int e = 0; e < chunk.Length; e++)
        {
            double x = V(chunk, a, task.BaseIndex, e), y = V(chunk, b, task.BaseIndex, e);
            int v = flat ? 0 : e % cols;
            s.Aa[v] += x * x; s.Bb[v] += y * y; s.Ab[v] += x * y;
        }
    }

    /// <summary>(c0, c1, lerp) for one vector from its float64 moments.</summary>
    public static (float C0, float C1) Coefficients(double t, double aa, double bb, double ab)
    {
        double na = Math.Max(Math.Sqrt(aa), 1e-7), nb = Math.Max(Math.Sqrt(bb), 1e-7);
        double cos = Math.Clamp(ab / (na * nb), -1, 1);
        double theta = Math.Acos(cos);
        double sin = Math.Sin(theta);
        if (Math.Abs(sin) < 1e-8) return ((float)(1 - t), (float)t);
        return ((float)(Math.Sin((1 - t) * theta) / sin), (float)(Math.Sin(t * theta) / sin));
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var s = (State)state!;
        var (a, b) = Pair(task);
        double t = T(task.Get(Weight, a), task.Get(Weight, b));
        var va = chunk.Input(a);
        var vb = chunk.Input(b);
        if (task.BaseIndex >= 0)
        {
            Kernels.SubtractInPlace(va, chunk.Input(task.BaseIndex));
            Kernels.SubtractInPlace(vb, chunk.Input(task.BaseIndex));
        }
        int cols = (int)task.Cols;
        switch (ModeOf(task))
        {
            case Mode.Flat:
                {
                    var (c0, c1) = Coefficients(t, s.Aa[0], s.Bb[0], s.Ab[0]);
                    Kernels.Combine(va, c0, vb, c1, output);
                    break;
                }
            case Mode.Rows:
                for (int r = 0; r < chunk.RowCount; r++)
                {
                    var ra = va.Slice(r * cols, cols);
                    var rb = vb.Slice(r * cols, cols);
                    double aa = 0, bb = 0, ab = 0;
                    Kernels.Moments(ra, rb, ref aa, ref bb, ref ab);
                    var (c0, c1) = Coefficients(t, aa, bb, ab);
                    Kernels.Combine(ra, c0, rb, c1, output.Slice(r * cols, cols));
                }
                break;
            case Mode.Columns:
                {
                    var c0s = new float[cols];
                    var c1s = new float[cols];
                    for (int c = 0; c < cols; c++) (c0s[c], c1s[c]) = Coefficients(t, s.Aa[c], s.Bb[c], s.Ab[c]);
                    for (int e = 0; e < chunk.Length; e++) output[e] = c0s[e % cols] * va[e] + c1s[e % cols] * vb[e];
                    break;
                }
        }
        if (task.BaseIndex >= 0) Kernels.AddScaled(output, chunk.Input(task.BaseIndex), 1f);
    }
}
