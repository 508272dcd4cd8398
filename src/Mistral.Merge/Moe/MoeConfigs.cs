using System.Text.Json.Nodes;
using Mistral.Merge.Models;

namespace Mistral.Merge.Moe;

/// <summary>config.json of the outputs of MoE surgery; every key not named here is kept as it was.</summary>
public static class MoeConfigs
{
    /// <summary>Keys that only a Mixtral config has.</summary>
    public static readonly string[] MoeKeys = ["num_local_experts", "num_experts_per_tok", "router_aux_loss_coef", "output_router_logits", "router_jitter_noise"];

    /// <summary>MistralForCausalLM / mistral with the MoE keys removed and <c>intermediate_size</c> updated.</summary>
    public static JsonObject ToDense(ModelConfig source, int intermediate, string? torchDtype)
    {
        var j = source.CloneJson();
        foreach (var k in MoeKeys) j.Remove(k);
        j["architectures"] = new JsonArray("MistralForCausalLM");
        j["model_type"] = "mistral";
        j["intermediate_size"] = intermediate;
        if (torchDtype != null) j["torch_dtype"] = torchDtype;
        return j;
    }

    /// <summary>Mixtral with <c>num_local_experts</c> / <c>num_experts_per_tok</c> updated.</summary>
    public static JsonObject Pruned(ModelConfig source, int experts, int expertsPerToken, string? torchDtype)
    {
        var j = source.CloneJson();
        j["num_local_experts"] = experts;
        j["num_experts_per_tok"] = expertsPerToken;
        if (torchDtype != null) j["torch_dtype"] = torchDtype;
        return j;
    }
}
