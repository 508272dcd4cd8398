namespace Mistral.Merge.Merging;

public enum ParamKind { Number, Bool, String }

/// <summary>
/// A parameter a method takes: its name, type, default (null default + Required: must be given) and, for
/// numbers, the values it may take. Whether it is a method or a per-model parameter is the list of the
/// <see cref="MethodSpec"/> it is declared in. The planner resolves it once per tensor and input. Declared
/// as a <see cref="ParamDef{T}"/>.
/// </summary>
public abstract record ParamDef(string Name, ParamKind Kind, object? Default = null, bool Required = false, ParamRange? Range = null);

/// <summary>
/// A parameter of type <typeparamref name="T"/> (double, bool or string): the method keeps it as a field and
/// reads its resolved value through <see cref="MethodTask.Get{T}(ParamDef{T})"/> and friends.
/// </summary>
public sealed record ParamDef<T>(string Name, object? Default = null, bool Required = false, ParamRange? Range = null)
    : ParamDef(Name, KindOf(), Typed(Name, Default), Required, Range) where T : notnull
{
    /// <summary>The resolved value among <paramref name="values"/>, or null when unset.</summary>
    public object? In(IReadOnlyDictionary<string, object?> values) => values.GetValueOrDefault(Name);

    private static object? Typed(string name, object? value)
        => value is null or T ? value : throw new ArgumentException($"the default of parameter '{name}' is not a {typeof(T).Name}");

    private static ParamKind KindOf()
        => typeof(T) == typeof(double) ? ParamKind.Number
         : typeof(T) == typeof(bool) ? ParamKind.Bool
         : typeof(T) == typeof(string) ? ParamKind.String
         : throw new NotSupportedException($"parameters are numbers, flags or strings, not {typeof(T).Name}");
}
