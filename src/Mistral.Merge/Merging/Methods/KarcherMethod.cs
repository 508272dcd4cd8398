namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// karcher: the Riemannian (Karcher) mean of the inputs' directions on the sphere, scaled by their mean norm. Inputs
/// are all sources (the base model too), with equal weights α = 1/N. eᵢ = xᵢ / f32(‖xᵢ‖) (zeros when ‖xᵢ‖ = 0); V = the
/// inputs with ‖xᵢ‖ &gt; tol, aᵢ = 1/|V|; u₀ = Σ_V f32(aᵢ)·eᵢ normalised (eᵢ of the first in V when ‖u₀‖ &lt; tol); then
/// max_iter steps of T = Σ_V f32(aᵢθᵢ / sin θᵢ)·(eᵢ − f32(dᵢ)·u) (dᵢ = clamp(⟨u, eᵢ⟩), θᵢ = acos dᵢ, skipped when
/// θᵢ &lt; tol; stop when ‖T‖ &lt; tol), u ← f32(cos‖T‖)·u + f32(sin‖T‖)·T / f32(‖T‖), renormalised;
/// out = f32(Σ α‖xᵢ‖)·u.
/// <para>
/// Every u and T is a combination of the inputs, so one reduction pass takes their Gram matrix ⟨xᵢ, xⱼ⟩ (float64) and
/// the iteration runs on the combination's coefficients in float64 (the f32 rounding points applied to the scalars
/// the spec rounds): memory is N² numbers whatever the tensor's size, instead of two tensor-sized vectors kept across
/// max_iter passes. The output is Σᵢ f32(cᵢ)·xᵢ in float32; it differs from an element-wise float32 iteration by
/// rounding only (a few ulp).
/// </para>
/// </summary>
public sealed class KarcherMethod : MergeMethodBase
{
    private static readonly ParamDef<double> MaxIter = new("max_iter", 10.0, Range: new(0, double.PositiveInfinity, Meaning: "a whole number of iterations"));
    private static readonly ParamDef<double> Tol = new("tol", 1e-5, Range: new(0, double.PositiveInfinity));

    public override MethodSpec Spec { get; } = new("karcher", [MaxIter, Tol], BaseRole.Ordinary) { SameShapes = true, CopiesInput = true, Title = "Karcher Mean", Paper = "https://en.wikipedia.org/wiki/Karcher_mean" };

    public override string? CheckSources(int sourceCount, bool hasBase) => sourceCount >= 1 ? null : "karcher needs at least one model";

    /// <summary>max_iter must be a whole number (mergekit's validation rejects 2.5).</summary>
    public override string? CheckTask(MethodTask task, IReadOnlyList<string> models)
        => task.Get(MaxIter) is var m && m != Math.Floor(m) ? $"karcher: max_iter must be a whole number, got {MergeTask.Fmt(m)} (tensor '{task.OutputName}')" : null;

    private sealed class State(int n)
    {
        public readonly double[] Gram = new double[n * n];
        public float[] C = new float[n];
    }

    public override bool NeedsReduction(MethodTask task) => task.Count > 1;
    public override object? Begin(MethodTask task) => new State(task.Count);

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        int n = task.Count;
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++)
                s.Gram[i * n + j] += Kernels.Dot(chunk.Input(i), chunk.Input(j));
    }

    public override bool Finish(object? state, MethodTask task)
    {
        var s = (State)state!;
        int n = task.Count;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) s.Gram[i * n + j] = s.Gram[j * n + i];
        s.C = Coefficients(s.Gram, n, (int)task.Get(MaxIter), task.Get(Tol));
        return false;
    }

    /// <summary>The output's coefficients on the inputs, from their Gram matrix (row-major n×n).</summary>
    public static float[] Coefficients(double[] gram, int n, int maxIter, double tol)
    {
        var norm = new double[n];
        var fnorm = new float[n];
        for (int i = 0; i < n; i++) { norm[i] = Math.Sqrt(gram[i * n + i]); fnorm[i] = (float)norm[i]; }
        // Ĝ = ⟨eᵢ, eⱼ⟩ with eᵢ = xᵢ / f32(‖xᵢ‖) (zero when ‖xᵢ‖ = 0).
        var g = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                g[i * n + j] = norm[i] == 0 || norm[j] == 0 ? 0 : gram[i * n + j] / ((double)fnorm[i] * fnorm[j]);
        var valid = Enumerable.Range(0, n).Where(i => norm[i] > tol).ToArray();
        var c = new float[n];
        if (valid.Length == 0) return c;
        double a = 1.0 / valid.Length;
        var u = new double[n];
        foreach (int i in valid) u[i] = (float)a;
        double un = Norm(g, u);
        if (un < tol) { Array.Clear(u); u[valid[0]] = 1; }
        else Divide(u, (float)un);
        var t = new double[n];
        for (int iter = 0; iter < maxIter; iter++)
        {
            Array.Clear(t);
            foreach (int i in valid)
            {
                double d = 0;
                for (int j = 0; j < n; j++) d += u[j] * g[j * n + i];
                d = Math.Clamp(d, -1, 1);
                double theta = Math.Acos(d);
                if (theta < tol) continue;
                float f = (float)(a * theta / Math.Sin(theta));
                float fd = (float)d;
                t[i] += f;
                for (int j = 0; j < n; j++) t[j] -= (double)f * fd * u[j];
            }
            double tn = Norm(g, t);
            if (tn < tol) break;
            float cos = (float)Math.Cos(tn), sin = (float)Math.Sin(tn), ftn = (float)tn;
            for (int j = 0; j < n; j++) u[j] = cos * u[j] + sin * (t[j] / ftn);
            un = Norm(g, u);
            if (un > tol) Divide(u, (float)un);
        }
        double scale = 0;
        for (int i = 0; i < n; i++) scale += norm[i] / n;
        float fs = (float)scale;
        for (int i = 0; i < n; i++) c[i] = norm[i] == 0 ? 0 : (float)(fs * u[i] / fnorm[i]);
        return c;
    }

    private static double Norm(double[] g, double[] v)
    {
        int n = v.Length;
        double s = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) s += v[i] * g[i * n + j] * v[j];
        return Math.Sqrt(Math.Max(s, 0));
    }

    private static void Divide(double[] v, float by)
    {
        for (int i = 0; i < v.Length; i++) v[i] /= by;
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        if (task.Count == 1) { chunk.Input(0).CopyTo(output); return; }
        var s = (State)state!;
        Kernels.Scale(chunk.Input(0), s.C[0], output);
        for (int i = 1; i < task.Count; i++) Kernels.AddScaled(output, chunk.Input(i), s.C[i]);
    }
}
