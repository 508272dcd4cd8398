namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// Minimal bounds-checked protobuf wire-format reader (varint, fixed32/64, length-delimited).
/// Every malformed input raises <see cref="InvalidDataException"/>, which the loader turns into a one-line error.
/// </summary>
internal ref struct ProtoReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _pos;

    public readonly bool End => _pos >= _data.Length;

    /// <summary>Reads the next tag: field number and wire type.</summary>
    public (int Field, int WireType) ReadTag()
    {
        ulong tag = ReadVarint();
        int field = (int)(tag >> 3);
        if (field <= 0 || tag >> 3 > int.MaxValue) throw new InvalidDataException($"invalid protobuf tag {tag} at byte {_pos}");
        return (field, (int)(tag & 7));
    }

    public ulong ReadVarint()
    {
        ulong result = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            if (_pos >= _data.Length) throw new InvalidDataException("truncated varint");
            byte b = _data[_pos++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw new InvalidDataException("varint longer than 10 bytes");
    }

    public int ReadInt32() => unchecked((int)ReadVarint());

    public bool ReadBool() => ReadVarint() != 0;

    public float ReadFloat()
    {
        if (_data.Length - _pos < 4) throw new InvalidDataException("truncated float");
        float v = BitConverter.ToSingle(_data.Slice(_pos, 4));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        _pos += 4;
        return v;
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        ulong len = ReadVarint();
        if (len > (ulong)(_data.Length - _pos)) throw new InvalidDataException($"length-delimited field of {len} bytes runs past the end ({_data.Length - _pos} left)");
        var s = _data.Slice(_pos, (int)len);
        _pos += (int)len;
        return s;
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case 0: ReadVarint(); break;
            case 1: Advance(8); break;
            case 2: ReadBytes(); break;
            case 5: Advance(4); break;
            default: throw new InvalidDataException($"unsupported protobuf wire type {wireType} at byte {_pos}");
        }
    }

    /// <summary>Checks the wire type of a known field (a wrong type means a corrupt or foreign file).</summary>
    public static void Expect(int field, int actual, int expected)
    {
        if (actual != expected) throw new InvalidDataException($"field {field} has wire type {actual}, expected {expected}");
    }

    private void Advance(int n)
    {
        if (_data.Length - _pos < n) throw new InvalidDataException("truncated fixed-width field");
        _pos += n;
    }
}
