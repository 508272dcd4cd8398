using System.Text;

namespace Mistral.Merge.Merging;

/// <summary>
/// Puts values a user wrote (a recipe's name, model paths, parameter strings) into a model card (README.md)
/// as plain text: no Markdown or HTML markup and no line breaks can come from them, and the YAML front
/// matter stays valid YAML.
/// </summary>
public static class CardText
{
    /// <summary>Inline Markdown text: HTML's &lt; &gt; &amp; as entities, Markdown punctuation backslash-escaped, line breaks as spaces.</summary>
    public static string Inline(string value)
    {
        var sb = new StringBuilder(value.Length + 8);
        foreach (char c in OneLine(value))
        {
            switch (c)
            {
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '&': sb.Append("&amp;"); break;
                case '\\' or '`' or '*' or '_' or '[' or ']' or '(' or ')' or '#' or '!' or '|' or '~' or '{' or '}':
                    sb.Append('\\').Append(c);
                    break;
                default: sb.Append(c); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>
    /// An inline code span (nothing inside is markup, HTML included): delimited by one more backtick than the
    /// longest run inside, padded with spaces when the value starts or ends with a backtick (CommonMark 6.1).
    /// </summary>
    public static string Code(string value)
    {
        var text = OneLine(value);
        var fence = new string('`', LongestRun(text, '`') + 1);
        bool pad = text.StartsWith('`') || text.EndsWith('`');
        return pad ? $"{fence} {text} {fence}" : $"{fence}{text}{fence}";
    }

    /// <summary>A fenced code block fence for <paramref name="body"/>: at least three backticks, longer than any run inside.</summary>
    public static string Fence(string body) => new('`', Math.Max(3, LongestRun(body, '`') + 1));

    /// <summary>A YAML double-quoted scalar: every value is a string, and no character can end it or start a new key.</summary>
    public static string YamlString(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('"');
        foreach (char c in value)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case < ' ' or '\u007f' or '\u0085' or '\u2028' or '\u2029':
                    sb.Append($"\\u{(int)c:x4}");
                    break;
                default: sb.Append(c); break;
            }
        }
        return sb.Append('"').ToString();
    }

    // Line breaks (and other control characters) would end a heading or list item early.
    private static string OneLine(string value)
    {
        var sb = new StringBuilder(value.Length);
        foreach (char c in value) sb.Append(char.IsControl(c) || c is '\u2028' or '\u2029' ? ' ' : c);
        return sb.ToString();
    }

    private static int LongestRun(string s, char c)
    {
        int best = 0, run = 0;
        foreach (char x in s) best = Math.Max(best, run = x == c ? run + 1 : 0);
        return best;
    }
}
