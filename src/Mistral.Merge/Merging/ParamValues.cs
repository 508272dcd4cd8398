namespace Mistral.Merge.Merging;

/// <summary>
/// The resolved values of one scope's parameters for one tensor (the global ones, or one input's per-model ones),
/// stored typed at each declaration's <see cref="ParamDef.Slot"/>: the planner fills it once, the method reads it
/// with <see cref="Get{T}"/> (an array index, no name lookup).
/// </summary>
public sealed class ParamValues
{
    private struct Value
    {
        public bool IsSet;
        public double Number;
        public bool Flag;
        public string? Text;
    }

    private readonly IReadOnlyList<ParamDef> _defs;
    private readonly Value[] _values;

    /// <param name="defs">The declarations of one scope, in slot order (<see cref="MethodSpec.Global"/> or <see cref="MethodSpec.PerModel"/>).</param>
    public ParamValues(IReadOnlyList<ParamDef> defs)
    {
        _defs = defs;
        _values = new Value[defs.Count];
    }

    /// <summary>The declarations these values are for, in slot order.</summary>
    public IReadOnlyList<ParamDef> Defs => _defs;

    /// <summary>Stores <paramref name="value"/> (of the declaration's type; null leaves it unset).</summary>
    public void Set(ParamDef def, object? value)
    {
        ref var v = ref _values[SlotOf(def)];
        v = default;
        switch (value)
        {
            case null: return;
            case double d when def.Kind == ParamKind.Number: v.Number = d; break;
            case bool b when def.Kind == ParamKind.Bool: v.Flag = b; break;
            case string s when def.Kind == ParamKind.String: v.Text = s; break;
            default: throw new ArgumentException($"parameter '{def.Name}' must be {def.KindText}, got {value.GetType().Name}");
        }
        v.IsSet = true;
    }

    public bool IsSet(ParamDef def) => _values[SlotOf(def)].IsSet;

    /// <summary>Whether any parameter has a value.</summary>
    public bool AnySet => Array.Exists(_values, v => v.IsSet);

    /// <summary>The value of <paramref name="p"/>; it must be set (a default or a required parameter).</summary>
    public T Get<T>(ParamDef<T> p) where T : notnull
        => TryGet(p, out var value) ? value : throw new InvalidOperationException($"parameter {p.Name} unresolved");

    /// <summary>The value of a parameter that may be unset (no default, not required).</summary>
    public bool TryGet<T>(ParamDef<T> p, out T value) where T : notnull
    {
        ref readonly var v = ref _values[SlotOf(p)];
        if (!v.IsSet)
        {
            value = default!;
            return false;
        }
        // typeof(T) tests are constants once the method is compiled for T: no boxing for double and bool.
        if (typeof(T) == typeof(double)) value = (T)(object)v.Number;
        else if (typeof(T) == typeof(bool)) value = (T)(object)v.Flag;
        else value = (T)(object)v.Text!;
        return true;
    }

    /// <summary>The value as an object (null when unset), for plans and messages.</summary>
    public object? ValueOf(ParamDef def)
    {
        var v = _values[SlotOf(def)];
        return !v.IsSet ? null : def.Kind switch { ParamKind.Number => v.Number, ParamKind.Bool => v.Flag, _ => v.Text };
    }

    /// <summary>The set values in slot order.</summary>
    public IEnumerable<(ParamDef Def, object Value)> Assigned()
        => _defs.Where(IsSet).Select(d => (d, ValueOf(d)!));

    private int SlotOf(ParamDef def)
    {
        int slot = def.Slot;
        return (uint)slot < (uint)_defs.Count && ReferenceEquals(_defs[slot], def) ? slot
            : throw new InvalidOperationException($"parameter '{def.Name}' is not declared at slot {slot} of these values (declare it in the method's own spec, not shared with another)");
    }
}
