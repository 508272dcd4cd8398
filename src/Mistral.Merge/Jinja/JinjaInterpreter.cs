using System.Text;

namespace Mistral.Merge.Jinja;

/// <summary>
/// Evaluates a parsed template as @huggingface/jinja's Interpreter does, node for node: the same scoping (a for loop
/// opens a scope, a macro sees its caller's), the same coercions and the same error messages. Filters are in
/// <see cref="JinjaFilters"/>.
/// </summary>
internal sealed partial class JinjaInterpreter(Func<DateTime> now)
{
    private const int MaxDepth = 1500;   // deep enough for any template; a runaway recursive macro stops here
    private int _depth;

    /// <summary>
    /// The most work one render may do: every node evaluated costs 1, plus the characters of each string and the items
    /// of each array it yields. A chat template over a long conversation needs well under a million; a hostile one
    /// (a loop of 10⁷ outputs, a string doubled in a loop, a list rebuilt item by item) would otherwise run for minutes
    /// and take gigabytes — here it stops in a few seconds with one line. @huggingface/jinja has no such bound.
    /// </summary>
    public const long MaxWork = 20_000_000;
    private long _work;

    public Func<DateTime> Now { get; } = now;

    public JinjaValue Evaluate(Node? node, JinjaEnvironment env)
    {
        if (node == null) return JinjaUndefined.Instance;
        if (++_depth > MaxDepth) throw new JinjaError("Maximum call stack size exceeded", node.Offset);
        try
        {
            var value = EvaluateCore(node, env);
            Charge(1 + value switch { JinjaString t => t.Value.Length, JinjaArray a => a.Items.Count, _ => 0 });
            return value;
        }
        catch (JinjaError e) when (e.Offset < 0)
        {
            e.Offset = node.Offset;
            throw;
        }
        finally
        {
            _depth--;
        }
    }

    /// <summary>Adds to the render's work (<see cref="MaxWork"/>) and stops it past the bound.</summary>
    private void Charge(long units)
    {
        _work += units;
        if (_work > MaxWork) throw new JinjaError($"rendering takes more than {MaxWork.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)} steps (nodes evaluated, characters and items built): too much work for a chat template");
    }

    private JinjaValue EvaluateCore(Node node, JinjaEnvironment env) => node switch
    {
        ProgramNode p => EvaluateBlock(p.Body, env),
        SetNode s => EvaluateSet(s, env),
        IfNode i => EvaluateBlock(Evaluate(i.Test, env).Truthy ? i.Body : i.Alternate, env),
        ForNode f => EvaluateFor(f, env),
        MacroNode m => EvaluateMacro(m, env),
        CallBlockNode c => EvaluateCallBlock(c, env),
        BreakNode => throw new LoopControl(isBreak: true),
        ContinueNode => throw new LoopControl(isBreak: false),
        NumberNode n => new JinjaNumber(n.Value, n.IsFloat),
        StringNode s => new JinjaString(s.Value),
        ArrayNode a => new JinjaArray([.. a.Items.Select(x => Evaluate(x, env))], a.IsTuple),
        ObjectNode o => EvaluateObject(o, env),
        IdentifierNode i => env.Lookup(i.Name),
        CallNode c => EvaluateCall(c, env),
        MemberNode m => EvaluateMember(m, env),
        UnaryNode u => EvaluateUnary(u, env),
        BinaryNode b => EvaluateBinary(b, env),
        FilterNode f => JinjaFilters.Apply(this, Evaluate(f.Operand, env), f.Filter, env),
        FilterBlockNode f => JinjaFilters.Apply(this, EvaluateBlock(f.Body, env), f.Filter, env),
        TestNode t => EvaluateTest(t, env),
        SelectNode s => Evaluate(s.Test, env).Truthy ? Evaluate(s.Lhs, env) : JinjaUndefined.Instance,
        TernaryNode t => Evaluate(t.Condition, env).Truthy ? Evaluate(t.WhenTrue, env) : Evaluate(t.WhenFalse, env),
        CommentNode => JinjaNull.Instance,
        _ => throw new JinjaError($"Unknown node type: {node.GetType().Name}"),
    };

    public JinjaString EvaluateBlock(List<Node> statements, JinjaEnvironment env)
    {
        var result = new StringBuilder();
        foreach (var statement in statements)
        {
            var v = Evaluate(statement, env);
            if (v is not (JinjaNull or JinjaUndefined)) result.Append(v.ToString());
        }
        return new JinjaString(result.ToString());
    }

    private JinjaObject EvaluateObject(ObjectNode o, JinjaEnvironment env)
    {
        var map = new JinjaObject([]);
        foreach (var (keyNode, valueNode) in o.Entries)
        {
            var key = Evaluate(keyNode, env);
            if (key is not JinjaString k) throw new JinjaError($"Object keys must be strings: got {key.TypeName}");
            map.Map[k.Value] = Evaluate(valueNode, env);
        }
        return map;
    }

    private JinjaBool EvaluateTest(TestNode t, JinjaEnvironment env)
    {
        var operand = Evaluate(t.Operand, env);
        bool result = JinjaBuiltins.Test(t.Test.Name, operand) ?? throw new JinjaError($"Unknown test: {t.Test.Name}");
        return JinjaBool.Of(t.Negate ? !result : result);
    }

    private JinjaValue EvaluateUnary(UnaryNode u, JinjaEnvironment env)
    {
        var argument = Evaluate(u.Argument, env);
        if (u.Op == "not") return JinjaBool.Of(!argument.Truthy);
        double sign = u.Op == "-" ? -1 : 1;
        if (JinjaBuiltins.NumericLike(argument) is { } v)
            return new JinjaNumber(sign * v, argument is JinjaNumber { IsFloat: true });
        throw new JinjaError($"Unknown operator \"{u.Op}\" for {argument.TypeName}");
    }

    private JinjaValue EvaluateBinary(BinaryNode node, JinjaEnvironment env)
    {
        var left = Evaluate(node.Left, env);
        string op = node.Op;
        if (op == "and") return left.Truthy ? Evaluate(node.Right, env) : left;
        if (op == "or") return left.Truthy ? left : Evaluate(node.Right, env);
        var right = Evaluate(node.Right, env);
        if (op == "==") return JinjaBool.Of(JinjaBuiltins.LooseEquals(left, right));
        if (op == "!=") return JinjaBool.Of(!JinjaBuiltins.LooseEquals(left, right));
        if (left is JinjaUndefined || right is JinjaUndefined)
        {
            if (right is JinjaUndefined && op is "in" or "not in") return JinjaBool.Of(op == "not in");
            throw new JinjaError($"Cannot perform operation {op} on undefined values");
        }
        if (left is JinjaNull || right is JinjaNull) throw new JinjaError("Cannot perform operation on null values");
        if (op == "~") return new JinjaString(left.JsString + right.JsString);
        if (op == "**" && JinjaBuiltins.NumericLike(left) is { } pa && JinjaBuiltins.NumericLike(right) is { } pb)
        {
            if (pa == 0 && pb < 0) throw new JinjaError("0.0 cannot be raised to a negative power");
            double r = Math.Pow(pa, pb);
            if (!double.IsFinite(r)) throw new JinjaError("Exponentiation result is not a finite real number");
            return new JinjaNumber(r, left is JinjaNumber { IsFloat: true } || right is JinjaNumber { IsFloat: true } || pb < 0);
        }
        if (left is JinjaNumber ln && right is JinjaNumber rn)
        {
            double a = ln.Value, b = rn.Value;
            bool isFloat = ln.IsFloat || rn.IsFloat;
            switch (op)
            {
                case "+": return new JinjaNumber(a + b, isFloat);
                case "-": return new JinjaNumber(a - b, isFloat);
                case "*": return new JinjaNumber(a * b, isFloat);
                case "/": return JinjaNumber.Float(a / b);
                case "//": return new JinjaNumber(Math.Floor(a / b), isFloat);
                case "%": return new JinjaNumber(a % b, isFloat);   // JavaScript %: the sign of the dividend
                case "<": return JinjaBool.Of(a < b);
                case ">": return JinjaBool.Of(a > b);
                case ">=": return JinjaBool.Of(a >= b);
                case "<=": return JinjaBool.Of(a <= b);
            }
        }
        else if (left is JinjaArray la && right is JinjaArray ra)
        {
            if (op == "+") return new JinjaArray([.. la.Items, .. ra.Items]);
        }
        else if (right is JinjaArray list)
        {
            bool member = list.Items.Any(x => JinjaBuiltins.StrictEquals(x, left));
            if (op == "in") return JinjaBool.Of(member);
            if (op == "not in") return JinjaBool.Of(!member);
        }
        if ((left is JinjaString || right is JinjaString) && op == "+") return new JinjaString(left.JsString + right.JsString);
        if (left is JinjaString ls && right is JinjaString rs)
        {
            if (op == "in") return JinjaBool.Of(rs.Value.Contains(ls.Value, StringComparison.Ordinal));
            if (op == "not in") return JinjaBool.Of(!rs.Value.Contains(ls.Value, StringComparison.Ordinal));
        }
        if (left is JinjaString key && right is JinjaObject { IsObject: true } map)
        {
            if (op == "in") return JinjaBool.Of(map.Map.ContainsKey(key.Value));
            if (op == "not in") return JinjaBool.Of(!map.Map.ContainsKey(key.Value));
        }
        throw new JinjaError($"Unknown operator \"{op}\" between {left.TypeName} and {right.TypeName}");
    }

    /// <summary>Positional arguments (with <c>*list</c> spread) and keyword arguments (with <c>**dict</c>).</summary>
    public (List<JinjaValue> Positional, OrderedDictionary<string, JinjaValue> Keywords) EvaluateArguments(List<Node> args, JinjaEnvironment env)
    {
        var positional = new List<JinjaValue>();
        var keywords = new OrderedDictionary<string, JinjaValue>(StringComparer.Ordinal);
        void AddKeyword(string key, JinjaValue value)
        {
            if (!keywords.TryAdd(key, value)) throw new JinjaError($"Got multiple values for keyword argument '{key}'");
        }
        foreach (var argument in args)
        {
            if (argument is SpreadNode { Keywords: false } spread)
            {
                var val = Evaluate(spread.Argument, env);
                if (val is not JinjaArray a) throw new JinjaError($"Cannot unpack non-iterable type: {val.TypeName}");
                positional.AddRange(a.Items);
            }
            else if (argument is not (KeywordArgumentNode or SpreadNode)) positional.Add(Evaluate(argument, env));
        }
        foreach (var argument in args)
        {
            if (argument is KeywordArgumentNode kw) AddKeyword(kw.Key.Name, Evaluate(kw.Value, env));
            else if (argument is SpreadNode { Keywords: true } spread)
            {
                var val = Evaluate(spread.Argument, env);
                if (val is not JinjaObject { IsObject: true } o) throw new JinjaError($"Argument after ** must be a mapping, not {val.TypeName}");
                foreach (var (k, v) in o.Map) AddKeyword(k, v);
            }
        }
        return (positional, keywords);
    }

    private JinjaValue EvaluateCall(CallNode expr, JinjaEnvironment env)
    {
        var (args, kwargs) = EvaluateArguments(expr.Args, env);
        if (kwargs.Count > 0) args.Add(new JinjaObject(kwargs, JinjaObjectKind.KeywordArguments));
        var fn = Evaluate(expr.Callee, env);
        if (fn is not JinjaFunction f) throw new JinjaError($"Cannot call something that is not a function: got {fn.TypeName}");
        return f.Call(args, env);
    }

    private JinjaValue EvaluateSlice(JinjaValue obj, SliceNode expr, JinjaEnvironment env)
    {
        if (obj is not (JinjaArray or JinjaString)) throw new JinjaError("Slice object must be an array or string");
        var start = Evaluate(expr.Start, env);
        var stop = Evaluate(expr.Stop, env);
        var step = Evaluate(expr.Step, env);
        if (start is not (JinjaNumber { IsFloat: false } or JinjaUndefined)) throw new JinjaError("Slice start must be numeric or undefined");
        if (stop is not (JinjaNumber { IsFloat: false } or JinjaUndefined)) throw new JinjaError("Slice stop must be numeric or undefined");
        if (step is not (JinjaNumber { IsFloat: false } or JinjaUndefined)) throw new JinjaError("Slice step must be numeric or undefined");
        double? Num(JinjaValue v) => v is JinjaNumber n ? n.Value : null;
        if (obj is JinjaArray a) return new JinjaArray(Slice(a.Items, Num(start), Num(stop), Num(step) ?? 1));
        return new JinjaString(string.Concat(Slice(JsRules.CodePoints(((JinjaString)obj).Value), Num(start), Num(stop), Num(step) ?? 1)));
    }

    /// <summary>Python slicing as the reference's slice() does it (negative indices from the end, a negative step backwards).</summary>
    private static List<T> Slice<T>(List<T> array, double? start, double? stop, double step)
    {
        if (step == 0) throw new JinjaError("slice step cannot be zero");
        int direction = Math.Sign(step);
        double n = array.Count, s, e;
        if (direction >= 0)
        {
            s = (start ??= 0) < 0 ? Math.Max(n + start.Value, 0) : Math.Min(start.Value, n);
            e = (stop ??= n) < 0 ? Math.Max(n + stop.Value, 0) : Math.Min(stop.Value, n);
        }
        else
        {
            s = (start ??= n - 1) < 0 ? Math.Max(n + start.Value, -1) : Math.Min(start.Value, n - 1);
            e = (stop ??= -1) < -1 ? Math.Max(n + stop.Value, -1) : Math.Min(stop.Value, n - 1);
        }
        var result = new List<T>();
        for (double i = s; direction * i < direction * e; i += step) result.Add(array[(int)i]);
        return result;
    }

    private JinjaValue EvaluateMember(MemberNode expr, JinjaEnvironment env)
    {
        var obj = Evaluate(expr.Object, env);
        JinjaValue property;
        if (expr.Computed)
        {
            if (expr.Property is SliceNode slice) return EvaluateSlice(obj, slice, env);
            property = Evaluate(expr.Property, env);
        }
        else if (expr.Property is NumberNode num) property = JinjaNumber.Int(num.Value);
        else property = new JinjaString(((IdentifierNode)expr.Property).Name);

        JinjaValue? value;
        if (obj is JinjaObject o)
        {
            if (property is not JinjaString key) throw new JinjaError($"Cannot access property with non-string: got {property.TypeName}");
            value = o.Map.GetValueOrDefault(key.Value) ?? (o.IsObject ? JinjaBuiltins.Member(o, key.Value) : null);
        }
        else if (obj is JinjaArray or JinjaString)
        {
            if (property is JinjaNumber { IsFloat: false } index)
            {
                int count = obj is JinjaArray arr ? arr.Items.Count : ((JinjaString)obj).Value.Length;
                double i = index.Value < 0 ? count + index.Value : index.Value;   // Array.prototype.at
                value = i < 0 || i >= count || !double.IsInteger(i) ? null
                    : obj is JinjaArray a ? a.Items[(int)i] : new JinjaString(((JinjaString)obj).Value[(int)i].ToString());
            }
            else if (property is JinjaString name) value = JinjaBuiltins.Member(obj, name.Value);
            else throw new JinjaError($"Cannot access property with non-string/non-number: got {property.TypeName}");
        }
        else
        {
            if (property is not JinjaString) throw new JinjaError($"Cannot access property with non-string: got {property.TypeName}");
            value = null;
        }
        return value ?? JinjaUndefined.Instance;
    }

    private JinjaNull EvaluateSet(SetNode node, JinjaEnvironment env)
    {
        var rhs = node.Value != null ? Evaluate(node.Value, env) : EvaluateBlock(node.Body, env);
        switch (node.Assignee)
        {
            case IdentifierNode id:
                env.Set(id.Name, rhs);
                break;
            case ArrayNode { IsTuple: true } tuple:
                {
                    if (rhs is not JinjaArray arr) throw new JinjaError($"Cannot unpack non-iterable type in set: {rhs.TypeName}");
                    if (arr.Items.Count != tuple.Items.Count)
                        throw new JinjaError($"Too {(tuple.Items.Count > arr.Items.Count ? "few" : "many")} items to unpack in set");
                    for (int i = 0; i < tuple.Items.Count; i++)
                    {
                        if (tuple.Items[i] is not IdentifierNode name) throw new JinjaError("Cannot unpack to non-identifier in set");
                        env.Set(name.Name, arr.Items[i]);
                    }
                    break;
                }
            case MemberNode member:
                {
                    var obj = Evaluate(member.Object, env);
                    if (obj is not JinjaObject { Kind: JinjaObjectKind.Namespace } ns) throw new JinjaError("cannot assign attribute on non-namespace object");
                    if (member.Property is not IdentifierNode prop) throw new JinjaError("Cannot assign to member with non-identifier property");
                    ns.Map[prop.Name] = rhs;
                    break;
                }
            default:
                throw new JinjaError("Invalid LHS inside assignment expression");
        }
        return JinjaNull.Instance;
    }

    private JinjaString EvaluateFor(ForNode node, JinjaEnvironment env)
    {
        var scope = new JinjaEnvironment(env);
        Node? test = null;
        JinjaValue iterable;
        if (node.Iterable is SelectNode select)
        {
            iterable = Evaluate(select.Lhs, scope);
            test = select.Test;
        }
        else iterable = Evaluate(node.Iterable, scope);
        if (iterable is JinjaObject { IsObject: true } o) iterable = JinjaBuiltins.Keys(o);
        if (iterable is not JinjaArray list) throw new JinjaError($"Expected iterable or object type in for loop: got {iterable.TypeName}");

        var items = new List<JinjaValue>();
        var binders = new List<Action<JinjaEnvironment>>();
        foreach (var current in list.Items.ToList())
        {
            var loopScope = new JinjaEnvironment(scope);
            Action<JinjaEnvironment> bind;
            if (node.LoopVar is IdentifierNode id) bind = s => s.Set(id.Name, current);
            else
            {
                var names = ((ArrayNode)node.LoopVar).Items;
                if (current is not JinjaArray { IsTuple: false } c) throw new JinjaError($"Cannot unpack non-iterable type: {current.TypeName}");
                if (names.Count != c.Items.Count) throw new JinjaError($"Too {(names.Count > c.Items.Count ? "few" : "many")} items to unpack");
                bind = s =>
                {
                    for (int j = 0; j < names.Count; j++)
                    {
                        if (names[j] is not IdentifierNode n) throw new JinjaError("Cannot unpack non-identifier type");
                        s.Set(n.Name, c.Items[j]);
                    }
                };
            }
            if (test != null)
            {
                bind(loopScope);
                if (!Evaluate(test, loopScope).Truthy) continue;
            }
            items.Add(current);
            binders.Add(bind);
        }

        var result = new StringBuilder();
        bool noIteration = true;
        for (int i = 0; i < items.Count; i++)
        {
            Charge(10); // the iteration and its 9-entry loop object
            scope.Set("loop", new JinjaObject(
            [
                new("index", JinjaNumber.Int(i + 1)), new("index0", JinjaNumber.Int(i)),
                new("revindex", JinjaNumber.Int(items.Count - i)), new("revindex0", JinjaNumber.Int(items.Count - i - 1)),
                new("first", JinjaBool.Of(i == 0)), new("last", JinjaBool.Of(i == items.Count - 1)),
                new("length", JinjaNumber.Int(items.Count)),
                new("previtem", i > 0 ? items[i - 1] : JinjaUndefined.Instance),
                new("nextitem", i < items.Count - 1 ? items[i + 1] : JinjaUndefined.Instance),
            ]));
            binders[i](scope);
            try
            {
                result.Append(EvaluateBlock(node.Body, scope).Value);
            }
            catch (LoopControl control)
            {
                if (control.IsBreak) break;
                continue;
            }
            noIteration = false;
        }
        if (noIteration) result.Append(EvaluateBlock(node.DefaultBlock, scope).Value);
        return new JinjaString(result.ToString());
    }
}
