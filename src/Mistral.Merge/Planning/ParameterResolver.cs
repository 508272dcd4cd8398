using Mistral.Merge.Merging;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>
/// The one owner of parameter precedence. For one tensor at position t, a per-model parameter comes from the model's,
/// else the slice's, else the recipe's parameters, else the declaration's default; a global parameter from the
/// slice's, else the recipe's, else the default. Each level applies its filters and gradients
/// (<c>ParamValue.Resolve</c>). The values are stored typed at each declaration's slot (<see cref="ParamValues"/>),
/// so the method reads them without a name lookup. A required parameter left without a value is reported once per
/// model (or tensor) and slice.
/// </summary>
internal sealed class ParameterResolver
{
    private readonly PlanContext _c;
    private Recipe _r => _c.Recipe;

    public ParameterResolver(PlanContext context) { _c = context; }

    public ParamValues ModelParams(LocatedInput x, SliceSpec slice, double t, int sliceIndex)
    {
        var spec = _c.Method.Spec;
        var values = spec.NewValues(ParamScope.PerModel);
        foreach (var def in spec.PerModel)
        {
            var v = Resolve(def, x.Name, t, x.Src.Parameters, slice.Parameters, _r.Parameters);
            if (v == null && def.Required && (!x.IsBase || spec.BaseNeedsModelParams))
                _c.Once($"unset:{def.Name}:{x.M.Text}:{sliceIndex}", () => _c.Problems.Add(x.Src.Mark,
                    $"parameter '{def.Name}' has no value for model '{x.M.Text}' at tensor '{x.Name}' (no filter matched; add an entry without a filter as the fallback)"));
            values.Set(def, v);
        }
        return values;
    }

    public ParamValues GlobalParams(SliceSpec slice, string outName, double t, int sliceIndex)
    {
        var spec = _c.Method.Spec;
        var values = spec.NewValues(ParamScope.Global);
        foreach (var def in spec.Global)
        {
            var v = Resolve(def, outName, t, slice.Parameters, _r.Parameters);
            if (v == null && def.Required)
            {
                var mark = slice.Parameters.Items.TryGetValue(def.Name, out var sp) ? sp.KeyMark
                         : _r.Parameters.Items.TryGetValue(def.Name, out var gp) ? gp.KeyMark : _r.MethodMark;
                _c.Once($"unset:{def.Name}:{sliceIndex}", () => _c.Problems.Add(mark,
                    $"parameter '{def.Name}' has no value for tensor '{outName}' (no filter matched; add an entry without a filter as the fallback)"));
            }
            values.Set(def, v);
        }
        return values;
    }

    /// <summary>The first level, most specific first, whose entry for the parameter matches the tensor; else the default.
    /// Values have the declared type: <see cref="RecipeChecks"/> refused the others before planning.</summary>
    private static object? Resolve(ParamDef def, string tensor, double t, params ParamSet[] levels)
    {
        foreach (var set in levels)
            if (set.TryGet(def.Name, out var v) && v.Resolve(tensor, t) is { } value) return value;
        return def.Default;
    }
}
