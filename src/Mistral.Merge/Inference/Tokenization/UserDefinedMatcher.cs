namespace Mistral.Merge.Inference.Tokenization;

/// <summary>
/// Longest-prefix matcher over the USER_DEFINED pieces (sentencepiece's <c>PrefixMatcher</c>): such a piece is
/// passed through the normalizer untouched and becomes one frozen symbol that BPE never merges.
/// </summary>
internal sealed class UserDefinedMatcher
{
    private readonly byte[][]?[] _byFirstByte = new byte[][]?[256]; // longest first

    private UserDefinedMatcher() { }

    public static UserDefinedMatcher? Create(SentencePieceModel model)
    {
        var lists = new List<byte[]>?[256];
        bool any = false;
        for (int i = 0; i < model.Count; i++)
        {
            if (model.Types[i] != PieceType.UserDefined) continue;
            var b = model.PieceBytes[i];
            (lists[b[0]] ??= []).Add(b);
            any = true;
        }
        if (!any) return null;
        var m = new UserDefinedMatcher();
        for (int c = 0; c < 256; c++)
            if (lists[c] is { } l) m._byFirstByte[c] = [.. l.OrderByDescending(x => x.Length)];
        return m;
    }

    /// <summary>Length in bytes of the longest user-defined piece starting <paramref name="s"/>; 0 when none.</summary>
    public int Match(ReadOnlySpan<byte> s)
    {
        if (s.IsEmpty || _byFirstByte[s[0]] is not { } candidates) return 0;
        foreach (var c in candidates)
            if (s.StartsWith(c)) return c.Length;
        return 0;
    }
}
