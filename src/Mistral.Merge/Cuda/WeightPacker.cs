using System.Runtime.InteropServices;
using Mistral.Merge.Numerics;

namespace Mistral.Merge.Cuda;

/// <summary>
/// Copies checkpoint tensors into (pinned) staging memory in the device layout, converting dtypes on the way:
/// matrices to the compute dtype (F32 → BF16 with round-to-nearest-even, exactly as Core/Conversions),
/// norms to f32 (exact from F32/BF16/F16). Shapes are checked against the config first.
/// </summary>
public static class WeightPacker
{
    public static void CheckShape(IWeightSource src, string name, long[] expected)
    {
        if (!src.Contains(name)) throw new MergeException($"{src.Origin}: tensor {name} is missing");
        var info = src.Info(name);
        if (!info.Shape.AsSpan().SequenceEqual(expected))
            throw new MergeException($"{src.Origin}: {name} has shape {info.ShapeText} but config.json implies [{string.Join(", ", expected)}]");
        if (info.DType is not (DType.F32 or DType.BF16 or DType.F16))
            throw new MergeException($"{src.Origin}: {name} is {info.DType}; the CUDA forward pass reads F32, BF16 or F16 weights");
    }

    /// <summary>
    /// Packs every part of <paramref name="layer"/> into <paramref name="dst"/> (at least LayerLayout.Bytes long;
    /// a pointer because a Mixtral layer exceeds 2 GB). Parts are converted in parallel: the copy out of the
    /// page cache is the host-side bottleneck of layer streaming. <paramref name="threads"/>: the <see cref="WorkerPool"/>'s (0 = all cores).
    /// </summary>
    public static unsafe void PackLayer(IWeightSource src, LayerLayout layout, int layer, byte* dst, long capacity, int threads = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, layout.Bytes);
        var parts = layout.Parts(layer).ToList();
        foreach (var (name, _, shape, _) in parts) CheckShape(src, name, shape);
        nint basePtr = (nint)dst;
        WorkerPool.For(threads, parts.Count, (i, _) =>
        {
            var part = parts[i];
            long elements = 1;
            foreach (var s in part.Shape) elements *= s;
            int es = part.Norm ? 4 : layout.ElementSize;
            var target = new Span<byte>((byte*)basePtr + part.Offset, checked((int)(elements * es)));
            Convert(src.Bytes(part.Name), src.Info(part.Name).DType, target, toBf16: !part.Norm && layout.Bf16);
        });
    }

    /// <summary>Converts a whole tensor: to bf16 when <paramref name="toBf16"/>, else to f32. Chunked: no large temporaries.</summary>
    public static void Convert(ReadOnlySpan<byte> src, DType type, Span<byte> dst, bool toBf16)
    {
        if (toBf16 && type == DType.BF16) { src.CopyTo(dst); return; }
        if (!toBf16) { Conversions.ToSingle(src, type, MemoryMarshal.Cast<byte, float>(dst)); return; }
        if (type == DType.F32) { Conversions.SingleToBFloat16(MemoryMarshal.Cast<byte, float>(src), MemoryMarshal.Cast<byte, ushort>(dst)); return; }
        const int Chunk = 1 << 16;
        int es = type.SizeOf();
        var tmp = new float[Chunk];
        var outU = MemoryMarshal.Cast<byte, ushort>(dst);
        for (int i = 0; i < outU.Length; i += Chunk)
        {
            int n = Math.Min(Chunk, outU.Length - i);
            Conversions.ToSingle(src.Slice(i * es, n * es), type, tmp.AsSpan(0, n));
            Conversions.SingleToBFloat16(tmp.AsSpan(0, n), outU.Slice(i, n));
        }
    }
}
