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

    public static ModelConfig Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new MergeException($"{path}: cannot read ({e.Message})"); }
        JsonNode? node;
        try { node = JsonNode.Parse(text, documentOptions: new JsonDocumentOptions { AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new MergeException($"{path}: invalid JSON ({e.Message.Split('\n')[0]})"); }
        if (node is not JsonObject obj) throw new MergeException($"{path}: config is not a JSON object");
        return FromJson(obj, path);
    }

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
        int hidden = Int(obj, "hidden_size", where) ?? 0;
        int heads = Int(obj, "num_attention_heads", where) ?? 0;
        int? headDim = Int(obj, "head_dim", where);
        return new ModelConfig
        {
            Json = obj,
            SourcePath = path,
            Architecture = arch,
            ArchitectureName = archName,
            ModelType = modelType,
            HiddenSize = hidden,
            IntermediateSize = Int(obj, "intermediate_size", where) ?? 0,
            NumHiddenLayers = Int(obj, "num_hidden_layers", where) ?? 0,
            NumAttentionHeads = heads,
            NumKeyValueHeads = Int(obj, "num_key_value_heads", where) ?? heads,
            HeadDim = headDim ?? (heads > 0 ? hidden / heads : 0),
            VocabSize = Int(obj, "vocab_size", where) ?? 0,
            MaxPositionEmbeddings = Int(obj, "max_position_embeddings", where) ?? 0,
            RopeTheta = Dbl(obj, "rope_theta", where) ?? 10000,
            RmsNormEps = Dbl(obj, "rms_norm_eps", where) ?? 1e-5,
            SlidingWindow = Int(obj, "sliding_window", where),
            TieWordEmbeddings = obj["tie_word_embeddings"] is JsonValue t && t.TryGetValue<bool>(out var b) && b,
            NumLocalExperts = Int(obj, "num_local_experts", where) ?? 0,
            NumExpertsPerTok = Int(obj, "num_experts_per_tok", where) ?? 0,
            TorchDtype = Str(obj, "torch_dtype") ?? Str(obj, "dtype"),
            BosTokenId = Int(obj, "bos_token_id", where),
            EosTokenId = obj["eos_token_id"] is JsonArray ea
                ? (ea.Count > 0 && ea[0] is JsonValue ev && ev.TryGetValue<int>(out var eos) ? eos : throw new MergeException($"{where}: 'eos_token_id' must be an integer or a non-empty list of integers"))
                : Int(obj, "eos_token_id", where),
        };
    }

    /// <summary>A deep copy of the JSON for writing a derived config.</summary>
    public JsonObject CloneJson() => (JsonObject)Json.DeepClone();

    public string ToJsonText() => Json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    private static string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static int? Int(JsonObject o, string key, string where)
    {
        var n = o[key];
        if (n is null) return null;
        if (n is JsonValue v)
        {
            if (v.TryGetValue<int>(out var i)) return i;
            if (v.TryGetValue<long>(out var l) && l is >= int.MinValue and <= int.MaxValue) return (int)l;
            if (v.TryGetValue<double>(out var d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
            if (v.GetValueKind() == JsonValueKind.Number)
            {
                var raw = v.ToJsonString();
                if (double.TryParse(raw, System.Globalization.CultureInfo.InvariantCulture, out var dd) && dd == Math.Floor(dd) && Math.Abs(dd) < int.MaxValue) return (int)dd;
            }
        }
        throw new MergeException($"{where}: '{key}' must be an integer, got {n.ToJsonString()}");
    }

    private static double? Dbl(JsonObject o, string key, string where)
    {
        var n = o[key];
        if (n is null) return null;
        if (n is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
            return double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
        throw new MergeException($"{where}: '{key}' must be a number, got {n.ToJsonString()}");
    }
}
