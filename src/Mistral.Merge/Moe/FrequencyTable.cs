using System.Text.Json.Nodes;
using Mistral.Merge.IO;

namespace Mistral.Merge.Moe;

/// <summary>
/// Per-layer routing frequencies [layer][expert] read from JSON: the output of <c>moe-stats --json</c>
/// (key <c>selection_frequency</c>), any object holding that key, or a bare array of arrays.
/// </summary>
public static class FrequencyTable
{
    public static double[][] Load(string path, int layers, int experts)
    {
        var root = JsonFile.Parse(InputFile.ReadAllBytes(path, InputFile.Limits.JsonSideFile, "a frequency table"), path);
        var node = root is JsonObject o ? o["selection_frequency"] : root;
        if (node is not JsonArray rows) throw new MergeException($"{path}: expected 'selection_frequency' as [layer][expert] numbers");
        return Parse(rows, layers, experts, path);
    }

    public static double[][] Parse(JsonArray rows, int layers, int experts, string where)
    {
        if (rows.Count != layers) throw new MergeException($"{where}: frequency table has {rows.Count} layers, the model has {layers}");
        var r = new double[layers][];
        for (int l = 0; l < layers; l++)
        {
            if (rows[l] is not JsonArray row || row.Count != experts)
                throw new MergeException($"{where}: frequency row of layer {l} must hold {experts} numbers");
            r[l] = new double[experts];
            double sum = 0;
            for (int e = 0; e < experts; e++)
            {
                if (row[e] is not JsonValue v || !v.TryGetValue<double>(out var d) || !double.IsFinite(d) || d < 0)
                    throw new MergeException($"{where}: frequency of layer {l} expert {e} must be a non-negative number, got {row[e]?.ToJsonString() ?? "null"}");
                r[l][e] = d; sum += d;
            }
            if (!(sum > 0)) throw new MergeException($"{where}: frequencies of layer {l} are all zero");
        }
        return r;
    }
}
