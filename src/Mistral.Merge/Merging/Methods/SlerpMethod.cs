namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// slerp between the base (t = 0) and the other model over the whole tensor as one vector.
/// Norms and the dot product are float64; |cos| &gt; 0.9995 falls back to lerp; the result is
/// s0·a + s1·b on the original (unnormalised) tensors with s0, s1 rounded to float32.
/// </summary>
public sealed class SlerpMethod : MergeMethodBase
{
    public const double DotThreshold = 0.9995;
    public const double Epsilon = 1e-8;

    private static readonly ParamDef<double> T = new("t", Required: true, Range: new(0, 1, Meaning: "0 gives the base model, 1 the other one"));

    public override MethodSpec Spec { get; } = new("slerp", [T], BaseRole.Required) { Title = "SLERP", Paper = "https://en.wikipedia.org/wiki/Slerp" };

    public override string? CheckSources(int sourceCount, bool hasBase)
        => sourceCount == 2 && hasBase ? null : $"slerp needs exactly two models, the base and one other (got {sourceCount}{(hasBase ? "" : ", without the base")})";

    private sealed class State { public double Aa, Bb, Ab; public float C0, C1; }

    public override bool NeedsReduction(MethodTask task) => true;
    public override object? Begin(MethodTask task) => new State();

    private static int Other(MethodTask task) => task.BaseIndex == 0 ? 1 : 0;

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        Kernels.Moments(chunk.Input(task.BaseIndex), chunk.Input(Other(task)), ref s.Aa, ref s.Bb, ref s.Ab);
    }

    public override bool Finish(object? state, MethodTask task)
    {
        var s = (State)state!;
        (s.C0, s.C1) = Coefficients(task.Get(T), s.Aa, s.Bb, s.Ab);
        return false;
    }

    /// <summary>(s0, s1) from t and the float64 moments Σa², Σb², Σab.</summary>
    public static (float, float) Coefficients(double t, double aa, double bb, double ab)
    {
        double na = Math.Sqrt(aa), nb = Math.Sqrt(bb);
        double da = na > Epsilon ? na : 1, db = nb > Epsilon ? nb : 1;
        double dot = ab / (da * db);
        if (Math.Abs(dot) > DotThreshold) return ((float)(1 - t), (float)t);
        double theta = Math.Acos(Math.Clamp(dot, -1, 1));
        double sin = Math.Sin(theta);
        double thetaT = theta * t;
        return ((float)(Math.Sin(theta - thetaT) / sin), (float)(Math.Sin(thetaT) / sin));
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var s = (State)state!;
        Kernels.Combine(chunk.Input(task.BaseIndex), s.C0, chunk.Input(Other(task)), s.C1, output);
    }
}
