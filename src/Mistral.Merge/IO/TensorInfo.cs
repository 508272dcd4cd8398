namespace Mistral.Merge.IO;

/// <summary>One tensor of a safetensors file: where its bytes are (relative to the data section).</summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => ByteLength / DType.SizeOf();
    public int Rank => Shape.Length;
    public long Rows => Shape.Length == 0 ? 1 : Shape[0];
    /// <summary>Elements per row (product of all dims but the first; the whole tensor for rank ≤ 1).</summary>
    public long RowLength => Shape.Length <= 1 ? ElementCount : ElementCount / Math.Max(1, Shape[0]);
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
