namespace Mistral.Merge.Models;

public sealed partial class Architecture
{
    /// <summary>MistralForCausalLM: Llama's layout with grouped-query attention and a sliding window.</summary>
    public static readonly Architecture Mistral = new()
    {
        Name = "mistral",
        Order = 0,
        HfArchitectures = ["MistralForCausalLM"],
        ModelTypes = ["mistral"],
        Keys = new ConfigKeys(),
        Synth = new SynthDefaults { MaxPositionEmbeddings = 32768, RopeTheta = 10000.0, Keys = [("sliding_window", 4096)] },
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
        Gate = "mlp.gate_proj.weight",
        Up = "mlp.up_proj.weight",
        Down = "mlp.down_proj.weight",
        IgnoredSuffixes = ["rotary_emb.inv_freq"],
        // convert_hf_to_gguf.py: LlamaModel (Llama, Mistral and Mixtral are all llama.cpp's "llama")
        Gguf = new GgufLayout("llama", PermuteQk: true, LlamaKeys: true),
    };
}
