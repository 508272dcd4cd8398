using Mistral.Merge.Merging;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>
/// Every parameter's value for one tensor: a model parameter from the model's, else the slice's, else the recipe's
/// parameters, else the method's default; a method parameter from the slice's, else the recipe's, else the default.
/// Each level applies its filters and gradients (<c>ParamValue.Resolve</c>) for the tensor and its position t.
/// A required parameter left without a value is reported once per model (or tensor) and slice.
/// </summary>
internal sealed class ParameterResolver
{
    private readonly PlanContext _c;
    private Recipe _r => _c.Recipe;

    public ParameterResolver(PlanContext context) { _c = context; }

    public Dictionary<string, object?> ModelParams(LocatedInput x, SliceSpec slice, double t, int sliceIndex)
    {
        var spec = _c.Method.Spec;
        var ps = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var def in spec.ModelParams)
        {
            var v = Resolve(x.Src.Parameters, def.Name, x.Name, t) ?? Resolve(slice.Parameters, def.Name, x.Name, t)
                    ?? Resolve(_r.Parameters, def.Name, x.Name, t) ?? def.Default;
            if (v == null && def.Required && (!x.IsBase || spec.BaseNeedsModelParams))
                _c.Once($"unset:{def.Name}:{x.M.Text}:{sliceIndex}", () => _c.Problems.Add(x.Src.Mark,
                    $"parameter '{def.Name}' has no value for model '{x.M.Text}' at tensor '{x.Name}' (no filter matched; add an entry without a filter as the fallback)"));
            ps[def.Name] = v;
        }
        return ps;
    }

    public Dictionary<string, object?> MethodParams(SliceSpec slice, string outName, double t, int sliceIndex)
    {
        var spec = _c.Method.Spec;
        var mp = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var def in spec.MethodParams)
        {
            var v = Resolve(slice.Parameters, def.Name, outName, t) ?? Resolve(_r.Parameters, def.Name, outName, t) ?? def.Default;
            if (v == null && def.Required)
            {
                var mark = slice.Parameters.Items.TryGetValue(def.Name, out var sp) ? sp.KeyMark
                         : _r.Parameters.Items.TryGetValue(def.Name, out var gp) ? gp.KeyMark : _r.MethodMark;
                _c.Once($"unset:{def.Name}:{sliceIndex}", () => _c.Problems.Add(mark,
                    $"parameter '{def.Name}' has no value for tensor '{outName}' (no filter matched; add an entry without a filter as the fallback)"));
            }
            mp[def.Name] = v;
        }
        return mp;
    }

    private static object? Resolve(ParamSet set, string name, string tensor, double t)
        => set.TryGet(name, out var v) ? v.Resolve(tensor, t) : null;
}
