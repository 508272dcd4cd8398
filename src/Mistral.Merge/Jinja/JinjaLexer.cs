using System.Text;
using System.Text.RegularExpressions;

namespace Mistral.Merge.Jinja;

internal enum TokenType
{
    Text, NumericLiteral, StringLiteral, Identifier, Equals, OpenParen, CloseParen, OpenStatement, CloseStatement,
    OpenExpression, CloseExpression, OpenSquareBracket, CloseSquareBracket, OpenCurlyBracket, CloseCurlyBracket, Comma,
    Dot, Colon, Pipe, CallOperator, AdditiveBinaryOperator, MultiplicativeBinaryOperator, ExponentiationBinaryOperator,
    ComparisonBinaryOperator, UnaryOperator, Comment,
}

/// <summary>A token and the offset of its first character in the original template text.</summary>
internal sealed class Token(string value, TokenType type, int offset)
{
    public string Value { get; set; } = value;
    public TokenType Type { get; } = type;
    public int Offset { get; } = offset;
}

/// <summary>
/// @huggingface/jinja's lexer, with its preprocessing as its Template applies it (lstrip_blocks and trim_blocks on, the
/// one trailing newline dropped, <c>{% generation %}</c> tags removed). Every character of the preprocessed text keeps
/// the offset it had in the original, so errors can name the original line:column.
/// </summary>
internal static partial class JinjaLexer
{
    private static readonly (string Seq, TokenType Type)[] Table =
    [
        ("{%", TokenType.OpenStatement), ("%}", TokenType.CloseStatement), ("{{", TokenType.OpenExpression), ("}}", TokenType.CloseExpression),
        ("(", TokenType.OpenParen), (")", TokenType.CloseParen), ("{", TokenType.OpenCurlyBracket), ("}", TokenType.CloseCurlyBracket),
        ("[", TokenType.OpenSquareBracket), ("]", TokenType.CloseSquareBracket), (",", TokenType.Comma), (".", TokenType.Dot),
        (":", TokenType.Colon), ("|", TokenType.Pipe),
        ("<=", TokenType.ComparisonBinaryOperator), (">=", TokenType.ComparisonBinaryOperator), ("==", TokenType.ComparisonBinaryOperator),
        ("!=", TokenType.ComparisonBinaryOperator), ("<", TokenType.ComparisonBinaryOperator), (">", TokenType.ComparisonBinaryOperator),
        ("+", TokenType.AdditiveBinaryOperator), ("-", TokenType.AdditiveBinaryOperator), ("~", TokenType.AdditiveBinaryOperator),
        ("**", TokenType.ExponentiationBinaryOperator), ("*", TokenType.MultiplicativeBinaryOperator), ("//", TokenType.MultiplicativeBinaryOperator),
        ("/", TokenType.MultiplicativeBinaryOperator), ("%", TokenType.MultiplicativeBinaryOperator), ("=", TokenType.Equals),
    ];

    // JavaScript's \s, spelled out (.NET's \s differs on U+0085 and U+FEFF).
    private const string Ws = @"[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]";

    [GeneratedRegex(@"(" + Ws + @"*)\{%(-?)" + Ws + @"*(?:end)?generation" + Ws + @"*(-?)%\}(" + Ws + "*)", RegexOptions.CultureInvariant)]
    private static partial Regex GenerationTag();

    /// <summary>The preprocessed text and, for each of its characters, its offset in <paramref name="template"/>.</summary>
    public static (string Text, int[] Offsets) Preprocess(string template)
    {
        var chars = new List<(char C, int At)>(template.Length);
        int end = template.EndsWith('\n') ? template.Length - 1 : template.Length;
        // lstrip_blocks: /^[ \t]*({[#%-])/gm → "$1"
        for (int i = 0; i < end; i++)
        {
            if (i == 0 || JsRules.IsLineTerminator(template[i - 1]))
            {
                int j = i;
                while (j < end && (template[j] == ' ' || template[j] == '\t')) j++;
                if (j > i && j + 1 < end && template[j] == '{' && template[j + 1] is '#' or '%' or '-')
                {
                    i = j - 1;
                    continue;
                }
            }
            chars.Add((template[i], i));
        }
        // trim_blocks: /([#%-]})\n/g → "$1"
        var trimmed = new List<(char C, int At)>(chars.Count);
        for (int k = 0; k < chars.Count; k++)
        {
            trimmed.Add(chars[k]);
            if (chars[k].C is '#' or '%' or '-' && k + 2 < chars.Count && chars[k + 1].C == '}' && chars[k + 2].C == '\n')
            {
                trimmed.Add(chars[k + 1]);
                k += 2;
            }
        }
        string text = new([.. trimmed.Select(c => c.C)]);
        var offsets = trimmed.Select(c => c.At).ToList();
        // {% generation %} / {% endgeneration %} (transformers' assistant-mask markers) are removed, their whitespace kept unless "-".
        var matches = GenerationTag().Matches(text);
        if (matches.Count > 0)
        {
            var b = new StringBuilder(text.Length);
            var o = new List<int>(offsets.Count);
            int at = 0;
            foreach (Match m in matches)
            {
                Append(at, m.Index);
                var before = m.Groups[1];
                var after = m.Groups[4];
                if (m.Groups[2].Length == 0) Append(before.Index, before.Index + before.Length);
                if (m.Groups[3].Length == 0) Append(after.Index, after.Index + after.Length);
                at = m.Index + m.Length;
            }
            Append(at, text.Length);
            text = b.ToString();
            offsets = o;

            void Append(int from, int to)
            {
                b.Append(text, from, to - from);
                for (int i = from; i < to; i++) o.Add(offsets[i]);
            }
        }
        offsets.Add(template.Length);     // end of input
        return (text, [.. offsets]);
    }

    public static List<Token> Tokenize(string template)
    {
        var (src, at) = Preprocess(template);
        var tokens = new List<Token>();
        int cursor = 0;
        int curlyDepth = 0;

        Token? Last() => tokens.Count > 0 ? tokens[^1] : null;
        bool Starts(string s) => string.CompareOrdinal(src, cursor, s, 0, s.Length) == 0 && cursor + s.Length <= src.Length;
        char At(int i) => i < src.Length ? src[i] : '\0';

        string ConsumeWhile(Func<char, bool> predicate)
        {
            var str = new StringBuilder();
            while (cursor < src.Length && predicate(src[cursor]))
            {
                if (src[cursor] == '\\')
                {
                    ++cursor;
                    if (cursor >= src.Length) throw new JinjaError("Unexpected end of input", at[cursor]);
                    char escaped = src[cursor++];
                    if (escaped is 'x' or 'u')
                    {
                        int length = escaped == 'x' ? 2 : 4;
                        string hex = src.Substring(cursor, Math.Min(length, src.Length - cursor));
                        if (hex.Length != length || !hex.All(Uri.IsHexDigit))
                            throw new JinjaError($"Invalid hexadecimal escape sequence: \\{escaped}{hex}", at[cursor - 2]);
                        str.Append((char)Convert.ToInt32(hex, 16));
                        cursor += length;
                        continue;
                    }
                    char? unescaped = escaped switch
                    {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\b',
                        'f' => '\f',
                        'v' => '\v',
                        '\'' => '\'',
                        '"' => '"',
                        '\\' => '\\',
                        _ => null,
                    };
                    if (unescaped == null) throw new JinjaError($"Unexpected escaped character: {escaped}", at[cursor - 2]);
                    str.Append(unescaped.Value);
                    continue;
                }
                str.Append(src[cursor++]);
                if (cursor >= src.Length) throw new JinjaError("Unexpected end of input", at[cursor]);
            }
            return str.ToString();
        }

        void StripTrailingWhitespace()
        {
            if (Last() is { Type: TokenType.Text } last)
            {
                last.Value = JsRules.TrimEnd(last.Value);
                if (last.Value.Length == 0) tokens.RemoveAt(tokens.Count - 1);
            }
        }

        void SkipLeadingWhitespace()
        {
            while (cursor < src.Length && JsRules.IsWhitespace(src[cursor])) ++cursor;
        }

        while (cursor < src.Length)
        {
            var lastType = Last()?.Type;
            if (lastType is null or TokenType.CloseStatement or TokenType.CloseExpression or TokenType.Comment)
            {
                int start = cursor;
                while (cursor < src.Length && !(src[cursor] == '{' && At(cursor + 1) is '%' or '{' or '#')) cursor++;
                if (cursor > start)
                {
                    tokens.Add(new Token(src[start..cursor], TokenType.Text, at[start]));
                    continue;
                }
            }
            if (src[cursor] == '{' && At(cursor + 1) == '#')
            {
                int open = cursor;
                cursor += 2;
                bool stripBefore = At(cursor) == '-';
                if (stripBefore) ++cursor;
                var comment = new StringBuilder();
                while (At(cursor) != '#' || At(cursor + 1) != '}')
                {
                    if (cursor + 2 >= src.Length) throw new JinjaError("Missing end of comment tag", at[open]);
                    comment.Append(src[cursor++]);
                }
                string text = comment.ToString();
                bool stripAfter = text.EndsWith('-');
                if (stripAfter) text = text[..^1];
                if (stripBefore) StripTrailingWhitespace();
                tokens.Add(new Token(text, TokenType.Comment, at[open]));
                cursor += 2;
                if (stripAfter) SkipLeadingWhitespace();
                continue;
            }
            if (Starts("{%-"))
            {
                StripTrailingWhitespace();
                tokens.Add(new Token("{%", TokenType.OpenStatement, at[cursor]));
                cursor += 3;
                continue;
            }
            if (Starts("{{-"))
            {
                StripTrailingWhitespace();
                tokens.Add(new Token("{{", TokenType.OpenExpression, at[cursor]));
                curlyDepth = 0;
                cursor += 3;
                continue;
            }
            ConsumeWhile(JsRules.IsWhitespace);
            if (Starts("-%}"))
            {
                tokens.Add(new Token("%}", TokenType.CloseStatement, at[cursor]));
                cursor += 3;
                SkipLeadingWhitespace();
                continue;
            }
            if (Starts("-}}"))
            {
                tokens.Add(new Token("}}", TokenType.CloseExpression, at[cursor]));
                cursor += 3;
                SkipLeadingWhitespace();
                continue;
            }
            if (cursor >= src.Length) break;
            char c = src[cursor];
            if (c is '-' or '+')
            {
                var t = Last()?.Type;
                if (t is null or TokenType.Text) throw new JinjaError($"Unexpected character: {c}", at[cursor]);
                if (t is not (TokenType.Identifier or TokenType.NumericLiteral or TokenType.StringLiteral or TokenType.CloseParen or TokenType.CloseSquareBracket))
                {
                    int start = cursor++;
                    string num = ConsumeWhile(JsRules.IsDigit);
                    if (num.Length > 0 && At(cursor) == '.' && JsRules.IsDigit(At(cursor + 1)))
                    {
                        ++cursor;
                        num = $"{num}.{ConsumeWhile(JsRules.IsDigit)}";
                    }
                    tokens.Add(new Token(c + num, num.Length > 0 ? TokenType.NumericLiteral : TokenType.UnaryOperator, at[start]));
                    continue;
                }
            }
            bool matched = false;
            foreach (var (seq, type) in Table)
            {
                if (seq == "}}" && curlyDepth > 0) continue;
                if (!Starts(seq)) continue;
                tokens.Add(new Token(seq, type, at[cursor]));
                if (type == TokenType.OpenExpression) curlyDepth = 0;
                else if (type == TokenType.OpenCurlyBracket) ++curlyDepth;
                else if (type == TokenType.CloseCurlyBracket) --curlyDepth;
                cursor += seq.Length;
                matched = true;
                break;
            }
            if (matched) continue;
            if (c is '\'' or '"')
            {
                int start = cursor++;
                string str = ConsumeWhile(x => x != c);
                tokens.Add(new Token(str, TokenType.StringLiteral, at[start]));
                ++cursor;
                continue;
            }
            if (JsRules.IsDigit(c))
            {
                int start = cursor;
                string num = ConsumeWhile(JsRules.IsDigit);
                if (Last()?.Type != TokenType.Dot && At(cursor) == '.' && JsRules.IsDigit(At(cursor + 1)))
                {
                    ++cursor;
                    num = $"{num}.{ConsumeWhile(JsRules.IsDigit)}";
                }
                tokens.Add(new Token(num, TokenType.NumericLiteral, at[start]));
                continue;
            }
            if (JsRules.IsWord(c))
            {
                int start = cursor;
                tokens.Add(new Token(ConsumeWhile(JsRules.IsWord), TokenType.Identifier, at[start]));
                continue;
            }
            throw new JinjaError($"Unexpected character: {c}", at[cursor]);
        }
        return tokens;
    }
}
