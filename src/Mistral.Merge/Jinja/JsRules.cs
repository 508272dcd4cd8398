using System.Globalization;
using System.Text;

namespace Mistral.Merge.Jinja;

/// <summary>
/// The JavaScript primitives @huggingface/jinja inherits and whose results reach the rendered text: number to string
/// (Number.prototype.toString), JSON.stringify of a string, the <c>\s</c> whitespace set, trim, parseInt/parseFloat.
/// </summary>
internal static class JsRules
{
    /// <summary>JavaScript's <c>\s</c> (and String.prototype.trim's) whitespace: WhiteSpace and LineTerminator.</summary>
    public static bool IsWhitespace(char c) => c switch
    {
        '\t' or '\n' or '\v' or '\f' or '\r' or ' ' or '\u00a0' or '\u1680' or '\u2028' or '\u2029' or '\u202f' or '\u205f'
            or '\u3000' or '\ufeff' => true,
        _ => c >= '\u2000' && c <= '\u200a',
    };

    public static bool IsLineTerminator(char c) => c is '\n' or '\r' or '\u2028' or '\u2029';

    /// <summary>JavaScript's <c>\w</c>: ASCII letters, digits and underscore.</summary>
    public static bool IsWord(char c) => c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_';

    public static bool IsDigit(char c) => c is >= '0' and <= '9';

    public static string Trim(string s) => TrimEnd(TrimStart(s));

    public static string TrimStart(string s)
    {
        int i = 0;
        while (i < s.Length && IsWhitespace(s[i])) i++;
        return s[i..];
    }

    public static string TrimEnd(string s)
    {
        int n = s.Length;
        while (n > 0 && IsWhitespace(s[n - 1])) n--;
        return s[..n];
    }

    /// <summary>Number.prototype.toString(): the shortest round-trip digits, exponent form below 1e-6 and from 1e21.</summary>
    public static string Number(double x)
    {
        if (double.IsNaN(x)) return "NaN";
        if (x == 0) return "0";
        if (double.IsInfinity(x)) return x > 0 ? "Infinity" : "-Infinity";
        if (x < 0) return "-" + Number(-x);
        // .NET's "R" gives the shortest round-trip digits too, in its own layout: take them apart.
        string r = x.ToString("R", CultureInfo.InvariantCulture);
        int e = 0;
        int ei = r.IndexOfAny(['E', 'e']);
        if (ei >= 0) { e = int.Parse(r[(ei + 1)..], CultureInfo.InvariantCulture); r = r[..ei]; }
        int point = r.IndexOf('.');
        string digits = point < 0 ? r : r.Remove(point, 1);
        int n = (point < 0 ? r.Length : point) + e;      // value = 0.digits × 10^n
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') lead++;
        digits = digits[lead..];
        n -= lead;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) return "0";
        int k = digits.Length;
        if (k <= n && n <= 21) return digits + new string('0', n - k);
        if (0 < n && n <= 21) return digits[..n] + "." + digits[n..];
        if (-6 < n && n <= 0) return "0." + new string('0', -n) + digits;
        string exp = (n - 1 >= 0 ? "+" : "-") + Math.Abs(n - 1).ToString(CultureInfo.InvariantCulture);
        return k == 1 ? digits + "e" + exp : digits[0] + "." + digits[1..] + "e" + exp;
    }

    /// <summary>Number.prototype.toFixed(1) for a whole number (FloatValue's rendering of 1.0).</summary>
    public static string FixedOne(double x) => Math.Abs(x) >= 1e21 ? Number(x) : Number(x) + ".0";

    /// <summary>JSON.stringify of a string: quotes, backslash and control characters escaped, lone surrogates as \uXXXX.</summary>
    public static string JsonString(string s)
    {
        var b = new StringBuilder(s.Length + 2).Append('"');
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            switch (c)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\b': b.Append("\\b"); break;
                case '\f': b.Append("\\f"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                default:
                    if (c < 0x20) b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) b.Append(c).Append(s[++i]);
                    else if (char.IsSurrogate(c)) b.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else b.Append(c);
                    break;
            }
        }
        return b.Append('"').ToString();
    }

    /// <summary>parseInt(s, 10): leading whitespace, a sign, then the longest run of digits; NaN without one.</summary>
    public static double ParseInt(string s)
    {
        s = TrimStart(s);
        int i = 0;
        bool negative = false;
        if (i < s.Length && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
        int start = i;
        while (i < s.Length && IsDigit(s[i])) i++;
        if (i == start) return double.NaN;
        double v = double.Parse(s[start..i], CultureInfo.InvariantCulture);
        return negative ? -v : v;
    }

    /// <summary>parseFloat(s): the longest prefix that is a decimal literal (or Infinity); NaN without one.</summary>
    public static double ParseFloat(string s)
    {
        s = TrimStart(s);
        int i = 0;
        if (i < s.Length && (s[i] == '+' || s[i] == '-')) i++;
        if (string.CompareOrdinal(s, i, "Infinity", 0, 8) == 0) return s[0] == '-' ? double.NegativeInfinity : double.PositiveInfinity;
        int digits = 0;
        while (i < s.Length && IsDigit(s[i])) { i++; digits++; }
        if (i < s.Length && s[i] == '.')
        {
            int j = i + 1;
            while (j < s.Length && IsDigit(s[j])) { j++; digits++; }
            if (digits > 0) i = j;
        }
        if (digits == 0) return double.NaN;
        if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
        {
            int j = i + 1;
            if (j < s.Length && (s[j] == '+' || s[j] == '-')) j++;
            int expStart = j;
            while (j < s.Length && IsDigit(s[j])) j++;
            if (j > expStart) i = j;
        }
        return double.Parse(s[..i], NumberStyles.Float, CultureInfo.InvariantCulture);
    }

    /// <summary>ToNumber of a string, as loose equality uses it: trimmed, empty is 0, else a whole decimal literal or NaN.</summary>
    public static double ToNumber(string s)
    {
        s = Trim(s);
        if (s.Length == 0) return 0;
        if (s is "Infinity" or "+Infinity") return double.PositiveInfinity;
        if (s == "-Infinity") return double.NegativeInfinity;
        if (s.Length > 2 && s[0] == '0' && (s[1] is 'x' or 'X' or 'o' or 'O' or 'b' or 'B'))
        {
            int radix = s[1] is 'x' or 'X' ? 16 : s[1] is 'o' or 'O' ? 8 : 2;
            try { return Convert.ToInt64(s[2..], radix); } catch (FormatException) { return double.NaN; } catch (OverflowException) { return double.NaN; }
        }
        foreach (char c in s)
            if (!(IsDigit(c) || c is '.' or 'e' or 'E' or '+' or '-')) return double.NaN;
        return double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
    }

    /// <summary>String.prototype.toUpperCase/toLowerCase (invariant; JavaScript's few special casings, e.g. ß → SS, are not reproduced).</summary>
    public static string Upper(string s) => s.ToUpperInvariant();
    public static string Lower(string s) => s.ToLowerInvariant();

    /// <summary>The code points of a string, as Array.from(string) gives them (a surrogate pair is one element).</summary>
    public static List<string> CodePoints(string s)
    {
        var list = new List<string>(s.Length);
        for (int i = 0; i < s.Length; i++)
            list.Add(char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? s.Substring(i++, 2) : s[i].ToString());
        return list;
    }
}
