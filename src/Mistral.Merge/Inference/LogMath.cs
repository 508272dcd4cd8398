using System.Numerics.Tensors;

namespace Mistral.Merge.Inference;

/// <summary>Log-softmax quantities over one row of logits, in double.</summary>
public static class LogMath
{
    /// <summary>log Σ exp(x), max-shifted.</summary>
    public static double LogSumExp(ReadOnlySpan<float> x)
    {
        float max = TensorPrimitives.Max(x);
        // exp(x − max) in float32 (vectorized, ≤ 1 ulp), summed in double
        Span<float> buf = stackalloc float[Math.Min(x.Length, 4096)];
        double sum = 0;
        for (int i = 0; i < x.Length; i += buf.Length)
        {
            var part = buf[..Math.Min(buf.Length, x.Length - i)];
            TensorPrimitives.Subtract(x.Slice(i, part.Length), max, part);
            TensorPrimitives.Exp(part, part);
            foreach (var e in part) sum += e;
        }
        return max + Math.Log(sum);
    }

    /// <summary>−log softmax(x)[target].</summary>
    public static double Nll(ReadOnlySpan<float> logits, int target) => LogSumExp(logits) - logits[target];

    /// <summary>dst = log softmax(x).</summary>
    public static void LogSoftmax(ReadOnlySpan<float> x, Span<double> dst)
    {
        double lse = LogSumExp(x);
        for (int i = 0; i < x.Length; i++) dst[i] = x[i] - lse;
    }

    /// <summary>KL(P‖Q) = Σ p (log p − log q) from two log-probability rows.</summary>
    public static double KlDivergence(ReadOnlySpan<double> logP, ReadOnlySpan<double> logQ)
    {
        double kl = 0;
        for (int i = 0; i < logP.Length; i++)
        {
            double p = Math.Exp(logP[i]);
            if (p > 0) kl += p * (logP[i] - logQ[i]);
        }
        return Math.Max(0, kl);
    }

    /// <summary>Index of the largest value, the lowest index on ties.</summary>
    public static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
