namespace Mistral.Merge.Moe;

/// <summary>
/// One SwiGLU MLP in float32: <c>down(silu(gate·x) ⊙ up·x)</c>, with Mixtral's names
/// w1 = gate_proj [I, H], w3 = up_proj [I, H], w2 = down_proj [H, I] (row-major, HF layout).
/// Hidden unit u is row u of w1 and w3 and column u of w2.
/// </summary>
public sealed class ExpertWeights
{
    public int Hidden { get; }
    public int Intermediate { get; }
    public float[] W1 { get; }
    public float[] W3 { get; }
    public float[] W2 { get; }

    public ExpertWeights(int hidden, int intermediate, float[] w1, float[] w3, float[] w2)
    {
        if (hidden <= 0 || intermediate <= 0) throw new ArgumentOutOfRangeException(nameof(hidden), "dimensions must be positive");
        long n = (long)hidden * intermediate;
        if (w1.LongLength != n || w3.LongLength != n || w2.LongLength != n)
            throw new ArgumentException($"expert tensors must hold {hidden}×{intermediate} = {n} elements (w1 {w1.LongLength}, w3 {w3.LongLength}, w2 {w2.LongLength})");
        Hidden = hidden; Intermediate = intermediate; W1 = w1; W3 = w3; W2 = w2;
    }

    public static ExpertWeights Zeros(int hidden, int intermediate)
    {
        long n = (long)hidden * intermediate;
        return new ExpertWeights(hidden, intermediate, new float[n], new float[n], new float[n]);
    }

    public ExpertWeights Clone() => new(Hidden, Intermediate, (float[])W1.Clone(), (float[])W3.Clone(), (float[])W2.Clone());

    /// <summary>Throws unless every expert has the same shape; returns (hidden, intermediate).</summary>
    public static (int Hidden, int Intermediate) CheckSameShape(IReadOnlyList<ExpertWeights> experts)
    {
        if (experts.Count == 0) throw new MergeException("no experts to merge");
        int h = experts[0].Hidden, i = experts[0].Intermediate;
        for (int e = 1; e < experts.Count; e++)
            if (experts[e].Hidden != h || experts[e].Intermediate != i)
                throw new MergeException($"expert {e} has shape hidden {experts[e].Hidden} × intermediate {experts[e].Intermediate}, expert 0 has {h} × {i}");
        return (h, i);
    }
}
