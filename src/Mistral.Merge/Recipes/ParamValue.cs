using System.Globalization;

namespace Mistral.Merge.Recipes;

/// <summary>
/// A parameter value as written in a recipe: a scalar, a gradient (list of numbers), a list of
/// non-numeric scalars, or a list of <c>{filter, value}</c> conditions. Resolution is exact to the
/// spec: gradients interpolate in double precision over t in [0, 1].
/// </summary>
public abstract record ParamValue(Mark Mark)
{
    /// <summary>The value at (tensor name, t): a double, a bool, or null when no condition matches.</summary>
    public abstract object? Resolve(string tensorName, double t);

    /// <summary>Every leaf scalar, for type checks.</summary>
    public abstract IEnumerable<(object Value, Mark Mark)> Leaves();

    public abstract string Describe();

    protected static string Fmt(object v) => v switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => v.ToString() ?? "",
    };
}

public sealed record ScalarValue(object Value, Mark Mark) : ParamValue(Mark)
{
    public override object? Resolve(string tensorName, double t) => Value;
    public override IEnumerable<(object, Mark)> Leaves() { yield return (Value, Mark); }
    public override string Describe() => Fmt(Value);
}

/// <summary>A numeric list: piecewise-linear over t (pos = t(n-1), i = int(pos), j = min(n-1, i+1)). <c>Anchors</c>: each value's position, when known.</summary>
public sealed record GradientValue(double[] Values, Mark Mark, Mark[]? Anchors = null) : ParamValue(Mark)
{
    public override object? Resolve(string tensorName, double t) => Interpolate(Values, t);

    public static double Interpolate(double[] v, double t)
    {
        int n = v.Length;
        if (n == 1) return v[0];
        double pos = t * (n - 1);
        int i = (int)pos;
        if (i > n - 1) i = n - 1;
        if (i < 0) i = 0;
        int j = Math.Min(n - 1, i + 1);
        double f = pos - i;
        return (1 - f) * v[i] + f * v[j];
    }

    public override IEnumerable<(object, Mark)> Leaves() => Values.Select((v, i) => ((object)v, Anchors?[i] ?? Mark));
    public override string Describe() => "[" + string.Join(", ", Values.Select(v => Fmt(v))) + "]";
}

/// <summary>A list of non-numeric scalars: v[int(t(n-1))].</summary>
public sealed record IndexedValue(object[] Values, Mark Mark) : ParamValue(Mark)
{
    public override object? Resolve(string tensorName, double t)
        => Values[Math.Clamp((int)(t * (Values.Length - 1)), 0, Values.Length - 1)];
    public override IEnumerable<(object, Mark)> Leaves() => Values.Select(v => (v, Mark));
    public override string Describe() => "[" + string.Join(", ", Values.Select(Fmt)) + "]";
}

/// <summary>First entry whose filter is missing, "*" or a case-sensitive substring of the name wins.</summary>
public sealed record ConditionalValue(IReadOnlyList<(string? Filter, ParamValue Value)> Entries, Mark Mark) : ParamValue(Mark)
{
    public override object? Resolve(string tensorName, double t)
    {
        foreach (var (filter, value) in Entries)
            if (filter is null || filter == "*" || tensorName.Contains(filter, StringComparison.Ordinal))
                return value.Resolve(tensorName, t);
        return null;
    }

    public override IEnumerable<(object, Mark)> Leaves() => Entries.SelectMany(e => e.Value.Leaves());
    public override string Describe() => "[" + string.Join(", ", Entries.Select(e => $"{{filter: {e.Filter ?? "*"}, value: {e.Value.Describe()}}}")) + "]";
}
