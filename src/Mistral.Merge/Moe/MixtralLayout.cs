using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Moe;

/// <summary>
/// A validated checkpoint of an MoE architecture (Mixtral): every layer has a router [E, H] and E experts with
/// w1/w3 [I, H] and w2 [H, I], named by the model's <see cref="Architecture"/> declaration; all other tensors are
/// "carried" unchanged by MoE surgery.
/// </summary>
public sealed class MixtralLayout
{
    public ModelFolder Folder { get; }
    public ModelConfig Config { get; }
    /// <summary>The declaration the names come from (MoE).</summary>
    public Architecture Names { get; }
    public int Layers { get; }
    public int Experts { get; }
    public int Hidden { get; }
    public int Intermediate { get; }
    public DType ExpertDType { get; }
    /// <summary>Tensors that are not experts or routers, in natural order.</summary>
    public IReadOnlyList<string> Carried { get; }

    /// <summary>Mixtral's router / expert tensor names (for callers without a model; the instance members follow the model).</summary>
    public static string Router(int layer) => Architecture.Mixtral.Layer(layer, Architecture.Mixtral.Router!);
    public static string ExpertTensor(int layer, int expert, string w) => Architecture.Mixtral.Layer(layer, Architecture.Expert(Architecture.Mixtral.ExpertTemplate(w), expert));

    public string RouterName(int layer) => Names.Layer(layer, Names.Router!);
    public string ExpertName(int layer, int expert, string w) => Names.Layer(layer, Architecture.Expert(Names.ExpertTemplate(w), expert));

    public MixtralLayout(ModelFolder folder)
    {
        Folder = folder;
        Config = folder.Config ?? throw new MergeException($"{folder.Path}: no config.json; MoE surgery needs a Mixtral config");
        if (!Config.IsMoe || Config.Architecture is not { IsMoe: true } arch)
            throw new MergeException($"{folder.Path}: not a Mixtral model (architecture '{Config.ArchitectureName}', num_local_experts {Config.NumLocalExperts}); MoE surgery needs {string.Join(" or ", Architecture.All.Where(a => a.IsMoe))}");
        Names = arch;
        Layers = Config.NumHiddenLayers; Experts = Config.NumLocalExperts; Hidden = Config.HiddenSize; Intermediate = Config.IntermediateSize;
        if (Layers < 1 || Hidden < 1 || Intermediate < 1) throw new MergeException($"{folder.Path}: config.json lacks num_hidden_layers/hidden_size/intermediate_size");
        if (Config.NumExpertsPerTok < 1 || Config.NumExpertsPerTok > Experts)
            throw new MergeException($"{folder.Path}: num_experts_per_tok {Config.NumExpertsPerTok} must be between 1 and num_local_experts {Experts}");
        DType? dt = null;
        for (int l = 0; l < Layers; l++)
        {
            Expect(RouterName(l), Experts, Hidden);
            for (int e = 0; e < Experts; e++)
            {
                foreach (var (w, r, c) in new[] { ("w1", Intermediate, Hidden), ("w3", Intermediate, Hidden), ("w2", Hidden, Intermediate) })
                {
                    var info = Expect(ExpertName(l, e, w), r, c);
                    if (!info.DType.IsFloatMath()) throw new MergeException($"{folder.Path}: tensor '{info.Name}' has dtype {info.DType}; experts must be F32/F16/BF16");
                    dt ??= info.DType;
                }
            }
        }
        ExpertDType = dt!.Value;
        var carried = new List<string>();
        foreach (var n in folder.TensorNames)
        {
            if (Names.TryParseLayer(n, out var l, out var suffix))
            {
                if (l >= Layers) throw new MergeException($"{folder.Path}: tensor '{n}' belongs to layer {l}, but num_hidden_layers is {Layers}");
                if (Names.IsMoeSuffix(suffix))
                {
                    if (suffix == Names.Router) continue;
                    if (Names.TryParseExpert(suffix, out var e, out _) && e < Experts) continue;
                    throw new MergeException($"{folder.Path}: unexpected MoE tensor '{n}' (num_local_experts is {Experts})");
                }
            }
            carried.Add(n);
        }
        Carried = carried;
    }

    private TensorInfo Expect(string name, int rows, int cols)
    {
        if (!Folder.Contains(name)) throw new MergeException($"{Folder.Path}: missing tensor '{name}'");
        var t = Folder.Info(name);
        if (t.Shape.Length != 2 || t.Shape[0] != rows || t.Shape[1] != cols)
            throw new MergeException($"{Folder.Path}: tensor '{name}' has shape [{string.Join(", ", t.Shape)}], expected [{rows}, {cols}]");
        return t;
    }

    public ExpertWeights ReadExpert(int layer, int expert) => new(Hidden, Intermediate,
        Folder.ReadSingle(ExpertName(layer, expert, "w1")), Folder.ReadSingle(ExpertName(layer, expert, "w3")), Folder.ReadSingle(ExpertName(layer, expert, "w2")));

    public ExpertWeights[] ReadExperts(int layer)
    {
        var r = new ExpertWeights[Experts];
        for (int e = 0; e < Experts; e++) r[e] = ReadExpert(layer, e);
        return r;
    }

    public float[] ReadRouter(int layer) => Folder.ReadSingle(RouterName(layer));
}
