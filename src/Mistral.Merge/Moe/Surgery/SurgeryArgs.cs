using System.Globalization;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Moe.Surgery;

/// <summary>
/// The parameter values one surgery run was given, keyed by their declarations, from a recipe's <c>parameters:</c>
/// (<see cref="FromRecipe"/>) or from <c>moe-convert</c>'s options (<see cref="FromCommandLine"/>). The surgeries
/// check and read them here once for both; a problem names the parameter as its source spells it (a recipe's
/// <c>parameter 'top_k'</c> at its line:column, the command's <c>--top-k</c>). Every parameter is one value, except
/// an <see cref="ExpertsParam"/>, which may be a per-layer list, a gradient or {filter, value} conditions.
/// </summary>
public sealed class SurgeryArgs
{
    private readonly Dictionary<SurgeryParam, ParamValue> _values;
    private readonly Action<Mark?, string> _report;
    private readonly bool _recipe;

    private SurgeryArgs(Dictionary<SurgeryParam, ParamValue> values, string folder, bool recipe, Action<Mark?, string> report)
    {
        (_values, Folder, _recipe, _report) = (values, folder, recipe, report);
    }

    /// <summary>Where relative file names are looked up: the recipe's folder, or the working folder.</summary>
    public string Folder { get; }
    /// <summary>Output dtype of float tensors (null: as stored).</summary>
    public DType? OutDType { get; init; }
    /// <summary>The recipe's text (recipe runs: written as mergekit_config.yml and quoted in the model card).</summary>
    public string? RecipeText { get; init; }
    /// <summary>The source's name in the model card (a recipe's base_model as written).</summary>
    public string? SourceLabel { get; init; }
    /// <summary>"this recipe" or "this command", in messages.</summary>
    public string Subject => _recipe ? "this recipe" : "this command";
    /// <summary>How a file parameter is relative: ", relative to the recipe" or nothing.</summary>
    public string Relative => _recipe ? ", relative to the recipe" : "";

    /// <summary>The recipe's parameters; unknown names and wrongly typed values are reported at their line:column.</summary>
    public static SurgeryArgs FromRecipe(Recipe recipe, RecipeProblems problems, SurgerySpec spec)
    {
        var values = new Dictionary<SurgeryParam, ParamValue>();
        foreach (var (name, (value, keyMark)) in recipe.Parameters.Items)
        {
            var def = spec.Find(name);
            if (def == null)
            {
                var all = spec.Params.Select(d => d.Name).ToList();
                problems.Add(keyMark, $"merge_method '{spec.Name}' does not take parameter '{name}'{Suggest.Hint(name, all)} (it takes {string.Join(", ", all)})");
                continue;
            }
            foreach (var (leaf, mark) in value.Leaves())
                if (!def.Accepts(leaf))
                {
                    problems.Add(mark, $"parameter '{name}' must be {def.RecipeKind}, got {(leaf is string s ? $"'{s}'" : leaf is bool b ? (b ? "true" : "false") : ((double)leaf).ToString("G6", CultureInfo.InvariantCulture))}");
                    break;
                }
            values[def] = value;
        }
        return new SurgeryArgs(values, recipe.Folder, recipe: true, (m, message) => problems.Add(m ?? recipe.MethodMark, message))
        {
            OutDType = recipe.OutDType ?? recipe.DType,
            RecipeText = recipe.Text,
            SourceLabel = recipe.BaseModel?.Text,
        };
    }

    /// <summary>
    /// Values given on the command line (already parsed to the recipe's kinds) for the model <paramref name="source"/> as
    /// written (the model card's name for it); problems go to <paramref name="report"/>.
    /// </summary>
    public static SurgeryArgs FromCommandLine(IReadOnlyDictionary<SurgeryParam, object> given, string source, DType? outDType, Action<string> report)
    {
        var values = new Dictionary<SurgeryParam, ParamValue>();
        foreach (var (def, v) in given)
            values[def] = v is double[] list ? new GradientValue(list, default) : new ScalarValue(v, default);
        return new SurgeryArgs(values, Directory.GetCurrentDirectory(), recipe: false, (_, message) => report(message)) { OutDType = outDType, SourceLabel = source };
    }

    /// <summary>The parameter as the source spells it: 'top_k' or --top-k.</summary>
    public string Named(SurgeryParam p) => _recipe ? $"'{p.Name}'" : p.Option;
    /// <summary>"parameter 'top_k'" or "--top-k".</summary>
    public string Param(SurgeryParam p) => _recipe ? $"parameter '{p.Name}'" : p.Option;
    /// <summary>A flag set: "group: true" or "--group".</summary>
    public string Set(FlagParam p) => _recipe ? $"{p.Name}: true" : p.Option;

    public bool Has(SurgeryParam p) => _values.ContainsKey(p);

    /// <summary>Reports at the value of <paramref name="at"/> (at merge_method when absent or null).</summary>
    public void Add(SurgeryParam? at, string message) => _report(at != null && _values.TryGetValue(at, out var v) ? v.Mark : null, message);

    private object? Single(SurgeryParam p)
    {
        if (!_values.TryGetValue(p, out var v)) return null;
        if (v is ScalarValue s) return s.Value;
        _report(v.Mark, $"{Param(p)} must be a single value here, not {v.Describe()}");
        return null;
    }

    public bool Get(FlagParam p) => Single(p) is true;

    /// <summary>An integer in [min, max], or the declared default when absent; null when invalid (reported).</summary>
    public int? Get(IntParam p, int max, string what)
    {
        if (Single(p) is not double d) return Has(p) ? null : p.Default;
        if (d != Math.Floor(d) || d < p.Min || d > max)
        {
            Add(p, $"{Param(p)} must be an integer from {p.Min} to {max} ({what}), got {d.ToString("R", CultureInfo.InvariantCulture)}");
            return null;
        }
        return (int)d;
    }

    /// <summary>One of the choices (the first when absent); null after reporting an unknown value.</summary>
    public string? Get(ChoiceParam p)
    {
        if (!Has(p)) return p.Default;
        if (Single(p) is not string s) return null;
        if (Array.IndexOf(p.Choices, s) >= 0) return s;
        Add(p, $"{Param(p)}: unknown value '{s}'{Suggest.Hint(s, p.Choices)} (expected {string.Join(", ", p.Choices)})");
        return null;
    }

    /// <summary>The full path of an existing file, or null when absent or missing (reported).</summary>
    public string? Get(FileParam p)
    {
        if (Single(p) is not string s) return null;
        var path = Path.GetFullPath(Path.IsPathRooted(s) ? s : Path.Combine(Folder, s));
        if (File.Exists(path)) return path;
        Add(p, $"{Param(p)}: file '{s}' not found (looked at {path})");
        return null;
    }

    /// <summary>Comma-separated existing files (full paths), or null when absent or one is missing (reported).</summary>
    public string[]? GetFiles(FileParam p)
    {
        if (Single(p) is not string s) return null;
        var r = new List<string>();
        foreach (var f in s.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var path = Path.GetFullPath(Path.IsPathRooted(f) ? f : Path.Combine(Folder, f));
            if (!File.Exists(path))
            {
                Add(p, $"{Param(p)}: file '{f}' not found (looked at {path})");
                return null;
            }
            r.Add(path);
        }
        if (r.Count == 0) { Add(p, $"{Param(p)}: no file given"); return null; }
        return [.. r];
    }

    /// <summary>A positive number, or null for 'auto' or absent; reports anything else.</summary>
    public double? Get(RidgeParam p)
    {
        var v = Single(p);
        if (v is null or "auto") return null;
        double d = v is double x ? x : double.TryParse(v as string, NumberStyles.Float, CultureInfo.InvariantCulture, out var y) ? y : double.NaN;
        if (d > 0 && double.IsFinite(d)) return d;
        Add(p, $"{Param(p)} must be a positive number or auto, got {(v is double dv ? dv.ToString("R", CultureInfo.InvariantCulture) : $"'{v}'")}");
        return null;
    }

    /// <summary>
    /// The expert per layer: the value at t = layer/(layers−1) (as the planner resolves gradients over layers),
    /// rounded to the nearest integer (halves away from zero), checked to name an existing expert.
    /// </summary>
    public int[]? Get(ExpertsParam p, int layers, int experts)
    {
        if (!_values.TryGetValue(p, out var v)) return null;
        var r = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            double t = layers == 1 ? 1 : (double)l / (layers - 1);
            var x = v.Resolve(Models.Architecture.Mixtral.Layer(l, Models.Architecture.Mixtral.ExpertsModule), t);
            if (x is not double d || !double.IsFinite(d))
            {
                _report(v.Mark, $"{Param(p)} has no value for layer {l} (no filter matched; add an entry without a filter as the fallback)");
                return null;
            }
            int e = (int)Math.Round(d, MidpointRounding.AwayFromZero);
            if (e < 0 || e >= experts)
            {
                _report(v.Mark, $"{Param(p)}: expert {e} for layer {l} does not exist (the model has {experts} experts, 0..{experts - 1})");
                return null;
            }
            r[l] = e;
        }
        return r;
    }

    /// <summary>The model card's note: the recipe, in a fence no line of it can close (recipe runs only).</summary>
    public string? CardNote()
    {
        if (RecipeText == null) return null;
        var text = RecipeText.TrimEnd('\n');
        var fence = Merging.CardText.Fence(text);
        return $"## Recipe\n\n{fence}yaml\n{text}\n{fence}\n";
    }
}
