using System.Text;
using System.Text.Json;

namespace Mistral.Merge.Tests.IO;

/// <summary>Builds safetensors bytes by hand (header JSON as given), and parses them by hand: an
/// independent reader for the tests, written from the format description, not from our reader.</summary>
public static class RawSafetensors
{
    public static byte[] Build(string headerJson, byte[] data, ulong? headerLengthOverride = null)
    {
        var h = Encoding.UTF8.GetBytes(headerJson);
        return Build(h, data, headerLengthOverride);
    }

    public static byte[] Build(byte[] header, byte[] data, ulong? headerLengthOverride = null)
    {
        var b = new byte[8 + header.Length + data.Length];
        BitConverter.TryWriteBytes(b.AsSpan(0, 8), headerLengthOverride ?? (ulong)header.Length);
        header.CopyTo(b, 8);
        data.CopyTo(b, 8 + header.Length);
        return b;
    }

    /// <summary>A valid small file: three tensors of different dtypes (data bytes 0,1,2,...).</summary>
    public static byte[] Valid()
    {
        const string header = """{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"c":{"dtype":"I8","shape":[1,2,2],"data_offsets":[32,36]},"__metadata__":{"format":"pt"}}""";
        var data = new byte[36];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 + 1);
        return Build(header, data);
    }

    public sealed record Entry(string Name, string DType, long[] Shape, byte[] Bytes);

    /// <summary>Parses a file by hand: u64 header length, JSON header, raw slices of the data section.</summary>
    public static Dictionary<string, Entry> Parse(byte[] file)
    {
        ulong n = BitConverter.ToUInt64(file, 0);
        using var doc = JsonDocument.Parse(file.AsMemory(8, (int)n));
        var result = new Dictionary<string, Entry>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            var offs = p.Value.GetProperty("data_offsets");
            long begin = offs[0].GetInt64(), end = offs[1].GetInt64();
            var shape = p.Value.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
            result[p.Name] = new Entry(p.Name, p.Value.GetProperty("dtype").GetString()!, shape,
                file.AsSpan((int)(8 + (long)n + begin), (int)(end - begin)).ToArray());
        }
        return result;
    }
}
