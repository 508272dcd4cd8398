using Mistral.Merge.Merging;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>
/// The checks that need no model: every parameter is one the method takes (another method's parameter is a warning), of the right kind and in range; the
/// required parameters are set; the base model and the sources of every slice suit the method.
/// </summary>
internal sealed class RecipeChecks
{
    private readonly PlanContext _c;
    private Recipe _r => _c.Recipe;
    private RecipeProblems _p => _c.Problems;
    private IMergeMethod _method => _c.Method;

    public RecipeChecks(PlanContext context) { _c = context; }

    public void CheckStatic()
    {
        var spec = _method.Spec;
        CheckParamSet(_r.Parameters, sourceLevel: false);
        foreach (var s in _r.Slices)
        {
            CheckParamSet(s.Parameters, sourceLevel: false);
            foreach (var src in s.Sources) CheckParamSet(src.Parameters, sourceLevel: true);
        }

        foreach (var def in spec.Global.Where(d => d.Required))
        {
            if (_r.Parameters.Mentions(def.Name)) continue;
            foreach (var s in _r.Slices.Where(s => !s.Parameters.Mentions(def.Name)))
                _p.Add(_r.FromModels ? _r.MethodMark : s.Mark, $"merge_method '{spec.Name}' requires parameter '{def.Name}' (set it under parameters:)");
        }

        if (spec.Base == BaseRole.Required && _r.BaseModel == null && _r.Slices.Any(s => s.BaseModel == null))
            _p.Add(_r.MethodMark, $"merge_method '{spec.Name}' needs a base_model");

        foreach (var s in _r.Slices) CheckSlice(s);
    }

    private void CheckSlice(SliceSpec s)
    {
        var spec = _method.Spec;
        var baseRef = s.BaseModel ?? _r.BaseModel;
        bool hasBase = baseRef != null && s.Sources.Any(x => x.Model.Text == baseRef.Text);
        var dup = s.Sources.GroupBy(x => x.Model.Text).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) _p.Add(dup.Skip(1).First().Mark, $"model '{dup.Key}' appears twice in one slice");
        if (s.Sources.Count == 0) return;
        if (baseRef != null && !hasBase && spec.Base != BaseRole.Ordinary && !_r.FromModels)
            _p.Add(s.Mark, $"base model '{baseRef.Text}' is not among this slice's sources");
        else if (_method.CheckSources(s.Sources.Count, hasBase && spec.Base != BaseRole.Ordinary) is { } problem)
            _p.Add(_r.FromModels ? _r.MethodMark : s.Mark, problem);

        foreach (var def in spec.PerModel.Where(d => d.Required))
        {
            if (_r.Parameters.Mentions(def.Name) || s.Parameters.Mentions(def.Name)) continue;
            foreach (var src in s.Sources)
            {
                bool isBase = baseRef != null && src.Model.Text == baseRef.Text;
                if (isBase && !spec.BaseNeedsModelParams) continue;
                if (!src.Parameters.Mentions(def.Name))
                    _p.Add(src.Mark, $"model '{src.Model.Text}' has no '{def.Name}' parameter (required by {spec.Name}{(isBase ? ", which merges the base as an ordinary input" : "")})");
            }
        }
    }

    private void CheckParamSet(ParamSet set, bool sourceLevel)
    {
        var spec = _method.Spec;
        foreach (var (name, (value, keyMark)) in set.Items)
        {
            var def = spec.Find(name);
            if (def == null)
            {
                var all = spec.Params.Select(d => d.Name).ToList();
                var known = all.Count == 0 ? "it takes no parameters" : $"it takes {string.Join(", ", all)}";
                // A parameter of another method (weight under slerp) is ignored, as mergekit ignores it, but said once;
                // a name no method takes is a misspelling or an unknown key: an error with a suggestion.
                if (MergeMethods.Methods.Any(m => m.Spec.Find(name) != null))
                    _c.Once($"unused:{keyMark}", () => _c.Warnings.Add($"{_p.FileLabel}:{keyMark.Line}:{keyMark.Column}: parameter '{name}' is not used by merge_method '{spec.Name}' (ignored, as mergekit does; {known})"));
                else
                    _p.Add(keyMark, $"merge_method '{spec.Name}' does not take parameter '{name}'{Suggest.Hint(name, all)} ({known})");
                continue;
            }
            // A method parameter under a model's parameters is ignored (as mergekit does), but said.
            if (sourceLevel && def.Scope == ParamScope.Global)
            {
                _c.Warnings.Add($"{_p.FileLabel}:{keyMark.Line}:{keyMark.Column}: parameter '{name}' under a model is not used: {spec.Name} takes it under the recipe's or the slice's parameters (ignored, as mergekit does)");
                continue;
            }
            foreach (var (leaf, mark) in value.Leaves())
            {
                if (!def.Accepts(leaf))
                {
                    _p.Add(mark, $"parameter '{name}' must be {def.KindText}, got {Show(leaf)}");
                    break;
                }
                // Every anchor of a gradient and every filter's value is checked, not just the values some tensor resolves to.
                if (def.Range != null && leaf is double v)
                {
                    var (error, warning) = def.Range.Check(name, v);
                    if (error != null) _p.Add(mark, error);
                    if (warning != null) _c.Warnings.Add($"{_p.FileLabel}:{mark.Line}:{mark.Column}: {warning}");
                }
            }
        }
    }

    private static string Show(object v) => v switch { string s => $"'{s}'", bool b => b ? "true" : "false", _ => MergeTask.Fmt(v) };
}
