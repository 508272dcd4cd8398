using System.Globalization;
using Mistral.Merge.Cli.Terminal;
using Mistral.Merge.Inference.Gguf;
using Mistral.Merge.IO;
using Mistral.Merge.IO.Gguf;

namespace Mistral.Merge.Cli.Commands;

/// <summary><c>inspect X.gguf</c>: the metadata (arrays summarized), the model as the forward pass reads it, and the tensor table.</summary>
internal static class GgufInspect
{
    public static void Write(string path, TextWriter o, bool json)
    {
        var g = GgufReader.Open(path);
        var config = GgufModelLoader.ConfigOf(g);
        if (json) { WriteJson(g, o); return; }
        o.WriteLine($"model:        {path}");
        o.WriteLine($"format:       GGUF v{g.Version}, alignment {g.Alignment}");
        o.WriteLine($"architecture: {g[GgufFormat.KeyArchitecture].Value} (read as {config.ArchitectureName})");
        o.WriteLine($"parameters:   {N(g.Tensors.Sum(t => t.ElementCount))} ({ByteSize.Format(g.Tensors.Sum(t => t.ByteLength))})");
        o.WriteLine($"types:        {string.Join(", ", g.Tensors.GroupBy(t => t.Type).Select(x => $"{GgmlTypes.Name(x.Key)} {x.Count()}"))}");
        o.WriteLine();
        o.WriteLine("metadata:");
        foreach (var (key, value) in g.Metadata) o.WriteLine($"  {key} = {Show(value)}");
        o.WriteLine();
        var table = new TextTable("tensor", "type", "shape", "bytes");
        foreach (var t in g.Tensors) table.Add(t.Name, GgmlTypes.Name(t.Type), Shape(t), N(t.ByteLength));
        table.Write(o);
    }

    private static string N(long v) => v.ToString("N0", CultureInfo.InvariantCulture);

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

    private static void WriteJson(GgufReader g, TextWriter o)
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
            ["tensors"] = g.Tensors.Select(t => new Dictionary<string, object?>
            {
                ["name"] = t.Name, ["type"] = GgmlTypes.Name(t.Type), ["dims"] = t.Dims, ["bytes"] = t.ByteLength,
            }).ToList(),
        };
        o.WriteLine(JsonText.Serialize(doc));
    }
}
