using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Mistral.Merge.IO;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>inspect MODEL [--json]</c>: header-only summary and tensor table.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Model folder (single file, sharded with index, or several *.safetensors)" };
        var json = new Option<bool>("--json") { Description = "Machine-readable JSON output" };
        var cmd = new Command("inspect", "Show architecture, dtypes, parameter count, layers, experts, shards and the tensor table (reads headers only)") { model, json };
        return cmd.WithAction((p, _) =>
        {
            using var folder = ModelFolder.Open(p.GetValue(model)!);
            var o = p.InvocationConfiguration.Output;
            if (p.GetValue(json)) WriteJson(folder, o); else WriteText(folder, o);
            return Cli.Ok;
        });
    }

    private static IEnumerable<(string Name, TensorInfo Info, string Shard)> Rows(ModelFolder f)
    {
        foreach (var n in f.TensorNames)
        {
            var (file, info) = f.Lookup(n);
            yield return (n, info, Path.GetFileName(file.Path));
        }
    }

    private static Dictionary<string, long> DTypeCounts(ModelFolder f)
    {
        var d = new Dictionary<string, long>();
        foreach (var (_, t, _) in Rows(f)) d[t.DType.ToString()] = d.GetValueOrDefault(t.DType.ToString()) + t.ElementCount;
        return d;
    }

    private static void WriteText(ModelFolder f, TextWriter o)
    {
        var c = f.Config;
        o.WriteLine($"model:        {f.Path}");
        o.WriteLine($"architecture: {(c == null ? "(no config.json)" : $"{c.ArchitectureName} ({c.ModelType})")}");
        if (c != null)
        {
            o.WriteLine($"layers:       {c.NumHiddenLayers}   hidden {c.HiddenSize}   intermediate {c.IntermediateSize}   heads {c.NumAttentionHeads} (kv {c.NumKeyValueHeads}, head_dim {c.HeadDim})   vocab {c.VocabSize}");
            if (c.IsMoe) o.WriteLine($"experts:      {c.NumLocalExperts} per layer, {c.NumExpertsPerTok} per token");
        }
        o.WriteLine($"parameters:   {f.ParameterCount.ToString("N0", CultureInfo.InvariantCulture)} ({ByteSize.Format(f.TotalBytes)})");
        o.WriteLine($"dtypes:       {string.Join(", ", DTypeCounts(f).Select(kv => $"{kv.Key} {kv.Value.ToString("N0", CultureInfo.InvariantCulture)}"))}");
        o.WriteLine($"files:        {f.Layout}: {string.Join(", ", f.Files.Select(x => Path.GetFileName(x.Path)))}");
        o.WriteLine($"tensors:      {f.TensorNames.Count}");
        o.WriteLine();
        int w = Math.Max(4, f.TensorNames.Count == 0 ? 4 : f.TensorNames.Max(n => n.Length));
        o.WriteLine($"{"name".PadRight(w)}  {"dtype",-7}  {"shape",-20}  shard");
        foreach (var (n, t, s) in Rows(f))
            o.WriteLine($"{n.PadRight(w)}  {t.DType,-7}  {t.ShapeText,-20}  {s}");
    }

    private static void WriteJson(ModelFolder f, TextWriter o)
    {
        var c = f.Config;
        var doc = new Dictionary<string, object?>
        {
            ["path"] = f.Path,
            ["architecture"] = c?.ArchitectureName,
            ["model_type"] = c?.ModelType,
            ["num_hidden_layers"] = c?.NumHiddenLayers,
            ["hidden_size"] = c?.HiddenSize,
            ["intermediate_size"] = c?.IntermediateSize,
            ["num_attention_heads"] = c?.NumAttentionHeads,
            ["num_key_value_heads"] = c?.NumKeyValueHeads,
            ["vocab_size"] = c?.VocabSize,
            ["num_local_experts"] = c?.NumLocalExperts,
            ["num_experts_per_tok"] = c?.NumExpertsPerTok,
            ["parameters"] = f.ParameterCount,
            ["total_bytes"] = f.TotalBytes,
            ["dtypes"] = DTypeCounts(f),
            ["layout"] = f.Layout,
            ["shards"] = f.Files.Select(x => Path.GetFileName(x.Path)).ToArray(),
            ["tensors"] = Rows(f).Select(r => new Dictionary<string, object> { ["name"] = r.Name, ["dtype"] = r.Info.DType.ToString(), ["shape"] = r.Info.Shape, ["shard"] = r.Shard }).ToArray(),
        };
        o.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
    }
}
