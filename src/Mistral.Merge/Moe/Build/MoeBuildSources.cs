using Mistral.Merge.Models;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Moe.Build;

/// <summary>
/// The opened base and expert models of a moe-build config, checked as mergekit's Mixtral output checks them
/// (every model Llama or Mistral, all of one model_type) and further: every expert has the base's layers, hidden
/// and intermediate sizes and float MLP tensors of the base's shapes. Problems name the config line of the model.
/// </summary>
public sealed class MoeBuildSources : IDisposable
{
    public static readonly string[] DenseTypes = ["llama", "mistral"];

    public required ModelFolder Base { get; init; }
    public required IReadOnlyList<ModelFolder> Experts { get; init; }
    public required Architecture Names { get; init; }
    public int Layers => Base.Config!.NumHiddenLayers;
    public int Hidden => Base.Config!.HiddenSize;
    public int Intermediate => Base.Config!.IntermediateSize;

    /// <summary>Resolves and opens every model; each problem is added at its config position (then thrown all at once).</summary>
    public static MoeBuildSources Open(MoeBuildConfig c, ModelResolver resolver, bool allowAllSame, RecipeProblems p)
    {
        var opened = new List<ModelFolder>();
        try
        {
            var baseFolder = OpenOne(c.BaseModel, c.BaseMark, "base_model", resolver, p, opened);
            var experts = new List<ModelFolder?>();
            foreach (var (e, i) in c.Experts.Select((e, i) => (e, i)))
                experts.Add(OpenOne(e.SourceModel, e.SourceMark, $"expert {i}", resolver, p, opened));
            p.ThrowIfAny();
            var cfg = baseFolder!.Config!;
            if (!DenseTypes.Contains(cfg.ModelType) || cfg.Architecture is not { } arch || arch.Gate == null)
                p.Add(c.BaseMark, $"base_model {c.BaseModel}: model_type '{cfg.ModelType}'; a Mixtral can be built only from Llama or Mistral models");
            else
            {
                for (int i = 0; i < experts.Count; i++) CheckExpert(c.Experts[i], i, experts[i]!, baseFolder, arch, p);
                if (!allowAllSame && experts.Count > 1 && experts.All(x => x!.Path == experts[0]!.Path))
                    p.Add(c.ExpertsMark, "all experts are the same model: the MoE would compute exactly what it does (--i-understand-this-is-not-useful-without-training builds it anyway)");
            }
            p.ThrowIfAny();
            return new MoeBuildSources { Base = baseFolder, Experts = experts!, Names = baseFolder.Config!.Architecture! };
        }
        catch
        {
            foreach (var f in opened) f.Dispose();
            throw;
        }
    }

    private static ModelFolder? OpenOne(string text, Mark mark, string what, ModelResolver resolver, RecipeProblems p, List<ModelFolder> opened)
    {
        var path = resolver.TryResolve(text, out var looked);
        if (path == null) { p.Add(mark, $"{what} '{text}' not found ({looked})"); return null; }
        try
        {
            var f = ModelFolder.Open(path);
            opened.Add(f);
            if (f.Config == null) { p.Add(mark, $"{what} '{text}': no config.json"); return null; }
            return f;
        }
        catch (MergeException e) { p.Add(mark, $"{what} '{text}': {e.Message}"); return null; }
    }

    private static void CheckExpert(MoeBuildExpert e, int i, ModelFolder f, ModelFolder b, Architecture arch, RecipeProblems p)
    {
        var c = f.Config!; var bc = b.Config!;
        string what = $"expert {i} ({e.SourceModel})";
        if (c.ModelType != bc.ModelType)
        {
            p.Add(e.SourceMark, $"{what}: model_type '{c.ModelType}' differs from the base's '{bc.ModelType}' (mergekit's Mixtral output needs one architecture)");
            return;
        }
        foreach (var (name, mine, theirs) in new[] { ("num_hidden_layers", c.NumHiddenLayers, bc.NumHiddenLayers), ("hidden_size", c.HiddenSize, bc.HiddenSize), ("intermediate_size", c.IntermediateSize, bc.IntermediateSize) })
            if (mine != theirs) { p.Add(e.SourceMark, $"{what}: {name} {mine} differs from the base's {theirs}"); return; }
        for (int l = 0; l < bc.NumHiddenLayers; l++)
            foreach (var w in new[] { arch.Gate!, arch.Up!, arch.Down! })
            {
                var n = arch.Layer(l, w);
                if (!f.Contains(n)) { p.Add(e.SourceMark, $"{what}: missing tensor '{n}'"); return; }
                var t = f.Info(n);
                if (!t.DType.IsFloatMath()) { p.Add(e.SourceMark, $"{what}: tensor '{n}' has dtype {t.DType}; expected F32/F16/BF16"); return; }
                if (!b.Contains(n) || !t.Shape.SequenceEqual(b.Info(n).Shape))
                { p.Add(e.SourceMark, $"{what}: tensor '{n}' has shape [{string.Join(", ", t.Shape)}], the base's is [{(b.Contains(n) ? string.Join(", ", b.Info(n).Shape) : "missing")}]"); return; }
            }
    }

    public void Dispose()
    {
        Base.Dispose();
        foreach (var e in Experts) if (!ReferenceEquals(e, Base)) e.Dispose();
    }
}
