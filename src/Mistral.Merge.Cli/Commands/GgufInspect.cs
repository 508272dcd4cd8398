using System.Globalization;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Inference.Gguf;
using Mistral.Merge.IO;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>inspect X.gguf [--check]</c>: the metadata (arrays summarized), the model as the forward pass reads it, and the tensor table (with --check: each tensor's NaN/Inf/all-zero counts, <see cref="GgufTensorCheck"/>).</summary>
internal static class GgufInspect
{
    /// <summary>Writes the summary (with <paramref name="check"/>: each tensor's NaN/Inf/all-zero counts); returns how many tensors hold NaN or Inf.</summary>
    public static int Write(string path, TextWriter o, bool json, bool check, int threads)
    {
        ValueCounts?[]? counts = null;
        GgufReader g;
        if (check)
        {
            using var file = GgufMappedFile.Open(path, shardOk: true);
            g = file.Header;
            counts = GgufTensorCheck.Scan(file, threads);
        }
        else g = GgufReader.Open(path);
        // gguf-split keeps the model's metadata in the first shard; a later one holds only tensors and split.* keys.
        string architecture = g.Get(GgufFormat.KeyArchitecture) == null && g.Integer(GgufFormat.KeySplitNo) is long splitNo and > 0
            ? $"(shard {splitNo + 1} of {g.Get(GgufFormat.KeySplitCount)?.Value}: the model's metadata is in the first shard)"
            : $"{g[GgufFormat.KeyArchitecture].Value} (read as {GgufModelLoader.ConfigOf(g).ArchitectureName})";
        if (json) WriteJson(g, o, counts);
        else
        {
            o.WriteLine($"model:        {path}");
            o.WriteLine($"format:       GGUF v{g.Version}, alignment {g.Alignment}");
            o.WriteLine($"architecture: {architecture}");
            o.WriteLine($"parameters:   {N(g.Tensors.Sum(t => t.ElementCount))} ({ByteSize.Format(g.Tensors.Sum(t => t.ByteLength))})");
            o.WriteLine($"types:        {string.Join(", ", g.Tensors.GroupBy(t => t.Type).Select(x => $"{GgmlTypes.Name(x.Key)} {x.Count()}"))}");
            o.WriteLine();
            o.WriteLine("metadata:");
            foreach (var (key, value) in g.Metadata) o.WriteLine($"  {key} = {Show(value)}");
            o.WriteLine();
            WriteTable(g, o, counts);
        }
        return counts?.Count(c => c is { AnyNonFinite: true }) ?? 0;
    }

    private static void WriteTable(GgufReader g, TextWriter o, ValueCounts?[]? counts)
    {
        if (counts == null)
        {
            var table = new TextTable("tensor", "type", "shape", "bytes");
            foreach (var t in g.Tensors) table.Add(t.Name, GgmlTypes.Name(t.Type), Shape(t), N(t.ByteLength));
            table.Write(o);
            return;
        }
        var checkedTable = new TextTable("tensor", "type", "shape", "bytes", "nan", "+inf", "-inf", "all-zero").AlignRight(4, 5, 6);
        for (int i = 0; i < g.Tensors.Count; i++)
        {
            var t = g.Tensors[i];
            if (counts[i] is { } k) checkedTable.Add(t.Name, GgmlTypes.Name(t.Type), Shape(t), N(t.ByteLength), N(k.NaN), N(k.PosInf), N(k.NegInf), k.AllZero ? "yes" : "no");
            else checkedTable.Add(t.Name, GgmlTypes.Name(t.Type), Shape(t), N(t.ByteLength), "-", "-", "-", "not read");
        }
        checkedTable.Write(o);
        o.WriteLine();
        o.WriteLine($"check:        {Summary(g, counts)}");
    }

    /// <summary>inspect's summary of the scanned tensors, and which were not read (types this tool does not decode).</summary>
    private static string Summary(GgufReader g, ValueCounts?[] counts)
    {
        var text = InspectCommand.Summary(counts.OfType<ValueCounts>().ToArray());
        var skipped = g.Tensors.Where((_, i) => counts[i] == null).ToList();
        return skipped.Count == 0 ? text
            : $"{text}; {skipped.Count} not read ({string.Join(", ", skipped.GroupBy(t => t.Type).Select(x => $"{x.Count()} {GgmlTypes.Name(x.Key)}"))}: only float, Q8_0 and Q4_0 tensors are decoded)";
    }

    private static string N(long v) => InspectCommand.N(v);

    /// <summary>gguf-dump's order: dims innermost first.</summary>
    private static string Shape(GgufTensorInfo t) => $"[{string.Join(", ", t.Dims)}]";

    private static string Show(GgufValue v) => v.Value switch
    {
        Array a => $"[{a.Length} {v.ElementType.ToString().ToLowerInvariant()}]",
        string s => s.Length > 80 ? $"\"{s[..77].ReplaceLineEndings(" ")}...\"" : $"\"{s.ReplaceLineEndings(" ")}\"",
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        var x => x.ToString() ?? "",
    };

    private static void WriteJson(GgufReader g, TextWriter o, ValueCounts?[]? counts)
    {
        var doc = new Dictionary<string, object?>
        {
            ["version"] = CommonOptions.Version,
            ["path"] = g.Path,
            ["format"] = "gguf",
            ["gguf_version"] = g.Version,
            ["metadata"] = g.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value.Value is Array a
                ? new Dictionary<string, object?> { ["type"] = kv.Value.ElementType.ToString().ToLowerInvariant(), ["count"] = a.Length }
                : kv.Value.Value),
            ["tensors"] = g.Tensors.Select((t, i) =>
            {
                var row = new Dictionary<string, object?> { ["name"] = t.Name, ["type"] = GgmlTypes.Name(t.Type), ["dims"] = t.Dims, ["bytes"] = t.ByteLength };
                if (counts != null)
                {
                    var k = counts[i];
                    row["nan"] = k?.NaN; row["pos_inf"] = k?.PosInf; row["neg_inf"] = k?.NegInf; row["all_zero"] = k?.AllZero;
                }
                return row;
            }).ToList(),
        };
        if (counts != null)
        {
            var check = InspectCommand.CheckObject(counts.OfType<ValueCounts>().ToArray(), Summary(g, counts));
            check["not_read"] = counts.Count(c => c == null);
            doc["check"] = check;
        }
        o.WriteLine(JsonText.Serialize(doc));
    }
}
