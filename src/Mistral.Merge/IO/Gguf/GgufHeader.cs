using System.Text;

namespace Mistral.Merge.IO.Gguf;

/// <summary>Serializes the part of a GGUF file before the data section: header, metadata, tensor infos, padding.</summary>
public static class GgufHeader
{
    /// <summary>
    /// The bytes before the data section; sets each tensor's offset (in order, each padded to
    /// <paramref name="alignment"/>) and returns them with the data section's length.
    /// </summary>
    public static byte[] Build(IReadOnlyList<(string Key, GgufValue Value)> metadata, IReadOnlyList<GgufTensorInfo> tensors,
        uint alignment, out List<GgufTensorInfo> placed, out long dataLength)
    {
        placed = new List<GgufTensorInfo>(tensors.Count);
        long offset = 0;
        foreach (var t in tensors)
        {
            placed.Add(t with { Offset = offset });
            offset = GgufFormat.Align(checked(offset + t.ByteLength), alignment);
        }
        dataLength = offset;

        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(GgufFormat.Magic);
            w.Write(GgufFormat.Version);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count);
            foreach (var (key, value) in metadata)
            {
                WriteString(w, key);
                w.Write((uint)value.Type);
                if (value.IsArray)
                {
                    var a = (Array)value.Value;
                    w.Write((uint)value.ElementType);
                    w.Write((ulong)a.Length);
                    foreach (var e in a) WriteScalar(w, value.ElementType, e!);
                }
                else WriteScalar(w, value.Type, value.Value);
            }
            foreach (var t in placed)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Dims.Length);
                foreach (var d in t.Dims) w.Write((ulong)d);
                w.Write((uint)t.Type);
                w.Write((ulong)t.Offset);
            }
        }
        long pad = GgufFormat.Align(ms.Length, alignment) - ms.Length;
        ms.Write(new byte[pad]);
        return ms.ToArray();
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object v)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)v); break;
            case GgufValueType.Int8: w.Write((sbyte)v); break;
            case GgufValueType.UInt16: w.Write((ushort)v); break;
            case GgufValueType.Int16: w.Write((short)v); break;
            case GgufValueType.UInt32: w.Write((uint)v); break;
            case GgufValueType.Int32: w.Write((int)v); break;
            case GgufValueType.Float32: w.Write((float)v); break;
            case GgufValueType.Bool: w.Write((bool)v ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)v); break;
            case GgufValueType.UInt64: w.Write((ulong)v); break;
            case GgufValueType.Int64: w.Write((long)v); break;
            case GgufValueType.Float64: w.Write((double)v); break;
            default: throw new ArgumentException($"cannot write a GGUF value of type {type}", nameof(type));
        }
    }
}
