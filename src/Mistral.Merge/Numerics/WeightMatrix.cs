using Mistral.Merge.Numerics.Quantization;

namespace Mistral.Merge.Numerics;

/// <summary>ggml block quantizations a <see cref="WeightMatrix"/> may hold (GGUF files); <see cref="None"/> for a float dtype.</summary>
public enum BlockQuant { None, Q8_0, Q4_0 }

/// <summary>
/// A row-major [Rows, Cols] matrix in its stored dtype (F32, F16 or BF16) or ggml block quantization (Q8_0, Q4_0:
/// each row a run of 32-weight blocks), usually a view into a memory-mapped safetensors or GGUF file (an HF Linear
/// weight is [out_features, in_features]). Kernels widen it to float32 on the fly (Q8_0/Q4_0 GEMV: dot products on
/// the blocks); it is never copied as a whole.
/// </summary>
public readonly unsafe struct WeightMatrix
{
    public readonly byte* Data;
    /// <summary>The float dtype; <see cref="DType.U8"/> (raw blocks) for a quantized matrix.</summary>
    public readonly DType Type;
    public readonly BlockQuant Quant;
    public readonly int Rows;
    public readonly int Cols;

    public WeightMatrix(byte* data, DType type, int rows, int cols)
    {
        if (type is not (DType.F32 or DType.F16 or DType.BF16))
            throw new MergeException($"weights of dtype {type} are not supported by the kernels (F32, F16, BF16 only)");
        Data = data; Type = type; Rows = rows; Cols = cols;
    }

    /// <summary>A block-quantized matrix; <paramref name="cols"/> must be a multiple of the 32-weight block.</summary>
    public WeightMatrix(byte* data, BlockQuant quant, int rows, int cols)
    {
        if (quant == BlockQuant.None) throw new ArgumentException("use the dtype constructor for float weights", nameof(quant));
        if (cols % Q8_0.BlockSize != 0) throw new MergeException($"{quant} weights need rows that are a multiple of {Q8_0.BlockSize}, got {cols}");
        Data = data; Type = DType.U8; Quant = quant; Rows = rows; Cols = cols;
    }

    public bool IsQuantized => Quant != BlockQuant.None;

    /// <summary>Bytes per element of a float matrix (0 for a quantized one: see <see cref="RowBytes"/>).</summary>
    public int ElementSize => Quant != BlockQuant.None ? 0 : Type == DType.F32 ? 4 : 2;

    /// <summary>Bytes of one row as stored.</summary>
    public long RowBytes => Quant switch
    {
        BlockQuant.Q8_0 => Q8_0.ByteCount(Cols),
        BlockQuant.Q4_0 => Q4_0.ByteCount(Cols),
        _ => (long)Cols * ElementSize,
    };

    public long ByteLength => Rows * RowBytes;

    /// <summary>Pointer to element [row, col] (for a quantized matrix, col is a multiple of 32: a block start).</summary>
    public byte* At(int row, int col) => Quant == BlockQuant.None
        ? Data + ((long)row * Cols + col) * ElementSize
        : Data + row * RowBytes + col / Q8_0.BlockSize * (RowBytes / (Cols / Q8_0.BlockSize));

    /// <summary>Rows [first, first+count) as their own matrix (an expert slice, a row block).</summary>
    public WeightMatrix RowSlice(int first, int count) =>
        Quant == BlockQuant.None ? new(At(first, 0), Type, count, Cols) : new(At(first, 0), Quant, count, Cols);

    /// <summary>Widens <paramref name="count"/> elements of row <paramref name="row"/> from column <paramref name="col"/> (quantized: whole blocks).</summary>
    public void WidenRow(int row, int col, int count, Span<float> dst)
    {
        switch (Quant)
        {
            case BlockQuant.Q8_0: Q8_0.Dequantize(new ReadOnlySpan<byte>(At(row, col), (int)Q8_0.ByteCount(count)), dst[..count]); break;
            case BlockQuant.Q4_0: Q4_0.Dequantize(new ReadOnlySpan<byte>(At(row, col), (int)Q4_0.ByteCount(count)), dst[..count]); break;
            default: Conversions.ToSingle(new ReadOnlySpan<byte>(At(row, col), count * ElementSize), Type, dst[..count]); break;
        }
    }
}
