namespace Mistral.Merge.Tests.Cuda;

/// <summary>
/// How close GPU logits must be to a reference. Every position must be within <c>tol</c> of the largest reference
/// logit, except on the bf16 path of an MoE model: there the router sees bf16-rounded activations, so a token whose
/// top-k experts are nearly tied can be routed differently (as in any bf16 Mixtral), which moves that token's logits
/// by up to ~20 %. Measured on an H200 (2026-11-29): 10 of 300 positions on stories260k-moe4, 2 of 90 on a synthetic
/// 4-expert model, none on the identity upcycle (all experts equal, so routing cannot matter), and the f32 path on the
/// same bf16 weights within 3e-7. So MoE bf16 allows at most 5 % of positions beyond <c>tol</c>, with the median
/// position within a quarter of it.
/// </summary>
public static class LogitAgreement
{
    public static void Check(string name, IReadOnlyList<float> got, Func<int, float> expected, int positions, int vocab, double tol, bool routingMayFlip)
    {
        double scale = 0;
        for (int i = 0; i < positions * vocab; i++) scale = Math.Max(scale, Math.Abs(expected(i)));
        var worst = new double[positions];
        for (int t = 0; t < positions; t++)
            for (int i = 0; i < vocab; i++)
                worst[t] = Math.Max(worst[t], Math.Abs(got[t * vocab + i] - expected(t * vocab + i)) / scale);
        int beyond = worst.Count(w => w > tol);
        double median = worst.Order().ElementAt(positions / 2);
        string summary = $"{name}: {beyond} of {positions} positions beyond {tol:P1} of the largest logit ({scale:G4}); worst {worst.Max():P2}, median {median:P3}";
        if (!routingMayFlip) Assert.True(beyond == 0, summary);
        else Assert.True(beyond <= positions / 20 && median <= tol / 4, summary);
    }
}
