using System.Globalization;
using System.Text.RegularExpressions;

namespace Mistral.Merge.Inference.Tokenization.HfJson;

/// <summary>
/// Runs a .NET regex with the code-point semantics of the Rust/Oniguruma regexes that tokenizer.json patterns
/// are written for. .NET matches UTF-16 units, so a character outside the BMP (a surrogate pair) would be
/// category Cs and never \p{L}/\p{N}; before matching, each such pair is replaced by one BMP stand-in of the
/// same Unicode general category, and the match positions are mapped back. Patterns that name categories or
/// ASCII characters (all of GPT-2's, Llama 3's, Qwen2's) therefore match exactly as on code points.
/// </summary>
internal sealed class CodePointRegex(string pattern)
{
    private readonly Regex _regex = Create(pattern);

    public string Pattern => pattern;

    private static Regex Create(string pattern)
    {
        try { return new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled, TimeSpan.FromSeconds(10)); }
        catch (ArgumentException e) { throw new FormatException($"invalid regex '{pattern}' ({e.Message.Split('\n')[0]})"); }
    }

    /// <summary>The non-empty matches of the pattern in <paramref name="text"/>, as (start, length) in UTF-16 units of <paramref name="text"/>.</summary>
    public List<(int Start, int Length)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (text.Length == 0) return result;
        int firstSurrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (firstSurrogate < 0)
        {
            foreach (var m in _regex.EnumerateMatches(text)) if (m.Length > 0) result.Add((m.Index, m.Length));
            return result;
        }
        // original index of each stand-in position (plus one past the end)
        var chars = new char[text.Length];
        var origin = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            origin[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                chars[n++] = StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1])));
                i++;
            }
            else chars[n++] = text[i];
        }
        origin[n] = text.Length;
        var folded = new string(chars, 0, n);
        foreach (var m in _regex.EnumerateMatches(folded))
            if (m.Length > 0) result.Add((origin[m.Index], origin[m.Index + m.Length] - origin[m.Index]));
        return result;
    }

    /// <summary>A BMP character of the category that no ASCII letter case-folds to.</summary>
    private static char StandIn(UnicodeCategory c) => c switch
    {
        UnicodeCategory.UppercaseLetter => '\u10A0',
        UnicodeCategory.LowercaseLetter => '\u0251',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u05D0',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\u0660',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.ConnectorPunctuation => '\u203F',
        UnicodeCategory.DashPunctuation => '\u2010',
        UnicodeCategory.OpenPunctuation => '\u2045',
        UnicodeCategory.ClosePunctuation => '\u2046',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '\u00A7',
        UnicodeCategory.MathSymbol => '\u00D7',
        UnicodeCategory.CurrencySymbol => '\u00A2',
        UnicodeCategory.ModifierSymbol => '\u02C2',
        UnicodeCategory.OtherSymbol => '\u00A6',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\u0378', // unassigned
    };
}
