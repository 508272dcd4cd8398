using System.Runtime.CompilerServices;

namespace Mistral.Merge.Inference.Tokenization;

/// <summary>UTF-8 helpers with sentencepiece's exact rules (<c>OneCharLen</c>, <c>DecodeUTF8</c>).</summary>
internal static class Utf8
{
    /// <summary>Character length implied by a lead byte (1 for ASCII and stray continuation bytes), as sentencepiece's OneCharLen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LeadLength(byte b) => (b >> 4) switch { 0xC or 0xD => 2, 0xE => 3, 0xF => 4, _ => 1 };

    private static bool IsTrail(byte b) => (b & 0xC0) == 0x80;
    private static bool IsValidCodepoint(int c) => c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF);

    /// <summary>
    /// Length of the valid character at the start of <paramref name="s"/>, 0 when the bytes are invalid there
    /// (sentencepiece then emits U+FFFD for one byte), or -1 when <paramref name="s"/> is a proper prefix of a
    /// character that more bytes could still complete (only meaningful while streaming).
    /// </summary>
    public static int ValidCharLength(ReadOnlySpan<byte> s)
    {
        byte b = s[0];
        if (b < 0x80) return 1;
        int need; int cp; int min;
        if ((b & 0xE0) == 0xC0) { need = 2; cp = b & 0x1F; min = 0x80; }
        else if ((b & 0xF0) == 0xE0) { need = 3; cp = b & 0x0F; min = 0x800; }
        else if ((b & 0xF8) == 0xF0) { need = 4; cp = b & 0x07; min = 0x10000; }
        else return 0;
        int have = Math.Min(need, s.Length);
        for (int i = 1; i < have; i++)
        {
            if (!IsTrail(s[i])) return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (have < need) return -1;
        return cp >= min && IsValidCodepoint(cp) ? need : 0;
    }
}
