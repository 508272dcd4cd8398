using System.Buffers;

namespace Mistral.Merge.Merging.Methods;

/// <summary>
/// arcee_fusion: keeps the other model's change where it matters most. Per row r (last axis), in float64 then f32:
/// KL_r = Σ p ln(p/q), p = softmax(x_r) + 1e-8, q = softmax(base_r) + 1e-8; imp = |x − base|·KL_row (float32);
/// thr = Q(0.5) + f32(1.5·(Q(0.75) − Q(0.25))) with Q(q) the element trunc(f32(q)·f32(m − 1)) of the m values sorted
/// ascending; out = base + (x − base)·(imp ≥ thr). Above 1,000,000 elements the median comes from a sample of imp
/// (portable generator, ordinal 0) and the quartiles from a second one (ordinal 1), each element kept when
/// u &lt; 1e6 / n. Reduction passes: the sample sizes (large tensors only), then two radix passes find the three
/// order statistics (bounded memory; imp is recomputed from each chunk's rows).
/// </summary>
public sealed class ArceeFusionMethod : MergeMethodBase
{
    public const long SampleLimit = 1_000_000;

    public override MethodSpec Spec { get; } = new("arcee_fusion", [], BaseRole.Required) { UsesRandomMasks = true, Title = "Arcee Fusion" };

    public override string? CheckSources(int sourceCount, bool hasBase)
        => !hasBase ? "arcee_fusion needs the base model among the sources"
         : sourceCount > 2 ? $"arcee_fusion takes the base and exactly one other model (got {sourceCount - 1} besides the base)" : null;

    private sealed class State
    {
        public bool Sampled, Counted;
        public long M0, M1;
        public RadixRanks? Median, Quartiles;
        public ulong Key0, Key1;
        public double P;
        public float Threshold;
    }

    public override bool NeedsReduction(MethodTask task) => task.Count > 1;

    public override object? Begin(MethodTask task)
    {
        var s = new State { Sampled = task.Elements > SampleLimit };
        if (s.Sampled)
        {
            s.Key0 = MaskGenerator.Key(task.Seed, task.OutputName, 0);
            s.Key1 = MaskGenerator.Key(task.Seed, task.OutputName, 1);
            s.P = (double)SampleLimit / task.Elements;
        }
        else
        {
            s.M0 = s.M1 = task.Elements;
            Ranks(s);
        }
        return s;
    }

    /// <summary>The rank of Q(q) among m values: trunc(f32(q)·f32(m − 1)).</summary>
    public static long Rank(double q, long m) => (long)((float)q * (float)(m - 1));

    private static void Ranks(State s)
    {
        s.Counted = true;
        s.Median = new RadixRanks(Rank(0.5, s.M0));
        s.Quartiles = new RadixRanks(Rank(0.25, s.M1), Rank(0.75, s.M1));
    }

    /// <summary>A float's bits mapped so that unsigned order is numeric order (NaN above +Inf).</summary>
    private static uint OrderKey(float v)
    {
        if (float.IsNaN(v)) return uint.MaxValue;
        uint b = BitConverter.SingleToUInt32Bits(v);
        return (b & 0x80000000u) != 0 ? ~b : b | 0x80000000u;
    }

    private static float FromKey(uint k) => BitConverter.UInt32BitsToSingle((k & 0x80000000u) != 0 ? k & 0x7FFFFFFFu : ~k);

    /// <summary>f32 of the row's KL divergence between softmax(x) and softmax(base), in float64.</summary>
    public static float RowKl(ReadOnlySpan<float> x, ReadOnlySpan<float> b)
    {
        double mx = double.NegativeInfinity, mb = double.NegativeInfinity;
        for (int c = 0; c < x.Length; c++) { mx = Math.Max(mx, x[c]); mb = Math.Max(mb, b[c]); }
        double sx = 0, sb = 0;
        for (int c = 0; c < x.Length; c++) { sx += Math.Exp(x[c] - mx); sb += Math.Exp(b[c] - mb); }
        double kl = 0;
        for (int c = 0; c < x.Length; c++)
        {
            double p = Math.Exp(x[c] - mx) / sx + 1e-8, q = Math.Exp(b[c] - mb) / sb + 1e-8;
            kl += p * Math.Log(p / q);
        }
        return (float)kl;
    }

    /// <summary>imp = |x − base|·KL_row for every element of the chunk.</summary>
    private static void Importance(MethodTask task, Chunk chunk, Span<float> imp)
    {
        var b = chunk.Input(task.BaseIndex);
        var x = chunk.Input(task.BaseIndex == 0 ? 1 : 0);
        int cols = (int)task.Cols;
        for (int r = 0; r < chunk.RowCount; r++)
        {
            var xr = x.Slice(r * cols, cols);
            var br = b.Slice(r * cols, cols);
            float kl = RowKl(xr, br);
            for (int c = 0; c < cols; c++) imp[r * cols + c] = Math.Abs(xr[c] - br[c]) * kl;
        }
    }

    public override void Accumulate(object? state, MethodTask task, Chunk chunk)
    {
        var s = (State)state!;
        long f0 = chunk.FlatOffset(task.Cols);
        if (!s.Counted)
        {
            for (int e = 0; e < chunk.Length; e++)
            {
                if (MaskGenerator.Keep(s.Key0, f0 + e, s.P)) s.M0++;
                if (MaskGenerator.Keep(s.Key1, f0 + e, s.P)) s.M1++;
            }
            return;
        }
        var imp = ArrayPool<float>.Shared.Rent(chunk.Length);
        var k0 = ArrayPool<uint>.Shared.Rent(chunk.Length);
        var k1 = ArrayPool<uint>.Shared.Rent(chunk.Length);
        try
        {
            Importance(task, chunk, imp);
            int n0 = 0, n1 = 0;
            for (int e = 0; e < chunk.Length; e++)
            {
                uint k = OrderKey(imp[e]);
                if (!s.Sampled || MaskGenerator.Keep(s.Key0, f0 + e, s.P)) k0[n0++] = k;
                if (!s.Sampled || MaskGenerator.Keep(s.Key1, f0 + e, s.P)) k1[n1++] = k;
            }
            s.Median!.Count(k0.AsSpan(0, n0));
            s.Quartiles!.Count(k1.AsSpan(0, n1));
        }
        finally
        {
            ArrayPool<float>.Shared.Return(imp);
            ArrayPool<uint>.Shared.Return(k0);
            ArrayPool<uint>.Shared.Return(k1);
        }
    }

    public override bool Finish(object? state, MethodTask task)
    {
        var s = (State)state!;
        if (!s.Counted)
        {
            if (s.M0 == 0 || s.M1 == 0) throw new MergeException($"arcee_fusion: an empty sample of tensor '{task.OutputName}'");
            Ranks(s);
            return true;
        }
        s.Median!.EndPass();
        s.Quartiles!.EndPass();
        if (s.Median.Passes < 2) return true;
        float q50 = FromKey(s.Median.Key[0]), q25 = FromKey(s.Quartiles.Key[0]), q75 = FromKey(s.Quartiles.Key[1]);
        s.Threshold = q50 + 1.5f * (q75 - q25);
        return false;
    }

    public override void Apply(object? state, MethodTask task, Chunk chunk, Span<float> output)
    {
        var b = chunk.Input(task.BaseIndex);
        if (task.Count == 1) { b.CopyTo(output); return; }
        var s = (State)state!;
        var x = chunk.Input(task.BaseIndex == 0 ? 1 : 0);
        Importance(task, chunk, output);
        for (int e = 0; e < output.Length; e++)
            output[e] = b[e] + (x[e] - b[e]) * (output[e] >= s.Threshold ? 1f : 0f);
    }
}
