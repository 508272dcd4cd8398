namespace Mistral.Merge.Tests.Inference;

/// <summary>
/// A naive full-sequence forward pass in double precision, written from the HF modeling code
/// independently of the library's kernels: explicit causal / sliding-window mask, no cache; q/k/v biases when the
/// model has them (Qwen2).
/// </summary>
public static class ReferenceForward
{
    public static double[][] Logits(TinyModel m, int[] tokens)
    {
        int T = tokens.Length, H = m.Hidden, hd = m.Hd;
        float[] W(string n) => m.Tensors[n].Data;
        var x = new double[T][];
        for (int t = 0; t < T; t++) x[t] = Row(W("model.embed_tokens.weight"), tokens[t], H);
        for (int l = 0; l < m.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            var xn = x.Select(r => Norm(r, W(p + "input_layernorm.weight"), m.Eps)).ToArray();
            var q = xn.Select(r => MatVec(W(p + "self_attn.q_proj.weight"), r, m.Heads * hd)).ToArray();
            var k = xn.Select(r => MatVec(W(p + "self_attn.k_proj.weight"), r, m.KvHeads * hd)).ToArray();
            var v = xn.Select(r => MatVec(W(p + "self_attn.v_proj.weight"), r, m.KvHeads * hd)).ToArray();
            // Qwen2: nn.Linear(bias=True) on q/k/v, added before the rotary embedding
            foreach (var (name, rows) in new[] { ("q", q), ("k", k), ("v", v) })
                if (m.Tensors.TryGetValue(p + $"self_attn.{name}_proj.bias", out var bias))
                    foreach (var row in rows) for (int c = 0; c < row.Length; c++) row[c] += bias.Data[c];
            for (int t = 0; t < T; t++) { Rope(q[t], m.Heads, hd, t, m.Theta); Rope(k[t], m.KvHeads, hd, t, m.Theta); }
            var att = new double[T][];
            for (int i = 0; i < T; i++)
            {
                att[i] = new double[m.Heads * hd];
                for (int h = 0; h < m.Heads; h++)
                {
                    int g = h / (m.Heads / m.KvHeads);
                    var s = new double[T];
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < T; j++)
                    {
                        bool visible = j <= i && (m.Window is not { } w || i - j < w);
                        if (!visible) { s[j] = double.NegativeInfinity; continue; }
                        double d = 0;
                        for (int c = 0; c < hd; c++) d += q[i][h * hd + c] * k[j][g * hd + c];
                        s[j] = d / Math.Sqrt(hd);
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < T; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                    for (int j = 0; j < T; j++)
                        for (int c = 0; c < hd; c++) att[i][h * hd + c] += s[j] / sum * v[j][g * hd + c];
                }
            }
            for (int t = 0; t < T; t++) Add(x[t], MatVec(W(p + "self_attn.o_proj.weight"), att[t], H));
            xn = x.Select(r => Norm(r, W(p + "post_attention_layernorm.weight"), m.Eps)).ToArray();
            for (int t = 0; t < T; t++)
            {
                if (m.Experts == 0)
                {
                    Add(x[t], Mlp(m, W(p + "mlp.gate_proj.weight"), W(p + "mlp.up_proj.weight"), W(p + "mlp.down_proj.weight"), xn[t]));
                    continue;
                }
                var logits = MatVec(W(p + "block_sparse_moe.gate.weight"), xn[t], m.Experts);
                double mx = logits.Max();
                var prob = logits.Select(z => Math.Exp(z - mx)).ToArray();
                double ps = prob.Sum();
                for (int e = 0; e < prob.Length; e++) prob[e] /= ps;
                var chosen = Enumerable.Range(0, m.Experts).OrderByDescending(e => prob[e]).ThenBy(e => e).Take(m.TopK).ToArray();
                double total = chosen.Sum(e => prob[e]);
                var o = new double[H];
                foreach (var e in chosen.OrderBy(e => e))
                {
                    var y = Mlp(m, W(p + $"block_sparse_moe.experts.{e}.w1.weight"), W(p + $"block_sparse_moe.experts.{e}.w3.weight"), W(p + $"block_sparse_moe.experts.{e}.w2.weight"), xn[t]);
                    for (int c = 0; c < H; c++) o[c] += y[c] * (prob[e] / total);
                }
                Add(x[t], o);
            }
        }
        var head = m.Tie ? W("model.embed_tokens.weight") : W("lm_head.weight");
        return x.Select(r => MatVec(head, Norm(r, W("model.norm.weight"), m.Eps), m.Vocab)).ToArray();
    }

    private static double[] Mlp(TinyModel m, float[] gate, float[] up, float[] down, double[] x)
    {
        var g = MatVec(gate, x, m.Intermediate);
        var u = MatVec(up, x, m.Intermediate);
        for (int i = 0; i < g.Length; i++) g[i] = g[i] / (1 + Math.Exp(-g[i])) * u[i];
        return MatVec(down, g, m.Hidden);
    }

    private static double[] Row(float[] w, int row, int n) => Enumerable.Range(0, n).Select(c => (double)w[row * n + c]).ToArray();

    private static double[] MatVec(float[] w, double[] x, int rows)
    {
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double s = 0;
            for (int c = 0; c < x.Length; c++) s += w[r * x.Length + c] * x[c];
            y[r] = s;
        }
        return y;
    }

    private static double[] Norm(double[] x, float[] w, double eps)
    {
        double ms = x.Sum(v => v * v) / x.Length;
        return x.Select((v, i) => v / Math.Sqrt(ms + eps) * w[i]).ToArray();
    }

    private static void Rope(double[] v, int heads, int hd, int pos, double theta)
    {
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < hd / 2; i++)
            {
                double a = pos / Math.Pow(theta, 2.0 * i / hd);
                double x1 = v[h * hd + i], x2 = v[h * hd + i + hd / 2];
                v[h * hd + i] = x1 * Math.Cos(a) - x2 * Math.Sin(a);
                v[h * hd + i + hd / 2] = x2 * Math.Cos(a) + x1 * Math.Sin(a);
            }
    }

    private static void Add(double[] x, double[] y) { for (int i = 0; i < x.Length; i++) x[i] += y[i]; }
}
