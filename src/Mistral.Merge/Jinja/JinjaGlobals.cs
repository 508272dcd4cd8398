using System.Globalization;
using System.Text.RegularExpressions;

namespace Mistral.Merge.Jinja;

/// <summary>The globals every template sees: true/false/none (and their Python spellings), namespace, range,
/// raise_exception and strftime_now, as @huggingface/jinja defines them.</summary>
internal static partial class JinjaGlobals
{
    public static void Declare(JinjaEnvironment env, Func<DateTime> now)
    {
        env.Set("namespace", new JinjaFunction((args, _) => Namespace(args)));
        env.Declare("false", JinjaBool.False);
        env.Declare("true", JinjaBool.True);
        env.Declare("none", JinjaNull.Instance);
        // raise_exception(message): the message is the template's own words, the error it renders with.
        env.Declare("raise_exception", new JinjaFunction((args, _) =>
            throw new JinjaError(args.Count == 0 || args[0] is JinjaNull or JinjaUndefined ? "" : args[0].JsString)));
        env.Declare("range", new JinjaFunction((args, _) => Range(args)));
        env.Declare("strftime_now", new JinjaFunction((args, _) =>
            args.Count > 0 && args[0] is JinjaString f ? new JinjaString(Strftime(now(), f.Value)) : throw new JinjaError("strftime_now() needs a format string")));
        env.Declare("True", JinjaBool.True);
        env.Declare("False", JinjaBool.False);
        env.Declare("None", JinjaNull.Instance);
    }

    private static JinjaObject Namespace(List<JinjaValue> args)
    {
        var positional = args.ToList();
        JinjaObject? kwargs = null;
        if (positional.Count > 0 && positional[^1] is JinjaObject { Kind: JinjaObjectKind.KeywordArguments } k)
        {
            kwargs = k;
            positional.RemoveAt(positional.Count - 1);
        }
        if (positional.Count > 1) throw new JinjaError($"namespace expected at most 1 argument, got {positional.Count}");
        var entries = new JinjaObject([], JinjaObjectKind.Namespace);
        if (positional.Count == 1)
        {
            switch (positional[0])
            {
                case JinjaObject { IsObject: true } source:
                    foreach (var (key, value) in source.Map) entries.Map[key] = value;
                    break;
                case JinjaArray pairs:
                    foreach (var pair in pairs.Items)
                    {
                        List<JinjaValue>? values = pair switch
                        {
                            JinjaArray p => p.Items,
                            JinjaString s => [.. JsRules.CodePoints(s.Value).Select(c => (JinjaValue)new JinjaString(c))],
                            _ => null,
                        };
                        if (values is not { Count: 2 }) throw new JinjaError("namespace expected an object or an iterable of [key, value] pairs");
                        if (values[0] is not JinjaString key) throw new JinjaError("namespace keys must be strings");
                        entries.Map[key.Value] = values[1];
                    }
                    break;
                default:
                    throw new JinjaError($"'{positional[0].TypeName}' object is not iterable");
            }
        }
        if (kwargs != null) foreach (var (key, value) in kwargs.Map) entries.Map[key] = value;
        return entries;
    }

    /// <summary>range(stop) / range(start, stop[, step]) over JavaScript numbers.</summary>
    private static JinjaArray Range(List<JinjaValue> args)
    {
        double Num(int i) => args[i] is JinjaNumber n ? n.Value : args[i] is JinjaBool b ? (b.Value ? 1 : 0)
            : throw new JinjaError("range() arguments must be numbers");
        if (args.Count == 0) throw new JinjaError("range() expects at least 1 argument");
        double start = 0, stop, step = args.Count > 2 ? Num(2) : 1;
        if (args.Count == 1) stop = Num(0);
        else { start = Num(0); stop = Num(1); }
        if (step == 0) throw new JinjaError("range() step must not be zero");
        double count = Math.Ceiling((stop - start) / step);
        if (count > 1_000_000) throw new JinjaError($"range() of {count} numbers is too long"); // a chat template's loops are far shorter (see JinjaInterpreter.MaxWork)
        var result = new List<JinjaValue>();
        if (step > 0) for (double i = start; i < stop; i += step) result.Add(JinjaNumber.Of(i));
        else for (double i = start; i > stop; i += step) result.Add(JinjaNumber.Of(i));
        return new JinjaArray(result);
    }

    [GeneratedRegex("%[YmdbBHM%]")]
    private static partial Regex StrftimeToken();

    /// <summary>The reference's strftime: %Y %m %d %b %B %H %M %% (month names in English), anything else kept.</summary>
    public static string Strftime(DateTime date, string format) => StrftimeToken().Replace(format, m => m.Value switch
    {
        "%Y" => date.Year.ToString(CultureInfo.InvariantCulture),
        "%m" => date.Month.ToString("00", CultureInfo.InvariantCulture),
        "%d" => date.Day.ToString("00", CultureInfo.InvariantCulture),
        "%b" => CultureInfo.InvariantCulture.DateTimeFormat.GetAbbreviatedMonthName(date.Month),
        "%B" => CultureInfo.InvariantCulture.DateTimeFormat.GetMonthName(date.Month),
        "%H" => date.Hour.ToString("00", CultureInfo.InvariantCulture),
        "%M" => date.Minute.ToString("00", CultureInfo.InvariantCulture),
        _ => "%",
    });
}
