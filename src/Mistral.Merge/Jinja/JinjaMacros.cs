namespace Mistral.Merge.Jinja;

/// <summary>Macros and call blocks: argument binding (defaults evaluated after every name is bound, <c>kwargs</c> and
/// <c>varargs</c> only for a macro that reads them) as @huggingface/jinja does it.</summary>
internal sealed partial class JinjaInterpreter
{
    private JinjaNull EvaluateMacro(MacroNode node, JinjaEnvironment env)
    {
        var special = SpecialArgumentsRead(node.Args, node.Body);
        env.Set(node.Name.Name, new JinjaFunction((args, scope) =>
        {
            var macroScope = new JinjaEnvironment(scope);
            BindArguments($"'{node.Name.Name}'", node.Args, special, args, macroScope);
            return EvaluateBlock(node.Body, macroScope);
        }));
        return JinjaNull.Instance;
    }

    private JinjaValue EvaluateCallBlock(CallBlockNode node, JinjaEnvironment env)
    {
        var parameters = node.CallerArgs ?? [];
        var special = SpecialArgumentsRead(parameters, node.Body);
        var caller = new JinjaFunction((callerArgs, _) =>
        {
            var callEnv = new JinjaEnvironment(env);
            BindArguments("None", parameters, special, callerArgs, callEnv);
            return EvaluateBlock(node.Body, callEnv);
        });
        var (args, kwargs) = EvaluateArguments(node.Call.Args, env);
        args.Add(new JinjaObject(kwargs, JinjaObjectKind.KeywordArguments));
        var fn = Evaluate(node.Call.Callee, env);
        if (fn is not JinjaFunction f) throw new JinjaError($"Cannot call something that is not a function: got {fn.TypeName}");
        var newEnv = new JinjaEnvironment(env);
        newEnv.Set("caller", caller);
        return f.Call(args, newEnv);
    }

    private static (string Name, Node? Default) Parameter(Node argument) => argument is KeywordArgumentNode kw
        ? (kw.Key.Name, kw.Value)
        : (((IdentifierNode)argument).Name, null);

    private void BindArguments(string displayName, List<Node> parameters, HashSet<string> special, List<JinjaValue> args, JinjaEnvironment scope)
    {
        var positional = args.ToList();
        var keywords = new OrderedDictionary<string, JinjaValue>(StringComparer.Ordinal);
        if (positional.Count > 0 && positional[^1] is JinjaObject { Kind: JinjaObjectKind.KeywordArguments } kw)
        {
            foreach (var (k, v) in kw.Map) keywords[k] = v;
            positional.RemoveAt(positional.Count - 1);
        }
        var pending = new List<(string, Node)>();
        for (int i = 0; i < parameters.Count; i++)
        {
            var (name, defaultValue) = Parameter(parameters[i]);
            JinjaValue? value = i < positional.Count ? positional[i] : null;
            if (value == null && keywords.Remove(name, out var given)) value = given;
            if (value == null && defaultValue != null) pending.Add((name, defaultValue));
            scope.Set(name, value ?? JinjaUndefined.Instance);
        }
        if (special.Contains("kwargs")) scope.Set("kwargs", new JinjaObject(keywords));
        else if (keywords.Count > 0) throw new JinjaError($"macro {displayName} takes no keyword argument '{keywords.GetAt(0).Key}'");
        if (special.Contains("varargs")) scope.Set("varargs", new JinjaArray([.. positional.Skip(parameters.Count)]));
        else if (positional.Count > parameters.Count) throw new JinjaError($"macro {displayName} takes not more than {parameters.Count} argument(s)");
        foreach (var (name, defaultValue) in pending) scope.Set(name, Evaluate(defaultValue, scope));
    }

    /// <summary>Which of <c>kwargs</c>/<c>varargs</c> the body reads without declaring them itself.</summary>
    private static HashSet<string> SpecialArgumentsRead(List<Node> parameters, List<Node> body)
    {
        var declared = new HashSet<string>(StringComparer.Ordinal);
        var accessed = new HashSet<string>(StringComparer.Ordinal);
        static bool IsSpecial(string n) => n is "kwargs" or "varargs";
        void DeclareName(string n) { if (IsSpecial(n)) declared.Add(n); }
        void DeclareTarget(Node target)
        {
            if (target is IdentifierNode id) DeclareName(id.Name);
            else if (target is ArrayNode { IsTuple: true } t) foreach (var item in t.Items) DeclareTarget(item);
        }
        void VisitDefaults(IEnumerable<Node> args)
        {
            foreach (var a in args) if (Parameter(a).Default is { } d) Visit(d);
        }
        void VisitFilter(Node filter)
        {
            if (filter is CallNode c) foreach (var a in c.Args) Visit(a);
        }
        void Visit(Node? node)
        {
            switch (node)
            {
                case null: return;
                case ForNode f:
                    DeclareTarget(f.LoopVar);
                    if (f.Iterable is SelectNode s)
                    {
                        Visit(s.Lhs);
                        foreach (var n in f.Body) Visit(n);
                        foreach (var n in f.DefaultBlock) Visit(n);
                        Visit(s.Test);
                        return;
                    }
                    Visit(f.Iterable);
                    foreach (var n in f.Body) Visit(n);
                    foreach (var n in f.DefaultBlock) Visit(n);
                    return;
                case SetNode set:
                    DeclareTarget(set.Assignee);
                    Visit(set.Value);
                    foreach (var n in set.Body) Visit(n);
                    return;
                case MacroNode m:
                    foreach (var a in m.Args) DeclareName(Parameter(a).Name);
                    VisitDefaults(m.Args);
                    foreach (var n in m.Body) Visit(n);
                    return;
                case CallBlockNode c:
                    Visit(c.Call);
                    foreach (var a in c.CallerArgs ?? []) DeclareName(Parameter(a).Name);
                    VisitDefaults(c.CallerArgs ?? []);
                    foreach (var n in c.Body) Visit(n);
                    return;
                case FilterBlockNode fb:
                    foreach (var n in fb.Body) Visit(n);
                    VisitFilter(fb.Filter);
                    return;
                case IdentifierNode id:
                    if (IsSpecial(id.Name) && !declared.Contains(id.Name)) accessed.Add(id.Name);
                    return;
                case MemberNode mem:
                    Visit(mem.Object);
                    if (mem.Computed) Visit(mem.Property);
                    return;
                case FilterNode fe:
                    Visit(fe.Operand);
                    VisitFilter(fe.Filter);
                    return;
                case TestNode t:
                    Visit(t.Operand);
                    return;
                case SelectNode sel:
                    Visit(sel.Test);
                    Visit(sel.Lhs);
                    return;
                case KeywordArgumentNode k:
                    Visit(k.Value);
                    return;
                default:
                    foreach (var child in node.Children()) Visit(child);
                    return;
            }
        }
        foreach (var p in parameters) DeclareName(Parameter(p).Name);
        foreach (var n in body) Visit(n);
        return accessed;
    }
}
