using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;
using Mistral.Merge.Moe;

namespace Mistral.Merge.Tests.Moe;

/// <summary>Writes a tiny random Mixtral checkpoint (F32) for tests that must not depend on the shared fixtures.</summary>
internal static class TinyMixtral
{
    public const int Hidden = 8, Inter = 12, Layers = 2, Vocab = 16;

    public static void Write(string dir, int experts, Func<int, int, ExpertWeights>? expert = null, Func<int, float[]>? router = null, int seed = 1, int perTok = 2)
    {
        var rng = new Random(seed);
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var tensors = new Dictionary<string, (long[] Shape, float[] Data)>
        {
            ["model.embed_tokens.weight"] = ([Vocab, Hidden], R(Vocab * Hidden)),
            ["model.norm.weight"] = ([Hidden], R(Hidden)),
        };
        for (int l = 0; l < Layers; l++)
        {
            foreach (var p in new[] { "q_proj", "k_proj", "v_proj", "o_proj" })
                tensors[$"model.layers.{l}.self_attn.{p}.weight"] = ([Hidden, Hidden], R(Hidden * Hidden));
            tensors[$"model.layers.{l}.input_layernorm.weight"] = ([Hidden], R(Hidden));
            tensors[$"model.layers.{l}.post_attention_layernorm.weight"] = ([Hidden], R(Hidden));
            tensors[MixtralLayout.Router(l)] = ([experts, Hidden], router?.Invoke(l) ?? R(experts * Hidden));
            for (int e = 0; e < experts; e++)
            {
                var x = expert?.Invoke(l, e) ?? new ExpertWeights(Hidden, Inter, R(Hidden * Inter), R(Hidden * Inter), R(Hidden * Inter));
                tensors[MixtralLayout.ExpertTensor(l, e, "w1")] = ([Inter, Hidden], x.W1);
                tensors[MixtralLayout.ExpertTensor(l, e, "w3")] = ([Inter, Hidden], x.W3);
                tensors[MixtralLayout.ExpertTensor(l, e, "w2")] = ([Hidden, Inter], x.W2);
            }
        }
        var plan = tensors.Select(kv => new PlannedTensor(kv.Key, DType.F32, kv.Value.Shape)).ToList();
        using var w = new CheckpointWriter(dir, plan);
        foreach (var (k, v) in tensors) w.Write(k, MemoryMarshal.AsBytes(v.Data.AsSpan()));
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("MixtralForCausalLM"), ["model_type"] = "mixtral",
            ["hidden_size"] = Hidden, ["intermediate_size"] = Inter, ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = 2, ["num_key_value_heads"] = 1, ["vocab_size"] = Vocab, ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 1e6, ["max_position_embeddings"] = 64, ["tie_word_embeddings"] = false, ["sliding_window"] = null,
            ["num_local_experts"] = experts, ["num_experts_per_tok"] = perTok, ["router_aux_loss_coef"] = 0.02,
            ["output_router_logits"] = false, ["router_jitter_noise"] = 0.0, ["torch_dtype"] = "float32", ["custom_key"] = "kept",
        };
        w.AddFile("config.json", config.ToJsonString());
        w.Commit();
    }

    /// <summary>Calibration inputs given directly (as the forward pass would hand them over).</summary>
    public sealed class FixedCalibration(float[][] inputs, int tokens) : IMoeCalibrationSource
    {
        public int Layers => inputs.Length;
        public int Hidden => TinyMixtral.Hidden;
        public float[] MoeInputs(int layer, out int t) { t = tokens; return inputs[layer]; }
    }
}
