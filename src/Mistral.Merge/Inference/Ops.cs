using System.Numerics.Tensors;

namespace Mistral.Merge.Inference;

/// <summary>The element-wise steps of the forward pass, float32, in HF's order of operations.</summary>
public static unsafe class Ops
{
    /// <summary>HF RMSNorm: y = w · (x · rsqrt(mean(x²) + eps)), the mean accumulated in double.</summary>
    public static void RmsNorm(float* x, float[] weight, float* y, int n, float eps)
    {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
        float variance = (float)(ss / n);
        float rs = 1f / MathF.Sqrt(variance + eps);
        for (int i = 0; i < n; i++) y[i] = weight[i] * (x[i] * rs);
    }

    /// <summary>gate ← silu(gate) · up, with silu(g) = g / (1 + e^(−g)).</summary>
    public static void SiluMul(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (up.Length < gate.Length) throw new ArgumentException("up is shorter than gate");
        fixed (float* g = gate)
        fixed (float* u = up)
            SiluMul(g, u, gate.Length);
    }

    /// <summary>gate ← silu(gate) · up, with silu(g) = g / (1 + e^(−g)).</summary>
    public static void SiluMul(float* gate, float* up, int n)
    {
        for (int i = 0; i < n; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    /// <summary>x ← x + y (the residual connection).</summary>
    public static void Add(float* x, float* y, int n)
        => TensorPrimitives.Add(new ReadOnlySpan<float>(x, n), new ReadOnlySpan<float>(y, n), new Span<float>(x, n));

    /// <summary>acc ← acc + w · y (the MoE block's weighted sum of expert outputs).</summary>
    public static void AddScaled(Span<float> acc, ReadOnlySpan<float> y, float w)
        => TensorPrimitives.MultiplyAdd(y[..acc.Length], w, acc, acc); // (y·w) + acc, not fused

    /// <summary>acc ← acc + w · y.</summary>
    public static void AddScaled(float* acc, float* y, float w, int n)
        => TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(y, n), w, new ReadOnlySpan<float>(acc, n), new Span<float>(acc, n)); // (y·w) + acc, not fused
}

/// <summary>
/// Rotate-half rotary embeddings as HF computes them in float32: inv_freq[i] = 1 / θ^(2i/d),
/// angle = position · inv_freq[i], and x' = x·cos + rotate_half(x)·sin.
/// </summary>
public sealed unsafe class Rope
{
    private readonly float[] _invFreq;
    private readonly float[] _cos, _sin;
    public int HeadDim { get; }

    public Rope(int headDim, double theta)
    {
        HeadDim = headDim;
        _invFreq = new float[headDim / 2];
        for (int i = 0; i < _invFreq.Length; i++)
        {
            float exponent = (float)(2 * i) / headDim;
            _invFreq[i] = 1f / (float)Math.Pow((float)theta, exponent);
        }
        _cos = new float[headDim / 2];
        _sin = new float[headDim / 2];
    }

    public float InvFreq(int i) => _invFreq[i];

    /// <summary>Sets the angle tables for <paramref name="position"/>; then <see cref="Rotate(float*, int)"/> uses them.</summary>
    public void SetPosition(int position)
    {
        fixed (float* c = _cos)
        fixed (float* s = _sin)
            Angles(position, c, s);
    }

    /// <summary>cos[i], sin[i] of position · inv_freq[i] for i &lt; d/2 (caller's tables, so threads can rotate side by side).</summary>
    public void Angles(int position, float* cos, float* sin)
    {
        float p = position;
        for (int i = 0; i < _invFreq.Length; i++)
        {
            float a = _invFreq[i] * p;
            cos[i] = MathF.Cos(a);
            sin[i] = MathF.Sin(a);
        }
    }

    /// <summary>Rotates <paramref name="heads"/> consecutive head vectors in place.</summary>
    public void Rotate(float* v, int heads)
    {
        fixed (float* c = _cos)
        fixed (float* s = _sin)
            Rotate(v, heads, c, s);
    }

    /// <summary>Rotates <paramref name="heads"/> consecutive head vectors in place with the tables of <see cref="Angles"/>.</summary>
    public void Rotate(float* v, int heads, float* cos, float* sin)
    {
        int half = HeadDim / 2;
        for (int h = 0; h < heads; h++, v += HeadDim)
            for (int i = 0; i < half; i++)
            {
                float a = v[i], b = v[i + half], c = cos[i], s = sin[i];
                float ca = a * c, sb = b * s, cb = b * c, sa = a * s; // separate roundings, no FMA: like torch
                v[i] = ca - sb;
                v[i + half] = cb + sa;
            }
    }
}
