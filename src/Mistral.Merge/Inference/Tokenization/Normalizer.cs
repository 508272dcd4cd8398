namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// sentencepiece's <c>Normalizer::Normalize</c> for the identity rule (empty precompiled charsmap):
/// optional removal of leading/trailing/repeated spaces, the dummy-prefix space, and escaping of
/// ' ' as U+2581. Works on UTF-8 bytes; a unit is one character or one user-defined piece.
/// </summary>
internal sealed class Normalizer(SentencePieceModel model, UserDefinedMatcher? matcher)
{
    public static ReadOnlySpan<byte> SpaceSymbol => "\u2581"u8;

    private readonly bool _addDummyPrefix = model.AddDummyPrefix;
    private readonly bool _removeExtra = model.RemoveExtraWhitespaces;
    private readonly bool _escape = model.EscapeWhitespaces;

    /// <summary>Bytes that stand for a space in the normalized text.</summary>
    public ReadOnlySpan<byte> Space => _escape ? SpaceSymbol : " "u8;

    /// <summary>Normalizes <paramref name="input"/> into <paramref name="output"/> (grown as needed); returns the length.</summary>
    public int Normalize(ReadOnlySpan<byte> input, ref byte[] output)
    {
        int need = input.Length * 3 + 3;
        if (output.Length < need) output = new byte[need];
        var o = output.AsSpan();
        int n = 0, pos = 0;

        if (_removeExtra)
            while (pos < input.Length && UnitLength(input[pos..]) == 1 && input[pos] == (byte)' ') pos++;
        if (pos == input.Length) return 0;

        if (_addDummyPrefix) n = Append(o, n, (byte)' ');

        bool prevSpace = _removeExtra;
        while (pos < input.Length)
        {
            int len = UnitLength(input[pos..]);
            var unit = input.Slice(pos, len);
            if (prevSpace) while (!unit.IsEmpty && unit[0] == (byte)' ') unit = unit[1..];
            if (!unit.IsEmpty)
            {
                for (int i = 0; i < unit.Length; i++) n = Append(o, n, unit[i]);
                prevSpace = unit[^1] == (byte)' ';
            }
            pos += len;
            if (!_removeExtra) prevSpace = false;
        }

        if (_removeExtra)
        {
            var sp = Space;
            while (n >= sp.Length && o[(n - sp.Length)..n].SequenceEqual(sp)) n -= sp.Length;
        }
        return n;
    }

    // Only ' ' is rewritten and it is ASCII, so without user-defined pieces a byte is as good a unit as a character.
    private int UnitLength(ReadOnlySpan<byte> s)
    {
        if (matcher != null)
        {
            int m = matcher.Match(s);
            if (m > 0) return m;
            return Math.Min(Utf8.LeadLength(s[0]), s.Length);
        }
        return 1;
    }

    private int Append(Span<byte> o, int n, byte b)
    {
        if (b == (byte)' ' && _escape)
        {
            SpaceSymbol.CopyTo(o[n..]);
            return n + 3;
        }
        o[n] = b;
        return n + 1;
    }
}
