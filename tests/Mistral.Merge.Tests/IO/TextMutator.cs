using System.Text;

namespace Mistral.Merge.Tests.IO;

/// <summary>
/// Seeded mutations of a valid side file, aimed at what readers get wrong: byte flips, truncations, insertions,
/// duplicated lines (duplicate keys), values of the wrong type, huge or odd numbers, deep nesting, and for YAML
/// aliases of aliases. Text formats get structure-aware edits; binary ones (tokenizer.model) the byte-level ones.
/// </summary>
internal static class TextMutator
{
    private static readonly string[] OddValues =
    [
        "\"x\"", "true", "null", "[]", "{}", "-1", "0", "0.5", "1e400", "-1e400", "1099511627776", "99999999999999999999999",
        "2147483648", "1e9", "\"\\ud800\"", "NaN", "[1, [2]]", "{\"content\": 3}",
    ];

    private static readonly string[] YamlValues =
    [
        "x", "[", "]", "{", "&a [x, x]", "*a", "*nope", "&b [*a, *a, *a, *a]", "1e400", "-1", "99999999999999999999", "[0, 1000000000]",
        "!!binary AAAA", "\"\\ud800\"", "~", "? x", "- - -", "|", ">-", "'", "\"", "&c {k: *c}",
    ];

    public static byte[] Bytes(byte[] valid, Random rng)
    {
        var b = new List<byte>(valid);
        int edits = 1 + rng.Next(3);
        for (int e = 0; e < edits; e++)
        {
            int pos = rng.Next(b.Count + 1);
            switch (rng.Next(6))
            {
                case 0: if (pos < b.Count) b[pos] = (byte)rng.Next(256); break;
                case 1: if (pos < b.Count) b[pos] ^= (byte)(1 << rng.Next(8)); break;
                case 2: b.RemoveRange(pos, b.Count - pos); break;
                case 3: b.InsertRange(pos, Enumerable.Range(0, rng.Next(1, 12)).Select(_ => (byte)(rng.Next(2) == 0 ? 0xFF : rng.Next(256)))); break;
                case 4: if (pos < b.Count) b.RemoveRange(pos, Math.Min(b.Count - pos, rng.Next(1, 8))); break;
                case 5: // a block copied elsewhere (duplicated fields and pieces)
                    if (b.Count > 0)
                    {
                        int from = rng.Next(b.Count), len = Math.Min(b.Count - from, rng.Next(1, 64));
                        b.InsertRange(pos, b.GetRange(from, len));
                    }
                    break;
            }
        }
        return b.ToArray();
    }

    public static string Json(string valid, Random rng) => Text(valid, rng, OddValues, "[", "]");

    public static string Yaml(string valid, Random rng) => Text(valid, rng, YamlValues, "- ", "");

    private static string Text(string valid, Random rng, string[] values, string open, string close)
    {
        var lines = valid.Split('\n').ToList();
        int edits = 1 + rng.Next(3);
        for (int e = 0; e < edits; e++)
        {
            int i = rng.Next(lines.Count);
            var line = lines[i];
            int colon = line.IndexOf(':');
            switch (rng.Next(9))
            {
                case 0: lines.Insert(i, line); break; // a duplicated key
                case 1: if (colon >= 0) lines[i] = line[..(colon + 1)] + " " + values[rng.Next(values.Length)] + (line.TrimEnd().EndsWith(',') ? "," : ""); break;
                case 2: lines[i] = Insert(line, rng, values[rng.Next(values.Length)]); break;
                case 3: if (colon >= 0) lines[i] = line[..(colon + 1)] + " " + Nest(open, close, rng.Next(50, 3000)) + (line.TrimEnd().EndsWith(',') ? "," : ""); break;
                case 4: lines.RemoveRange(i, lines.Count - i); lines.Add(line.Length > 0 ? line[..rng.Next(line.Length)] : ""); break;
                case 5: lines.RemoveAt(i); if (lines.Count == 0) lines.Add(""); break;
                default:
                    var bytes = Bytes(Encoding.UTF8.GetBytes(line), rng);
                    lines[i] = Encoding.UTF8.GetString(bytes);
                    break;
            }
        }
        return string.Join('\n', lines);
    }

    private static string Insert(string line, Random rng, string s) => line.Insert(rng.Next(line.Length + 1), s);

    private static string Nest(string open, string close, int depth)
    {
        var sb = new StringBuilder();
        for (int d = 0; d < depth; d++) sb.Append(open);
        sb.Append('1');
        for (int d = 0; d < depth; d++) sb.Append(close);
        return sb.ToString();
    }
}
