using System.Text;

namespace Mistral.Merge.IO.Gguf;

/// <summary>
/// Reads a GGUF v3 file's metadata and tensor infos (and, on request, a tensor's raw bytes). Every malformed field
/// is a one-line <see cref="MergeException"/> naming the file and what is wrong.
/// </summary>
public sealed class GgufReader
{
    public string Path { get; }
    public uint Version { get; private init; }
    public IReadOnlyList<(string Key, GgufValue Value)> Metadata { get; private init; } = [];
    public IReadOnlyList<GgufTensorInfo> Tensors { get; private init; } = [];
    public uint Alignment { get; private init; }
    /// <summary>File offset of the data section.</summary>
    public long DataOffset { get; private init; }

    private const long MaxString = 1L << 30, MaxCount = 1L << 32;

    private GgufReader(string path) => Path = path;

    public GgufValue? Get(string key) => Metadata.FirstOrDefault(kv => kv.Key == key).Value;

    public GgufValue this[string key] => Get(key) ?? throw new MergeException($"{Path}: no metadata key '{key}'");

    /// <summary>A numeric metadata value as an integer (null when absent); a string, bool or array is a one-line error.</summary>
    public long? Integer(string key) => Get(key) is not { } v ? null
        : v.Value is IConvertible c and not string and not bool && v.Type != GgufValueType.Array
            ? Convert.ToInt64(c, System.Globalization.CultureInfo.InvariantCulture)
            : throw new MergeException($"{Path}: '{key}' must be an integer, got {v.Value}");

    public GgufTensorInfo Tensor(string name) => Tensors.FirstOrDefault(t => t.Name == name)
        ?? throw new MergeException($"{Path}: no tensor '{name}'");

    public static GgufReader Open(string path)
    {
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            using var r = new BinaryReader(fs, Encoding.UTF8);
            return Parse(path, r, fs.Length);
        }
        catch (EndOfStreamException) { throw new MergeException($"{path}: truncated GGUF file"); }
        catch (OverflowException) { throw new MergeException($"{path}: a tensor's size is out of range (corrupt GGUF file)"); }
        catch (Exception e) when (IoErrors.IsIo(e)) { throw new MergeException($"{path}: cannot read ({IoErrors.Describe(e)})"); }
    }

    private static GgufReader Parse(string path, BinaryReader r, long length)
    {
        if (r.ReadUInt32() != GgufFormat.Magic) throw new MergeException($"{path}: not a GGUF file (bad magic)");
        uint version = r.ReadUInt32();
        if (version is < 2 or > 3) throw new MergeException($"{path}: GGUF version {version} is not supported (2 or 3)");
        long nTensors = Count(path, r.ReadUInt64(), "tensor count"), nKv = Count(path, r.ReadUInt64(), "metadata count");
        var meta = new List<(string, GgufValue)>();
        for (long i = 0; i < nKv; i++)
        {
            var key = ReadString(path, r);
            var type = (GgufValueType)r.ReadUInt32();
            meta.Add((key, ReadValue(path, r, type, key)));
        }
        uint alignment = GgufFormat.DefaultAlignment;
        var a = meta.FirstOrDefault(kv => kv.Item1 == GgufFormat.KeyAlignment).Item2;
        if (a != null)
        {
            if (a.Value is not uint u || u == 0 || (u & (u - 1)) != 0) throw new MergeException($"{path}: general.alignment must be a power-of-two u32, got {a}");
            alignment = u;
        }
        var tensors = new List<GgufTensorInfo>();
        for (long i = 0; i < nTensors; i++)
        {
            var name = ReadString(path, r);
            uint nDims = r.ReadUInt32();
            if (nDims is 0 or > 4) throw new MergeException($"{path}: tensor '{name}' has {nDims} dimensions (1 to 4)");
            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++) dims[d] = Count(path, r.ReadUInt64(), $"tensor '{name}' dimension");
            var type = (GgmlType)r.ReadUInt32();
            if (GgmlTypes.Layout(type) is not { } layout) throw new MergeException($"{path}: tensor '{name}' has unknown ggml type {(uint)type}");
            if (dims[0] % layout.Block != 0) throw new MergeException($"{path}: tensor '{name}' row of {dims[0]} is not a multiple of {type}'s block of {layout.Block}");
            long offset = Count(path, r.ReadUInt64(), $"tensor '{name}' offset");
            if (offset % alignment != 0) throw new MergeException($"{path}: tensor '{name}' offset {offset} is not a multiple of the alignment {alignment}");
            tensors.Add(new GgufTensorInfo(name, dims, type) { Offset = offset });
        }
        long dataOffset = GgufFormat.Align(r.BaseStream.Position, alignment);
        foreach (var t in tensors)
            if (dataOffset + t.Offset + t.ByteLength > length)
                throw new MergeException($"{path}: tensor '{t.Name}' ends past the end of the file");
        return new GgufReader(path) { Version = version, Metadata = meta, Tensors = tensors, Alignment = alignment, DataOffset = dataOffset };
    }

    /// <summary>A tensor's raw bytes, as stored.</summary>
    public byte[] ReadBytes(string name)
    {
        var t = Tensor(name);
        var bytes = new byte[t.ByteLength];
        using var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        fs.Seek(DataOffset + t.Offset, SeekOrigin.Begin);
        fs.ReadExactly(bytes);
        return bytes;
    }

    private static long Count(string path, ulong v, string what) =>
        v > long.MaxValue / 2 ? throw new MergeException($"{path}: {what} {v} is out of range") : (long)v;

    private static string ReadString(string path, BinaryReader r)
    {
        ulong n = r.ReadUInt64();
        if (n > MaxString) throw new MergeException($"{path}: a string of {n} bytes is out of range");
        if ((long)n > r.BaseStream.Length - r.BaseStream.Position) throw new EndOfStreamException();
        return Encoding.UTF8.GetString(r.ReadBytes((int)n) is { } b && b.Length == (int)n ? b : throw new EndOfStreamException());
    }

    private static GgufValue ReadValue(string path, BinaryReader r, GgufValueType type, string key)
    {
        if (type != GgufValueType.Array) return new GgufValue(type, ReadScalar(path, r, type, key));
        var et = (GgufValueType)r.ReadUInt32();
        ulong n = r.ReadUInt64();
        // Each value takes at least one byte: a count past the end of the file is corruption, not an allocation to try.
        if (n > MaxCount) throw new MergeException($"{path}: key '{key}' has an array of {n} values (out of range)");
        if ((long)n > r.BaseStream.Length - r.BaseStream.Position) throw new EndOfStreamException();
        if (et == GgufValueType.Array) throw new MergeException($"{path}: key '{key}' is an array of arrays (not supported)");
        Array a = et switch
        {
            GgufValueType.String => new string[n],
            GgufValueType.Float32 => new float[n],
            GgufValueType.Int32 => new int[n],
            GgufValueType.UInt32 => new uint[n],
            _ => new object[n],
        };
        for (ulong i = 0; i < n; i++) a.SetValue(ReadScalar(path, r, et, key), (long)i);
        return new GgufValue(GgufValueType.Array, a, et);
    }

    private static object ReadScalar(string path, BinaryReader r, GgufValueType type, string key) => type switch
    {
        GgufValueType.UInt8 => r.ReadByte(),
        GgufValueType.Int8 => r.ReadSByte(),
        GgufValueType.UInt16 => r.ReadUInt16(),
        GgufValueType.Int16 => r.ReadInt16(),
        GgufValueType.UInt32 => r.ReadUInt32(),
        GgufValueType.Int32 => r.ReadInt32(),
        GgufValueType.Float32 => r.ReadSingle(),
        GgufValueType.Bool => r.ReadByte() switch { 0 => false, 1 => true, var b => throw new MergeException($"{path}: key '{key}' has bool byte {b}") },
        GgufValueType.String => ReadString(path, r),
        GgufValueType.UInt64 => r.ReadUInt64(),
        GgufValueType.Int64 => r.ReadInt64(),
        GgufValueType.Float64 => r.ReadDouble(),
        _ => throw new MergeException($"{path}: key '{key}' has unknown value type {(uint)type}"),
    };
}
