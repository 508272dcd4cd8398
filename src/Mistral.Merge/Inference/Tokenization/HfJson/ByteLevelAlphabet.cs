namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// GPT-2's bytes_to_unicode: every byte gets a printable character (printable Latin-1 bytes stand for themselves,
/// the others map to U+0100 onwards), so byte-level BPE works on ordinary strings.
/// </summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = Build();
    private static readonly Dictionary<char, byte> CharToByteMap = ByteToChar.Select((c, b) => (c, b)).ToDictionary(p => p.c, p => (byte)p.b);

    private static char[] Build()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + next++);
        }
        return map;
    }

    /// <summary>The byte-level form of <paramref name="text"/>'s UTF-8 bytes.</summary>
    public static string Encode(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, (span, b) => { for (int i = 0; i < b.Length; i++) span[i] = ByteToChar[b[i]]; });
    }

    /// <summary>The byte of a byte-level character, or false for any other character.</summary>
    public static bool TryGetByte(char c, out byte b) => CharToByteMap.TryGetValue(c, out b);
}
