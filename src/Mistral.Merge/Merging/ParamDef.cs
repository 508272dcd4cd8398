namespace Mistral.Merge.Merging;

public enum ParamKind { Number, Bool, String }

/// <summary>
/// Where a parameter is given and how many values it has per tensor: <see cref="Global"/> once (the recipe's or a
/// slice's <c>parameters:</c>), <see cref="PerModel"/> once per input model (the model's, else the slice's, else the
/// recipe's <c>parameters:</c>).
/// </summary>
public enum ParamScope { Global, PerModel }

/// <summary>
/// A parameter a method takes: its name, type, default (null default + Required: must be given), for numbers the
/// values it may take, and its scope. The <see cref="MethodSpec"/> that lists it gives it its <see cref="Slot"/>: its
/// index among the spec's parameters of the same scope, where the planner stores its resolved value
/// (<see cref="ParamValues"/>) and the method reads it back without a name lookup. Declared as a
/// <see cref="ParamDef{T}"/>.
/// </summary>
public abstract class ParamDef(string name, ParamKind kind, object? defaultValue, bool required, ParamRange? range, ParamScope scope)
{
    public string Name { get; } = name;
    public ParamKind Kind { get; } = kind;
    /// <summary>The value when the recipe gives none; null: unset (an error when <see cref="Required"/>).</summary>
    public object? Default { get; } = defaultValue;
    public bool Required { get; } = required;
    public ParamRange? Range { get; } = range;
    public ParamScope Scope { get; } = scope;

    /// <summary>Index among its spec's parameters of the same scope; -1 until a spec lists it.</summary>
    public int Slot { get; private set; } = -1;

    /// <summary>Called by the spec that lists this declaration. A declaration shared by several specs keeps the
    /// first slot; <see cref="ParamValues"/> refuses it for a spec that put it elsewhere.</summary>
    internal void Claim(int slot)
    {
        if (Slot < 0) Slot = slot;
    }

    /// <summary>"a number", "true or false", "a string": what a value of this kind is, for messages.</summary>
    public string KindText => Kind switch { ParamKind.Number => "a number", ParamKind.Bool => "true or false", _ => "a string" };

    /// <summary>Whether <paramref name="value"/> (a parsed YAML scalar) has this parameter's type.</summary>
    public bool Accepts(object? value) => Kind switch { ParamKind.Number => value is double, ParamKind.Bool => value is bool, _ => value is string };
}

/// <summary>
/// A parameter of type <typeparamref name="T"/> (double, bool or string): the method keeps it as a field and reads
/// its resolved value through <see cref="MethodTask.Get{T}(ParamDef{T})"/> (global) or
/// <see cref="MethodTask.Get{T}(ParamDef{T}, int)"/> (per model).
/// </summary>
public sealed class ParamDef<T>(string Name, object? Default = null, bool Required = false, ParamRange? Range = null, ParamScope Scope = ParamScope.Global)
    : ParamDef(Name, KindOf(), Typed(Name, Default), Required, Range, Scope) where T : notnull
{
    private static object? Typed(string name, object? value)
        => value is null or T ? value : throw new ArgumentException($"the default of parameter '{name}' is not a {typeof(T).Name}");

    private static ParamKind KindOf()
        => typeof(T) == typeof(double) ? ParamKind.Number
         : typeof(T) == typeof(bool) ? ParamKind.Bool
         : typeof(T) == typeof(string) ? ParamKind.String
         : throw new NotSupportedException($"parameters are numbers, flags or strings, not {typeof(T).Name}");
}
