using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

public sealed record PlanOptions
{
    public ulong Seed { get; init; }
    /// <summary>Hugging Face hub cache to search (default: from the environment).</summary>
    public string? HubCache { get; init; }
}

/// <summary>
/// Recipe → one task per output tensor. Validates the parameters against the method, resolves the
/// models, walks slices and layers, and resolves every parameter for every tensor. Knows nothing
/// of the maths. Every problem is collected and reported at once.
/// </summary>
public sealed class MergePlanner
{
    private readonly Recipe _r;
    private readonly RecipeProblems _p;
    private readonly PlanOptions _o;
    private readonly Dictionary<string, InputModel> _models = new(StringComparer.Ordinal);
    private readonly List<string> _warnings = new();
    private readonly HashSet<string> _onceKeys = new(StringComparer.Ordinal);
    private IMergeMethod _method = null!;

    private MergePlanner(Recipe r, RecipeProblems p, PlanOptions o) { _r = r; _p = p; _o = o; }

    /// <summary>Parses <paramref name="recipePath"/> and plans it; throws <see cref="RecipeException"/> listing every problem.</summary>
    public static MergePlan PlanFile(string recipePath, PlanOptions? options = null)
    {
        var problems = new RecipeProblems(recipePath);
        var recipe = RecipeParser.ParseFile(recipePath, problems);
        return Plan(recipe, problems, options ?? new PlanOptions());
    }

    public static MergePlan Plan(Recipe recipe, RecipeProblems problems, PlanOptions options)
    {
        var planner = new MergePlanner(recipe, problems, options);
        try
        {
            var plan = planner.Build();
            problems.ThrowIfAny();
            return plan!;
        }
        catch
        {
            foreach (var m in planner._models.Values) m.Dispose();
            throw;
        }
    }

    private MergePlan? Build()
    {
        var method = _r.Method.Length == 0 ? null : MergeMethods.Find(_r.Method);
        if (method == null && _r.Method.Length > 0)
            _p.Add(_r.MethodMark, $"unknown merge_method '{_r.Method}'{Suggest.Hint(_r.Method, MergeMethods.Names)} (known: {string.Join(", ", MergeMethods.Names)})");
        if (_r.SourcesMissing && method is not { Spec.BaseOnly: true })
            _p.Add(_r.RootMark, "missing 'models' or 'slices' (one of them is required)");
        if (method != null) { _method = method; CheckStatic(); }
        ResolveModels();
        if (method is ICheckpointSurgery surgery) return BuildSurgery(surgery);
        var ranges = CheckRanges();
        if (_p.Any || method == null) return null;
        return BuildTasks(ranges);
    }

    // ---------------------------------------------------------------- whole-checkpoint methods

    private MergePlan? BuildSurgery(ICheckpointSurgery surgery)
    {
        if (_p.Any || _r.BaseModel == null || !_models.TryGetValue(_r.BaseModel.Text, out var model)) return null;
        var job = surgery.Prepare(_r, model, _p);
        if (job == null || _p.Any) return null;
        return new MergePlan
        {
            Recipe = _r,
            Method = _method,
            Models = _models.Values.ToList(),
            Tasks = [],
            Warnings = _warnings,
            ConfigModel = model,
            TokenizerModel = model,
            OutputLayers = model.Layers,
            Seed = _o.Seed,
            Surgery = job,
        };
    }

    // ---------------------------------------------------------------- static checks (no models needed)

    private void CheckStatic()
    {
        var spec = _method.Spec;
        CheckParamSet(_r.Parameters, sourceLevel: false);
        if (_method is ICheckpointSurgery surgery)
        {
            if (_r.Slices.Count > 0)
                _p.Add(_r.Slices[0].Mark, $"merge_method '{spec.Name}' rewrites one checkpoint: give only base_model (and parameters), not '{(_r.FromModels ? "models" : "slices")}'");
            if (_r.BaseModel == null) _p.Add(_r.MethodMark, $"merge_method '{spec.Name}' needs a base_model (the Mixtral checkpoint to convert)");
            foreach (var def in spec.MethodParams.Where(d => d.Required && !_r.Parameters.Mentions(d.Name)))
                _p.Add(_r.MethodMark, $"merge_method '{spec.Name}' requires parameter '{def.Name}' (set it under parameters:)");
            surgery.CheckStatic(_r, _p);
            return;
        }
        foreach (var s in _r.Slices)
        {
            CheckParamSet(s.Parameters, sourceLevel: false);
            foreach (var src in s.Sources) CheckParamSet(src.Parameters, sourceLevel: true);
        }

        foreach (var def in spec.MethodParams.Where(d => d.Required))
        {
            if (_r.Parameters.Mentions(def.Name)) continue;
            foreach (var s in _r.Slices.Where(s => !s.Parameters.Mentions(def.Name)))
                _p.Add(_r.FromModels ? _r.MethodMark : s.Mark, $"merge_method '{spec.Name}' requires parameter '{def.Name}' (set it under parameters:)");
        }

        if (spec.Base == BaseRole.Required && _r.BaseModel == null && _r.Slices.Any(s => s.BaseModel == null))
            _p.Add(_r.MethodMark, $"merge_method '{spec.Name}' needs a base_model");

        foreach (var s in _r.Slices)
        {
            var baseRef = s.BaseModel ?? _r.BaseModel;
            bool hasBase = baseRef != null && s.Sources.Any(x => x.Model.Text == baseRef.Text);
            var dup = s.Sources.GroupBy(x => x.Model.Text).FirstOrDefault(g => g.Count() > 1);
            if (dup != null) _p.Add(dup.Skip(1).First().Mark, $"model '{dup.Key}' appears twice in one slice");
            if (s.Sources.Count == 0) continue;
            if (baseRef != null && !hasBase && spec.Base != BaseRole.Ordinary && !_r.FromModels)
                _p.Add(s.Mark, $"base model '{baseRef.Text}' is not among this slice's sources");
            else if (_method.CheckSources(s.Sources.Count, hasBase && spec.Base != BaseRole.Ordinary) is { } problem)
                _p.Add(_r.FromModels ? _r.MethodMark : s.Mark, problem);

            foreach (var def in spec.ModelParams.Where(d => d.Required))
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
    }

    private void CheckParamSet(ParamSet set, bool sourceLevel)
    {
        var spec = _method.Spec;
        foreach (var (name, (value, keyMark)) in set.Items)
        {
            var def = spec.Find(name);
            if (def == null)
            {
                var all = spec.MethodParams.Concat(spec.ModelParams).Select(d => d.Name).ToList();
                var known = all.Count == 0 ? "it takes no parameters" : $"it takes {string.Join(", ", all)}";
                _p.Add(keyMark, $"merge_method '{spec.Name}' does not take parameter '{name}'{Suggest.Hint(name, all)} ({known})");
                continue;
            }
            // A method parameter under a model's parameters is ignored (as mergekit does), but said.
            if (sourceLevel && spec.IsMethodParam(name))
            {
                _warnings.Add($"{_p.FileLabel}:{keyMark.Line}:{keyMark.Column}: parameter '{name}' under a model is not used: {spec.Name} takes it under the recipe's or the slice's parameters (ignored, as mergekit does)");
                continue;
            }
            foreach (var (leaf, mark) in value.Leaves())
            {
                bool ok = def.Kind switch { ParamKind.Number => leaf is double, ParamKind.Bool => leaf is bool, _ => leaf is string };
                if (!ok)
                {
                    _p.Add(mark, $"parameter '{name}' must be {def.Kind switch { ParamKind.Number => "a number", ParamKind.Bool => "true or false", _ => "a string" }}, got {Show(leaf)}");
                    break;
                }
                // Every anchor of a gradient and every filter's value is checked, not just the values some tensor resolves to.
                if (def.Range != null && leaf is double v)
                {
                    var (error, warning) = def.Range.Check(name, v);
                    if (error != null) _p.Add(mark, error);
                    if (warning != null) _warnings.Add($"{_p.FileLabel}:{mark.Line}:{mark.Column}: {warning}");
                }
            }
        }
    }

    private static string Show(object v) => v switch { string s => $"'{s}'", bool b => b ? "true" : "false", _ => MergeTask.Fmt(v) };

    // ---------------------------------------------------------------- models

    private void ResolveModels()
    {
        var resolver = new ModelResolver(_r.Folder, _o.HubCache);
        foreach (var mref in _r.AllModelRefs())
        {
            var folder = resolver.TryResolve(mref.Text, out var where);
            if (folder == null) { _p.Add(mref.Mark, $"model '{mref.Text}' not found: looked in {where}"); continue; }
            try
            {
                var mf = ModelFolder.Open(folder);
                _models[mref.Text] = new InputModel(mref.Text, mf, LayerCount(mf));
            }
            catch (MergeException e) { _p.Add(mref.Mark, $"model '{mref.Text}': {e.Message}"); }
        }
    }

    private static int LayerCount(ModelFolder f)
    {
        int max = -1;
        foreach (var n in f.TensorNames) if (TensorNames.TryParseLayer(n, out var l, out _)) max = Math.Max(max, l);
        return f.Config is { NumHiddenLayers: > 0 } c ? Math.Max(c.NumHiddenLayers, max + 1) : max + 1;
    }

    private List<List<(int Start, int End)>> CheckRanges()
    {
        var all = new List<List<(int, int)>>();
        foreach (var s in _r.Slices)
        {
            var ranges = new List<(int, int)>();
            foreach (var src in s.Sources)
            {
                // A model that was not found is already reported; its range is checked once it is there.
                if (!_models.TryGetValue(src.Model.Text, out var m)) { ranges.Add(src.LayerRange ?? (0, 0)); continue; }
                var range = src.LayerRange ?? (0, m.Layers);
                if (range.End > m.Layers)
                    _p.Add(src.LayerRangeMark, $"layer_range [{range.Start}, {range.End}) is beyond model '{src.Model.Text}', which has {m.Layers} layers");
                ranges.Add(range);
            }
            for (int i = 1; i < ranges.Count; i++)
            {
                if (!_models.ContainsKey(s.Sources[i].Model.Text) || !_models.ContainsKey(s.Sources[0].Model.Text)) continue;
                int a = ranges[0].Item2 - ranges[0].Item1, b = ranges[i].Item2 - ranges[i].Item1;
                if (a != b)
                    _p.Add(s.Sources[i].LayerRange != null ? s.Sources[i].LayerRangeMark : s.Sources[i].Mark,
                        $"model '{s.Sources[i].Model.Text}' gives {b} layers but '{s.Sources[0].Model.Text}' gives {a}; every source of a slice needs the same number of layers");
            }
            all.Add(ranges);
        }
        return all;
    }

    // ---------------------------------------------------------------- tasks

    private MergePlan BuildTasks(List<List<(int Start, int End)>> ranges)
    {
        var configRef = _r.BaseModel ?? _r.Slices[0].Sources[0].Model;
        var configModel = _models[configRef.Text];
        var tasks = new List<MergeTask>();
        var pre = new List<string>();
        var post = new List<string>();
        foreach (var n in configModel.Folder.TensorNames)
        {
            if (TensorNames.TryParseLayer(n, out _, out _) || IsIgnored(n)) continue;
            (n.Contains("embed", StringComparison.Ordinal) ? pre : post).Add(n);
        }

        // The output follows the config model's layout: with tied embeddings there is no lm_head to merge into.
        if (!configModel.Folder.Contains(TensorNames.LmHead))
            foreach (var m in _models.Values.Where(m => m != configModel && m.Folder.Contains(TensorNames.LmHead)))
                Once($"untied:{m.Text}", () => _warnings.Add($"model '{m.Text}' has its own {TensorNames.LmHead}, but '{configRef.Text}' ties it to {TensorNames.Embed}; the output is tied too and that lm_head is not used"));

        var first = _r.Slices[0];
        foreach (var n in pre) AddTask(tasks, 0, first, first.Sources, ranges[0], _ => n, n, 0);

        int outLayer = 0;
        var suffixCache = new Dictionary<(InputModel, int), List<string>>();
        for (int s = 0; s < _r.Slices.Count; s++)
        {
            var slice = _r.Slices[s];
            var (start, end) = ranges[s][0];
            int n = end - start;
            for (int k = 0; k < n; k++)
            {
                double t = n == 1 ? 1 : (double)k / (n - 1);
                var lead = _models[slice.Sources[0].Model.Text];
                foreach (var suffix in Suffixes(suffixCache, lead, start + k))
                {
                    int kk = k, ss = s;
                    AddTask(tasks, s, slice, slice.Sources, ranges[s], src => TensorNames.Layer(ranges[ss][slice.Sources.IndexOf(src)].Start + kk, suffix),
                        TensorNames.Layer(outLayer, suffix), t);
                }
                outLayer++;
            }
        }

        var last = _r.Slices[^1];
        var postSources = last.Sources.Take(first.Sources.Count).ToList();
        foreach (var n in post) AddTask(tasks, _r.Slices.Count - 1, last, postSources, ranges[^1], _ => n, n, 0);

        InputModel? tokModel = _r.TokenizerSource != null ? _models.GetValueOrDefault(_r.TokenizerSource.Text) : configModel;
        int? vocab = null;
        var embed = tasks.FirstOrDefault(t => t.OutputName == TensorNames.Embed);
        if (embed != null && configModel.Folder.Config is { VocabSize: > 0 } cfg && embed.Shape.Length == 2 && embed.Shape[0] != cfg.VocabSize)
            vocab = (int)embed.Shape[0];

        return new MergePlan
        {
            Recipe = _r,
            Method = _method,
            Models = _models.Values.ToList(),
            Tasks = tasks,
            Warnings = _warnings,
            ConfigModel = configModel,
            TokenizerModel = tokModel,
            OutputLayers = _r.FromModels ? configModel.Folder.Config?.NumHiddenLayers ?? outLayer : outLayer,
            OutputVocab = vocab,
            Seed = _o.Seed,
        };
    }

    private static bool IsIgnored(string name) => name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal);

    private static List<string> Suffixes(Dictionary<(InputModel, int), List<string>> cache, InputModel m, int layer)
    {
        if (cache.TryGetValue((m, layer), out var list)) return list;
        list = new List<string>();
        foreach (var n in m.Folder.TensorNames)
            if (TensorNames.TryParseLayer(n, out var l, out var suffix) && l == layer && !IsIgnored(n)) list.Add(suffix);
        cache[(m, layer)] = list;
        return list;
    }

    private static bool IsEmbed(string name) => name.Contains("embed_tokens", StringComparison.Ordinal) || name.EndsWith("lm_head.weight", StringComparison.Ordinal);

    private void Once(string key, Action action) { if (_onceKeys.Add(key)) action(); }

    private void AddTask(List<MergeTask> tasks, int sliceIndex, SliceSpec slice, List<SourceSpec> sources, List<(int, int)> ranges,
        Func<SourceSpec, string> inputName, string outName, double t)
    {
        var spec = _method.Spec;
        var baseRef = slice.BaseModel ?? _r.BaseModel;
        bool usesBase = spec.Base != BaseRole.Ordinary;
        var inputs = new List<TaskInput>();
        var ordinals = new List<int>();
        int ordinal = 0, baseIndex = -1;
        bool baseShaped = spec.BaseShapesOutput;
        TensorInfo? baseInfo = null;

        // First pass: locate each source's tensor.
        var located = new List<(SourceSpec Src, InputModel M, string Name, SafetensorsFile F, TensorInfo I, bool IsBase)>();
        foreach (var src in sources)
        {
            var m = _models[src.Model.Text];
            var name = inputName(src);
            if (!m.Folder.TryGet(name, out var f, out var info))
            {
                if (name.EndsWith("lm_head.weight", StringComparison.Ordinal) && m.Folder.TryGet(TensorNames.Embed, out f, out info))
                    Once($"tied:{m.Text}", () => _warnings.Add($"model '{m.Text}' has no {name}; using its tied {TensorNames.Embed}"));
                else
                {
                    Once($"missing:{m.Text}:{name}", () => _p.Add(src.Mark, $"model '{m.Text}' has no tensor '{name}' (needed for output '{outName}')"));
                    return;
                }
            }
            if (!info.DType.IsFloatMath() && info.DType != DType.F64)
            {
                _p.Add(src.Mark, $"model '{m.Text}': tensor '{name}' has dtype {info.DType}, which cannot be merged");
                return;
            }
            bool isBase = usesBase && baseRef != null && src.Model.Text == baseRef.Text;
            if (isBase) baseInfo = info;
            located.Add((src, m, name, f, info, isBase));
        }

        // Output shape.
        long[] shape;
        var shapes = located.Select(x => x.I.Shape).ToList();
        bool same = shapes.All(s => s.SequenceEqual(shapes[0]));
        if (baseShaped && baseInfo != null) shape = baseInfo.Shape;
        else if (same) shape = shapes[0];
        else if (IsEmbed(outName) && shapes.All(s => s.Length == 2))
        {
            shape = [shapes.Min(s => s[0]), shapes.Min(s => s[1])];
            Once($"crop:{outName}", () => _warnings.Add($"{outName}: shapes differ ({string.Join(" vs ", located.Select(x => $"{x.M.Text} [{string.Join(", ", x.I.Shape)}]"))}); using the common top-left [{shape[0]}, {shape[1]}] (vocabularies are not merged)"));
        }
        else
        {
            _p.Add(sources[0].Mark, $"tensor '{outName}': shapes differ between models ({string.Join(" vs ", located.Select(x => $"{x.M.Text} [{string.Join(", ", x.I.Shape)}]"))})");
            return;
        }

        var outDType = _r.OutDType ?? _r.DType ?? (baseInfo ?? located[0].I).DType;
        if (outDType == DType.F64) outDType = DType.F32;

        foreach (var x in located)
        {
            int ord = x.IsBase ? -1 : ordinal++;
            if (!x.I.Shape.SequenceEqual(shape))
            {
                bool croppable = x.I.Shape.Length == 2 && shape.Length == 2 && x.I.Shape[0] >= shape[0] && x.I.Shape[1] >= shape[1];
                if (!(IsEmbed(outName) && croppable))
                {
                    Once($"skip:{x.M.Text}:{outName}", () => _warnings.Add($"skipping model '{x.M.Text}' for {outName}: shape [{string.Join(", ", x.I.Shape)}] differs from the base's [{string.Join(", ", shape)}]"));
                    continue;
                }
                if (baseShaped) Once($"crop:{x.M.Text}:{outName}", () => _warnings.Add($"{outName}: using the top-left [{shape[0]}, {shape[1]}] of model '{x.M.Text}' [{string.Join(", ", x.I.Shape)}]"));
            }
            var ps = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (var def in spec.ModelParams)
            {
                var v = Resolve(x.Src.Parameters, def.Name, x.Name, t) ?? Resolve(slice.Parameters, def.Name, x.Name, t)
                        ?? Resolve(_r.Parameters, def.Name, x.Name, t) ?? def.Default;
                if (v == null && def.Required && (!x.IsBase || spec.BaseNeedsModelParams))
                    Once($"unset:{def.Name}:{x.M.Text}:{sliceIndex}", () => _p.Add(x.Src.Mark,
                        $"parameter '{def.Name}' has no value for model '{x.M.Text}' at tensor '{x.Name}' (no filter matched; add an entry without a filter as the fallback)"));
                ps[def.Name] = v;
            }
            if (_method.CheckInput(ps, $"model '{x.M.Text}', tensor '{x.Name}'") is { } inputProblem)
                Once($"input:{x.M.Text}", () => _p.Add(x.Src.Mark, inputProblem));
            if (x.IsBase) baseIndex = inputs.Count;
            ordinals.Add(ord);
            inputs.Add(new TaskInput { Model = x.M, TensorName = x.Name, File = x.F, Info = x.I, IsBase = x.IsBase, Params = ps });
        }

        var mp = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var def in spec.MethodParams)
        {
            var v = Resolve(slice.Parameters, def.Name, outName, t) ?? Resolve(_r.Parameters, def.Name, outName, t) ?? def.Default;
            if (v == null && def.Required)
            {
                var mark = slice.Parameters.Items.TryGetValue(def.Name, out var sp) ? sp.KeyMark
                         : _r.Parameters.Items.TryGetValue(def.Name, out var gp) ? gp.KeyMark : _r.MethodMark;
                Once($"unset:{def.Name}:{sliceIndex}", () => _p.Add(mark,
                    $"parameter '{def.Name}' has no value for tensor '{outName}' (no filter matched; add an entry without a filter as the fallback)"));
            }
            mp[def.Name] = v;
        }

        long cols = shape.Length == 0 ? 1 : shape[^1];
        long elements = 1;
        foreach (var dim in shape) elements *= dim;
        tasks.Add(new MergeTask
        {
            OutputName = outName,
            Shape = shape,
            OutDType = outDType,
            Method = _method,
            Inputs = inputs,
            T = t,
            Slice = sliceIndex,
            MethodTask = new MethodTask
            {
                OutputName = outName,
                Rows = cols == 0 ? 0 : elements / cols,
                Cols = cols,
                BaseIndex = baseIndex,
                Ordinals = ordinals.ToArray(),
                MethodParams = mp,
                ModelParams = inputs.Select(i => i.Params).ToList(),
                Seed = _o.Seed,
            },
        });
        if (_method.CheckTask(tasks[^1].MethodTask, inputs.Select(i => i.Model.Text).ToList()) is { } taskProblem)
            Once($"task:{sliceIndex}", () => _p.Add(sources[0].Mark, taskProblem));
    }

    private static object? Resolve(ParamSet set, string name, string tensor, double t)
        => set.TryGet(name, out var v) ? v.Resolve(tensor, t) : null;
}
