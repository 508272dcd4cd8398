using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Tests.Inference;

/// <summary>A small seeded checkpoint built in memory and written as an HF folder (config.json + model.safetensors).</summary>
public sealed class TinyModel
{
    public string Arch = "mistral";
    public int Hidden = 32, Intermediate = 40, Layers = 2, Heads = 4, KvHeads = 2, Vocab = 61;
    public int? HeadDim;
    public int? Window;
    public bool Tie;
    public int Experts, TopK;
    /// <summary>q/k/v biases (Qwen2); on by default for <c>Arch = "qwen2"</c>.</summary>
    public bool? Biases;
    public double Theta = 10000, Eps = 1e-5;
    public DType DType = DType.F32;
    public readonly Dictionary<string, (long[] Shape, float[] Data)> Tensors = new();

    public int Hd => HeadDim ?? Hidden / Heads;
    public bool HasBiases => Biases ?? Arch == "qwen2";

    /// <summary>Fills every tensor the architecture needs with seeded values.</summary>
    public TinyModel Init(int seed = 1)
    {
        var rng = new Random(seed);
        void M(string name, int rows, int cols, double scale)
        {
            var d = new float[rows * cols];
            for (int i = 0; i < d.Length; i++) d[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
            Tensors[name] = ([rows, cols], d);
        }
        void V(string name, int n)
        {
            var d = new float[n];
            for (int i = 0; i < n; i++) d[i] = (float)(1 + (rng.NextDouble() - 0.5) * 0.4);
            Tensors[name] = ([n], d);
        }
        void B(string name, int n)
        {
            M(name, 1, n, 0.5);
            Tensors[name] = ([n], Tensors[name].Data);
        }
        int hd = Hd;
        M("model.embed_tokens.weight", Vocab, Hidden, 1.0);
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            V(p + "input_layernorm.weight", Hidden);
            V(p + "post_attention_layernorm.weight", Hidden);
            M(p + "self_attn.q_proj.weight", Heads * hd, Hidden, 0.4);
            M(p + "self_attn.k_proj.weight", KvHeads * hd, Hidden, 0.4);
            M(p + "self_attn.v_proj.weight", KvHeads * hd, Hidden, 0.3);
            M(p + "self_attn.o_proj.weight", Hidden, Heads * hd, 0.3);
            if (HasBiases)
            {
                B(p + "self_attn.q_proj.bias", Heads * hd);
                B(p + "self_attn.k_proj.bias", KvHeads * hd);
                B(p + "self_attn.v_proj.bias", KvHeads * hd);
            }
            if (Experts == 0)
            {
                M(p + "mlp.gate_proj.weight", Intermediate, Hidden, 0.3);
                M(p + "mlp.up_proj.weight", Intermediate, Hidden, 0.3);
                M(p + "mlp.down_proj.weight", Hidden, Intermediate, 0.3);
            }
            else
            {
                M(p + "block_sparse_moe.gate.weight", Experts, Hidden, 0.5);
                for (int e = 0; e < Experts; e++)
                {
                    M(p + $"block_sparse_moe.experts.{e}.w1.weight", Intermediate, Hidden, 0.3);
                    M(p + $"block_sparse_moe.experts.{e}.w2.weight", Hidden, Intermediate, 0.3);
                    M(p + $"block_sparse_moe.experts.{e}.w3.weight", Intermediate, Hidden, 0.3);
                }
            }
        }
        V("model.norm.weight", Hidden);
        if (!Tie) M("lm_head.weight", Vocab, Hidden, 0.5);
        return this;
    }

    public JsonObject Config()
    {
        var c = new JsonObject
        {
            ["architectures"] = new JsonArray(Arch switch { "mixtral" => "MixtralForCausalLM", "llama" => "LlamaForCausalLM", "qwen2" => "Qwen2ForCausalLM", _ => Arch == "mistral" ? "MistralForCausalLM" : Arch }),
            ["model_type"] = Arch,
            ["hidden_size"] = Hidden,
            ["intermediate_size"] = Intermediate,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["vocab_size"] = Vocab,
            ["rope_theta"] = Theta,
            ["rms_norm_eps"] = Eps,
            ["sliding_window"] = Window,
            ["tie_word_embeddings"] = Tie,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["torch_dtype"] = DType.ToTorchName(),
        };
        if (HeadDim is { } h) c["head_dim"] = h;
        if (Experts > 0) { c["num_local_experts"] = Experts; c["num_experts_per_tok"] = TopK; }
        return c;
    }

    /// <summary>Writes the folder; values are rounded once to <see cref="DType"/>.</summary>
    public string Write(string dir, JsonObject? config = null)
    {
        var plan = Tensors.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => new PlannedTensor(t.Key, DType, t.Value.Shape)).ToList();
        using var w = new CheckpointWriter(dir, plan, new WriterOptions { Force = true });
        foreach (var (name, (_, data)) in Tensors)
        {
            var bytes = new byte[data.Length * DType.SizeOf()];
            Conversions.FromSingle(data, DType, bytes);
            w.Write(name, bytes);
        }
        w.AddFile("config.json", (config ?? Config()).ToJsonString());
        w.Commit(force: true);
        return dir;
    }

    /// <summary>Rounds the in-memory values to the stored dtype (so a reference reads what the file holds).</summary>
    public void RoundToDType()
    {
        foreach (var (_, (_, data)) in Tensors)
        {
            var bytes = new byte[data.Length * DType.SizeOf()];
            Conversions.FromSingle(data, DType, bytes);
            Conversions.ToSingle(bytes, DType, data);
        }
    }
}
