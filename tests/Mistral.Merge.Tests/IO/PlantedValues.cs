using System.Text.Json;

namespace Mistral.Merge.Tests.IO;

/// <summary>Overwrites elements of a tensor in a safetensors file in place (F32, F16 or BF16), to plant NaN, Inf or huge values.</summary>
public static class PlantedValues
{
    /// <summary>Sets element <paramref name="index"/> of <paramref name="tensor"/> in <paramref name="folder"/>/model.safetensors.</summary>
    public static void Plant(string folder, string tensor, long index, float value) => Set(Path.Combine(folder, "model.safetensors"), tensor, value, index);

    /// <summary>Sets every element of <paramref name="tensor"/> in <paramref name="folder"/>/model.safetensors.</summary>
    public static void Fill(string folder, string tensor, float value) => Set(Path.Combine(folder, "model.safetensors"), tensor, value, null);

    public static void Set(string file, string tensor, float value, long? index)
    {
        using var fs = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        var len = new byte[8];
        fs.ReadExactly(len);
        long n = (long)BitConverter.ToUInt64(len);
        var header = new byte[n];
        fs.ReadExactly(header);
        var entry = JsonDocument.Parse(header).RootElement.GetProperty(tensor);
        long begin = entry.GetProperty("data_offsets")[0].GetInt64();
        long count = entry.GetProperty("shape").EnumerateArray().Aggregate(1L, (a, d) => a * d.GetInt64());
        byte[] bytes = entry.GetProperty("dtype").GetString() switch
        {
            "F32" => BitConverter.GetBytes(value),
            "F16" => BitConverter.GetBytes((Half)value),
            "BF16" => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(value) >> 16)),
            var d => throw new ArgumentException($"cannot plant into {d}"),
        };
        for (long i = index ?? 0; i < (index + 1 ?? count); i++)
        {
            fs.Position = 8 + n + begin + i * bytes.Length;
            fs.Write(bytes);
        }
    }
}
