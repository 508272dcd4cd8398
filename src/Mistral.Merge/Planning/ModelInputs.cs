using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Planning;

/// <summary>
/// Opens every model a recipe names (local folder or hub cache) into <see cref="PlanContext.Models"/>, counts its
/// layers, and checks each slice's layer ranges against them.
/// </summary>
internal sealed class ModelInputs
{
    private readonly PlanContext _c;
    private Recipe _r => _c.Recipe;
    private RecipeProblems _p => _c.Problems;
    private Dictionary<string, InputModel> _models => _c.Models;

    public ModelInputs(PlanContext context) { _c = context; }

    public void ResolveModels()
    {
        var resolver = new ModelResolver(_r.Folder, _c.Options.HubCache, _c.Options.Hub);
        foreach (var mref in _r.AllModelRefs())
        {
            // model+adapter: the model's tensors with a PEFT adapter applied while they are read
            var parts = mref.Text.Split('+', 2);
            try
            {
                var folder = resolver.TryResolve(parts[0], out var where);
                if (folder == null) { _p.Add(mref.Mark, $"model '{parts[0]}' not found: looked in {where}"); continue; }
                string? adapterFolder = null;
                if (parts.Length == 2 && (adapterFolder = resolver.TryResolve(parts[1], out var whereAdapter)) == null)
                {
                    _p.Add(mref.Mark, $"adapter '{parts[1]}' not found: looked in {whereAdapter}");
                    continue;
                }
                var mf = ModelFolder.Open(folder);
                LoraAdapter? adapter = null;
                try { adapter = adapterFolder == null ? null : LoraAdapter.Open(adapterFolder); }
                catch { mf.Dispose(); throw; }
                _models[mref.Text] = new InputModel(mref.Text, mf, LayerCount(mf)) { Adapter = adapter };
            }
            catch (MergeException e) { _p.Add(mref.Mark, $"model '{mref.Text}': {e.Message}"); }
        }
        new ArchitectureCheck(_c).Check();
    }

    private static int LayerCount(ModelFolder f)
    {
        int max = -1;
        foreach (var n in f.TensorNames) if (f.Names.TryParseLayer(n, out var l, out _)) max = Math.Max(max, l);
        return f.Config is { NumHiddenLayers: > 0 } c ? Math.Max(c.NumHiddenLayers, max + 1) : max + 1;
    }

    /// <summary>Each slice's [start, end) per source, in the order of its sources.</summary>
    public List<List<(int Start, int End)>> CheckRanges()
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
}
