using Mistral.Merge.Inference;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;

namespace Mistral.Merge.Moe.Build;

/// <summary>
/// The router rows of a built Mixtral, as mergekit/moe/router.py <c>get_gate_params</c> computes them:
/// <list type="bullet">
/// <item><c>hidden</c> / <c>hidden_avg</c>: per layer, the mean hidden state of the positive prompts
/// (<see cref="PromptHiddenStates"/>), minus that of the negative prompts when given, L2-normalised (norm clamped at 1e-8).</item>
/// <item><c>cheap_embed</c>: Σ over prompts and tokens of the input embedding rows, L2-normalised; minus the negative
/// prompts' same vector when given; L2-normalised again; the same row in every layer.</item>
/// <item><c>random</c> N(0, 1) and <c>uniform_random</c> U(−1/√H, 1/√H): from the portable seeded generator
/// (<see cref="MaskGenerator"/>) keyed by the seed and the router's tensor name instead of torch's global state.</item>
/// </list>
/// Prompts are tokenized as mergekit does: BOS text + prompt with <c>add_special_tokens=False</c>, i.e. [BOS] + encode(prompt).
/// </summary>
public static class GateVectors
{
    /// <summary>[layer] → row-major [experts, hidden] float32 router weights.</summary>
    public static float[][] Compute(MoeBuildConfig c, string baseFolder, int layers, int hidden, ulong seed, int threads, CancellationToken token = default)
    {
        switch (c.GateMode)
        {
            case GateMode.Random: return Random(layers, c.Experts.Count, hidden, seed, uniform: false);
            case GateMode.UniformRandom: return Random(layers, c.Experts.Count, hidden, seed, uniform: true);
        }
        var tokenizer = TokenizerLoader.Load(baseFolder);
        int[][] Ids(IReadOnlyList<string> prompts) => [.. prompts.Select(p => tokenizer.Encode(p, addBos: true))];
        var rows = new double[c.Experts.Count][][];
        if (c.GateMode == GateMode.CheapEmbed)
        {
            using var folder = ModelFolder.Open(baseFolder);
            var embed = folder.ReadSingle(folder.Config!.Names.Embed);
            int vocab = embed.Length / hidden;
            for (int e = 0; e < rows.Length; e++)
            {
                var x = CheapEmbedding(embed, vocab, hidden, Ids(c.Experts[e].PositivePrompts));
                if (c.Experts[e].NegativePrompts.Count > 0)
                {
                    var n = CheapEmbedding(embed, vocab, hidden, Ids(c.Experts[e].NegativePrompts));
                    for (int j = 0; j < hidden; j++) x[j] -= n[j];
                }
                Normalize(x);
                rows[e] = [.. Enumerable.Repeat(x, layers)];
            }
        }
        else
        {
            using var model = TransformerModel.Load(baseFolder);
            using var backend = new CpuBackend(model, threads);
            bool avg = c.GateMode == GateMode.HiddenAverage;
            for (int e = 0; e < rows.Length; e++)
            {
                var x = PromptHiddenStates.Mean(backend, Ids(c.Experts[e].PositivePrompts), avg, token);
                if (c.Experts[e].NegativePrompts.Count > 0)
                {
                    var n = PromptHiddenStates.Mean(backend, Ids(c.Experts[e].NegativePrompts), avg, token);
                    for (int l = 0; l < layers; l++)
                        for (int j = 0; j < hidden; j++) x[l][j] -= n[l][j];
                }
                foreach (var r in x) Normalize(r);
                rows[e] = x;
            }
        }
        var gates = new float[layers][];
        for (int l = 0; l < layers; l++)
        {
            gates[l] = new float[rows.Length * hidden];
            for (int e = 0; e < rows.Length; e++)
                for (int j = 0; j < hidden; j++) gates[l][e * hidden + j] = (float)rows[e][l][j];
        }
        return gates;
    }

    /// <summary>mergekit's <c>get_cheap_embedding</c>: the sum of the embedding rows of every token of every prompt, L2-normalised.</summary>
    public static double[] CheapEmbedding(float[] embed, int vocab, int hidden, IReadOnlyList<int[]> prompts)
    {
        var sum = new double[hidden];
        foreach (var ids in prompts)
            foreach (var id in ids)
            {
                if ((uint)id >= (uint)vocab) throw new MergeException($"token id {id} is outside the base model's embedding ({vocab} rows)");
                for (int j = 0; j < hidden; j++) sum[j] += embed[(long)id * hidden + j];
            }
        Normalize(sum);
        return sum;
    }

    /// <summary>x /= max(‖x‖₂, 1e-8), as torch's <c>x / x.norm().clamp(min=1e-8)</c>.</summary>
    public static void Normalize(double[] x)
    {
        double n = 0;
        foreach (var v in x) n += v * v;
        n = Math.Max(Math.Sqrt(n), 1e-8);
        for (int j = 0; j < x.Length; j++) x[j] /= n;
    }

    private static float[][] Random(int layers, int experts, int hidden, ulong seed, bool uniform)
    {
        var gates = new float[layers][];
        double scale = Math.Sqrt(1.0 / hidden);
        for (int l = 0; l < layers; l++)
        {
            ulong key = MaskGenerator.Key(seed, MixtralLayout.Router(l), 0);
            gates[l] = new float[experts * hidden];
            for (int i = 0; i < gates[l].Length; i++)
                gates[l][i] = uniform ? (float)(Uniform(key, i) * 2 * scale - scale) : (float)Normal(key, i);
        }
        return gates;
    }

    private const double TwoPow24 = 16777216.0;

    /// <summary>U[0, 1) in steps of 2⁻²⁴: draw i of the stream.</summary>
    public static double Uniform(ulong key, long i) => MaskGenerator.Draw24(key, i) / TwoPow24;

    /// <summary>N(0, 1) by Box–Muller from draws 2i (u₁ ∈ (0, 1]) and 2i + 1.</summary>
    public static double Normal(ulong key, long i)
    {
        double u1 = (MaskGenerator.Draw24(key, 2 * i) + 1) / TwoPow24, u2 = MaskGenerator.Draw24(key, 2 * i + 1) / TwoPow24;
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
