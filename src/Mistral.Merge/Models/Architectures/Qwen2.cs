namespace Mistral.Merge.Models;

public sealed partial class Architecture
{
    /// <summary>
    /// Qwen2ForCausalLM: Llama's layout plus biases on the q/k/v projections (o_proj and the MLP have none). The
    /// sliding window applies only when <c>use_sliding_window</c> is true (then refused by the forward pass).
    /// </summary>
    public static readonly Architecture Qwen2 = new()
    {
        Name = "qwen2",
        Order = 3,
        HfArchitectures = ["Qwen2ForCausalLM"],
        ModelTypes = ["qwen2"],
        Keys = new ConfigKeys { SlidingWindowSwitch = "use_sliding_window" },
        Synth = new SynthDefaults
        {
            MaxPositionEmbeddings = 32768,
            RopeTheta = 1000000.0,
            Keys = [("sliding_window", 32768), ("use_sliding_window", false)],
        },
        Embed = "model.embed_tokens.weight",
        FinalNorm = "model.norm.weight",
        LmHead = "lm_head.weight",
        LayerPrefix = "model.layers.{layer}.",
        InputNorm = "input_layernorm.weight",
        PostAttentionNorm = "post_attention_layernorm.weight",
        Q = "self_attn.q_proj.weight",
        K = "self_attn.k_proj.weight",
        V = "self_attn.v_proj.weight",
        O = "self_attn.o_proj.weight",
        QBias = "self_attn.q_proj.bias",
        KBias = "self_attn.k_proj.bias",
        VBias = "self_attn.v_proj.bias",
        Gate = "mlp.gate_proj.weight",
        Up = "mlp.up_proj.weight",
        Down = "mlp.down_proj.weight",
        IgnoredSuffixes = ["rotary_emb.inv_freq"],
        // convert_hf_to_gguf.py: Qwen2Model (NEOX RoPE: no permutation)
        Gguf = new GgufLayout("qwen2", PermuteQk: false, LlamaKeys: false),
    };
}
