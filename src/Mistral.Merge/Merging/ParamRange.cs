using System.Globalization;

namespace Mistral.Merge.Merging;

/// <summary>
/// The values a numeric parameter may take: a value outside [Min, Max] (an open lower end when
/// <see cref="MinOpen"/>) is an error; <see cref="Warn"/> flags a value that is accepted, as mergekit
/// accepts it, but is probably not what was meant. <see cref="Meaning"/> says why, in the message.
/// </summary>
public sealed record ParamRange(double Min, double Max, bool MinOpen = false, string? Meaning = null)
{
    /// <summary>A warning for an accepted value, or null.</summary>
    public Func<double, string?>? Warn { get; init; }

    public (string? Error, string? Warning) Check(string name, double v)
    {
        bool inside = (MinOpen ? v > Min : v >= Min) && v <= Max;
        if (!inside) return ($"parameter '{name}' must be {Text()}{(Meaning == null ? "" : $" ({Meaning})")}, got {Fmt(v)}", null);
        return (null, Warn?.Invoke(v) is { } w ? $"parameter '{name}' is {Fmt(v)}: {w}" : null);
    }

    /// <summary>"in [0, 1]", "≥ 0", …; null when every number is accepted (a range that only warns).</summary>
    public string? Describe() => double.IsNegativeInfinity(Min) && double.IsPositiveInfinity(Max) ? null : Text();

    private string Text()
        => double.IsPositiveInfinity(Max) ? $"{(MinOpen ? ">" : "≥")} {Fmt(Min)}" : $"in {(MinOpen ? "(" : "[")}{Fmt(Min)}, {Fmt(Max)}]";

    private static string Fmt(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
