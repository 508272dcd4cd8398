namespace Mistral.Merge.Models;

public sealed partial class Architecture
{
    /// <summary>MixtralForCausalLM: Mistral's attention, a sparse MoE block (router + experts w1/w2/w3) per layer.</summary>
    public static readonly Architecture Mixtral = new()
    {
        Name = "mixtral",
        Order = 1,
        HfArchitectures = ["MixtralForCausalLM"],
        ModelTypes = ["mixtral"],
        Keys = new ConfigKeys { Experts = "num_local_experts", ExpertsPerToken = "num_experts_per_tok" },
        Synth = new SynthDefaults
        {
            MaxPositionEmbeddings = 32768,
            RopeTheta = 1000000.0,
            Keys = [("sliding_window", null)],
            MoeKeys = [("router_aux_loss_coef", 0.02), ("output_router_logits", false)],
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
        Router = "block_sparse_moe.gate.weight",
        ExpertGate = "block_sparse_moe.experts.{expert}.w1.weight",
        ExpertUp = "block_sparse_moe.experts.{expert}.w3.weight",
        ExpertDown = "block_sparse_moe.experts.{expert}.w2.weight",
        DenseCounterpart = "mistral",
        IgnoredSuffixes = ["rotary_emb.inv_freq"],
        // convert_hf_to_gguf.py: LlamaModel (Llama, Mistral and Mixtral are all llama.cpp's "llama")
        Gguf = new GgufLayout("llama", PermuteQk: true, LlamaKeys: true),
    };
}
