namespace Mistral.Merge.Models;

public sealed partial class Architecture
{
    /// <summary>LlamaForCausalLM: no sliding window (a <c>sliding_window</c> key is ignored).</summary>
    public static readonly Architecture Llama = new()
    {
        Name = "llama",
        Order = 2,
        HfArchitectures = ["LlamaForCausalLM"],
        ModelTypes = ["llama"],
        Keys = new ConfigKeys { SlidingWindow = null },
        Synth = new SynthDefaults { MaxPositionEmbeddings = 4096, RopeTheta = 10000.0 },
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
