using System.CommandLine;
using System.Globalization;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.IO;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>inspect MODEL [--json] [--check]</c>: header-only summary and tensor table; --check also scans every value for NaN/Inf.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "Model folder (single model.safetensors, sharded with model.safetensors.index.json, or several *.safetensors), or a .gguf file; or a Hub id ORG/NAME[@REVISION], downloaded into the Hugging Face cache when absent" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text (keys: version, path, architecture, model_type, config dimensions, layers, experts, parameters, total_bytes, dtypes, layout, shards, tensors)" };
        var check = new Option<bool>("--check")
        {
            Description = "Also scan every value (--threads cores, streaming from the memory map; GGUF: float tensors and Q8_0/Q4_0 blocks dequantized): NaN, +Inf and -Inf counts and an all-zero flag per tensor, "
            + "and a summary line (with --json: keys nan, pos_inf, neg_inf, all_zero per tensor and a check object). Exit code 1 when any NaN or Inf is found"
        };
        var threads = CommonOptions.Threads();
        var cmd = new Command("inspect", "Show architecture, dtypes, parameter count, layers, experts, shards and the tensor table (name, dtype, shape, shard). "
            + "Reads only the headers and config.json, so it is instant for any model size; every file is validated. --check also reads every value")
        {
            model, json, check, threads,
        };
        return cmd.WithAction((p, _) =>
        {
            string path = ModelArguments.Resolve(p, model);
            var o = p.InvocationConfiguration.Output;
            if (Inference.Gguf.GgufModelLoader.IsGgufPath(path))
            {
                var broken = GgufInspect.Write(path, o, p.GetValue(json), p.GetValue(check), p.GetValue(threads));
                return Verdict(path, broken, p.InvocationConfiguration.Error);
            }
            using var folder = ModelFolder.Open(path);
            var counts = p.GetValue(check) ? TensorCheck.Scan(folder, p.GetValue(threads)) : null;
            if (p.GetValue(json)) WriteJson(folder, o, counts); else WriteText(folder, o, counts);
            return Verdict(folder.Path, counts?.Count(c => c.AnyNonFinite) ?? 0, p.InvocationConfiguration.Error);
        });
    }

    /// <summary>Exit 0, or the one error line and exit 1 when --check found tensors with NaN or Inf.</summary>
    private static int Verdict(string path, int broken, TextWriter err)
    {
        if (broken == 0) return Cli.Ok;
        err.WriteLine($"error: {path}: {broken} tensor{(broken == 1 ? "" : "s")} hold{(broken == 1 ? "s" : "")} NaN or Inf values");
        return Cli.UserError;
    }

    internal static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);

    private static IEnumerable<(string Name, TensorInfo Info, string Shard)> Rows(ModelFolder f)
    {
        foreach (var n in f.TensorNames)
        {
            var (file, info) = f.Lookup(n);
            yield return (n, info, Path.GetFileName(file.Path));
        }
    }

    /// <summary>Elements per dtype, in first-seen order.</summary>
    private static List<(string DType, long Elements)> DTypeCounts(ModelFolder f)
    {
        var list = new List<(string, long)>();
        foreach (var (_, t, _) in Rows(f))
        {
            var i = list.FindIndex(x => x.Item1 == t.DType.ToString());
            if (i < 0) list.Add((t.DType.ToString(), t.ElementCount)); else list[i] = (list[i].Item1, list[i].Item2 + t.ElementCount);
        }
        return list;
    }

    /// <summary>
    /// Layer and expert counts as the tensor names show them: layers as the model's declaration names them, experts
    /// as any MoE declaration does (a checkpoint's experts are counted even when config.json is missing or dense).
    /// </summary>
    private static (int Layers, int Experts) CountFromNames(ModelFolder f)
    {
        int layers = 0, experts = 0;
        var moe = Architecture.All.Where(a => a.IsMoe).Prepend(f.Names).Distinct().ToList();
        foreach (var n in f.TensorNames)
        {
            if (!f.Names.TryParseLayer(n, out var l, out var suffix)) continue;
            layers = Math.Max(layers, l + 1);
            foreach (var a in moe)
                if (a.TryParseExpert(suffix, out var e, out _)) { experts = Math.Max(experts, e + 1); break; }
        }
        return (layers, experts);
    }

    /// <summary>--json's "check" object: totals over the scanned tensors and the summary line.</summary>
    internal static Dictionary<string, object> CheckObject(ValueCounts[] scanned, string summary) => new()
    {
        ["tensors_with_nonfinite"] = scanned.Count(c => c.AnyNonFinite),
        ["nan"] = scanned.Sum(c => c.NaN),
        ["pos_inf"] = scanned.Sum(c => c.PosInf),
        ["neg_inf"] = scanned.Sum(c => c.NegInf),
        ["all_zero_tensors"] = scanned.Count(c => c.AllZero),
        ["summary"] = summary,
    };

    internal static string Summary(ValueCounts[] counts)
    {
        int broken = counts.Count(c => c.AnyNonFinite), zero = counts.Count(c => c.AllZero);
        var nonFinite = broken == 0 ? "no NaN or Inf"
            : $"{broken} with NaN/Inf (NaN {N(counts.Sum(c => c.NaN))}, +Inf {N(counts.Sum(c => c.PosInf))}, -Inf {N(counts.Sum(c => c.NegInf))})";
        return $"{counts.Length} tensors scanned, {nonFinite}, {zero} all-zero";
    }

    private static void WriteText(ModelFolder f, TextWriter o, ValueCounts[]? counts)
    {
        var c = f.Config;
        var (layers, experts) = CountFromNames(f);
        o.WriteLine($"model:        {f.Path}");
        o.WriteLine($"architecture: {(c == null ? "(no config.json)" : $"{c.ArchitectureName} ({c.ModelType})")}");
        if (c != null)
        {
            o.WriteLine($"config:       hidden {c.HiddenSize}   intermediate {c.IntermediateSize}   heads {c.NumAttentionHeads} (kv {c.NumKeyValueHeads}, head_dim {c.HeadDim})   vocab {c.VocabSize}   torch_dtype {c.TorchDtype ?? "-"}");
            if (c.NumHiddenLayers != layers) o.WriteLine($"warning:      config.json says {c.NumHiddenLayers} layers but the tensors have {layers}");
        }
        o.WriteLine($"layers:       {layers}");
        if (experts > 0 || c is { IsMoe: true })
            o.WriteLine($"experts:      {experts} per layer{(c is { IsMoe: true } ? $", {c.NumExpertsPerTok} per token" : "")}");
        o.WriteLine($"parameters:   {N(f.ParameterCount)} ({ByteSize.Format(f.TotalBytes)})");
        o.WriteLine($"dtypes:       {string.Join(", ", DTypeCounts(f).Select(kv => $"{kv.DType} {N(kv.Elements)}"))}");
        o.WriteLine($"layout:       {f.Layout}");
        foreach (var file in f.Files)
            o.WriteLine($"  {Path.GetFileName(file.Path)}: {file.Tensors.Count} tensors, {ByteSize.Format(file.FileLength)}");
        o.WriteLine($"tensors:      {f.TensorNames.Count}");
        o.WriteLine();
        if (counts == null)
        {
            var table = new TextTable("name", "dtype", "shape", "shard");
            foreach (var (n, t, s) in Rows(f)) table.Add(n, t.DType.ToString(), t.ShapeText, s);
            table.Write(o);
            return;
        }
        var checkedTable = new TextTable("name", "dtype", "shape", "shard", "nan", "+inf", "-inf", "all-zero").AlignRight(4, 5, 6);
        int i = 0;
        foreach (var (n, t, s) in Rows(f))
        {
            var k = counts[i++];
            checkedTable.Add(n, t.DType.ToString(), t.ShapeText, s, N(k.NaN), N(k.PosInf), N(k.NegInf), k.AllZero ? "yes" : "no");
        }
        checkedTable.Write(o);
        o.WriteLine();
        o.WriteLine($"check:        {Summary(counts)}");
    }

    private static void WriteJson(ModelFolder f, TextWriter o, ValueCounts[]? counts)
    {
        var c = f.Config;
        var (layers, experts) = CountFromNames(f);
        var doc = new Dictionary<string, object?>
        {
            ["version"] = CommonOptions.Version,
            ["path"] = f.Path,
            ["architecture"] = c?.ArchitectureName,
            ["model_type"] = c?.ModelType,
            ["num_hidden_layers"] = c?.NumHiddenLayers,
            ["hidden_size"] = c?.HiddenSize,
            ["intermediate_size"] = c?.IntermediateSize,
            ["num_attention_heads"] = c?.NumAttentionHeads,
            ["num_key_value_heads"] = c?.NumKeyValueHeads,
            ["head_dim"] = c?.HeadDim,
            ["vocab_size"] = c?.VocabSize,
            ["num_local_experts"] = c?.NumLocalExperts,
            ["num_experts_per_tok"] = c?.NumExpertsPerTok,
            ["torch_dtype"] = c?.TorchDtype,
            ["layers"] = layers,
            ["experts"] = experts,
            ["parameters"] = f.ParameterCount,
            ["total_bytes"] = f.TotalBytes,
            ["dtypes"] = DTypeCounts(f).ToDictionary(x => x.DType, x => x.Elements),
            ["layout"] = f.Layout,
            ["shards"] = f.Files.Select(x => new Dictionary<string, object> { ["file"] = Path.GetFileName(x.Path), ["tensors"] = x.Tensors.Count, ["bytes"] = x.FileLength }).ToArray(),
            ["tensors"] = Rows(f).Select((r, i) =>
            {
                var t = new Dictionary<string, object> { ["name"] = r.Name, ["dtype"] = r.Info.DType.ToString(), ["shape"] = r.Info.Shape, ["shard"] = r.Shard };
                if (counts != null) { t["nan"] = counts[i].NaN; t["pos_inf"] = counts[i].PosInf; t["neg_inf"] = counts[i].NegInf; t["all_zero"] = counts[i].AllZero; }
                return t;
            }).ToArray(),
        };
        if (counts != null) doc["check"] = CheckObject(counts, Summary(counts));
        o.WriteLine(JsonText.Serialize(doc));
    }
}
