namespace Mistral.Merge.Moe.Surgery;

/// <summary>
/// A parameter of an MoE surgery, declared once: its recipe name (<c>calibration_tokens</c>), from which the
/// <c>moe-convert</c> option is derived (<see cref="Option"/>: <c>--calibration-tokens</c>), its kind and its
/// help text. A surgery reads the value through <see cref="SurgeryArgs"/>'s typed <c>Get</c> overloads.
/// </summary>
public abstract record SurgeryParam(string Name, string Description)
{
    /// <summary>The command-line spelling: <c>--</c> + the recipe name with '-' for '_'.</summary>
    public string Option => "--" + Name.Replace('_', '-');
    /// <summary>Must be given (else the recipe/command is refused before any model is read).</summary>
    public bool Required { get; init; }
    /// <summary>What the recipe must write: "a number", "a string", "true or false".</summary>
    public abstract string RecipeKind { get; }
    /// <summary>True when <paramref name="value"/> (a YAML scalar: double, bool or string) has the right kind.</summary>
    public abstract bool Accepts(object value);
}

/// <summary>An integer; its range depends on the model and is given where it is read.</summary>
public sealed record IntParam(string Name, string Description, int Min = 1, int? Default = null) : SurgeryParam(Name, Description)
{
    public override string RecipeKind => "a number";
    public override bool Accepts(object value) => value is double;
}

/// <summary>One of <see cref="Choices"/>; the first is the default.</summary>
public sealed record ChoiceParam(string Name, string Description, string[] Choices) : SurgeryParam(Name, Description)
{
    public string Default => Choices[0];
    public override string RecipeKind => "a string";
    public override bool Accepts(object value) => value is string;
}

/// <summary>true / false (a recipe's <c>group: true</c>, the command's <c>--group</c>); false by default.</summary>
public sealed record FlagParam(string Name, string Description) : SurgeryParam(Name, Description)
{
    public override string RecipeKind => "true or false";
    public override bool Accepts(object value) => value is bool;
}

/// <summary>A positive number or <c>auto</c> (the refit's ridge factor).</summary>
public sealed record RidgeParam(string Name, string Description) : SurgeryParam(Name, Description)
{
    public override string RecipeKind => "a positive number or auto";
    public override bool Accepts(object value) => value is double or "auto";
}

/// <summary>An existing file (relative to the recipe's folder in a recipe, to the working folder on the command line).</summary>
public sealed record FileParam(string Name, string Description) : SurgeryParam(Name, Description)
{
    public override string RecipeKind => "a string";
    public override bool Accepts(object value) => value is string;
}

/// <summary>
/// An expert index per layer: one value for every layer, a list (a gradient over the layers: a list of one value
/// per layer gives each layer its own), or a recipe's {filter, value} conditions; on the command line the list is
/// written with commas (<c>--expert 2,1</c>).
/// </summary>
public sealed record ExpertsParam(string Name, string Description) : SurgeryParam(Name, Description)
{
    public override string RecipeKind => "a number";
    public override bool Accepts(object value) => value is double;
}

/// <summary>What a surgery takes: its recipe name (<c>merge_method</c>), its parameters, a one-line summary.</summary>
public sealed record SurgerySpec(string Name, string Summary, SurgeryParam[] Params)
{
    public SurgeryParam? Find(string name) => Params.FirstOrDefault(p => p.Name == name);
}
