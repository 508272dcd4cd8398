using Mistral.Merge.IO;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Inference.Gguf;

public sealed record GgufExportOptions
{
    public GgmlType Type { get; init; } = GgmlType.F16;
    /// <summary>Largest file before a new split starts (gguf-split's --split-max-size); 0 = one file.</summary>
    public long ShardSize { get; init; }
    public bool Force { get; init; }
    public int Threads { get; init; }
    public uint Alignment { get; init; } = GgufFormat.DefaultAlignment;
    /// <summary>Receives (bytes written, total).</summary>
    public Action<long, long>? Progress { get; init; }
}

public sealed record GgufExportResult(IReadOnlyList<string> Files, int Tensors, long Parameters, long Bytes, IReadOnlyDictionary<GgmlType, int> TypeCounts, string Architecture);

/// <summary>
/// A model folder → a GGUF file (or gguf-split shards) that llama.cpp loads: metadata from config.json, the model card
/// and the tokenizer; tensors renamed by the architecture's GGUF names, q/k rows permuted for llama.cpp's RoPE where
/// the layout says so, Mixtral experts stacked into 3-D tensors, each converted to its type (see
/// <see cref="GgufTensorType.For"/>) one tensor at a time (one expert at a time for a stack), written crash-safely.
/// </summary>
public static class GgufExporter
{
    /// <summary>A tensor of the output and the HF tensors it is made of (several for stacked experts).</summary>
    private sealed record Source(GgufTensorInfo Info, string[] HfNames, GgufTensorKind Kind, int Heads);

    public static GgufExportResult Export(string modelDir, string outPath, GgufExportOptions o, CancellationToken token = default)
    {
        if (!outPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            throw new MergeException($"{outPath}: the output must be a .gguf file name");
        GgufOutput.CheckDestination(outPath, o.Force);
        using var model = ModelFolder.Open(modelDir);
        var config = model.Config ?? throw new MergeException($"{modelDir}: no config.json; export-gguf needs the model's configuration");
        var arch = config.Architecture ?? throw new MergeException(
            $"{modelDir}: architecture '{config.Identity}' cannot be exported to GGUF (supported: {Architecture.SupportedList})");
        var layout = arch.Gguf ?? throw new MergeException($"{modelDir}: {arch} has no GGUF layout declared");

        var sources = Plan(model, config, arch, layout, o.Type);
        var meta = GgufModelMetadata.Build(model.Path, config, layout, GgufTensorType.FileType(o.Type), o.Alignment);
        meta.AddRange(GgufVocab.Build(model.Path, config));
        var parts = Split(outPath, meta, sources, o);
        var byName = sources.ToDictionary(s => s.Info.Name);
        long total = parts.Sum(p => p.Tensors.Sum(t => t.ByteLength)), done = 0;
        long bytes = GgufOutput.Write(parts, o.Alignment, o.Force, (t, sink) =>
        {
            WriteTensor(model, byName[t.Name], sink, o.Threads, token);
            done += t.ByteLength;
            o.Progress?.Invoke(done, total);
        }, token);
        var counts = sources.GroupBy(s => s.Info.Type).ToDictionary(g => g.Key, g => g.Count());
        return new GgufExportResult(parts.Select(p => p.FinalPath).ToList(), sources.Count, sources.Sum(s => s.Info.ElementCount), bytes, counts, layout.Arch);
    }

    private static List<Source> Plan(ModelFolder model, ModelConfig config, Architecture arch, GgufLayout layout, GgmlType target)
    {
        var list = new List<Source>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        Source Make(string gguf, string[] hf, GgufTensorKind kind)
        {
            var info = model.Info(hf[0]);
            foreach (var h in hf.Skip(1))
                if (!model.Info(h).Shape.SequenceEqual(info.Shape))
                    throw new MergeException($"{model.Path}: tensor '{h}' has shape {model.Info(h).ShapeText}, unlike '{hf[0]}' {info.ShapeText}; experts cannot be stacked");
            var dims = info.Shape.Reverse().ToList();
            if (dims.Count == 0) dims.Add(1);
            if (hf.Length > 1) dims.Add(hf.Length);
            var type = GgufTensorType.For(kind, dims.Count, dims[0], target);
            int heads = kind switch
            {
                GgufTensorKind.Query => config.NumAttentionHeads,
                GgufTensorKind.Key => config.NumKeyValueHeads,
                _ => 0,
            };
            if (!layout.PermuteQk) heads = 0;
            if (heads > 0 && info.Shape[0] % (2 * heads) != 0)
                throw new MergeException($"{model.Path}: tensor '{hf[0]}' has {info.Shape[0]} rows, not a multiple of 2 × {heads} heads; cannot permute it for llama.cpp");
            used.UnionWith(hf);
            return new Source(new GgufTensorInfo(gguf, [.. dims], type), hf, kind, heads);
        }
        foreach (var g in arch.GgufGlobals.Take(1))
            if (model.Contains(g.Hf)) list.Add(Make(g.Gguf, [g.Hf], g.Kind));
        for (int l = 0; l < config.NumHiddenLayers; l++)
        {
            foreach (var t in arch.GgufLayerTensors)
            {
                var hf = arch.Layer(l, t.Hf);
                if (model.Contains(hf)) list.Add(Make(Architecture.GgufNames.Block(l, t.Gguf), [hf], t.Kind));
            }
            if (!arch.IsMoe) continue;
            foreach (var w in new[] { "w1", "w2", "w3" })
            {
                var names = Enumerable.Range(0, config.NumLocalExperts).Select(e => arch.Layer(l, Architecture.Expert(arch.ExpertTemplate(w), e))).ToArray();
                if (names.FirstOrDefault(n => !model.Contains(n)) is { } missing)
                    throw new MergeException($"{model.Path}: expert tensor '{missing}' is missing ({config.NumLocalExperts} experts per layer in config.json)");
                list.Add(Make(Architecture.GgufNames.Block(l, Architecture.GgufNames.Experts(w)), names, GgufTensorKind.Weight));
            }
        }
        foreach (var g in arch.GgufGlobals.Skip(1))
            if (model.Contains(g.Hf)) list.Add(Make(g.Gguf, [g.Hf], g.Kind));
        if (model.TensorNames.FirstOrDefault(n => !used.Contains(n) && !arch.IsIgnored(n)) is { } extra)
            throw new MergeException($"{model.Path}: tensor '{extra}' has no GGUF name in the {arch.Name} declaration (layers 0–{config.NumHiddenLayers - 1}); nothing was written");
        if (!used.Contains(arch.Embed)) throw new MergeException($"{model.Path}: model has no tensor '{arch.Embed}'");
        return list;
    }

    /// <summary>One file, or gguf-split's shards: a new one when the next tensor (padded) would pass the size; metadata in the first.</summary>
    private static List<GgufPart> Split(string outPath, List<(string, GgufValue)> meta, List<Source> sources, GgufExportOptions o)
    {
        var groups = new List<List<GgufTensorInfo>> { new() };
        long current = 0;
        foreach (var s in sources)
        {
            long n = GgufFormat.Align(s.Info.ByteLength, o.Alignment);
            if (o.ShardSize > 0 && groups[^1].Count > 0 && current + n > o.ShardSize) { groups.Add([]); current = 0; }
            groups[^1].Add(s.Info);
            current += n;
        }
        if (groups.Count == 1) return [new GgufPart(outPath, meta, groups[0])];
        if (groups.Count > 99999) throw new MergeException($"{outPath}: --out-shard-size makes {groups.Count} files; choose a larger size");
        var prefix = outPath[..^".gguf".Length];
        return groups.Select((g, i) =>
        {
            var m = i == 0 ? new List<(string, GgufValue)>(meta) : [];
            m.Add((GgufFormat.KeySplitNo, GgufValue.U16((ushort)i)));
            m.Add((GgufFormat.KeySplitCount, GgufValue.U16((ushort)groups.Count)));
            m.Add((GgufFormat.KeySplitTensorsCount, GgufValue.I32(sources.Count)));
            return new GgufPart(GgufFormat.SplitName(prefix, i, groups.Count), m, g);
        }).ToList();
    }

    /// <summary>Reads, permutes and encodes one output tensor into the sink, one HF tensor (expert) at a time.</summary>
    private static void WriteTensor(ModelFolder model, Source s, GgufSink sink, int threads, CancellationToken token)
    {
        var t = s.Info;
        int rowLength = (int)t.Dims[0];
        byte[]? buffer = null;
        foreach (var hf in s.HfNames)
        {
            token.ThrowIfCancellationRequested();
            var x = model.ReadSingle(hf);
            if (s.Heads > 0) x = QkPermutation.Apply(x, s.Heads, model.Info(hf) is { Rank: > 1 } info ? (int)info.RowLength : 1);
            // Encode about 16 M values at a time so the byte buffer stays bounded whatever the tensor's size.
            int rowsPerBlock = Math.Max(1, (16 << 20) / rowLength);
            for (int start = 0; start < x.Length; start += rowsPerBlock * rowLength)
            {
                int count = Math.Min(rowsPerBlock * rowLength, x.Length - start);
                int bytes = (int)GgmlTypes.ByteCount(t.Type, [count]);
                if (buffer == null || buffer.Length < bytes) buffer = new byte[bytes];
                GgufEncode.Rows(x, start, count, rowLength, t.Type, buffer, threads);
                sink.Write(buffer.AsSpan(0, bytes));
            }
        }
    }
}
