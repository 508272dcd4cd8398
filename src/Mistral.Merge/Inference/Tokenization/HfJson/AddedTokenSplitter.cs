namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>One added token of tokenizer.json ("added_tokens").</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip, bool Normalized, bool SingleWord);

/// <summary>
/// Finds added tokens in a text as tokenizers' AddedVocabulary does: leftmost-longest matches; lstrip/rstrip
/// swallow the whitespace beside a match; a single_word token matches only between non-word characters.
/// </summary>
internal sealed class AddedTokenSplitter
{
    private readonly Dictionary<char, (string Text, AddedToken Token)[]> _byFirstChar;

    public AddedTokenSplitter(IEnumerable<(string Text, AddedToken Token)> tokens)
    {
        _byFirstChar = tokens.Where(t => t.Text.Length > 0)
            .GroupBy(t => t.Text[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Text.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>The text as pieces: (start, text, token) with token null for plain text; empty text pieces are left out.</summary>
    public List<(int Start, string Text, AddedToken? Token)> Split(string text)
    {
        var pieces = new List<(int, string, AddedToken?)>();
        if (IsEmpty) { if (text.Length > 0) pieces.Add((0, text, null)); return pieces; }
        int plainStart = 0;
        for (int i = 0; i < text.Length;)
        {
            if (_byFirstChar.TryGetValue(text[i], out var candidates))
            {
                var (match, token) = Array.Find(candidates, c => text.AsSpan(i).StartsWith(c.Text, StringComparison.Ordinal) && WordBounded(text, i, c.Text.Length, c.Token));
                if (match != null)
                {
                    int start = i, end = i + match.Length;
                    if (token.LStrip) while (start > plainStart && char.IsWhiteSpace(text[start - 1])) start--;
                    if (token.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
                    if (start > plainStart) pieces.Add((plainStart, text[plainStart..start], null));
                    pieces.Add((start, match, token));
                    i = plainStart = end;
                    continue;
                }
            }
            i++;
        }
        if (plainStart < text.Length) pieces.Add((plainStart, text[plainStart..], null));
        return pieces;
    }

    private static bool WordBounded(string text, int start, int length, AddedToken token)
    {
        if (!token.SingleWord) return true;
        static bool IsWord(char c) => char.IsLetterOrDigit(c) || c == '_';
        return (start == 0 || !IsWord(text[start - 1])) && (start + length == text.Length || !IsWord(text[start + length]));
    }
}
