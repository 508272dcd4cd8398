using System.Text.Json;
using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Models;

/// <summary>
/// A typed view of an HF <c>config.json</c>, read with the keys its <see cref="Models.Architecture"/> declares.
/// <see cref="Json"/> keeps every original key so that outputs can rewrite just the keys they change.
/// </summary>
public sealed class ModelConfig
{
    public required JsonObject Json { get; init; }
    public string? SourcePath { get; init; }
    /// <summary>The declaration <c>architectures[0]</c> (else <c>model_type</c>) matches; null when none does.</summary>
    public Architecture? Architecture { get; init; }
    /// <summary>The declaration whose tensor names to use: <see cref="Architecture"/>, else <see cref="Architecture.Default"/>.</summary>
    public Architecture Names => Architecture ?? Models.Architecture.Default;
    /// <summary>What the config says it is, for messages: <c>architectures[0]</c>, else <c>model_type</c>, else "unspecified".</summary>
    public string Identity => ArchitectureName.Length > 0 ? ArchitectureName : ModelType.Length > 0 ? ModelType : Unspecified;
    public const string Unspecified = "unspecified";
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

    /// <summary>The attention window the architecture applies: none when it declares no window key, or its switch is off.</summary>
    public int? EffectiveSlidingWindow(out string? unsupported)
    {
        unsupported = null;
        var keys = Names.Keys;
        if (keys.SlidingWindow == null) return null;
        if (keys.SlidingWindowSwitch is { } sw)
        {
            if (!(Json[sw] is JsonValue v && v.TryGetValue<bool>(out var on) && on)) return null;
            unsupported = $"'{sw}': true (a window on some layers only) is not supported by the built-in forward pass";
        }
        return SlidingWindow;
    }

    public static ModelConfig Load(string path) => FromJson(JsonFile.ReadObject(path, "config.json"), path);

    public static ModelConfig FromJson(JsonObject obj, string? path = null)
    {
        string where = path ?? "config.json";
        string archName = obj["architectures"] is JsonArray { Count: > 0 } a && a[0] is JsonValue v && v.TryGetValue<string>(out var s) ? s : "";
        string modelType = Str(obj, "model_type") ?? "";
        var arch = Models.Architecture.Match(archName, modelType);
        var keys = (arch ?? Models.Architecture.Default).Keys;
        var b = ConfigBounds.Check(obj, where);
        int hidden = b.Int(keys.Hidden) ?? 0, heads = b.Int(keys.Heads) ?? 0;
        return new ModelConfig
        {
            Json = obj,
            SourcePath = path,
            Architecture = arch,
            ArchitectureName = archName,
            ModelType = modelType,
            HiddenSize = hidden,
            IntermediateSize = b.Int(keys.Intermediate) ?? 0,
            NumHiddenLayers = b.Int(keys.Layers) ?? 0,
            NumAttentionHeads = heads,
            NumKeyValueHeads = b.Int(keys.KvHeads) ?? heads,
            HeadDim = b.Int(keys.HeadDim) ?? (heads > 0 ? hidden / heads : 0),
            VocabSize = b.Int(keys.Vocab) ?? 0,
            MaxPositionEmbeddings = b.Int("max_position_embeddings") ?? 0,
            RopeTheta = JsonFile.Number(obj, keys.RopeTheta, where, 0, 1e12) ?? 10000,
            RmsNormEps = JsonFile.Number(obj, keys.RmsNormEps, where, 0, 1) ?? 1e-5,
            SlidingWindow = b.Int("sliding_window"),
            TieWordEmbeddings = obj[keys.TieWordEmbeddings] is JsonValue t && t.TryGetValue<bool>(out var tie) && tie,
            NumLocalExperts = b.Int(keys.Experts ?? "num_local_experts") ?? 0,
            NumExpertsPerTok = b.Int(keys.ExpertsPerToken ?? "num_experts_per_tok") ?? 0,
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
