namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// ram and ramplus_tl: δᵢ = xᵢ − base; δᵢⱼ is active when |δᵢⱼ| &gt; f32(epsilon); cⱼ counts the active models.
/// cⱼ = 0 gives the base, cⱼ = 1 base + δᵢⱼ of the one active model (ramplus_tl: base + λᵢ·δᵢⱼ), cⱼ ≥ 2
/// base + Σ_active (δᵢⱼ / cⱼ) (each divided, then summed in source order). All element-wise maths is float32.
/// ramplus_tl's λᵢ = f32(1 + r·min(max(ρᵢ, 0), alpha)) with ρᵢ = sharedᵢ / max(uniqueᵢ, epsilon) (float64), where
/// sharedᵢ / uniqueᵢ count model i's active positions with c ≥ 2 / c = 1 over the whole tensor: one reduction pass.
/// </summary>
public abstract class RamFamilyMethod : MergeMethodBase
{
    private readonly string _name;
    private readonly bool _plus;
    private readonly ParamDef<double> _epsilon, _r, _alpha;

    protected RamFamilyMethod(string name, bool plus)
    {
        _name = name;
        _plus = plus;
        _epsilon = new("epsilon", 1e-5);
        _r = new("r", 0.1);
        _alpha = new("alpha", 0.2);
        Spec = new(name, plus ? [_epsilon, _r, _alpha] : [_epsilon], BaseRole.Required) { SameShapes = true, Title = plus ? "RAM+ (ramplus_tl)" : "RAM" };
    }

    public override MethodSpec Spec { get; }

    public override string? CheckSources(int sourceCount, bool hasBase) => hasBase ? null : $"{_name} needs the base model among the sources";

    private sealed class State(int n)
    {
        public readonly long[] Shared = new long[n], Unique = new long[n];
        public readonly float[] Lambda = new float[n];
    }

    public override bool NeedsReduction(MethodTask task) => _plus && task.Count > 1;
    public override object? Begin(MethodTask task) => new State(task.Count);

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        float eps = (float)task.Get(_epsilon);
        var b = chunk.Input(task.BaseIndex);
        int n = task.Count;
        Span<bool> active = stackalloc bool[n];
        for (int e = 0; e < chunk.Length; e++)
        {
            int c = 0;
            for (int i = 0; i < n; i++)
            {
                active[i] = i != task.BaseIndex && Math.Abs(chunk.Inputs[i][e] - b[e]) > eps;
                if (active[i]) c++;
            }
            if (c == 0) continue;
            for (int i = 0; i < n; i++)
                if (active[i]) { if (c == 1) s.Unique[i]++; else s.Shared[i]++; }
        }
    }

    public override bool Finish(object? state, MethodTask task)
    {
        var s = (State)state!;
        double eps = task.Get(_epsilon), r = task.Get(_r), alpha = task.Get(_alpha);
        for (int i = 0; i < task.Count; i++)
        {
            double rho = s.Shared[i] / Math.Max(s.Unique[i], eps);
            s.Lambda[i] = (float)(1 + r * Math.Min(Math.Max(rho, 0), alpha));
        }
        return false;
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var s = (State)state!;
        float eps = (float)task.Get(_epsilon);
        var b = chunk.Input(task.BaseIndex);
        int n = task.Count;
        // δ in place of each other input.
        for (int i = 0; i < n; i++) if (i != task.BaseIndex) Kernels.SubtractInPlace(chunk.Input(i), b);
        for (int e = 0; e < chunk.Length; e++)
        {
            int c = 0, last = -1;
            for (int i = 0; i < n; i++)
                if (i != task.BaseIndex && Math.Abs(chunk.Inputs[i][e]) > eps) { c++; last = i; }
            if (c == 0) { output[e] = b[e]; continue; }
            if (c == 1)
            {
                float d = chunk.Inputs[last][e];
                output[e] = b[e] + (_plus ? s.Lambda[last] * d : d);
                continue;
            }
            float sum = 0, fc = c;
            for (int i = 0; i < n; i++)
            {
                if (i == task.BaseIndex) continue;
                float d = chunk.Inputs[i][e];
                if (Math.Abs(d) > eps) sum += d / fc;
            }
            output[e] = b[e] + sum;
        }
    }
}
