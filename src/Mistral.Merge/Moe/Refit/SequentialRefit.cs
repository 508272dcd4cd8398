using System.Globalization;
using Mistral.Merge.Inference;

namespace Mistral.Merge.Moe.Refit;

/// <summary>
/// <c>strategy: refit</c> over a whole Mixtral, layer by layer: the block inputs X of layer l come from a forward pass
/// in which layers &lt; l already run their fitted dense MLPs (so a layer fits the activations it will really see and
/// errors do not compound), the targets are the original MoE block applied to those same X (<see cref="LayerRefit"/>).
/// One calibration pass per layer; memory: one layer's X and Y (tokens × hidden float32 each), one layer's experts,
/// the N×N float64 Gram matrix and its factor; the fitted dense layers go to <paramref name="store"/> (a memory-mapped
/// temporary file), so anonymous memory does not grow with the layers done.
/// </summary>
public static class SequentialRefit
{
    public static LayerFitStats[] Run(string model, MixtralLayout m, RefitOptions o, int threads, FittedLayerStore store, CancellationToken token = default)
    {
        var fits = new LayerFitStats[m.Layers];
        var ci = CultureInfo.InvariantCulture;
        for (int l = 0; l < m.Layers; l++)
        {
            token.ThrowIfCancellationRequested();
            var x = MoeLayerCapture.Inputs(model, o.Calibration, l, new DenseBelow(store, l, threads), o.Ctx, o.Stride, threads, token: token);
            var fit = LayerRefit.Fit(x, o.Calibration.Length, m.ReadExperts(l), m.ReadRouter(l), m.Config.NumExpertsPerTok, l, o, threads);
            store.Add(fit.Dense);
            fits[l] = fit.Stats;
            o.Log?.Invoke(string.Create(ci, $"refit layer {l + 1}/{m.Layers}: relative error {fits[l].InitialError:F4} after the w2 solve, {fits[l].FinalError:F4} after {fits[l].AcceptedSteps} refinement step(s), λ {fits[l].Lambda:G3}, {fits[l].Seconds:F1} s"));
        }
        return fits;
    }

    /// <summary>Layers below <paramref name="layer"/> run their dense MLP; the captured layer and those above are skipped (zero output: nothing reads them).</summary>
    private sealed class DenseBelow(FittedLayerStore store, int layer, int threads) : IMoeBlockOverride
    {
        public bool Replace(int l, ReadOnlySpan<float> inputs, Span<float> output, int tokens)
        {
            if (l >= layer) { output.Clear(); return true; }
            var d = store.Layer(l);
            var hid = RoutedMoe.Hidden(d.W1, d.W3, d.Hidden, d.Intermediate, inputs.ToArray(), tokens, threads);
            output.Clear();
            var y = new float[(long)tokens * d.Hidden];
            Numerics.SimilarityGemm.MultiplyAddNT(hid, d.W2, y, tokens, d.Hidden, d.Intermediate, threads);
            y.CopyTo(output);
            return true;
        }
    }
}
