using Mistral.Merge.Inference;

namespace Mistral.Merge.Moe.Build;

/// <summary>
/// mergekit's <c>get_hidden_states</c> on our CPU forward pass: every prompt is run on its own (mergekit pads a
/// batch on the left and masks the padding; with RoPE's relative positions that gives the same hidden states), and
/// each layer's input hidden state (HF <c>hidden_states[layer]</c>, l = 0 .. layers−1, i.e. <c>hidden_states[:-1]</c>)
/// is taken at the last token (<c>hidden</c>) or averaged over the prompt's tokens (<c>hidden_avg</c>), then
/// averaged over the prompts. Float32 forward pass, float64 sums.
/// </summary>
public static class PromptHiddenStates
{
    /// <summary>[layer][hidden]: the mean over <paramref name="prompts"/> (token ids, BOS included) of the chosen hidden state.</summary>
    public static double[][] Mean(CpuBackend backend, IReadOnlyList<int[]> prompts, bool averageTokens, CancellationToken token = default)
    {
        var s = backend.Shape;
        var total = new double[s.Layers][];
        for (int l = 0; l < s.Layers; l++) total[l] = new double[s.Hidden];
        if (prompts.Count == 0) return total;
        var observer = new Capture(s.Layers, s.Hidden);
        var previous = backend.LayerInputObserver;
        backend.LayerInputObserver = observer;
        try
        {
            var logits = new float[s.Vocab];
            foreach (var ids in prompts)
            {
                token.ThrowIfCancellationRequested();
                observer.Start();
                using var cache = backend.CreateCache(ids.Length);
                var positions = new int[ids.Length];
                for (int i = 0; i < positions.Length; i++) positions[i] = i;
                backend.Forward(ids, positions, cache, logits);
                for (int l = 0; l < s.Layers; l++)
                {
                    var src = averageTokens ? observer.Sum[l] : observer.Last[l];
                    double scale = averageTokens ? 1.0 / ids.Length : 1.0;
                    for (int j = 0; j < s.Hidden; j++) total[l][j] += src[j] * scale;
                }
            }
        }
        finally { backend.LayerInputObserver = previous; }
        for (int l = 0; l < s.Layers; l++)
            for (int j = 0; j < s.Hidden; j++) total[l][j] /= prompts.Count;
        return total;
    }

    /// <summary>Per layer, the last row fed (the forward pass may feed a long prompt in chunks) and the sum of all rows.</summary>
    private sealed class Capture(int layers, int hidden) : ILayerInputObserver
    {
        public readonly double[][] Last = Enumerable.Range(0, layers).Select(_ => new double[hidden]).ToArray();
        public readonly double[][] Sum = Enumerable.Range(0, layers).Select(_ => new double[hidden]).ToArray();

        public void Start()
        {
            foreach (var a in Sum) Array.Clear(a);
        }

        public void ObserveLayerInput(int layer, ReadOnlySpan<float> x, int tokens)
        {
            var last = x.Slice((tokens - 1) * hidden, hidden);
            for (int j = 0; j < hidden; j++) Last[layer][j] = last[j];
            var sum = Sum[layer];
            for (int t = 0; t < tokens; t++)
                for (int j = 0; j < hidden; j++) sum[j] += x[t * hidden + j];
        }
    }
}
