using Mistral.Merge.Inference;
using System.Text.Json.Nodes;

namespace Mistral.Merge.Moe;

/// <summary>
/// Accumulates Mixtral routing decisions per layer: selection counts (top-k), renormalized routing
/// weight sums, softmax probability sums and pair co-selection counts. <see cref="SelectionFrequency"/>
/// is the share of all top-k selections that went to each expert (rows sum to 1), the definition of the
/// fixtures' routing tables.
/// </summary>
public sealed class RoutingStatistics
{
    public int Layers { get; }
    public int Experts { get; }
    public int TopK { get; }
    private readonly long[] _tokens;
    private readonly long[,] _selected;
    private readonly double[,] _weightSum, _probSum;
    private readonly long[][,] _pairs;

    public RoutingStatistics(int layers, int experts, int topK)
    {
        if (layers < 1 || experts < 1 || topK < 1 || topK > experts)
            throw new MergeException($"routing statistics: need layers ≥ 1 and 1 ≤ top-k ≤ experts (got {layers} layers, {experts} experts, top-{topK})");
        Layers = layers; Experts = experts; TopK = topK;
        _tokens = new long[layers];
        _selected = new long[layers, experts];
        _weightSum = new double[layers, experts];
        _probSum = new double[layers, experts];
        _pairs = new long[layers][,];
        for (int l = 0; l < layers; l++) _pairs[l] = new long[experts, experts];
    }

    /// <summary>Adds router logits of one layer, float32 [tokens, experts] row-major.</summary>
    public void Add(int layer, ReadOnlySpan<float> logits)
    {
        if ((uint)layer >= (uint)Layers) throw new MergeException($"routing statistics: layer {layer} out of range (model has {Layers})");
        if (logits.Length % Experts != 0) throw new MergeException($"routing statistics: {logits.Length} logits is not a multiple of {Experts} experts");
        Span<float> probs = stackalloc float[Experts];
        Span<int> chosen = stackalloc int[TopK];
        Span<float> weights = stackalloc float[TopK];
        var pairs = _pairs[layer];
        for (int t = 0; t < logits.Length / Experts; t++)
        {
            var row = logits.Slice(t * Experts, Experts);
            Routing.ThrowIfNotFinite(row);
            Routing.Route(row, TopK, probs, chosen, weights);
            for (int e = 0; e < Experts; e++) _probSum[layer, e] += probs[e];
            for (int s = 0; s < TopK; s++)
            {
                _selected[layer, chosen[s]]++;
                _weightSum[layer, chosen[s]] += weights[s];
                for (int s2 = 0; s2 < TopK; s2++) pairs[chosen[s], chosen[s2]]++;
            }
            _tokens[layer]++;
        }
    }

    public long Tokens(int layer) => _tokens[layer];
    public long Selections(int layer, int expert) => _selected[layer, expert];

    /// <summary>Share of layer's top-k selections that went to the expert (0 when no tokens).</summary>
    public double SelectionFrequency(int layer, int expert) => _tokens[layer] == 0 ? 0 : (double)_selected[layer, expert] / (_tokens[layer] * TopK);

    /// <summary>Mean renormalized routing weight over the tokens that selected the expert (0 if never selected).</summary>
    public double MeanWeightWhenSelected(int layer, int expert) => _selected[layer, expert] == 0 ? 0 : _weightSum[layer, expert] / _selected[layer, expert];

    /// <summary>Mean routing weight over all tokens (0 where not selected): the expert's share of the layer's output mix.</summary>
    public double MeanWeight(int layer, int expert) => _tokens[layer] == 0 ? 0 : _weightSum[layer, expert] / _tokens[layer];

    /// <summary>Mean softmax probability over all tokens (before top-k).</summary>
    public double MeanProbability(int layer, int expert) => _tokens[layer] == 0 ? 0 : _probSum[layer, expert] / _tokens[layer];

    /// <summary>Tokens whose top-k held both experts (diagonal: the expert's selection count).</summary>
    public long CoSelected(int layer, int a, int b) => _pairs[layer][a, b];

    public double[][] SelectionFrequencyTable()
    {
        var r = new double[Layers][];
        for (int l = 0; l < Layers; l++)
        {
            r[l] = new double[Experts];
            for (int e = 0; e < Experts; e++) r[l][e] = SelectionFrequency(l, e);
        }
        return r;
    }

    public JsonObject ToJson()
    {
        JsonArray Table(Func<int, int, double> f)
        {
            var a = new JsonArray();
            for (int l = 0; l < Layers; l++)
            {
                var row = new JsonArray();
                for (int e = 0; e < Experts; e++) row.Add(Math.Round(f(l, e), 6));
                a.Add(row);
            }
            return a;
        }
        var pairs = new JsonArray();
        for (int l = 0; l < Layers; l++)
        {
            var m = new JsonArray();
            for (int a = 0; a < Experts; a++)
            {
                var row = new JsonArray();
                for (int b = 0; b < Experts; b++) row.Add(_pairs[l][a, b]);
                m.Add(row);
            }
            pairs.Add(m);
        }
        var tokens = new JsonArray();
        foreach (var t in _tokens) tokens.Add(t);
        return new JsonObject
        {
            ["layers"] = Layers,
            ["experts"] = Experts,
            ["top_k"] = TopK,
            ["tokens"] = tokens,
            ["selection_frequency"] = Table(SelectionFrequency),
            ["mean_weight"] = Table(MeanWeight),
            ["mean_weight_when_selected"] = Table(MeanWeightWhenSelected),
            ["mean_probability"] = Table(MeanProbability),
            ["co_selection"] = pairs,
        };
    }
}
