namespace Mistral.Merge.Numerics;

/// <summary>
/// A row-major [Rows, Cols] matrix in its stored dtype (F32, F16 or BF16), usually a view into a
/// memory-mapped safetensors file (an HF Linear weight is [out_features, in_features]).
/// Kernels widen it to float32 on the fly; it is never copied as a whole.
/// </summary>
public readonly unsafe struct WeightMatrix
{
    public readonly byte* Data;
    public readonly DType Type;
    public readonly int Rows;
    public readonly int Cols;

    public WeightMatrix(byte* data, DType type, int rows, int cols)
    {
        if (type is not (DType.F32 or DType.F16 or DType.BF16))
            throw new MergeException($"weights of dtype {type} are not supported by the kernels (F32, F16, BF16 only)");
        Data = data; Type = type; Rows = rows; Cols = cols;
    }

    public int ElementSize => Type == DType.F32 ? 4 : 2;
    public long ByteLength => (long)Rows * Cols * ElementSize;

    /// <summary>Pointer to element [row, col].</summary>
    public byte* At(int row, int col) => Data + ((long)row * Cols + col) * ElementSize;

    /// <summary>Rows [first, first+count) as their own matrix (an expert slice, a row block).</summary>
    public WeightMatrix RowSlice(int first, int count) => new(At(first, 0), Type, count, Cols);

    /// <summary>Widens <paramref name="count"/> elements of row <paramref name="row"/> from column <paramref name="col"/>.</summary>
    public void WidenRow(int row, int col, int count, Span<float> dst)
        => Conversions.ToSingle(new ReadOnlySpan<byte>(At(row, col), count * ElementSize), Type, dst[..count]);
}
