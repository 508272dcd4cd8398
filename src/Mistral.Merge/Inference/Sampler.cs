namespace Mistral.Merge.Inference;

/// <summary>Sampling settings; <see cref="Temperature"/> 0 means greedy argmax (lowest id on ties).</summary>
public sealed record SamplingOptions
{
    public float Temperature { get; init; } = 0.7f;
    /// <summary>Keep the k most likely tokens (ties with the k-th are kept, like HF); 0 = off.</summary>
    public int TopK { get; init; }
    /// <summary>Nucleus sampling: keep the smallest top set with probability ≥ p; 1 = off.</summary>
    public float TopP { get; init; } = 1f;
    /// <summary>HF repetition penalty over the prompt and everything generated; 1 = off.</summary>
    public float RepetitionPenalty { get; init; } = 1f;
    public ulong? Seed { get; init; }

    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new MergeException($"--temperature must be ≥ 0, got {Temperature}");
        if (TopK < 0) throw new MergeException($"--top-k must be ≥ 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new MergeException($"--top-p must be in (0, 1], got {TopP}");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty)) throw new MergeException($"--repetition-penalty must be > 0, got {RepetitionPenalty}");
    }
}

/// <summary>
/// Picks the next token the way HF's logits processors do, in their order: repetition penalty,
/// temperature, top-k, top-p, then a draw from the softmax (seeded, reproducible).
/// </summary>
public sealed class Sampler
{
    private readonly SamplingOptions _o;
    private readonly Rng _rng;
    private readonly bool[] _seen;
    private readonly int[] _order;
    private readonly float[] _keys;
    private readonly double[] _probs;

    public Sampler(SamplingOptions options, int vocab)
    {
        options.Validate();
        _o = options;
        _rng = new Rng(options.Seed ?? (ulong)Random.Shared.NextInt64());
        _seen = new bool[vocab];
        _order = new int[vocab];
        _keys = new float[vocab];
        _probs = new double[vocab];
    }

    /// <summary>Chooses a token from <paramref name="logits"/> (modified in place) given the ids so far.</summary>
    public int Next(Span<float> logits, ReadOnlySpan<int> history)
    {
        int n = logits.Length;
        if (_o.RepetitionPenalty != 1f) ApplyRepetitionPenalty(logits, history, _o.RepetitionPenalty, _seen);
        if (_o.Temperature == 0f) return LogMath.ArgMax(logits);
        for (int i = 0; i < n; i++) logits[i] /= _o.Temperature;
        if (_o.TopK > 0 && _o.TopK < n) ApplyTopK(logits, _o.TopK, _keys);
        if (_o.TopP < 1f) ApplyTopP(logits, _o.TopP, _order, _keys);
        return Draw(logits, _probs, _rng.NextDouble());
    }

    /// <summary>HF: for every distinct id seen, a negative logit is multiplied by the penalty, a positive one divided.</summary>
    public static void ApplyRepetitionPenalty(Span<float> logits, ReadOnlySpan<int> history, float penalty, bool[]? scratch = null)
    {
        var seen = scratch ?? new bool[logits.Length];
        foreach (var t in history)
        {
            if ((uint)t >= (uint)logits.Length || seen[t]) continue;
            seen[t] = true;
            logits[t] = logits[t] < 0 ? logits[t] * penalty : logits[t] / penalty;
        }
        foreach (var t in history) if ((uint)t < (uint)seen.Length) seen[t] = false;
    }

    /// <summary>HF TopKLogitsWarper: logits below the k-th largest become −∞ (ties with it survive).</summary>
    public static void ApplyTopK(Span<float> logits, int k, float[]? scratch = null)
    {
        var sorted = scratch ?? new float[logits.Length];
        logits.CopyTo(sorted);
        var s = sorted.AsSpan(0, logits.Length);
        s.Sort();
        float kth = s[logits.Length - k];
        for (int i = 0; i < logits.Length; i++) if (logits[i] < kth) logits[i] = float.NegativeInfinity;
    }

    /// <summary>
    /// HF TopPLogitsWarper: sort ascending, cumulative softmax; tokens whose cumulative probability
    /// is ≤ 1 − p become −∞, the most likely token always survives.
    /// </summary>
    public static void ApplyTopP(Span<float> logits, float p, int[]? orderScratch = null, float[]? keyScratch = null)
    {
        int n = logits.Length;
        var order = orderScratch ?? new int[n];
        var keys = keyScratch ?? new float[n];
        for (int i = 0; i < n; i++) { order[i] = i; keys[i] = logits[i]; }
        Array.Sort(keys, order, 0, n); // ascending
        double lse = LogMath.LogSumExp(logits);
        double cum = 0;
        for (int r = 0; r < n - 1; r++)
        {
            cum += Math.Exp(keys[r] - lse);
            if (cum <= 1.0 - p) logits[order[r]] = float.NegativeInfinity;
        }
    }

    /// <summary>Inverse-CDF draw from softmax(logits) with u ∈ [0, 1), in id order.</summary>
    public static int Draw(ReadOnlySpan<float> logits, double[] probs, double u)
    {
        double lse = LogMath.LogSumExp(logits), total = 0;
        for (int i = 0; i < logits.Length; i++) { probs[i] = Math.Exp(logits[i] - lse); total += probs[i]; }
        double target = u * total, acc = 0;
        int last = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            if (probs[i] <= 0) continue;
            acc += probs[i];
            last = i;
            if (acc > target) return i;
        }
        return last;
    }
}

/// <summary>xoshiro256** seeded through SplitMix64: the same seed gives the same draws on every platform.</summary>
public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;

    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9, t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3; _s2 ^= t; _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));
}
