using Mistral.Merge.Merging;
using Mistral.Merge.Merging.Methods;
using static Mistral.Merge.Tests.Merging.MethodHarness;

namespace Mistral.Merge.Tests.Merging;

/// <summary>
/// The methods of the spec's "More methods" (sce, multislerp, karcher, nearswap, arcee_fusion, ram, ramplus_tl) alone on
/// tiny vectors worked out by hand (comments show how), their edge cases, and the kernels against the independent
/// whole-tensor references of <see cref="Reference"/> on random tensors, whole and in chunks of rows.
/// </summary>
public class MoreMethodsTests
{
    private static float[] Rand(Random r, int n, double scale = 1) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * scale)).ToArray();

    /// <summary>A base and <paramref name="n"/> fine-tunes of it (small differences, some elements unchanged).</summary>
    private static (float[] Base, float[][] Others) FineTunes(int seed, int n, int len)
    {
        var r = new Random(seed);
        var b = Rand(r, len);
        var xs = Enumerable.Range(0, n).Select(_ => b.Select(v => r.Next(5) == 0 ? v : v + (float)((r.NextDouble() - 0.5) * 0.02)).ToArray()).ToArray();
        return (b, xs);
    }

    private static float[][] WithBase(float[] b, float[][] xs) => [b, .. xs];

    // ---- nearswap ----

    [Fact]
    public void NearSwapTakesTheOtherModelWhereItIsNearTheBase()
    {
        // t = 0.5. e0: |0−1| = 1 → w = 0.5·1 = 0.5 → 0.5·1 + 0.5·0 = 0.5; e1: |0−0.5| → w = min(1, 0.5·2) = 1 → x = 0.5;
        // e2: equal → w = min(1, 0.5·10⁶) = 1 → 1; e3: |5−6| = 1 → w = 0.5 → 0.5·6 + 0.5·5 = 5.5; e4: |0−4| → w = 0.125 → 0.5.
        float[] b = [0, 0, 1, 5, 0], x = [1, 0.5f, 1, 6, 4];
        Assert.Equal([0.5f, 0.5f, 1f, 5.5f, 0.5f], Run("nearswap", [b, x], 0, 1, 5, P(("t", 0.5))));
        // The base's position among the inputs does not matter.
        Assert.Equal([0.5f, 0.5f, 1f, 5.5f, 0.5f], Run("nearswap", [x, b], 1, 1, 5, P(("t", 0.5))));
    }

    [Fact]
    public void NearSwapWithTZeroOrNegativeOrNoOtherModelIsTheBase()
    {
        float[] b = [0, 2, -1], x = [1, 2.5f, 3];
        Assert.Equal(b, Run("nearswap", [b, x], 0, 1, 3, P(("t", 0.0))));
        Assert.Equal(b, Run("nearswap", [b, x], 0, 1, 3, P(("t", -1.0))));
        Assert.Equal(b, Run("nearswap", [b], 0, 1, 3, P(("t", 0.5))));
    }

    [Fact]
    public void NearSwapMatchesTheReferenceOnRandomTensors()
    {
        var (b, xs) = FineTunes(11, 1, 7 * 13);
        foreach (double t in new[] { 0.001, 0.01, 0.3 })
        {
            var expected = Reference.NearSwap(b, xs[0], t);
            Assert.Equal(expected, Run("nearswap", [b, xs[0]], 0, 7, 13, P(("t", t))));
            Assert.Equal(expected, Run("nearswap", [b, xs[0]], 0, 7, 13, P(("t", t)), chunkRows: 3));
        }
    }

    // ---- ram / ramplus_tl ----

    [Fact]
    public void RamAveragesEachElementOverTheModelsThatChangeIt()
    {
        // δ1 = [1, 2, 0, 1e-6], δ2 = [3, 0, 0, 0], epsilon 1e-5: e0 c = 2 → 1/2 + 3/2 = 2; e1 c = 1 → 2; e2 c = 0 → base;
        // e3 |1e-6| ≤ 1e-5 is inactive → base. The base is 1 everywhere.
        float[] b = [1, 1, 1, 1];
        float[][] xs = [[2, 3, 1, 1.000001f], [4, 1, 1, 1]];
        Assert.Equal([3f, 3f, 1f, 1f], Run("ram", WithBase(b, xs), 0, 1, 4));
    }

    [Fact]
    public void RamPlusTlScalesLoneChangesByTheSharedToUniqueRatio()
    {
        // base 0; δ1 = [1, 2, 0, 0], δ2 = [3, 0, 0, 0]. Model 1: shared 1 (e0), unique 1 (e1) → ρ = 1; model 2: shared 1,
        // unique 0 → ρ = 1 / max(0, 1e-5) = 10⁵. r 0.1, alpha 0.2: λ = 1 + 0.1·min(ρ, 0.2) = 1.02 for both → e1 = 1.02·2.
        float[] b = [0, 0, 0, 0];
        float[][] xs = [[1, 2, 0, 0], [3, 0, 0, 0]];
        Assert.Equal([2f, 2.04f, 0f, 0f], Run("ramplus_tl", WithBase(b, xs), 0, 1, 4));
        // r 0.5, alpha 5: λ₁ = 1 + 0.5·min(1, 5) = 1.5 → e1 = 3.
        Assert.Equal([2f, 3f, 0f, 0f], Run("ramplus_tl", WithBase(b, xs), 0, 1, 4, P(("r", 0.5), ("alpha", 5.0))));
        // alpha < 0: the clamp takes alpha → λ = 1 + 0.5·(−1) = 0.5 → e1 = 1.
        Assert.Equal([2f, 1f, 0f, 0f], Run("ramplus_tl", WithBase(b, xs), 0, 1, 4, P(("r", 0.5), ("alpha", -1.0))));
    }

    [Fact]
    public void RamWithOneModelOrAllEqualInputs()
    {
        float[] b = [1, -2, 3];
        // all equal: every c = 0 → base; the base alone → base; one model → base + δ (= x here).
        Assert.Equal(b, Run("ram", [b, b, b], 0, 1, 3));
        Assert.Equal(b, Run("ramplus_tl", [b, b, b], 0, 1, 3));
        Assert.Equal(b, Run("ram", [b], 0, 1, 3));
        Assert.Equal([2f, -2f, 4f], Run("ram", [b, [2, -2, 4]], 0, 1, 3));
        // ramplus_tl with one model: every active position is unique → ρ = 0 → λ = 1.
        Assert.Equal([2f, -2f, 4f], Run("ramplus_tl", [b, [2, -2, 4]], 0, 1, 3, P(("r", 0.5))));
    }

    [Fact]
    public void RamAndRamPlusTlMatchTheReferenceOnRandomTensors()
    {
        var (b, xs) = FineTunes(12, 3, 9 * 11);
        foreach (double eps in new[] { 1e-5, 0.005 })
        {
            Assert.Equal(Reference.Ram(b, xs, eps, plus: false), Run("ram", WithBase(b, xs), 0, 9, 11, P(("epsilon", eps)), chunkRows: 4));
            Assert.Equal(Reference.Ram(b, xs, eps, plus: true, r: 0.3, alpha: 0.9),
                Run("ramplus_tl", WithBase(b, xs), 0, 9, 11, P(("epsilon", eps), ("r", 0.3), ("alpha", 0.9)), chunkRows: 4));
        }
    }

    // ---- sce ----

    [Fact]
    public void SceWeighsByMeanSquareAndErasesMinoritySigns()
    {
        // base 0; δ1 = [1, 2, −1, 0], δ2 = [3, −2, −1, 0]; select_topk 1 selects nothing.
        // m1 = (1+4+1)/4 = 1.5, m2 = (9+4+1)/4 = 3.5 → w = 0.3, 0.7.
        // e0: both + → 0.3·1 + 0.7·3 = 2.4 (÷ 1); e1: Σ = 0 → + → only δ1: 0.3·2 / 0.3 = 2;
        // e2: both − → −1; e3: zeros are never kept → 0 / max(0, 1e-6) = 0.
        float[] b = [0, 0, 0, 0];
        float[][] xs = [[1, 2, -1, 0], [3, -2, -1, 0]];
        Near([2.4f, 2f, -1f, 0f], Run("sce", WithBase(b, xs), 0, 1, 4));
    }

    [Fact]
    public void SceSelectsTheHighestVariancePositions()
    {
        // Same δ: var = [1, 4, 0, 0] (population variance of (1,3), (2,−2), (−1,−1), (0,0)); nz = 2, select_topk 0.5 → k = 1:
        // only e1 survives. δ1 = [0, 2, 0, 0], δ2 = [0, −2, 0, 0] → m = 1, 1 → w = 0.5, 0.5; e1: Σ = 0 → + → 0.5·2 / 0.5 = 2.
        float[] b = [1, 1, 1, 1];
        float[][] xs = [[2, 3, 0, 1], [4, -1, 0, 1]];
        Near([1f, 3f, 1f, 1f], Run("sce", WithBase(b, xs), 0, 1, 4, P(("select_topk", 0.5))));
        // Equal variances: the lower flat index first. δ1 = [1, 1, 1, 1], δ2 = −δ1: var 1 everywhere, k = 2 → e0, e1 kept.
        Near([1f, 1f, 0f, 0f], Run("sce", [[0, 0, 0, 0], [1, 1, 1, 1], [-1, -1, -1, -1]], 0, 2, 2, P(("select_topk", 0.5))));
    }

    [Fact]
    public void SceTopKIsAFloat32ProductSoNinetyNineVariancesAndPointTwentyNineKeepTwentyNine()
    {
        // 100 distinct non-zero variances: k = trunc(f32(100 · f32(0.29))) = 29 (a float64 product would give 28).
        var b = new float[100];
        float[][] xs = [Enumerable.Range(1, 100).Select(j => (float)j).ToArray(), Enumerable.Range(1, 100).Select(j => -(float)j).ToArray()];
        var o = Run("sce", WithBase(b, xs), 0, 10, 10, P(("select_topk", 0.29)), chunkRows: 3);
        // Σ δ = 0 → + → model 1 wins every kept position; the 29 largest variances are j = 71..99.
        Assert.Equal(Enumerable.Range(71, 29), Enumerable.Range(0, 100).Where(j => o[j] != 0));
        Assert.Equal(Enumerable.Range(72, 29).Select(j => (float)j), o.Where(v => v != 0));
    }

    [Fact]
    public void SceWithNothingSelectedOneModelOrEqualTaskVectorsIsTheBase()
    {
        float[] b = [1, 2, 3, 4];
        float[][] xs = [[2, 2, 5, 4], [0, 3, 3, 4]];
        Assert.Equal(b, Run("sce", WithBase(b, xs), 0, 1, 4, P(("select_topk", 0.0))));
        Assert.Equal(b, Run("sce", WithBase(b, xs), 0, 1, 4, P(("select_topk", -1.0))));
        // One model (variance 0 everywhere: k = 0) and identical task vectors: base, not mergekit's [N, …] stack.
        Assert.Equal(b, Run("sce", [b, xs[0]], 0, 1, 4, P(("select_topk", 0.5))));
        Assert.Equal(b, Run("sce", [b, xs[0], xs[0]], 0, 1, 4, P(("select_topk", 0.5))));
        Assert.Equal(b, Run("sce", [b], 0, 1, 4));
        // One model without selection: base + w·δ / w = x.
        Near(xs[0], Run("sce", [b, xs[0]], 0, 1, 4));
    }

    [Fact]
    public void SceTinyTaskVectorsGetEqualWeights()
    {
        // m1 = m2 = 1e-8 → Σm < 1e-6 → w = 1/2 each; e0: both + → (0.5·1e-4 + 0.5·1e-4) / 1 = 1e-4.
        float[] b = [0, 0];
        Near([1e-4f, 0f], Run("sce", [b, [1e-4f, 0], [1e-4f, 0]], 0, 1, 2), 1e-6f);
    }

    [Fact]
    public void SceMatchesTheReferenceOnRandomTensors()
    {
        var (b, xs) = FineTunes(13, 3, 12 * 10);
        foreach (double k in new[] { 1.0, 0.5, 0.29, 0.0 })
        {
            var expected = Reference.Sce(b, xs, k);
            Near(expected, Run("sce", WithBase(b, xs), 0, 12, 10, P(("select_topk", k))), 1e-6f);
            Near(expected, Run("sce", WithBase(b, xs), 0, 12, 10, P(("select_topk", k)), chunkRows: 5), 1e-6f);
        }
    }

    // ---- multislerp ----

    [Fact]
    public void MultiSlerpOfTwoOrthogonalUnitVectorsIsTheirMidpoint()
    {
        // w = 0.5, 0.5; m = [0.5, 0.5], m̂ = [0.70710678, 0.70710678]; T = m − ‖m‖m̂ = 0, τ = eps: cos τ = 1,
        // sin τ / τ = 1; scale Σ wᵢ‖vᵢ‖ = 1.
        var w = new[] { P(("weight", 1.0)), P(("weight", 1.0)) };
        Near([0.70710678f, 0.70710678f], Run("multislerp", [[1, 0], [0, 1]], -1, 1, 2, modelParams: w));
    }

    [Fact]
    public void MultiSlerpScalesTheMeanDirectionByTheWeightedNorms()
    {
        // v = [2, 0], [0, 1]; weights 1, 3 → w = 0.25, 0.75; u = [1, 0], [0, 1]; m = [0.25, 0.75], ‖m‖ = √0.625;
        // m̂ = [1, 3]/√10 = [0.31622777, 0.94868330]; scale = 0.25·2 + 0.75·1 = 1.25 → [0.39528471, 1.18585412].
        var w = new[] { P(("weight", 1.0)), P(("weight", 3.0)) };
        Near([0.39528471f, 1.1858541f], Run("multislerp", [[2, 0], [0, 1]], -1, 1, 2, modelParams: w));
        // With a base [1, 1] the same task vectors, then + base.
        Near([1.3952847f, 2.1858541f], Run("multislerp", [[3, 1], [1, 1], [1, 2]], 1, 1, 2, modelParams: [w[0], P(), w[1]]));
        // normalize_weights false: w = 1, 3 → m̂ the same, scale 1·2 + 3·1 = 5 (T is float32 rounding noise here,
        // a few 1e-7 of m̂).
        Near([1.5811388f, 4.7434165f], Run("multislerp", [[2, 0], [0, 1]], -1, 1, 2, P(("normalize_weights", false)), w), 1e-6f);
    }

    [Fact]
    public void MultiSlerpWithOneModelIsThatModelAndOpposedPairsMixLinearly()
    {
        // One model (besides the base): its tensor unchanged, not relative to the base.
        Assert.Equal([3f, 4f], Run("multislerp", [[1, 1], [3, 4]], 0, 1, 2, modelParams: [P(), P(("weight", 2.0))]));
        // u₁ = −u₂ with equal weights: ‖m‖ = 0 < eps → w₁v₁ + w₂v₂ = 0.5·[1, 0] + 0.5·[−3, 0] = [−1, 0].
        var w = new[] { P(("weight", 1.0)), P(("weight", 1.0)) };
        Near([-1f, 0f], Run("multislerp", [[1, 0], [-3, 0]], -1, 1, 2, modelParams: w));
        // Three with no mean direction: an error (mergekit too).
        var w3 = new[] { P(("weight", 1.0)), P(("weight", 1.0)), P(("weight", 2.0)) };
        var e = Assert.Throws<MergeException>(() => Run("multislerp", [[1, 0], [1, 0], [-1, 0]], -1, 1, 2, modelParams: w3));
        Assert.Contains("multislerp", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MultiSlerpMatchesTheReferenceOnRandomTensors()
    {
        var (b, xs) = FineTunes(14, 3, 8 * 9);
        double[] weights = [0.2, 0.5, 0.9];
        var w = weights.Select(x => P(("weight", x))).ToArray();
        Near(Reference.MultiSlerp(b, xs, weights, normalize: true), Run("multislerp", WithBase(b, xs), 0, 8, 9, modelParams: [P(), .. w], chunkRows: 3), 1e-6f);
        Near(Reference.MultiSlerp(null, xs, weights, normalize: false), Run("multislerp", xs, -1, 8, 9, P(("normalize_weights", false)), w, chunkRows: 3), 1e-6f);
    }

    // ---- karcher ----

    [Fact]
    public void KarcherOfTwoOrthogonalVectorsIsTheMidpointScaledByTheMeanNorm()
    {
        // Directions [1, 0] and [0, 1]: the start u = normalised mean = [0.70710678, 0.70710678] is already the mean
        // (T = Σ aθ/sinθ·(eᵢ − cos θ·u) = 0 at θ = π/4); norms 2 and 4 → scale (2 + 4)/2 = 3 → 2.1213203 each.
        Near([2.1213203f, 2.1213203f], Run("karcher", [[2, 0], [0, 4]], -1, 1, 2), 1e-6f);
        // The base is an ordinary input (here input 0) and counts like the others.
        Near([2.1213203f, 2.1213203f], Run("karcher", [[2, 0], [0, 4]], 0, 1, 2), 1e-6f);
    }

    [Fact]
    public void KarcherZeroVectorsAreLeftOutOfTheMeanButCountInTheScale()
    {
        // [1, 0], [0, 1], [0, 0]: V = the first two; scale = (1 + 1 + 0)/3 → 0.70710678·2/3 = 0.47140452.
        Near([0.47140452f, 0.47140452f], Run("karcher", [[1, 0], [0, 1], [0, 0]], -1, 1, 2), 1e-6f);
        // All zero: zeros. One input: itself. All equal: itself (θ = 0 everywhere, scale ‖x‖).
        Assert.Equal([0f, 0f], Run("karcher", [[0, 0], [0, 0]], -1, 1, 2));
        Assert.Equal([3f, -4f], Run("karcher", [[3, -4]], -1, 1, 2));
        Near([3f, -4f], Run("karcher", [[3, -4], [3, -4], [3, -4]], -1, 1, 2), 1e-6f);
    }

    [Fact]
    public void KarcherIteratesTowardsTheSphericalMean()
    {
        // Three unit vectors at 0°, 0° and 90°: the normalised linear mean is at atan(1/2) = 26.57°, the Karcher mean at
        // 30° (θ₁ = θ₂ = 30°, θ₃ = 60°: 2·30 = 60, the weighted tangents cancel). max_iter 0 gives the start.
        float[][] x = [[1, 0], [1, 0], [0, 1]];
        Near([0.8944272f, 0.4472136f], Run("karcher", x, -1, 1, 2, P(("max_iter", 0.0))), 1e-6f);
        Near([0.8660254f, 0.5f], Run("karcher", x, -1, 1, 2, P(("max_iter", 50.0), ("tol", 1e-9))), 1e-5f);
    }

    [Fact]
    public void KarcherMatchesTheElementwiseReferenceOnRandomTensors()
    {
        var r = new Random(15);
        var xs = Enumerable.Range(0, 4).Select(_ => Rand(r, 10 * 7)).ToArray();
        foreach (var (iters, tol) in new[] { (10, 1e-5), (0, 1e-5), (3, 1e-3) })
        {
            var expected = Reference.Karcher(xs, iters, tol);
            Near(expected, Run("karcher", xs, 2, 10, 7, P(("max_iter", (double)iters), ("tol", tol)), chunkRows: 4), 1e-6f);
        }
    }

    [Fact]
    public void KarcherCoefficientsOfIdenticalDirectionsAreTheMeanNorm()
    {
        // Gram of [1, 0] and [2, 0]: one direction; out = 1.5·e = 1.5·x₁ = 0.75·x₂ split as 0.75·x₁ + 0.375·x₂.
        var c = KarcherMethod.Coefficients([1, 2, 2, 4], 2, 10, 1e-5);
        Assert.Equal(1.5, c[0] * 1 + c[1] * 2, 6);
    }

    // ---- arcee_fusion ----

    [Fact]
    public void ArceeFusionKeepsTheChangesAboveTheMedianPlusOneAndAHalfInterquartileRanges()
    {
        // One row: imp = |δ|·KL with one KL > 0 for the row, so imp ∝ [0, 1, 2, 10]. m = 4: Q(0.5) = element
        // trunc(0.5·3) = 1, Q(0.25) = element 0, Q(0.75) = element 2 → thr = KL + 1.5·(2KL − 0) = 4KL: only e3 is kept.
        Assert.Equal([0f, 0f, 0f, 10f], Run("arcee_fusion", [[0, 0, 0, 0], [0, 1, 2, 10]], 0, 1, 4));
        // Kept elements are base + δ: base [1, 1, 1, 1].
        Assert.Equal([1f, 1f, 1f, 11f], Run("arcee_fusion", [[1, 1, 1, 1], [1, 2, 3, 11]], 0, 1, 4));
    }

    [Fact]
    public void ArceeFusionOfIdenticalInputsOrTheBaseAloneIsTheBase()
    {
        float[] b = [0.5f, -1, 2, 0];
        // imp = 0 = thr: every element kept, and base + 0 = base.
        Assert.Equal(b, Run("arcee_fusion", [b, b], 0, 1, 4));
        Assert.Equal(b, Run("arcee_fusion", [b], 0, 1, 4));
    }

    [Fact]
    public void ArceeFusionRowKlIsFloat64()
    {
        // softmax([0, ln 3]) = [0.25, 0.75] against uniform [0.5, 0.5]: KL = 0.25 ln 0.5 + 0.75 ln 1.5 = 0.13081204 (+1e-8 terms).
        Assert.Equal(0.13081204f, ArceeFusionMethod.RowKl([0f, (float)Math.Log(3)], [0f, 0f]), 6);
        Assert.Equal(0f, ArceeFusionMethod.RowKl([1f, 2f], [1f, 2f]));
    }

    [Fact]
    public void ArceeFusionMatchesTheReferenceOnRandomTensors()
    {
        var (b, xs) = FineTunes(16, 1, 16 * 12);
        Assert.Equal(Reference.ArceeFusion(b, xs[0], 16, 12), Run("arcee_fusion", [b, xs[0]], 0, 16, 12, chunkRows: 5));
    }

    [Fact]
    public void ArceeFusionSamplesLargeTensorsWithThePortableGenerator()
    {
        // The spec's check: seed 0, this name, n = 1,100,000 → samples of 1,000,151 (ordinal 0) and 999,989 (ordinal 1).
        const string name = "model.layers.0.mlp.up_proj.weight";
        const int n = 1_100_000;
        double p = 1e6 / n;
        foreach (var (ordinal, size) in new[] { (0, 1_000_151), (1, 999_989) })
        {
            ulong key = MaskGenerator.Key(0, name, ordinal);
            Assert.Equal(size, Enumerable.Range(0, n).Count(i => MaskGenerator.Keep(key, i, p)));
        }
        var (b, xs) = FineTunes(17, 1, n);
        Assert.Equal(Reference.ArceeFusion(b, xs[0], 1100, 1000, 0, name), Run("arcee_fusion", [b, xs[0]], 0, 1100, 1000, name: name, chunkRows: 300));
    }
}
