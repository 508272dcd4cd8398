using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Models;

/// <summary>
/// The integer hyper-parameters of a config.json, each checked against bounds far above any real model
/// (Llama-3-405B: hidden 16384, intermediate 53248, vocab 128256, 126 layers) so that no later size
/// computation or allocation can overflow or explode on a hostile file. Consistency between keys is left to
/// the readers that need it (the forward pass, synth): merging accepts any architecture's config.
/// </summary>
internal sealed class ConfigBounds
{
    private static readonly Dictionary<string, (long Min, long Max)> Ranges = new(StringComparer.Ordinal)
    {
        ["hidden_size"] = (1, 1 << 20),
        ["intermediate_size"] = (1, 1 << 20),
        ["num_hidden_layers"] = (0, 10_000),
        ["num_attention_heads"] = (1, 1 << 14),
        ["num_key_value_heads"] = (1, 1 << 14),
        ["head_dim"] = (1, 1 << 14),
        ["vocab_size"] = (1, 1 << 24),
        ["max_position_embeddings"] = (0, 1 << 28),
        ["sliding_window"] = (0, 1 << 28),
        ["num_local_experts"] = (0, 1 << 12),
        ["num_experts_per_tok"] = (0, 1 << 12),
        ["bos_token_id"] = (0, 1 << 24),
    };

    private readonly Dictionary<string, int> _values = new(StringComparer.Ordinal);

    public int? EosTokenId { get; private set; }

    public int? Int(string key) => _values.TryGetValue(key, out var v) ? v : null;

    public static ConfigBounds Check(JsonObject obj, string where)
    {
        var b = new ConfigBounds();
        foreach (var (key, (min, max)) in Ranges)
            if (JsonFile.Integer(obj, key, where, min, max) is { } v) b._values[key] = (int)v;
        b.EosTokenId = obj["eos_token_id"] switch
        {
            null => null,
            // Newer configs list several end-of-sequence ids; the first is the one generation stops on.
            JsonArray { Count: > 0 } ids => ids.Select((n, i) => (int)JsonFile.Integer(n, $"'eos_token_id[{i}]'", where, 0, 1 << 24)).ToArray()[0],
            JsonArray => throw new MergeException($"{where}: 'eos_token_id' must be an integer or a non-empty list of integers"),
            var n => (int)JsonFile.Integer(n, "'eos_token_id'", where, 0, 1 << 24),
        };
        return b;
    }
}
