using System.Text.Json.Nodes;

namespace Mistral.Merge.Jinja;

/// <summary>
/// A runtime value, with @huggingface/jinja's types (its type names appear in error messages). Numbers are doubles,
/// as in JavaScript; integer and float differ only in how they render and combine.
/// </summary>
public abstract class JinjaValue
{
    public abstract string TypeName { get; }
    public virtual bool Truthy => true;

    /// <summary>The text the value renders as in <c>{{ }}</c> (RuntimeValue.toString()).</summary>
    public abstract override string ToString();

    /// <summary>JavaScript's String(value.value): what <c>~</c> and string <c>+</c> concatenate.</summary>
    public virtual string JsString => ToString();

    public static JinjaValue FromJson(JsonNode? node) => node switch
    {
        null => JinjaNull.Instance,
        JsonObject o => new JinjaObject(o.Select(p => new KeyValuePair<string, JinjaValue>(p.Key, FromJson(p.Value)))),
        JsonArray a => new JinjaArray([.. a.Select(FromJson)]),
        JsonValue v when v.TryGetValue<string>(out var s) => new JinjaString(s),
        JsonValue v when v.TryGetValue<bool>(out var b) => JinjaBool.Of(b),
        JsonValue v when v.TryGetValue<double>(out var d) => JinjaNumber.Of(d),
        JsonValue v when v.TryGetValue<long>(out var l) => JinjaNumber.Of(l),
        JsonValue v when v.TryGetValue<int>(out var i) => JinjaNumber.Of(i),
        JsonValue v when v.TryGetValue<float>(out var f) => JinjaNumber.Of(f),
        _ => JinjaNull.Instance,
    };
}

public sealed class JinjaUndefined : JinjaValue
{
    public static readonly JinjaUndefined Instance = new();
    public override string TypeName => "UndefinedValue";
    public override bool Truthy => false;
    public override string ToString() => "undefined";
}

public sealed class JinjaNull : JinjaValue
{
    public static readonly JinjaNull Instance = new();
    public override string TypeName => "NullValue";
    public override bool Truthy => false;
    // Its JavaScript value is undefined (the class is built without one), so String() gives "undefined".
    public override string ToString() => "undefined";
}

public sealed class JinjaBool(bool value) : JinjaValue
{
    public static readonly JinjaBool True = new(true), False = new(false);
    public static JinjaBool Of(bool b) => b ? True : False;
    public bool Value { get; } = value;
    public override string TypeName => "BooleanValue";
    public override bool Truthy => Value;
    public override string ToString() => Value ? "true" : "false";
}

/// <summary>IntegerValue or FloatValue.</summary>
public sealed class JinjaNumber(double value, bool isFloat) : JinjaValue
{
    public double Value { get; } = value;
    public bool IsFloat { get; } = isFloat;
    public static JinjaNumber Int(double v) => new(v, false);
    public static JinjaNumber Float(double v) => new(v, true);
    /// <summary>As convertToRuntimeValues: a whole number is an integer.</summary>
    public static JinjaNumber Of(double v) => new(v, !double.IsInteger(v));
    public override string TypeName => IsFloat ? "FloatValue" : "IntegerValue";
    public override bool Truthy => Value != 0 && !double.IsNaN(Value);
    public override string ToString()
    {
        if (!IsFloat) return JsRules.Number(Value);
        if (Value == 0 && double.IsNegative(Value)) return "-0.0";
        return double.IsInteger(Value) ? JsRules.FixedOne(Value) : JsRules.Number(Value);
    }
    public override string JsString => JsRules.Number(Value);
}

public sealed class JinjaString(string value) : JinjaValue
{
    public string Value { get; } = value;
    public override string TypeName => "StringValue";
    public override bool Truthy => Value.Length > 0;
    public override string ToString() => Value;
}

/// <summary>ArrayValue or TupleValue; <see cref="Items"/> is shared, as the JavaScript array is (== compares it by reference).</summary>
public sealed class JinjaArray(List<JinjaValue> items, bool isTuple = false) : JinjaValue
{
    public List<JinjaValue> Items { get; } = items;
    public bool IsTuple { get; } = isTuple;
    public override string TypeName => IsTuple ? "TupleValue" : "ArrayValue";
    public override bool Truthy => Items.Count > 0;
    public override string ToString() => JinjaJson.Write(this, new JinjaJson.Options(), 0, false);
    public override string JsString => string.Join(",", Items.Select(i => i.ToString()));
}

public enum JinjaObjectKind { Object, KeywordArguments, Namespace }

/// <summary>ObjectValue, KeywordArgumentsValue or NamespaceValue: an insertion-ordered map.</summary>
public sealed class JinjaObject : JinjaValue
{
    public OrderedDictionary<string, JinjaValue> Map { get; }
    public JinjaObjectKind Kind { get; }

    public JinjaObject(IEnumerable<KeyValuePair<string, JinjaValue>> entries, JinjaObjectKind kind = JinjaObjectKind.Object)
    {
        Map = new(StringComparer.Ordinal);
        foreach (var (k, v) in entries) Map[k] = v;
        Kind = kind;
    }

    /// <summary>ObjectValue and KeywordArgumentsValue (a namespace is not one: no builtins, not a mapping).</summary>
    public bool IsObject => Kind != JinjaObjectKind.Namespace;
    public override string TypeName => Kind switch
    {
        JinjaObjectKind.KeywordArguments => "KeywordArgumentsValue",
        JinjaObjectKind.Namespace => "NamespaceValue",
        _ => "ObjectValue",
    };
    public override bool Truthy => Kind == JinjaObjectKind.Namespace || Map.Count > 0;
    public override string ToString() => JinjaJson.Write(this, new JinjaJson.Options(), 0, false);
    public override string JsString => "[object Map]";
}

public delegate JinjaValue JinjaCallable(List<JinjaValue> args, JinjaEnvironment scope);

public sealed class JinjaFunction(JinjaCallable call) : JinjaValue
{
    public JinjaCallable Call { get; } = call;
    public override string TypeName => "FunctionValue";
    public override string ToString() => "[function]";
}
