using System.Runtime.InteropServices;
using Mistral.Merge.IO;

namespace Mistral.Merge.Models;

public sealed record ConvertOptions
{
    /// <summary>Target dtype for F32/F16/BF16/F64 tensors; null keeps every tensor's dtype (resharding only).</summary>
    public DType? DType { get; init; }
    public WriterOptions Writer { get; init; } = new();
    /// <summary>Receives (output bytes written, total), from worker threads.</summary>
    public Action<long, long>? Progress { get; init; }
    /// <summary>Worker threads (<c>--threads</c>): 0 = all logical processors.</summary>
    public int Threads { get; init; }
}

/// <summary>
/// Streaming dtype conversion and resharding of a model folder: tensors are converted chunk by chunk
/// (in parallel) straight from the memory-mapped input to their final place in the output, so memory
/// stays at a few MB per thread whatever the model size. Non-float tensors are copied unchanged.
/// </summary>
public static class CheckpointConverter
{
    public static DType TargetOf(DType source, DType? target) =>
        target is { } t && (source.IsFloatMath() || source == Core.DType.F64) ? t : source;

    public static void Convert(string modelDir, string outDir, ConvertOptions options, CancellationToken cancel = default)
    {
        if (options.DType is { } d && !d.IsFloatMath())
            throw new MergeException($"--dtype: cannot convert to {d} (use bfloat16, float16 or float32)");
        if (!Directory.Exists(modelDir)) throw new MergeException($"{modelDir}: model folder not found");
        // Writing over (or replacing a parent of) the input would destroy it while it is being read.
        if (PathUtil.IsSameOrInside(modelDir, outDir))
            throw new MergeException($"{outDir}: the output folder would overwrite the input model {modelDir}; choose another folder");

        using var model = ModelFolder.Open(modelDir);
        // Output tensors keep the input's byte order (file by file, offset by offset; any order is valid safetensors):
        // unchanged tensors then form one sequential stream on both sides, which the kernel copies and the disk
        // writes at the speed of a plain file copy.
        var files = model.Files.ToList();
        var plan = model.TensorNames
            .Select(name => (Name: name, Src: model.Lookup(name)))
            .OrderBy(t => files.IndexOf(t.Src.File)).ThenBy(t => t.Src.Info.Begin)
            .Select(t => new PlannedTensor(t.Name, TargetOf(t.Src.Info.DType, options.DType), t.Src.Info.Shape))
            .ToList();

        using var writer = new CheckpointWriter(outDir, plan, options.Writer);
        if (model.Config != null)
        {
            var json = model.Config.CloneJson();
            if (options.DType is { } target)
            {
                json["torch_dtype"] = target.ToTorchName();
                if (json.ContainsKey("dtype")) json["dtype"] = target.ToTorchName();
            }
            writer.AddFile("config.json", new ModelConfig { Json = json }.ToJsonText() + "\n");
        }
        IO.SideFiles.CopyExisting(model.Path, writer, IO.SideFiles.All);

        CopyTensors(model, writer, plan, options.Threads, options.Progress, cancel);
        model.CheckUnchanged();
        writer.Commit(options.Writer.Force);
    }

    /// <summary>Copies (and converts where the plan's dtype differs) every planned tensor from <paramref name="model"/>.</summary>
    public static void CopyTensors(ModelFolder model, CheckpointWriter writer, IReadOnlyList<PlannedTensor> plan, int threads = 0,
        Action<long, long>? progress = null, CancellationToken cancel = default)
    {
        var counter = new ProgressCounter(plan.Sum(p => p.ByteLength), progress);
        var items = new List<(SafetensorsFile File, TensorInfo Src, DType Target, long Start, int Count)>();
        // Unchanged tensors go to the kernel whole, in output order, one run per input file (CopyTensorsFrom joins
        // neighbours into one long copy): a copy is bound by the disk, not the cores, and two threads interleaving
        // extents of one file make the file system fragment it and the final fsync slower.
        var copies = new List<(SafetensorsFile File, List<TensorInfo> Run)>();
        foreach (var p in plan)
        {
            var (file, src) = model.Lookup(p.Name);
            if (src.DType == p.DType)
            {
                if (copies.Count == 0 || copies[^1].File != file) copies.Add((file, new List<TensorInfo>()));
                copies[^1].Run.Add(src);
                continue;
            }
            long n = src.ElementCount;
            for (long s = 0; s < n; s += ChunkWorkers.ChunkElements) items.Add((file, src, p.DType, s, (int)Math.Min(ChunkWorkers.ChunkElements, n - s)));
        }
        foreach (var (file, run) in copies)
        {
            cancel.ThrowIfCancellationRequested();
            writer.CopyTensorsFrom(file, run);
            counter.Add(run.Sum(t => t.ByteLength));
        }
        ChunkWorkers.Run(items, (it, floats, bytes) =>
        {
            int inSize = it.Src.DType.SizeOf(), outSize = it.Target.SizeOf();
            var src = it.File.GetBytes(it.Src, it.Start * inSize, it.Count * inSize);
            var dst = bytes.AsSpan(0, it.Count * outSize);
            if (it.Target == DType.F32)
                Conversions.ToSingle(src, it.Src.DType, MemoryMarshal.Cast<byte, float>(dst)); // widening: one step
            else
            {
                ReadOnlySpan<float> f = it.Src.DType == DType.F32 ? MemoryMarshal.Cast<byte, float>(src) : Widen(src, it.Src.DType, floats.AsSpan(0, it.Count));
                Conversions.FromSingle(f, it.Target, dst);
            }
            writer.Write(it.Src.Name, dst, it.Start * outSize);
            counter.Add(dst.Length);
        }, threads, cancel);
    }

    private static Span<float> Widen(ReadOnlySpan<byte> src, DType type, Span<float> buffer)
    {
        Conversions.ToSingle(src, type, buffer);
        return buffer;
    }
}
