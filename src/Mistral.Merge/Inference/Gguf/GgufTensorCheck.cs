using System.Runtime.InteropServices;
using Mistral.Merge.Core;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Models;
using Mistral.Merge.Numerics;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>
/// <c>inspect X.gguf --check</c>: NaN, ±Inf and all-zero counts of every tensor of a GGUF file, straight from its
/// memory map, as <see cref="TensorCheck"/> counts a safetensors model's. Float tensors are scanned on their stored
/// bits; Q8_0 and Q4_0 blocks are dequantized (ggml's <c>q·d</c>) in pieces and the float32 values scanned, so a NaN or
/// infinite block scale counts once per weight it spoils (an infinite scale times a zero quant is NaN, as in ggml).
/// Integer tensors count as finite. Tensors of the quantized types this tool does not decode (the K-quants and
/// the rest) get no counts (<c>null</c>). Pieces of every tensor run on the <see cref="WorkerPool"/>.
/// </summary>
public static class GgufTensorCheck
{
    private const int PieceBytes = 16 << 20;  // float types: a multiple of every element size
    private const int PieceBlocks = 1 << 14;  // Q8_0/Q4_0 blocks per piece: 512 K weights (2 MB of float32 per worker)

    /// <summary>Whether <see cref="Scan"/> reads tensors of <paramref name="type"/>.</summary>
    public static bool CanScan(GgmlType type) => DTypeOf(type) != null || type is GgmlType.Q8_0 or GgmlType.Q4_0;

    /// <summary>Per tensor of the file, in its order; null for a type <see cref="CanScan"/> refuses.</summary>
    public static ValueCounts?[] Scan(GgufMappedFile file, int threads = 0)
    {
        var tensors = file.Header.Tensors;
        var pieces = new List<(int Tensor, long Offset, int Length)>();
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            if (!CanScan(t.Type)) continue;
            int step = DTypeOf(t.Type) != null ? PieceBytes : PieceBlocks * GgmlTypes.Layout(t.Type)!.Value.Bytes;
            for (long off = 0; off < t.ByteLength; off += step) pieces.Add((i, off, (int)Math.Min(step, t.ByteLength - off)));
        }
        var counts = new ValueCounts[pieces.Count];
        int workers = WorkerPool.ThreadsFor(threads, Math.Max(1, pieces.Count));
        var scratch = new float[workers][];
        WorkerPool.For(threads, pieces.Count, (k, worker) =>
        {
            var (index, offset, length) = pieces[k];
            var t = tensors[index];
            ReadOnlySpan<byte> bytes;
            unsafe { bytes = new ReadOnlySpan<byte>(file.Pointer(t) + offset, length); }
            counts[k] = DTypeOf(t.Type) is { } dtype ? FiniteScan.Count(bytes, dtype) : CountBlocks(bytes, t.Type, scratch[worker] ??= new float[PieceBlocks * 32]);
        });
        var result = new ValueCounts?[tensors.Count];
        for (int k = 0; k < pieces.Count; k++)
        {
            int i = pieces[k].Tensor;
            result[i] = result[i] is { } sum ? sum.Add(counts[k]) : counts[k];
        }
        for (int i = 0; i < tensors.Count; i++)
            if (result[i] == null && CanScan(tensors[i].Type)) result[i] = default; // empty: no NaN/Inf, not flagged all-zero
        return result;
    }

    private static ValueCounts CountBlocks(ReadOnlySpan<byte> blocks, GgmlType type, float[] scratch)
    {
        var (size, bytes) = GgmlTypes.Layout(type)!.Value;
        var values = scratch.AsSpan(0, blocks.Length / bytes * size);
        if (type == GgmlType.Q8_0) Q8_0.Dequantize(blocks, values); else Q4_0.Dequantize(blocks, values);
        return FiniteScan.Count(MemoryMarshal.AsBytes(values), DType.F32);
    }

    private static DType? DTypeOf(GgmlType type) => type switch
    {
        GgmlType.F32 => DType.F32,
        GgmlType.F16 => DType.F16,
        GgmlType.BF16 => DType.BF16,
        GgmlType.F64 => DType.F64,
        GgmlType.I8 => DType.I8,
        GgmlType.I16 => DType.I16,
        GgmlType.I32 => DType.I32,
        GgmlType.I64 => DType.I64,
        _ => null,
    };
}
