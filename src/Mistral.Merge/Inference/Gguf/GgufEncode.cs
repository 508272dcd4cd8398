using System.Buffers.Binary;
using Mistral.Merge.IO.Gguf;
using Mistral.Merge.Numerics;
using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Inference.Gguf;

/// <summary>float32 rows → the bytes of a ggml type (f32, f16, bf16, q8_0, q4_0), in parallel row chunks.</summary>
public static class GgufEncode
{
    /// <summary>
    /// Encodes <paramref name="count"/> values of <paramref name="x"/> from <paramref name="start"/> (whole rows of
    /// <paramref name="rowLength"/>) as <paramref name="type"/> into the start of <paramref name="dst"/>.
    /// </summary>
    public static void Rows(float[] x, int start, int count, int rowLength, GgmlType type, byte[] dst, int threads)
    {
        int rows = count / rowLength;
        int rowBytes = (int)GgmlTypes.ByteCount(type, [rowLength]);
        // Chunks of whole rows, about 1 M values each, so that every thread gets work on big tensors.
        int perChunk = Math.Max(1, (1 << 20) / rowLength);
        int chunks = (rows + perChunk - 1) / perChunk;
        WorkerPool.For(threads, chunks, (c, _) =>
        {
            int r0 = c * perChunk, r1 = Math.Min(rows, r0 + perChunk);
            One(x.AsSpan(start + r0 * rowLength, (r1 - r0) * rowLength), type, dst.AsSpan(r0 * rowBytes, (r1 - r0) * rowBytes));
        });
    }

    public static void One(ReadOnlySpan<float> x, GgmlType type, Span<byte> dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], x[i]);
                break;
            case GgmlType.F16: Fp16.WriteRow(x, dst); break;
            case GgmlType.BF16:
                for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], BFloat16.RoundToBits(x[i]));
                break;
            case GgmlType.Q8_0: Q8_0.Quantize(x, dst); break;
            case GgmlType.Q4_0: Q4_0.Quantize(x, dst); break;
            default: throw new ArgumentException($"cannot encode {type}", nameof(type));
        }
    }
}
