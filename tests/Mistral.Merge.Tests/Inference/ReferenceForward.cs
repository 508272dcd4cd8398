using System.Runtime.InteropServices;
using Mistral.Merge.Cuda;
using Mistral.Merge.Models;

namespace Mistral.Merge.Tests.Inference;

/// <summary>
/// The one test oracle: a deliberately naive, independent full-sequence forward pass (HF Mistral/Llama/Mixtral
/// semantics written from the modeling code, float64 accumulation over the weights widened to f32, an explicit
/// causal / sliding-window mask, no cache; q/k/v biases when the model has them, as Qwen2). It shares no code with the kernels; the CPU backend's tests (on
/// <see cref="TinyModel"/>s) and the GPU tests (on synthesized weights) compare against it, and it is itself
/// checked against the upstream reference logits and expected.json on the fixtures (ReferenceForwardTests).
/// </summary>
public sealed class ReferenceForward
{
    private readonly ModelConfig _c;
    private readonly Func<string, float[]> _w;
    private readonly Func<string, bool> _has;
    private readonly Dictionary<string, float[]> _cache = new();

    public ReferenceForward(ModelConfig config, Func<string, float[]> weights, Func<string, bool> has)
    {
        _c = config;
        _w = weights;
        _has = has;
    }

    public ReferenceForward(IWeightSource src) : this(src.Config, name =>
    {
        var info = src.Info(name);
        var f = new float[info.ElementCount];
        Conversions.ToSingle(src.Bytes(name), info.DType, f);
        return f;
    }, src.Contains)
    { }

    /// <summary>Logits [T][V] of a <see cref="TinyModel"/> (its values as they are, before any rounding on write).</summary>
    public static double[][] Logits(TinyModel m, int[] tokens) =>
        new ReferenceForward(ModelConfig.FromJson(m.Config()), name => m.Tensors[name].Data, m.Tensors.ContainsKey).Logits(tokens);

    /// <summary>Sees every layer's input hidden states [T][hidden] (HF hidden_states[layer]) before the layer runs.</summary>
    public Action<int, double[][]>? LayerInput { get; set; }

    private float[] W(string name) => _cache.TryGetValue(name, out var f) ? f : _cache[name] = _w(name);

    /// <summary>Logits [T][V] for the whole sequence (causal, no cache).</summary>
    public double[][] Logits(IReadOnlyList<int> tokens)
    {
        int T = tokens.Count, h = _c.HiddenSize, H = _c.NumAttentionHeads, KVH = _c.NumKeyValueHeads, D = _c.HeadDim;
        int window = _c.SlidingWindow ?? 0;
        var emb = W(TensorNames.Embed);
        var x = new double[T][];
        for (int t = 0; t < T; t++) { x[t] = new double[h]; for (int i = 0; i < h; i++) x[t][i] = emb[(long)tokens[t] * h + i]; }

        for (int l = 0; l < _c.NumHiddenLayers; l++)
        {
            LayerInput?.Invoke(l, x);
            string L(string s) => TensorNames.Layer(l, s);
            var xn = x.Select(r => Norm(r, W(L("input_layernorm.weight")))).ToArray();
            var q = xn.Select(r => MatVec(W(L("self_attn.q_proj.weight")), r, H * D)).ToArray();
            var k = xn.Select(r => MatVec(W(L("self_attn.k_proj.weight")), r, KVH * D)).ToArray();
            var v = xn.Select(r => MatVec(W(L("self_attn.v_proj.weight")), r, KVH * D)).ToArray();
            // Qwen2: nn.Linear(bias=True) on q/k/v, added before the rotary embedding
            foreach (var (name, rows) in new[] { ("q", q), ("k", k), ("v", v) })
                if (_has(L($"self_attn.{name}_proj.bias")))
                {
                    var bias = W(L($"self_attn.{name}_proj.bias"));
                    foreach (var row in rows) for (int c = 0; c < row.Length; c++) row[c] += bias[c];
                }
            for (int t = 0; t < T; t++) { Rope(q[t], H, D, t); Rope(k[t], KVH, D, t); }
            var att = new double[T][];
            double scale = 1.0 / Math.Sqrt(D);
            for (int t = 0; t < T; t++)
            {
                att[t] = new double[H * D];
                for (int hh = 0; hh < H; hh++)
                {
                    int kv = hh / (H / KVH);
                    var s = new double[t + 1];
                    double mx = double.NegativeInfinity;
                    for (int j = 0; j <= t; j++)
                    {
                        if (window > 0 && t - j >= window) { s[j] = double.NegativeInfinity; continue; }
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += q[t][hh * D + d] * k[j][kv * D + d];
                        s[j] = dot * scale;
                        mx = Math.Max(mx, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= t; j++) { s[j] = double.IsNegativeInfinity(s[j]) ? 0 : Math.Exp(s[j] - mx); sum += s[j]; }
                    for (int j = 0; j <= t; j++)
                        for (int d = 0; d < D; d++) att[t][hh * D + d] += s[j] / sum * v[j][kv * D + d];
                }
            }
            for (int t = 0; t < T; t++) Add(x[t], MatVec(W(L("self_attn.o_proj.weight")), att[t], h));

            for (int t = 0; t < T; t++)
            {
                var n2 = Norm(x[t], W(L("post_attention_layernorm.weight")));
                if (!_c.IsMoe) { Add(x[t], Mlp(n2, L("mlp.gate_proj.weight"), L("mlp.up_proj.weight"), L("mlp.down_proj.weight"))); continue; }
                int E = _c.NumLocalExperts, K = _c.NumExpertsPerTok;
                var logits = MatVec(W(L("block_sparse_moe.gate.weight")), n2, E);
                double m = logits.Max();
                var p = logits.Select(z => Math.Exp(z - m)).ToArray();
                double ps = p.Sum();
                for (int e = 0; e < E; e++) p[e] /= ps;
                var chosen = Enumerable.Range(0, E).OrderByDescending(e => p[e]).ThenBy(e => e).Take(K).ToArray();
                double wsum = chosen.Sum(e => p[e]);
                var acc = new double[h];
                foreach (int e in chosen.OrderBy(e => e))
                {
                    var y = Mlp(n2, L($"block_sparse_moe.experts.{e}.w1.weight"), L($"block_sparse_moe.experts.{e}.w3.weight"), L($"block_sparse_moe.experts.{e}.w2.weight"));
                    for (int i = 0; i < h; i++) acc[i] += p[e] / wsum * y[i];
                }
                Add(x[t], acc);
            }
        }
        var head = _c.TieWordEmbeddings ? W(TensorNames.Embed) : W(TensorNames.LmHead);
        return x.Select(r => MatVec(head, Norm(r, W(TensorNames.FinalNorm)), _c.VocabSize)).ToArray();
    }

    private double[] Mlp(double[] xn, string gate, string up, string down)
    {
        int I = _c.IntermediateSize;
        var g = MatVec(W(gate), xn, I);
        var u = MatVec(W(up), xn, I);
        var a = new double[I];
        for (int i = 0; i < I; i++) a[i] = g[i] / (1 + Math.Exp(-g[i])) * u[i];
        return MatVec(W(down), a, _c.HiddenSize);
    }

    private double[] Norm(double[] x, float[] w)
    {
        double ss = 0;
        foreach (var v in x) ss += v * v;
        double inv = 1 / Math.Sqrt(ss / x.Length + _c.RmsNormEps);
        var y = new double[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = w[i] * (x[i] * inv);
        return y;
    }

    /// <summary>HF rotate_half with inv_freq = theta^(−2i/D), in double.</summary>
    private void Rope(double[] v, int heads, int D, int pos)
    {
        int half = D / 2;
        for (int hh = 0; hh < heads; hh++)
            for (int i = 0; i < half; i++)
            {
                double ang = pos * Math.Pow(_c.RopeTheta, -2.0 * i / D);
                double a = v[hh * D + i], b = v[hh * D + i + half];
                v[hh * D + i] = a * Math.Cos(ang) - b * Math.Sin(ang);
                v[hh * D + i + half] = b * Math.Cos(ang) + a * Math.Sin(ang);
            }
    }

    private static double[] MatVec(float[] w, double[] x, int rows)
    {
        int cols = x.Length;
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            var row = new ReadOnlySpan<float>(w, r * cols, cols);
            for (int i = 0; i < cols; i++) s += row[i] * x[i];
            y[r] = s;
        }
        return y;
    }

    private static void Add(double[] x, double[] y) { for (int i = 0; i < x.Length; i++) x[i] += y[i]; }
}
