namespace Mistral.Merge.Jinja;

/// <summary>A scope: its own variables and its parent's (a for loop, a macro call and a call block each open one).</summary>
public sealed class JinjaEnvironment(JinjaEnvironment? parent = null)
{
    private readonly Dictionary<string, JinjaValue> _variables = new(StringComparer.Ordinal);

    public JinjaEnvironment? Parent { get; } = parent;

    /// <summary>Declares a variable the template is rendered with; refuses one declared already (as the reference does).</summary>
    public void Declare(string name, JinjaValue value)
    {
        if (!_variables.TryAdd(name, value)) throw new JinjaError($"Variable already declared: {name}");
    }

    /// <summary>Sets a variable in this scope (<c>{% set %}</c>, loop variables, macro arguments).</summary>
    public void Set(string name, JinjaValue value) => _variables[name] = value;

    public JinjaValue Lookup(string name)
    {
        for (var e = this; e != null; e = e.Parent)
            if (e._variables.TryGetValue(name, out var v)) return v;
        return JinjaUndefined.Instance;
    }
}
