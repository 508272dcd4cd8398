using System.Globalization;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Moe.Recipes;

/// <summary>
/// Reads the global <c>parameters:</c> of a MoE-surgery recipe. Types were already checked by the planner
/// against the method's <see cref="Merging.ParamDef"/>s; this adds value checks, each reported at the
/// value's line:column. Every parameter is one value, except <c>expert</c>, which may be a per-layer list,
/// a gradient or {filter, value} conditions like any mergekit parameter.
/// </summary>
internal sealed class SurgeryParams(Recipe recipe, RecipeProblems problems)
{
    public Recipe Recipe => recipe;
    public RecipeProblems Problems => problems;

    public bool Has(string name) => recipe.Parameters.Items.ContainsKey(name);

    public Mark MarkOf(string name) => recipe.Parameters.Items.TryGetValue(name, out var e) ? e.Value.Mark : recipe.MethodMark;

    public void Add(string name, string message) => problems.Add(MarkOf(name), message);

    private object? Single(string name)
    {
        if (!recipe.Parameters.TryGet(name, out var v)) return null;
        if (v is ScalarValue s) return s.Value;
        problems.Add(v.Mark, $"parameter '{name}' must be a single value here, not {v.Describe()}");
        return null;
    }

    public string? String(string name) => Single(name) as string;

    public bool Bool(string name) => Single(name) is true;

    /// <summary>An integer in [min, max], or null when absent or invalid (invalid values are reported).</summary>
    public int? Int(string name, int min, int max, string what)
    {
        if (Single(name) is not double d) return null;
        if (d != Math.Floor(d) || d < min || d > max)
        {
            Add(name, $"parameter '{name}' must be an integer from {min} to {max} ({what}), got {d.ToString("R", CultureInfo.InvariantCulture)}");
            return null;
        }
        return (int)d;
    }

    /// <summary>One of <paramref name="allowed"/> (first = default when absent); null after reporting an unknown value.</summary>
    public string? Choice(string name, params string[] allowed)
    {
        if (!Has(name)) return allowed[0];
        var s = String(name);
        if (s == null) return null;
        if (Array.IndexOf(allowed, s) >= 0) return s;
        Add(name, $"parameter '{name}': unknown value '{s}'{Suggest.Hint(s, allowed)} (expected {string.Join(", ", allowed)})");
        return null;
    }

    /// <summary>A file path relative to the recipe's folder; reported when missing.</summary>
    public string? ExistingFile(string name)
    {
        var s = String(name);
        if (s == null) return null;
        var path = Path.GetFullPath(Path.IsPathRooted(s) ? s : Path.Combine(recipe.Folder, s));
        if (File.Exists(path)) return path;
        Add(name, $"parameter '{name}': file '{s}' not found (looked at {path})");
        return null;
    }

    /// <summary>
    /// <c>expert</c> per layer: the value at t = layer/(layers−1) (as the planner resolves gradients over
    /// layers), rounded to the nearest integer (halves away from zero), checked to name an existing expert.
    /// </summary>
    public int[]? PerLayerExpert(string name, int layers, int experts)
    {
        if (!recipe.Parameters.TryGet(name, out var v)) return null;
        var r = new int[layers];
        for (int l = 0; l < layers; l++)
        {
            double t = layers == 1 ? 1 : (double)l / (layers - 1);
            var x = v.Resolve(Models.Architecture.Mixtral.Layer(l, Models.Architecture.Mixtral.ExpertsModule), t);
            if (x is not double d || !double.IsFinite(d))
            {
                problems.Add(v.Mark, $"parameter '{name}' has no value for layer {l} (no filter matched; add an entry without a filter as the fallback)");
                return null;
            }
            int e = (int)Math.Round(d, MidpointRounding.AwayFromZero);
            if (e < 0 || e >= experts)
            {
                problems.Add(v.Mark, $"parameter '{name}': expert {e} for layer {l} does not exist (the model has {experts} experts, 0..{experts - 1})");
                return null;
            }
            r[l] = e;
        }
        return r;
    }

    /// <summary>The calibration text / frequency file / token limit shared by both methods.</summary>
    public (string? Text, string? Frequencies, int Tokens) Calibration()
    {
        if (Has("calibration") && Has("frequencies"))
            Add("frequencies", "give either 'calibration' (a text to measure routing on) or 'frequencies' (a moe-stats --json file), not both");
        int tokens = Int("calibration_tokens", 2, int.MaxValue, "tokens of calibration text, with BOS") ?? 20000;
        if (Has("calibration_tokens") && !Has("calibration")) Add("calibration_tokens", "parameter 'calibration_tokens' needs 'calibration'");
        return (ExistingFile("calibration"), ExistingFile("frequencies"), tokens);
    }

    /// <summary>The output dtype: out_dtype, else dtype, else as stored.</summary>
    public Core.DType? OutDType => recipe.OutDType ?? recipe.DType;

    public string CardNote()
    {
        var text = recipe.Text.TrimEnd('\n');
        var fence = Merging.CardText.Fence(text); // one no line of the recipe can close
        return $"## Recipe\n\n{fence}yaml\n{text}\n{fence}\n";
    }
}
