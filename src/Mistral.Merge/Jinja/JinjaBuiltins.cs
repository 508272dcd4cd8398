using System.Text;

namespace Mistral.Merge.Jinja;

/// <summary>The methods and properties a value offers to <c>value.name</c> (@huggingface/jinja's builtins), the tests
/// of <c>is</c>, the ordering of sort/dictsort, and the two equalities the reference inherits from JavaScript.</summary>
internal static class JinjaBuiltins
{
    public static JinjaValue? Member(JinjaValue target, string name) => target switch
    {
        JinjaString s => StringMember(s.Value, name),
        JinjaArray a => name == "length" ? JinjaNumber.Int(a.Items.Count) : null,
        JinjaObject { IsObject: true } o => ObjectMember(o, name),
        _ => null,
    };

    private static JinjaFunction Fn(Func<List<JinjaValue>, JinjaValue> f) => new((args, _) => f(args));

    private static JinjaValue? StringMember(string s, string name) => name switch
    {
        "upper" => Fn(_ => new JinjaString(JsRules.Upper(s))),
        "lower" => Fn(_ => new JinjaString(JsRules.Lower(s))),
        "strip" => Fn(_ => new JinjaString(JsRules.Trim(s))),
        "title" => Fn(_ => new JinjaString(TitleCase(s))),
        "capitalize" => Fn(_ => new JinjaString(s.Length == 0 ? s : JsRules.Upper(s[..1]) + s[1..])),
        "length" => JinjaNumber.Int(s.Length),
        "rstrip" => Fn(_ => new JinjaString(JsRules.TrimEnd(s))),
        "lstrip" => Fn(_ => new JinjaString(JsRules.TrimStart(s))),
        "startswith" => Fn(args => JinjaBool.Of(Affix(s, args, "startswith", s.StartsWith))),
        "endswith" => Fn(args => JinjaBool.Of(Affix(s, args, "endswith", s.EndsWith))),
        "split" => Fn(args => Split(s, args)),
        "replace" => Fn(args => Replace(s, args)),
        _ => null,
    };

    /// <summary>JavaScript's /\b\w/g → upper case: the first word character after a non-word one.</summary>
    public static string TitleCase(string s)
    {
        var b = new StringBuilder(s);
        for (int i = 0; i < b.Length; i++)
            if (JsRules.IsWord(b[i]) && (i == 0 || !JsRules.IsWord(b[i - 1]))) b[i] = char.ToUpperInvariant(b[i]);
        return b.ToString();
    }

    private static bool Affix(string s, List<JinjaValue> args, string name, Func<string, StringComparison, bool> test)
    {
        if (args.Count == 0) throw new JinjaError($"{name}() requires at least one argument");
        switch (args[0])
        {
            case JinjaString p: return test(p.Value, StringComparison.Ordinal);
            case JinjaArray a:
                foreach (var item in a.Items)
                {
                    if (item is not JinjaString p) throw new JinjaError($"{name}() tuple elements must be strings");
                    if (test(p.Value, StringComparison.Ordinal)) return true;
                }
                return false;
            default: throw new JinjaError($"{name}() argument must be a string or tuple of strings");
        }
    }

    /// <summary>Python's str.split(sep=None, maxsplit=-1), as the reference implements it.</summary>
    private static JinjaArray Split(string s, List<JinjaValue> args)
    {
        var sep = args.Count > 0 ? args[0] : JinjaNull.Instance;
        if (sep is not (JinjaString or JinjaNull)) throw new JinjaError("sep argument must be a string or null");
        var maxArg = args.Count > 1 ? args[1] : JinjaNumber.Int(-1);
        if (maxArg is not JinjaNumber { IsFloat: false } max) throw new JinjaError("maxsplit argument must be a number");
        var result = new List<string>();
        if (sep is JinjaNull)
        {
            string text = JsRules.TrimStart(s);
            int i = 0;
            while (i < text.Length)
            {
                while (i < text.Length && JsRules.IsWhitespace(text[i])) i++;
                if (i >= text.Length) break;
                int start = i;
                while (i < text.Length && !JsRules.IsWhitespace(text[i])) i++;
                if (max.Value != -1 && result.Count >= max.Value) { result.Add(text[start..]); break; }
                result.Add(text[start..i]);
            }
        }
        else
        {
            string sv = ((JinjaString)sep).Value;
            if (sv.Length == 0) throw new JinjaError("empty separator");
            result = [.. s.Split(sv)];
            if (max.Value != -1 && result.Count > max.Value)
            {
                int keep = Math.Max(0, (int)Math.Min(max.Value, result.Count));
                string rest = string.Join(sv, result.Skip(keep));
                result = [.. result.Take(keep), rest];
            }
        }
        return new JinjaArray([.. result.Select(p => (JinjaValue)new JinjaString(p))]);
    }

    public static JinjaString Replace(string s, List<JinjaValue> args)
    {
        if (args.Count < 2) throw new JinjaError("replace() requires at least two arguments");
        if (args[0] is not JinjaString oldValue || args[1] is not JinjaString newValue) throw new JinjaError("replace() arguments must be strings");
        JinjaValue count = args.Count > 2
            ? args[2] is JinjaObject { Kind: JinjaObjectKind.KeywordArguments } kw ? kw.Map.GetValueOrDefault("count") ?? JinjaNull.Instance : args[2]
            : JinjaNull.Instance;
        if (count is not (JinjaNumber { IsFloat: false } or JinjaNull)) throw new JinjaError("replace() count argument must be a number or null");
        double n = count is JinjaNumber c ? c.Value : -1;
        if (n == 0) return new JinjaString(s);
        double remaining = n < 0 ? double.PositiveInfinity : n;
        var b = new StringBuilder();
        if (oldValue.Value.Length == 0)
        {
            // /(?=)/gu: an empty match before every code point and at the end.
            foreach (string cp in JsRules.CodePoints(s))
            {
                if (remaining > 0) { b.Append(newValue.Value); remaining--; }
                b.Append(cp);
            }
            if (remaining > 0) b.Append(newValue.Value);
            return new JinjaString(b.ToString());
        }
        int at = 0;
        while (remaining > 0)
        {
            int i = s.IndexOf(oldValue.Value, at, StringComparison.Ordinal);
            if (i < 0) break;
            b.Append(s, at, i - at).Append(newValue.Value);
            at = i + oldValue.Value.Length;
            remaining--;
        }
        return new JinjaString(b.Append(s, at, s.Length - at).ToString());
    }

    private static JinjaFunction? ObjectMember(JinjaObject o, string name) => name switch
    {
        "get" => Fn(args =>
        {
            var key = args.Count > 0 ? args[0] : JinjaUndefined.Instance;
            if (key is not JinjaString k) throw new JinjaError($"Object key must be a string: got {key.TypeName}");
            return o.Map.GetValueOrDefault(k.Value) ?? (args.Count > 1 ? args[1] : JinjaNull.Instance);
        }),
        "items" => Fn(_ => Items(o)),
        "keys" => Fn(_ => Keys(o)),
        "values" => Fn(_ => new JinjaArray([.. o.Map.Values])),
        "dictsort" => Fn(args => DictSort(o, args)),
        _ => null,
    };

    public static JinjaArray Items(JinjaObject o) =>
        new([.. o.Map.Select(p => (JinjaValue)new JinjaArray([new JinjaString(p.Key), p.Value]))]);

    public static JinjaArray Keys(JinjaObject o) => new([.. o.Map.Keys.Select(k => (JinjaValue)new JinjaString(k))]);

    private static JinjaArray DictSort(JinjaObject o, List<JinjaValue> args)
    {
        var kwargs = new OrderedDictionary<string, JinjaValue>();
        var positional = new List<JinjaValue>();
        foreach (var a in args)
            if (a is JinjaObject { Kind: JinjaObjectKind.KeywordArguments } kw) kwargs = kw.Map; else positional.Add(a);
        var caseSensitive = Arg(positional, 0, kwargs, "case_sensitive") ?? JinjaBool.False;
        if (caseSensitive is not JinjaBool cs) throw new JinjaError("case_sensitive must be a boolean");
        var by = Arg(positional, 1, kwargs, "by") ?? new JinjaString("key");
        if (by is not JinjaString bys) throw new JinjaError("by must be a string");
        if (bys.Value is not ("key" or "value")) throw new JinjaError("by must be either 'key' or 'value'");
        var reverse = Arg(positional, 2, kwargs, "reverse") ?? JinjaBool.False;
        if (reverse is not JinjaBool rev) throw new JinjaError("reverse must be a boolean");
        int index = bys.Value == "key" ? 0 : 1;
        var items = Items(o).Items;
        return new JinjaArray(StableSort(items, (a, b) =>
        {
            int r = Compare(((JinjaArray)a).Items[index], ((JinjaArray)b).Items[index], cs.Value);
            return rev.Value ? -r : r;
        }));
    }

    public static JinjaValue? Arg(List<JinjaValue> positional, int i, IDictionary<string, JinjaValue> kwargs, string name) =>
        i < positional.Count ? positional[i] : kwargs.TryGetValue(name, out var v) ? v : null;

    /// <summary>Array.prototype.sort: stable (a merge sort), with a comparator that may throw.</summary>
    public static List<JinjaValue> StableSort(List<JinjaValue> items, Comparison<JinjaValue> compare)
    {
        var a = items.ToArray();
        var buffer = new JinjaValue[a.Length];
        for (int width = 1; width < a.Length; width *= 2)
        {
            for (int lo = 0; lo < a.Length; lo += 2 * width)
            {
                int mid = Math.Min(lo + width, a.Length), hi = Math.Min(lo + 2 * width, a.Length), i = lo, j = mid, k = lo;
                while (i < mid && j < hi) buffer[k++] = compare(a[j], a[i]) < 0 ? a[j++] : a[i++];
                while (i < mid) buffer[k++] = a[i++];
                while (j < hi) buffer[k++] = a[j++];
            }
            (a, buffer) = (buffer, a);
        }
        return [.. a];
    }

    /// <summary>compareRuntimeValues: numbers (and booleans) by value, strings by UTF-16 code unit (lower-cased unless case-sensitive).</summary>
    public static int Compare(JinjaValue a, JinjaValue b, bool caseSensitive)
    {
        if (a is JinjaNull && b is JinjaNull) return 0;
        if (a is JinjaNull || b is JinjaNull) throw new JinjaError($"Cannot compare {a.TypeName} with {b.TypeName}");
        if (a is JinjaUndefined && b is JinjaUndefined) return 0;
        if (a is JinjaUndefined || b is JinjaUndefined) throw new JinjaError($"Cannot compare {a.TypeName} with {b.TypeName}");
        if (NumericLike(a) is { } x && NumericLike(b) is { } y) return x < y ? -1 : x > y ? 1 : 0;
        if (a.TypeName != b.TypeName) throw new JinjaError($"Cannot compare different types: {a.TypeName} and {b.TypeName}");
        if (a is JinjaString sa && b is JinjaString sb)
        {
            string p = caseSensitive ? sa.Value : JsRules.Lower(sa.Value), q = caseSensitive ? sb.Value : JsRules.Lower(sb.Value);
            int r = string.CompareOrdinal(p, q);
            return r < 0 ? -1 : r > 0 ? 1 : 0;
        }
        throw new JinjaError($"Cannot compare type: {a.TypeName}");
    }

    public static double? NumericLike(JinjaValue v) => v switch
    {
        JinjaNumber n => n.Value,
        JinjaBool b => b.Value ? 1 : 0,
        _ => null,
    };

    /// <summary>JavaScript's <c>a.value == b.value</c> (what <c>==</c> and <c>!=</c> compare): loose equality.</summary>
    public static bool LooseEquals(JinjaValue a, JinjaValue b)
    {
        bool au = a is JinjaNull or JinjaUndefined, bu = b is JinjaNull or JinjaUndefined;
        if (au || bu) return au && bu;
        object x = Primitive(a), y = Primitive(b);
        if (x is string or double or bool && y is string or double or bool)
        {
            if (x is string xs && y is string ys) return xs == ys;
            if (x is bool xb && y is bool yb) return xb == yb;
            return ToNumber(x) == ToNumber(y);
        }
        if (x is string or double or bool) return LooseEquals(b, a);
        if (y is string or double or bool) return LooseEquals(new JinjaString(x is JinjaFunction ? "function" : a.JsString), b);
        return ReferenceEquals(x, y);
    }

    /// <summary>JavaScript's <c>a.value === b.value</c> (<c>in</c> a list, unique, equalto).</summary>
    public static bool StrictEquals(JinjaValue a, JinjaValue b)
    {
        bool au = a is JinjaNull or JinjaUndefined, bu = b is JinjaNull or JinjaUndefined;
        if (au || bu) return au && bu;
        object x = Primitive(a), y = Primitive(b);
        return (x, y) switch
        {
            (string p, string q) => p == q,
            (double p, double q) => p == q,
            (bool p, bool q) => p == q,
            _ => ReferenceEquals(x, y),
        };
    }

    /// <summary>The JavaScript value behind a runtime value: a primitive, or the shared array/map/function.</summary>
    private static object Primitive(JinjaValue v) => v switch
    {
        JinjaString s => s.Value,
        JinjaNumber n => n.Value,
        JinjaBool b => b.Value,
        JinjaArray a => a.Items,
        JinjaObject o => o.Map,
        _ => v,
    };

    private static double ToNumber(object x) => x switch
    {
        double d => d,
        bool b => b ? 1 : 0,
        string s => JsRules.ToNumber(s),
        _ => double.NaN,
    };

    /// <summary>The tests of <c>x is name</c>, each with the reference's rule.</summary>
    public static bool? Test(string name, JinjaValue operand, JinjaValue? other = null) => name switch
    {
        "boolean" => operand is JinjaBool,
        "callable" => operand is JinjaFunction,
        "odd" => operand is JinjaNumber { IsFloat: false } n ? n.Value % 2 != 0 : throw new JinjaError($"cannot odd on {operand.TypeName}"),
        "even" => operand is JinjaNumber { IsFloat: false } m ? m.Value % 2 == 0 : throw new JinjaError($"cannot even on {operand.TypeName}"),
        "false" => operand is JinjaBool { Value: false },
        "true" => operand is JinjaBool { Value: true },
        "none" => operand is JinjaNull,
        "string" => operand is JinjaString,
        "number" => operand is JinjaNumber,
        "integer" => operand is JinjaNumber { IsFloat: false },
        "iterable" => operand is JinjaArray { IsTuple: false } or JinjaString,
        "mapping" => operand is JinjaObject { IsObject: true },
        "sequence" => operand is JinjaArray or JinjaObject { IsObject: true } or JinjaString,
        "lower" => operand is JinjaString ls && ls.Value == JsRules.Lower(ls.Value),
        "upper" => operand is JinjaString us && us.Value == JsRules.Upper(us.Value),
        "defined" => operand is not JinjaUndefined,
        "undefined" => operand is JinjaUndefined,
        "equalto" or "eq" => StrictEquals(operand, other ?? JinjaUndefined.Instance),
        _ => null,
    };
}
