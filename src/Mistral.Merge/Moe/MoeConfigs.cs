using System.Text.Json.Nodes;
using Mistral.Merge.Models;

namespace Mistral.Merge.Moe;

/// <summary>config.json of the outputs of MoE surgery; every key not named here is kept as it was.</summary>
public static class MoeConfigs
{
    /// <summary>Keys that only a Mixtral config has.</summary>
    public static readonly string[] MoeKeys = ["num_local_experts", "num_experts_per_tok", "router_aux_loss_coef", "output_router_logits", "router_jitter_noise"];

    /// <summary>The dense architecture an MoE declaration's experts collapse into (Mixtral → Mistral).</summary>
    public static Architecture DenseOf(Architecture moe) =>
        (moe.DenseCounterpart is { } name ? Architecture.Named(name) : null)
        ?? throw new MergeException($"{moe} declares no dense counterpart to convert into");

    /// <summary>The dense counterpart (MistralForCausalLM / mistral) with the MoE keys removed and <c>intermediate_size</c> updated.</summary>
    public static JsonObject ToDense(ModelConfig source, int intermediate, string? torchDtype)
    {
        var dense = DenseOf(source.Names);
        var j = source.CloneJson();
        foreach (var k in MoeKeys) j.Remove(k);
        j["architectures"] = new JsonArray(dense.HfArchitecture);
        j["model_type"] = dense.ModelType;
        j[dense.Keys.Intermediate] = intermediate;
        if (torchDtype != null) j["torch_dtype"] = torchDtype;
        return j;
    }

    /// <summary>Mixtral with <c>num_local_experts</c> / <c>num_experts_per_tok</c> updated.</summary>
    public static JsonObject Pruned(ModelConfig source, int experts, int expertsPerToken, string? torchDtype)
    {
        var j = source.CloneJson();
        j[source.Names.Keys.Experts!] = experts;
        j[source.Names.Keys.ExpertsPerToken!] = expertsPerToken;
        if (torchDtype != null) j["torch_dtype"] = torchDtype;
        return j;
    }
}
