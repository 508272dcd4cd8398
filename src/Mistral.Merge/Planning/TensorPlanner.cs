using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>One source's tensor for one output tensor, found in its model.</summary>
internal readonly record struct LocatedInput(SourceSpec Src, InputModel M, string Name, SafetensorsFile F, TensorInfo I, bool IsBase);

/// <summary>
/// Walks the recipe's slices and layers into one <see cref="MergeTask"/> per output tensor: the embeddings before
/// the layers from the first slice, every layer's tensors from the slice that gives it, the rest after from the
/// last slice. Each task locates its inputs, takes its shape and dtype from <see cref="ShapePolicy"/> and its
/// parameters from <see cref="ParameterResolver"/>.
/// </summary>
internal sealed class TensorPlanner
{
    private readonly PlanContext _c;
    private readonly ShapePolicy _shapes;
    private readonly ParameterResolver _params;
    private Recipe _r => _c.Recipe;
    private RecipeProblems _p => _c.Problems;
    private IMergeMethod _method => _c.Method;
    private Dictionary<string, InputModel> _models => _c.Models;

    public TensorPlanner(PlanContext context)
    {
        _c = context;
        _shapes = new ShapePolicy(context);
        _params = new ParameterResolver(context);
    }

    public MergePlan? BuildTasks(List<List<(int Start, int End)>> ranges)
    {
        var configRef = _r.BaseModel ?? _r.Slices[0].Sources[0].Model;
        var configModel = _models[configRef.Text];
        _c.Names = configModel.Folder.Names;
        var tasks = new List<MergeTask>();
        if (_r.Tokenizer is { } spec)
        {
            var inputs = _r.Slices.SelectMany(s => s.Sources).Select(s => _models[s.Model.Text]).Distinct().ToList();
            _c.Tokenizer = OutputTokenizer.Build(spec, inputs, configModel, _r.TokenizerSource is { } src ? _models[src.Text] : null, _p);
            if (_c.Tokenizer == null) return null;
        }
        var (pre, post) = NonLayerTensors(configModel);
        WarnUntied(configModel, configRef.Text);

        var first = _r.Slices[0];
        foreach (var n in pre) AddTask(tasks, 0, first, first.Sources, ranges[0], _ => n, n, 0);

        int outLayer = AddLayerTasks(tasks, ranges);

        var last = _r.Slices[^1];
        var postSources = last.Sources.Take(first.Sources.Count).ToList();
        foreach (var n in post) AddTask(tasks, _r.Slices.Count - 1, last, postSources, ranges[^1], _ => n, n, 0);

        InputModel? tokModel = _r.TokenizerSource != null ? _models.GetValueOrDefault(_r.TokenizerSource.Text) : configModel;
        int? vocab = _c.Tokenizer?.Rows ?? ShapePolicy.OutputVocab(tasks, configModel);

        return new MergePlan
        {
            Recipe = _r,
            Method = _method,
            Models = _models.Values.ToList(),
            Tasks = tasks,
            Warnings = _c.Warnings,
            ConfigModel = configModel,
            TokenizerModel = tokModel,
            OutputLayers = _r.FromModels ? configModel.Folder.Config?.NumHiddenLayers ?? outLayer : outLayer,
            OutputVocab = vocab,
            Tokenizer = _c.Tokenizer,
            Seed = _c.Options.Seed,
        };
    }

    /// <summary>The config model's tensors outside the layers: embeddings go before the layers, the rest after.</summary>
    private static (List<string> Pre, List<string> Post) NonLayerTensors(InputModel configModel)
    {
        var pre = new List<string>();
        var post = new List<string>();
        var names = configModel.Folder.Names;
        foreach (var n in configModel.Folder.TensorNames)
        {
            if (names.TryParseLayer(n, out _, out _) || names.IsIgnored(n)) continue;
            (n == names.Embed ? pre : post).Add(n);
        }
        return (pre, post);
    }

    /// <summary>The output follows the config model's layout: with tied embeddings there is no lm_head to merge into.</summary>
    private void WarnUntied(InputModel configModel, string configName)
    {
        var names = configModel.Folder.Names;
        if (!configModel.Folder.Contains(names.LmHead))
            foreach (var m in _models.Values.Where(m => m != configModel && m.Folder.Contains(m.Folder.Names.LmHead)))
                _c.Once($"untied:{m.Text}", () => _c.Warnings.Add($"model '{m.Text}' has its own {m.Folder.Names.LmHead}, but '{configName}' ties it to {names.Embed}; the output is tied too and that lm_head is not used"));
    }

    /// <summary>Adds every layer's tasks, slice by slice; returns the number of output layers.</summary>
    private int AddLayerTasks(List<MergeTask> tasks, List<List<(int Start, int End)>> ranges)
    {
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
                    AddTask(tasks, s, slice, slice.Sources, ranges[s],
                        src => _models[src.Model.Text].Folder.Names.Layer(ranges[ss][slice.Sources.IndexOf(src)].Start + kk, suffix),
                        _c.Names.Layer(outLayer, suffix), t);
                }
                outLayer++;
            }
        }
        return outLayer;
    }

    private static List<string> Suffixes(Dictionary<(InputModel, int), List<string>> cache, InputModel m, int layer)
    {
        if (cache.TryGetValue((m, layer), out var list)) return list;
        list = new List<string>();
        foreach (var n in m.Folder.TensorNames)
            if (m.Folder.Names.TryParseLayer(n, out var l, out var suffix) && l == layer && !m.Folder.Names.IsIgnored(n)) list.Add(suffix);
        cache[(m, layer)] = list;
        return list;
    }

    private void AddTask(List<MergeTask> tasks, int sliceIndex, SliceSpec slice, List<SourceSpec> sources, List<(int, int)> ranges,
        Func<SourceSpec, string> inputName, string outName, double t)
    {
        var spec = _method.Spec;
        var baseRef = slice.BaseModel ?? _r.BaseModel;
        bool usesBase = spec.Base != BaseRole.Ordinary;
        bool baseShaped = spec.BaseShapesOutput;

        var located = Locate(sources, inputName, outName, usesBase, baseRef?.Text, out var baseInfo);
        if (located == null) return;
        bool vocabRows = _c.Tokenizer != null && _c.Names.IsVocabTensor(outName);
        var shape = vocabRows ? _shapes.VocabShape(located, _c.Tokenizer!.Rows, outName, sources[0])
            : _shapes.OutputShape(located, baseInfo, baseShaped, outName, sources[0], spec.SameShapes);
        if (shape == null) return;
        var outDType = _shapes.OutputDType(baseInfo ?? located[0].I);

        var inputs = new List<TaskInput>();
        var ordinals = new List<int>();
        int ordinal = 0, baseIndex = -1;
        foreach (var x in located)
        {
            int ord = x.IsBase ? -1 : ordinal++;
            if (!vocabRows && !_shapes.Fits(x, shape, outName, baseShaped)) continue;
            var ps = _params.ModelParams(x, slice, t, sliceIndex);
            if (_method.CheckInput(ps, $"model '{x.M.Text}', tensor '{x.Name}'") is { } inputProblem)
                _c.Once($"input:{x.M.Text}", () => _p.Add(x.Src.Mark, inputProblem));
            if (x.IsBase) baseIndex = inputs.Count;
            ordinals.Add(ord);
            inputs.Add(new TaskInput { Model = x.M, TensorName = x.Name, File = x.F, Info = x.I, IsBase = x.IsBase, Params = ps });
        }

        var rows = vocabRows ? EmbeddingRows.Build(_c.Tokenizer!, inputs, baseRef is null ? null : _models[baseRef.Text], sources[0].Mark, _p) : null;
        if (vocabRows && rows == null) return;
        var global = _params.GlobalParams(slice, outName, t, sliceIndex);
        tasks.Add(NewTask(outName, shape, outDType, inputs, baseIndex, ordinals, global, rows));
        if (_method.CheckTask(tasks[^1].MethodTask, inputs.Select(i => i.Model.Text).ToList()) is { } taskProblem)
            _c.Once($"task:{sliceIndex}", () => _p.Add(sources[0].Mark, taskProblem));
    }

    /// <summary>model+adapter: the adapter's own copy of a modules_to_save tensor replaces the model's; an adapted tensor must fit the update.</summary>
    private bool UseAdapter(LoraAdapter adapter, InputModel m, string name, SourceSpec src, ref SafetensorsFile f, ref TensorInfo info)
    {
        if (adapter.Replacement(name) is { } replacement) { f = adapter.File; info = replacement; return true; }
        try { adapter.CheckShape(name, info.Shape); return true; }
        catch (MergeException e) { _p.Add(src.Mark, $"model '{m.Text}': {e.Message}"); return false; }
    }

    /// <summary>Each source's tensor, in order; null when one is missing or cannot be merged (reported).</summary>
    private List<LocatedInput>? Locate(List<SourceSpec> sources, Func<SourceSpec, string> inputName, string outName,
        bool usesBase, string? baseName, out TensorInfo? baseInfo)
    {
        baseInfo = null;
        var located = new List<LocatedInput>();
        foreach (var src in sources)
        {
            var m = _models[src.Model.Text];
            var name = inputName(src);
            if (!m.Folder.TryGet(name, out var f, out var info))
            {
                var names = m.Folder.Names;
                if (name == names.LmHead && m.Folder.TryGet(names.Embed, out f, out info))
                    _c.Once($"tied:{m.Text}", () => _c.Warnings.Add($"model '{m.Text}' has no {name}; using its tied {names.Embed}"));
                else
                {
                    _c.Once($"missing:{m.Text}:{name}", () => _p.Add(src.Mark, $"model '{m.Text}' has no tensor '{name}' (needed for output '{outName}')"));
                    return null;
                }
            }
            if (m.Adapter is { } adapter && !UseAdapter(adapter, m, name, src, ref f, ref info)) return null;
            if (!info.DType.IsFloatMath() && info.DType != DType.F64)
            {
                _p.Add(src.Mark, $"model '{m.Text}': tensor '{name}' has dtype {info.DType}, which cannot be merged");
                return null;
            }
            bool isBase = usesBase && baseName != null && src.Model.Text == baseName;
            if (isBase) baseInfo = info;
            located.Add(new LocatedInput(src, m, name, f, info, isBase));
        }
        return located;
    }

    private MergeTask NewTask(string outName, long[] shape, DType outDType, List<TaskInput> inputs, int baseIndex,
        List<int> ordinals, ParamValues global, EmbeddingRows? rows)
    {
        long cols = shape.Length == 0 ? 1 : shape[^1];
        long elements = 1;
        foreach (var dim in shape) elements *= dim;
        return new MergeTask
        {
            OutputName = outName,
            Shape = shape,
            OutDType = outDType,
            Method = _method,
            Inputs = inputs,
            Rows = rows,
            MethodTask = new MethodTask
            {
                OutputName = outName,
                Rows = cols == 0 ? 0 : elements / cols,
                Cols = cols,
                BaseIndex = baseIndex,
                Ordinals = ordinals.ToArray(),
                Global = global,
                PerModel = inputs.Select(i => i.Params).ToArray(),
                Seed = _c.Options.Seed,
            },
        };
    }
}
