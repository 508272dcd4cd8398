using static Mistral.Merge.Tests.Merging.MethodHarness;

namespace Mistral.Merge.Tests.Merging;

/// <summary>Each method alone on tiny vectors whose results were worked out by hand (comments show how).</summary>
public class MethodTests
{
    private static readonly float[] Zero4 = [0, 0, 0, 0];

    [Fact]
    public void LinearWeightedAverageAndUnnormalisedSum()
    {
        float[][] x = [[1, 2, 3, 4], [3, 2, 1, 0]];
        var w = new[] { P(("weight", 1.0)), P(("weight", 3.0)) };
        // (1·x0 + 3·x1) / 4
        Near([2.5f, 2f, 1.5f, 1f], Run("linear", x, -1, 1, 4, modelParams: w));
        Near([10f, 8f, 6f, 4f], Run("linear", x, -1, 1, 4, P(("normalize", false)), w));
    }

    [Fact]
    public void SlerpOrthogonalVectorsUsesSinCoefficientsOnUnnormalisedInputs()
    {
        // a ⟂ b: θ = π/2, t = 0.5 → s0 = s1 = sin(π/4) = 0.70710678; result s0·a + s1·b on the originals.
        Near([1.4142135f, 2.1213203f], Run("slerp", [[2, 0], [0, 3]], 0, 1, 2, P(("t", 0.5))));
        // base second in the list: t = 0 is still the base
        Near([0f, 3f], Run("slerp", [[2, 0], [0, 3]], 1, 1, 2, P(("t", 0.0))));
        // t = 1/3 with θ = π/2: s0 = sin(π/3) = 0.8660254, s1 = sin(π/6) = 0.5
        Near([0.8660254f, 0.5f], Run("slerp", [[1, 0], [0, 1]], 0, 1, 2, P(("t", 1.0 / 3))));
    }

    [Fact]
    public void SlerpNearlyColinearFallsBackToLerp()
    {
        // |cos| = 1 > 0.9995: (1−t)a + t·b = 0.75·[1,1] + 0.25·[2,2]
        Near([1.25f, 1.25f], Run("slerp", [[1, 1], [2, 2]], 0, 1, 2, P(("t", 0.25))));
    }

    [Fact]
    public void SlerpIsChunkInvariant()
    {
        var rnd = new Random(3);
        float[][] x = [Enumerable.Range(0, 64).Select(_ => (float)rnd.NextDouble() - 0.5f).ToArray(), Enumerable.Range(0, 64).Select(_ => (float)rnd.NextDouble() - 0.5f).ToArray()];
        Assert.Equal(Run("slerp", x, 0, 8, 8, P(("t", 0.3))), Run("slerp", x, 0, 8, 8, P(("t", 0.3)), chunkRows: 3));
    }

    [Fact]
    public void NuSlerpWeightsGiveTAndBaseAddsTaskVectors()
    {
        var w11 = new[] { P(("weight", 1.0)), P(("weight", 1.0)) };
        // t = 1/(1+1) = 0.5, θ = π/2 → 0.70710678 each
        Near([0.70710678f, 0.70710678f], Run("nuslerp", [[1, 0], [0, 1]], -1, 1, 2, modelParams: w11));
        // t = 3/(1+3) = 0.75 → sin(π/8), sin(3π/8)
        Near([0.38268343f, 0.92387953f], Run("nuslerp", [[1, 0], [0, 1]], -1, 1, 2, modelParams: [P(("weight", 1.0)), P(("weight", 3.0))]));
        // base [1,1]; task vectors [1,0], [0,1] → base + 0.70710678·(δ1 + δ2)
        Near([1.7071068f, 1.7071068f], Run("nuslerp", [[2, 1], [1, 1], [1, 2]], 1, 1, 2, modelParams: [P(("weight", 1.0)), P(), P(("weight", 1.0))]));
    }

    [Fact]
    public void NuSlerpFlatRowsColumns()
    {
        float[][] x = [[1, 0, 0, 1], [0, 1, 0, 1]];
        var w = new[] { P(("weight", 1.0)), P(("weight", 1.0)) };
        // flat: cos = 1/2, θ = π/3, c = sin(π/6)/sin(π/3) = 0.57735027
        Near([0.57735027f, 0.57735027f, 0f, 1.1547005f], Run("nuslerp", x, -1, 2, 2, modelParams: w));
        // rows: row 0 orthogonal (0.70710678 each); row 1 identical → sin θ = 0 → lerp
        Near([0.70710678f, 0.70710678f, 0f, 1f], Run("nuslerp", x, -1, 2, 2, P(("nuslerp_flatten", false)), w));
        // columns (row_wise): col 0 a=[1,0], b=[0,0] → cos 0 → 0.70710678·a; col 1 a=[0,1], b=[1,1] → θ = π/4,
        // c = sin(π/8)/sin(π/4) = 0.5411961 → c·(a+b) = [0.5411961, 1.0823922]
        Near([0.70710678f, 0.5411961f, 0f, 1.0823922f], Run("nuslerp", x, -1, 2, 2, P(("nuslerp_flatten", false), ("nuslerp_row_wise", true)), w));
    }

    [Fact]
    public void TaskArithmeticWeightedDeltasNormalizeAndLambda()
    {
        float[][] x = [[1, 1, 1, 1], [2, 0, 1, 3], [1, 3, 1, -1]];
        var w = new[] { P(), P(("weight", 0.5)), P(("weight", 1.0)) };
        // δ1 = [1,-1,0,2], δ2 = [0,2,0,-2]; 0.5δ1 + δ2 = [0.5, 1.5, 0, -1]
        Near([1.5f, 2.5f, 1f, 0f], Run("task_arithmetic", x, 0, 1, 4, modelParams: w));
        // ÷ (0.5 + 1)
        Near([1.3333334f, 2f, 1f, 0.33333331f], Run("task_arithmetic", x, 0, 1, 4, P(("normalize", true)), w));
        // × lambda 2
        Near([2f, 4f, 1f, -1f], Run("task_arithmetic", x, 0, 1, 4, P(("lambda", 2.0)), w));
    }

    [Fact]
    public void TiesSignConsensusAndMagnitudeDensity()
    {
        float[][] x = [Zero4, [3, -1, 2, -4], [-2, -2, 1, 1]];
        // sums [1,-3,3,-3] → majority [+,-,+,-]; kept means: [3/1, (-1-2)/2, (2+1)/2, -4/1]
        Near([3f, -1.5f, 1.5f, -4f], Run("ties", x, 0, 1, 4, modelParams: [P(), P(("weight", 1.0)), P(("weight", 1.0))]));
        // density 0.5 on model 1 keeps int(0.5·4) = 2 largest |δ| (indices 3 and 0): δ1 = [3,0,0,-4]
        // sums [1,-2,1,-3]: e1 keeps only -2 (zeros never vote), e2 keeps only 1
        Near([3f, -2f, 1f, -4f], Run("ties", x, 0, 1, 4, modelParams: [P(), P(("weight", 1.0), ("density", 0.5)), P(("weight", 1.0))]));
    }

    [Fact]
    public void TiesMagnitudeTiesKeepLowerIndexFirst()
    {
        // |δ| = 1 at indices 0, 1, 2: k = 2 keeps 0 and 1
        Near([1f, -1f, 0f, 0f], Run("ties", [Zero4, [1, -1, 1, 0.5f]], 0, 1, 4, modelParams: [P(), P(("weight", 1.0), ("density", 0.5))]));
    }

    [Fact]
    public void DareLinearMasksFromTheSpecVectorsAndL1Rescale()
    {
        // seed 0, model.layers.0.mlp.up_proj.weight: ordinal 0 draws u·2^24 = 7687833, 11622327, 2031297, 1172095
        // (u = 0.458, 0.693, 0.121, 0.070) → density 0.5 keeps 0, 2, 3.
        float[][] one = [Zero4, [1, 2, 3, 4]];
        Near([1f, 0f, 3f, 4f], Run("dare_linear", one, 0, 1, 4, P(("rescale", false)), [P(), P(("weight", 1.0), ("density", 0.5))]));
        // rescale: L1 10 / 8 = 1.25
        Near([1.25f, 0f, 3.75f, 5f], Run("dare_linear", one, 0, 1, 4, modelParams: [P(), P(("weight", 1.0), ("density", 0.5))]));
        // ordinal 1 draws 2222756, 469175, 16047192, 10697800 → keeps 0, 1
        float[][] two = [Zero4, [1, 2, 3, 4], [4, 3, 2, 1]];
        var w = new[] { P(), P(("weight", 1.0), ("density", 0.5)), P(("weight", 1.0), ("density", 0.5)) };
        Near([5f, 3f, 3f, 4f], Run("dare_linear", two, 0, 1, 4, P(("rescale", false)), w));
        // dare_ties: δ1 = [1,0,3,4], δ2 = [-4,3,0,0]; sums [-3,3,3,4] → majority [-,+,+,+]
        float[][] three = [Zero4, [1, 2, 3, 4], [-4, 3, 2, 1]];
        Near([-4f, 3f, 3f, 4f], Run("dare_ties", three, 0, 1, 4, P(("rescale", false)), w));
    }

    [Fact]
    public void DareIsReproducibleAndChunkInvariant()
    {
        var rnd = new Random(5);
        float[][] x = [new float[256], Enumerable.Range(0, 256).Select(_ => (float)rnd.NextDouble() - 0.5f).ToArray()];
        var w = new[] { P(), P(("weight", 1.0), ("density", 0.3)) };
        var a = Run("dare_ties", x, 0, 16, 16, modelParams: w, seed: 7);
        Assert.Equal(a, Run("dare_ties", x, 0, 16, 16, modelParams: w, seed: 7, chunkRows: 5));
        Assert.NotEqual(a, Run("dare_ties", x, 0, 16, 16, modelParams: w, seed: 8));
    }

    [Fact]
    public void BreadcrumbsDropsSmallestAndLargest()
    {
        float[] d = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        float[][] x = [new float[10], d];
        // n 10, top = int(0.1·10) = 1, bot = 10 − 5 − 1 = 4 → keep ascending positions [4, 9): 5..9
        Near([0, 0, 0, 0, 5, 6, 7, 8, 9, 0], Run("breadcrumbs", x, 0, 1, 10, modelParams: [P(), P(("weight", 1.0), ("density", 0.5), ("gamma", 0.1))]));
        // gamma 0: top = 0 → keep [5, 10) (mergekit's [bot:-0] would keep nothing)
        Near([0, 0, 0, 0, 0, 6, 7, 8, 9, 10], Run("breadcrumbs", x, 0, 1, 10, modelParams: [P(), P(("weight", 1.0), ("density", 0.5), ("gamma", 0.0))]));
        // ties in the ascending order: [1,1,1,1], density 0.5, gamma 0.25 → top 1, bot 1 → positions [1, 3) = indices 1, 2
        Near([0, 1, 1, 0], Run("breadcrumbs_ties", [Zero4, [1, 1, 1, 1]], 0, 1, 4, modelParams: [P(), P(("weight", 1.0), ("density", 0.5), ("gamma", 0.25))]));
    }

    [Fact]
    public void DellaRankedProbabilitiesAndRescale()
    {
        // row |δ| = [0.1, 0.4, 0.3, 0.2] → ranks 1, 4, 3, 2 → p = 0.4, 0.6, 0.5333, 0.4667 (density 0.5, ε 0.1)
        // draws u = 0.458, 0.693, 0.121, 0.070 → keep indices 2, 3; rescale L1 1.0 / 0.5 = 2
        float[][] x = [Zero4, [0.1f, -0.4f, 0.3f, 0.2f]];
        var w = new[] { P(), P(("weight", 1.0), ("density", 0.5), ("epsilon", 0.1)) };
        Near([0f, 0f, 0.3f * 2, 0.2f * 2], Run("della", x, 0, 1, 4, modelParams: w));
        Near([0f, 0f, 0.3f, 0.2f], Run("della_linear", x, 0, 1, 4, P(("rescale", false)), w));
    }

    [Fact]
    public void ModelStockAngleGivesInterpolation()
    {
        // offsets [1,0], [1,1]: cos = 1/√2, N = 2 → t = 2c/(1+c) = 0.82842712; avg = [2, 1.5]; out = t·avg + (1−t)·w0
        float[][] x = [[1, 1], [2, 1], [2, 2]];
        Near([1.8284271f, 1.4142135f], Run("model_stock", x, 0, 1, 2));
        // filter_wise: row 1 offsets [1,0], [0,1] are orthogonal → t = 0 → the base row
        float[][] y = [[1, 1, 0, 0], [2, 1, 1, 0], [2, 2, 0, 1]];
        Near([1.8284271f, 1.4142135f, 0f, 0f], Run("model_stock", y, 0, 2, 2, P(("filter_wise", true))));
    }

    [Fact]
    public void PassthroughCopiesOrScales()
    {
        Near([1f, -2f], Run("passthrough", [[1, -2]], -1, 1, 2));
        Near([0.5f, -1f], Run("passthrough", [[1, -2]], -1, 1, 2, modelParams: [P(("scale", 0.5))]));
    }
}
