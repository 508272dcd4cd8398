using System.Globalization;

namespace Mistral.Merge.IO;

/// <summary>
/// Parses sizes such as <c>5000000000</c>, <c>500MB</c>, <c>2GB</c>, <c>1.5GiB</c>, and mergekit's own forms, which it
/// reads as counts: <c>5B</c> = 5·10⁹ (billion, not bytes), <c>500M</c> = 5·10⁸, <c>2k</c> = 2,000. <c>0</c> means no limit
/// (one shard), as mergekit's limit ≤ 0 does.
/// </summary>
public static class ByteSize
{
    /// <summary>What <c>0</c> parses to: no shard limit.</summary>
    public const long NoLimit = long.MaxValue / 2;

    public static long Parse(string text, string optionName = "--out-shard-size")
    {
        var s = text.Trim();
        int i = 0;
        while (i < s.Length && (char.IsDigit(s[i]) || s[i] == '.')) i++;
        var number = s[..i];
        var unit = s[i..].Trim().ToUpperInvariant();
        if (number.Length == 0 || !double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
            throw new MergeException($"{optionName}: '{text}' is not a size (examples: 5000000000, 500MB, 2GB)");
        double mult = unit switch
        {
            "" => 1,
            "B" => 1e9, // mergekit's suffix for billions: --out-shard-size 5B is its default, 5·10⁹ bytes
            "K" or "KB" => 1e3,
            "M" or "MB" => 1e6,
            "G" or "GB" => 1e9,
            "T" or "TB" => 1e12,
            "KIB" => 1024d,
            "MIB" => 1024d * 1024,
            "GIB" => 1024d * 1024 * 1024,
            "TIB" => 1024d * 1024 * 1024 * 1024,
            _ => throw new MergeException($"{optionName}: unknown unit '{s[i..]}' in '{text}' (use K, M, B as mergekit does, KB, MB, GB, TB, or KiB, MiB, GiB)"),
        };
        var bytes = value * mult;
        if (bytes == 0 && unit.Length == 0) return NoLimit;
        if (bytes < 1 || bytes > long.MaxValue / 2)
            throw new MergeException($"{optionName}: '{text}' is out of range (must be at least 1 byte)");
        return (long)Math.Round(bytes);
    }

    public static string Format(long bytes)
    {
        string[] units = ["B", "KB", "MB", "GB", "TB"];
        double v = bytes; int u = 0;
        while (v >= 1000 && u < units.Length - 1) { v /= 1000; u++; }
        return u == 0 ? $"{bytes} B" : v.ToString(v >= 100 ? "0" : v >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture) + " " + units[u];
    }
}
