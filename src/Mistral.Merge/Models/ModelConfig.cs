using System.Text.Json;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Models;

public enum Architecture { Mistral, Mixtral, Llama, Unknown }

/// <summary>
/// A typed view of an HF <c>config.json</c> (Mistral, Mixtral, Llama). <see cref="Json"/> keeps
/// every original key so that outputs can rewrite just the keys they change.
/// </summary>
public sealed class ModelConfig
{
    public required JsonObject Json { get; init; }
    public string? SourcePath { get; init; }
    public Architecture Architecture { get; init; }
    public string ArchitectureName { get; init; } = "";
    public string ModelType { get; init; } = "";
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    public int NumKeyValueHeads { get; init; }
    public int HeadDim { get; init; }
    public int VocabSize { get; init; }
    public int MaxPositionEmbeddings { get; init; }
    public double RopeTheta { get; init; } = 10000;
    public double RmsNormEps { get; init; } = 1e-5;
    public int? SlidingWindow { get; init; }
    public bool TieWordEmbeddings { get; init; }
    public int NumLocalExperts { get; init; }
    public int NumExpertsPerTok { get; init; }
    public string? TorchDtype { get; init; }
    public int? BosTokenId { get; init; }
    public int? EosTokenId { get; init; }

    public bool IsMoe => NumLocalExperts > 0;

    public static ModelConfig Load(string path) => FromJson(JsonFile.ReadObject(path, "config.json"), path);

    public static ModelConfig FromJson(JsonObject obj, string? path = null)
    {
        string where = path ?? "config.json";
        string archName = obj["architectures"] is JsonArray { Count: > 0 } a && a[0] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
        string modelType = Str(obj, "model_type") ?? "";
        var arch = archName switch
        {
            "MistralForCausalLM" => Architecture.Mistral,
            "MixtralForCausalLM" => Architecture.Mixtral,
            "LlamaForCausalLM" => Architecture.Llama,
            _ => modelType switch { "mistral" => Architecture.Mistral, "mixtral" => Architecture.Mixtral, "llama" => Architecture.Llama, _ => Architecture.Unknown },
        };
        var b = ConfigBounds.Check(obj, where);
        return new ModelConfig
        {
            Json = obj,
            SourcePath = path,
            Architecture = arch,
            ArchitectureName = archName,
            ModelType = modelType,
            HiddenSize = b.Hidden,
            IntermediateSize = b.Int("intermediate_size") ?? 0,
            NumHiddenLayers = b.Int("num_hidden_layers") ?? 0,
            NumAttentionHeads = b.Heads,
            NumKeyValueHeads = b.KvHeads,
            HeadDim = b.HeadDim,
            VocabSize = b.Int("vocab_size") ?? 0,
            MaxPositionEmbeddings = b.Int("max_position_embeddings") ?? 0,
            RopeTheta = JsonFile.Number(obj, "rope_theta", where, 0, 1e12) ?? 10000,
            RmsNormEps = JsonFile.Number(obj, "rms_norm_eps", where, 0, 1) ?? 1e-5,
            SlidingWindow = b.Int("sliding_window"),
            TieWordEmbeddings = obj["tie_word_embeddings"] is JsonValue t && t.TryGetValue<bool>(out var tie) && tie,
            NumLocalExperts = b.Int("num_local_experts") ?? 0,
            NumExpertsPerTok = b.Int("num_experts_per_tok") ?? 0,
            TorchDtype = Str(obj, "torch_dtype") ?? Str(obj, "dtype"),
            BosTokenId = b.Int("bos_token_id"),
            EosTokenId = b.EosTokenId,
        };
    }

    /// <summary>A deep copy of the JSON for writing a derived config.</summary>
    public JsonObject CloneJson() => (JsonObject)Json.DeepClone();

    public string ToJsonText() => IO.JsonText.Write(Json);

    private static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
