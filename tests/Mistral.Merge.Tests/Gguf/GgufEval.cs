using Mistral.Merge.Inference;

namespace Mistral.Merge.Tests.Gguf;

/// <summary>Helpers of the GGUF reading tests: logits of a token sequence, batched (GEMM) or one token at a time (GEMV).</summary>
internal static class GgufEval
{
    public static float[] Logits(string model, int[] tokens, bool stepwise)
    {
        using var m = TransformerModel.Load(model);
        using var backend = new CpuBackend(m, 2);
        int vocab = m.Shape.Vocab;
        var logits = new float[tokens.Length * vocab];
        using var cache = backend.CreateCache(tokens.Length);
        if (!stepwise) backend.Forward(tokens, Enumerable.Range(0, tokens.Length).ToArray(), cache, logits);
        else
            for (int i = 0; i < tokens.Length; i++)
                backend.Forward(tokens.AsSpan(i, 1), [i], cache, logits.AsSpan(i * vocab, vocab));
        return logits;
    }

    public static readonly int[] Tokens = [1, 20, 300, 41, 7, 99, 250, 13, 400, 5, 77, 140];

    public static float MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => MathF.Abs(x - y)).Max();
}
