namespace Mistral.Merge.Jinja;

/// <summary>The filters of @huggingface/jinja, by operand type, with its argument rules and error messages.</summary>
internal static class JinjaFilters
{
    public static JinjaValue Apply(JinjaInterpreter it, JinjaValue operand, Node filterNode, JinjaEnvironment env) => filterNode switch
    {
        IdentifierNode id => Plain(operand, id.Name),
        CallNode { Callee: IdentifierNode callee } call => WithArguments(it, operand, callee.Name, call.Args, env),
        CallNode call => throw new JinjaError($"Unknown filter: {call.Callee.GetType().Name}"),
        _ => throw new JinjaError("Unknown filter"),
    };

    /// <summary>A filter without parentheses.</summary>
    private static JinjaValue Plain(JinjaValue operand, string name)
    {
        if (name == "safe") return operand;
        if (name == "tojson") return new JinjaString(JinjaJson.Write(operand, new JinjaJson.Options()));
        switch (operand)
        {
            case JinjaArray a:
                return name switch
                {
                    "list" => operand,
                    "first" => a.Items.Count > 0 ? a.Items[0] : JinjaUndefined.Instance,
                    "last" => a.Items.Count > 0 ? a.Items[^1] : JinjaUndefined.Instance,
                    "length" => JinjaNumber.Int(a.Items.Count),
                    "reverse" => new JinjaArray([.. Enumerable.Reverse(a.Items)]),
                    "sort" => new JinjaArray(JinjaBuiltins.StableSort(a.Items, (x, y) => JinjaBuiltins.Compare(x, y, false))),
                    "join" => new JinjaString(string.Concat(a.Items.Select(JoinPart))),
                    "string" => new JinjaString(JinjaJson.Write(operand, new JinjaJson.Options(), 0, false)),
                    "unique" => Unique(a),
                    _ => throw new JinjaError($"Unknown ArrayValue filter: {name}"),
                };
            case JinjaString s:
                return name switch
                {
                    "length" => JinjaNumber.Int(s.Value.Length),
                    "upper" => new JinjaString(JsRules.Upper(s.Value)),
                    "lower" => new JinjaString(JsRules.Lower(s.Value)),
                    "title" => new JinjaString(JinjaBuiltins.TitleCase(s.Value)),
                    "capitalize" => new JinjaString(s.Value.Length == 0 ? "" : JsRules.Upper(s.Value[..1]) + s.Value[1..]),
                    "trim" => new JinjaString(JsRules.Trim(s.Value)),
                    "indent" => new JinjaString(Indent(s.Value, 4, first: false, blank: false)),
                    "join" or "string" => operand,
                    "int" => JinjaNumber.Int(JsRules.ParseInt(s.Value) is var i && double.IsNaN(i) ? 0 : i),
                    "float" => JinjaNumber.Float(JsRules.ParseFloat(s.Value) is var f && double.IsNaN(f) ? 0 : f),
                    _ => throw new JinjaError($"Unknown StringValue filter: {name}"),
                };
            case JinjaNumber n:
                return name switch
                {
                    "abs" => new JinjaNumber(Math.Abs(n.Value), n.IsFloat),
                    "int" => JinjaNumber.Int(Math.Floor(n.Value)),
                    "float" => JinjaNumber.Float(n.Value),
                    "string" => new JinjaString(n.ToString()),
                    _ => throw new JinjaError($"Unknown NumericValue filter: {name}"),
                };
            case JinjaObject { IsObject: true } o:
                switch (name)
                {
                    case "items": return JinjaBuiltins.Items(o);
                    case "length": return JinjaNumber.Int(o.Map.Count);
                    default:
                        var builtin = JinjaBuiltins.Member(o, name) ?? throw new JinjaError($"Unknown ObjectValue filter: {name}");
                        return builtin is JinjaFunction fn ? fn.Call([], new JinjaEnvironment()) : builtin;
                }
            case JinjaBool b:
                return name switch
                {
                    "bool" => b,
                    "int" => JinjaNumber.Int(b.Value ? 1 : 0),
                    "float" => JinjaNumber.Float(b.Value ? 1 : 0),
                    "string" => new JinjaString(b.Value ? "true" : "false"),
                    _ => throw new JinjaError($"Unknown BooleanValue filter: {name}"),
                };
        }
        throw new JinjaError($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
    }

    /// <summary>What join concatenates of an item: JavaScript's String(item.value) ("" for null and undefined).</summary>
    private static string JoinPart(JinjaValue v) => v is JinjaNull or JinjaUndefined ? "" : v.JsString;

    private static JinjaArray Unique(JinjaArray a)
    {
        var output = new List<JinjaValue>();
        foreach (var item in a.Items)
            if (!output.Any(seen => JinjaBuiltins.StrictEquals(seen, item))) output.Add(item);
        return new JinjaArray(output);
    }

    private static string Indent(string s, int width, bool first, bool blank)
    {
        string pad = new(' ', Math.Max(0, width));
        return string.Join("\n", s.Split('\n').Select((x, i) => (!first && i == 0) || (!blank && x.Length == 0) ? x : pad + x));
    }

    /// <summary>A filter with parentheses.</summary>
    private static JinjaValue WithArguments(JinjaInterpreter it, JinjaValue operand, string name, List<Node> argNodes, JinjaEnvironment env)
    {
        switch (name)
        {
            case "tojson":
                {
                    var (_, kwargs) = it.EvaluateArguments(argNodes, env);
                    var indent = kwargs.GetValueOrDefault("indent") ?? JinjaNull.Instance;
                    if (indent is not (JinjaNumber { IsFloat: false } or JinjaNull)) throw new JinjaError("If set, indent must be a number");
                    var ensureAscii = kwargs.GetValueOrDefault("ensure_ascii") ?? JinjaBool.False;
                    if (ensureAscii is not JinjaBool ea) throw new JinjaError("If set, ensure_ascii must be a boolean");
                    var sortKeys = kwargs.GetValueOrDefault("sort_keys") ?? JinjaBool.False;
                    if (sortKeys is not JinjaBool sk) throw new JinjaError("If set, sort_keys must be a boolean");
                    var separatorsArg = kwargs.GetValueOrDefault("separators") ?? JinjaNull.Instance;
                    (string, string)? separators = null;
                    if (separatorsArg is JinjaArray sep)
                    {
                        if (sep.Items.Count != 2 || sep.Items[0] is not JinjaString item || sep.Items[1] is not JinjaString key)
                            throw new JinjaError("separators must be a tuple of two strings");
                        separators = (item.Value, key.Value);
                    }
                    else if (separatorsArg is not JinjaNull) throw new JinjaError("If set, separators must be a tuple of two strings");
                    int? width = indent is JinjaNumber w ? (int)w.Value : null;
                    return new JinjaString(JinjaJson.Write(operand, new JinjaJson.Options(width, ea.Value, separators, sk.Value)));
                }
            case "join":
                {
                    List<string> parts = operand switch
                    {
                        JinjaString s => JsRules.CodePoints(s.Value),
                        JinjaArray a => [.. a.Items.Select(JoinPart)],
                        _ => throw new JinjaError($"Cannot apply filter \"{name}\" to type: {operand.TypeName}"),
                    };
                    var (args, kwargs) = it.EvaluateArguments(argNodes, env);
                    var separator = JinjaBuiltins.Arg(args, 0, kwargs, "separator") ?? new JinjaString("");
                    if (separator is not JinjaString sep) throw new JinjaError("separator must be a string");
                    return new JinjaString(string.Join(sep.Value, parts));
                }
            case "int" or "float":
                {
                    var (args, kwargs) = it.EvaluateArguments(argNodes, env);
                    bool isInt = name == "int";
                    var defaultValue = JinjaBuiltins.Arg(args, 0, kwargs, "default") ?? (isInt ? JinjaNumber.Int(0) : JinjaNumber.Float(0));
                    switch (operand)
                    {
                        case JinjaString s:
                            double v = isInt ? JsRules.ParseInt(s.Value) : JsRules.ParseFloat(s.Value);
                            return double.IsNaN(v) ? defaultValue : new JinjaNumber(v, !isInt);
                        case JinjaNumber: return operand;
                        case JinjaBool b: return new JinjaNumber(b.Value ? 1 : 0, !isInt);
                        default: throw new JinjaError($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
                    }
                }
            case "default":
                {
                    var (args, kwargs) = it.EvaluateArguments(argNodes, env);
                    var defaultValue = args.Count > 0 ? args[0] : new JinjaString("");
                    var boolean = args.Count > 1 ? args[1] : kwargs.GetValueOrDefault("boolean") ?? JinjaBool.False;
                    if (boolean is not JinjaBool flag) throw new JinjaError("`default` filter flag must be a boolean");
                    return operand is JinjaUndefined || (flag.Value && !operand.Truthy) ? defaultValue : operand;
                }
        }
        switch (operand)
        {
            case JinjaArray a:
                return ArrayFilter(it, a, name, argNodes, env);
            case JinjaString s when name == "indent":
                {
                    var (args, kwargs) = it.EvaluateArguments(argNodes, env);
                    var width = JinjaBuiltins.Arg(args, 0, kwargs, "width") ?? JinjaNumber.Int(4);
                    if (width is not JinjaNumber { IsFloat: false } w) throw new JinjaError("width must be a number");
                    var first = JinjaBuiltins.Arg(args, 1, kwargs, "first") ?? JinjaBool.False;
                    var blank = JinjaBuiltins.Arg(args, 2, kwargs, "blank") ?? JinjaBool.False;
                    return new JinjaString(Indent(s.Value, (int)w.Value, first.Truthy, blank.Truthy));
                }
            case JinjaString s when name == "replace":
                {
                    var (args, kwargs) = it.EvaluateArguments(argNodes, env);
                    return JinjaBuiltins.Replace(s.Value, [.. args, new JinjaObject(kwargs, JinjaObjectKind.KeywordArguments)]);
                }
            case JinjaString:
                throw new JinjaError($"Unknown StringValue filter: {name}");
            case JinjaObject { IsObject: true } o:
                {
                    if (JinjaBuiltins.Member(o, name) is JinjaFunction fn)
                    {
                        var (args, kwargs) = it.EvaluateArguments(argNodes, env);
                        if (kwargs.Count > 0) args.Add(new JinjaObject(kwargs, JinjaObjectKind.KeywordArguments));
                        return fn.Call(args, env);
                    }
                    throw new JinjaError($"Unknown ObjectValue filter: {name}");
                }
            default:
                throw new JinjaError($"Cannot apply filter \"{name}\" to type: {operand.TypeName}");
        }
    }

    private static JinjaArray ArrayFilter(JinjaInterpreter it, JinjaArray a, string name, List<Node> argNodes, JinjaEnvironment env)
    {
        switch (name)
        {
            case "sort":
                {
                    var (args, kwargs) = it.EvaluateArguments(argNodes, env);
                    var reverse = JinjaBuiltins.Arg(args, 0, kwargs, "reverse") ?? JinjaBool.False;
                    if (reverse is not JinjaBool rev) throw new JinjaError("reverse must be a boolean");
                    var caseSensitive = JinjaBuiltins.Arg(args, 1, kwargs, "case_sensitive") ?? JinjaBool.False;
                    if (caseSensitive is not JinjaBool cs) throw new JinjaError("case_sensitive must be a boolean");
                    var attribute = JinjaBuiltins.Arg(args, 2, kwargs, "attribute") ?? JinjaNull.Instance;
                    if (attribute is not (JinjaString or JinjaNumber { IsFloat: false } or JinjaNull))
                        throw new JinjaError("attribute must be a string, integer, or null");
                    JinjaValue Key(JinjaValue item) => attribute switch
                    {
                        JinjaNull => item,
                        JinjaNumber n => AttributeOf(item, JsRules.Number(n.Value)),
                        _ => AttributeOf(item, ((JinjaString)attribute).Value),
                    };
                    return new JinjaArray(JinjaBuiltins.StableSort(a.Items, (x, y) =>
                    {
                        int r = JinjaBuiltins.Compare(Key(x), Key(y), cs.Value);
                        return rev.Value ? -r : r;
                    }));
                }
            case "selectattr" or "rejectattr":
                {
                    bool select = name == "selectattr";
                    if (a.Items.Any(item => item is not JinjaObject)) throw new JinjaError($"`{name}` can only be applied to array of objects");
                    if (argNodes.Any(x => x is not StringNode)) throw new JinjaError($"arguments of `{name}` must be strings");
                    var values = argNodes.Select(x => it.Evaluate(x, env)).ToList();
                    string attr = ((JinjaString)values[0]).Value;
                    JinjaValue? other = values.Count > 2 ? values[2] : null;
                    Func<JinjaValue, bool> test = v => v.Truthy;
                    if (values.Count > 1)
                    {
                        string testName = ((JinjaString)values[1]).Value;
                        if (JinjaBuiltins.Test(testName, JinjaNull.Instance, other) == null && testName is not ("odd" or "even"))
                            throw new JinjaError($"Unknown test: {testName}");
                        test = v => JinjaBuiltins.Test(testName, v, other)!.Value;
                    }
                    return new JinjaArray([.. a.Items.Where(item =>
                    {
                        var found = ((JinjaObject)item).Map.GetValueOrDefault(attr);
                        bool result = found != null && test(found);
                        return select ? result : !result;
                    })]);
                }
            case "map":
                {
                    var (_, kwargs) = it.EvaluateArguments(argNodes, env);
                    if (!kwargs.TryGetValue("attribute", out var attribute))
                        throw new JinjaError("`map` expressions without `attribute` set are not currently supported.");
                    if (attribute is not JinjaString attr) throw new JinjaError("attribute must be a string");
                    var defaultValue = kwargs.GetValueOrDefault("default");
                    return new JinjaArray([.. a.Items.Select(item =>
                    {
                        if (item is not JinjaObject) throw new JinjaError("items in map must be an object");
                        var value = AttributeOf(item, attr.Value);
                        return value is JinjaUndefined ? defaultValue ?? JinjaUndefined.Instance : value;
                    })]);
                }
        }
        throw new JinjaError($"Unknown ArrayValue filter: {name}");
    }

    /// <summary>getAttributeValue: a dotted path through objects and list indices; undefined where it leads nowhere.</summary>
    private static JinjaValue AttributeOf(JinjaValue item, string path)
    {
        var value = item;
        foreach (string part in path.Split('.'))
        {
            if (value is JinjaObject o) value = o.Map.GetValueOrDefault(part) ?? JinjaUndefined.Instance;
            else if (value is JinjaArray arr)
            {
                double index = JsRules.ParseInt(part);
                if (!double.IsNaN(index) && index >= 0 && index < arr.Items.Count) value = arr.Items[(int)index];
                else return JinjaUndefined.Instance;
            }
            else return JinjaUndefined.Instance;
        }
        return value;
    }
}
