using System.Globalization;
using Mistral.Merge.Merging;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Moe.Recipes;

/// <summary>
/// <c>merge_method: moe_to_dense</c> (base_model a Mixtral): the recipe form of <c>moe-convert</c>; the
/// same options give the same bytes (<see cref="MoeToDense.Convert"/>).
/// </summary>
public sealed class MoeToDenseMethod : SurgeryMethodBase
{
    public static readonly string[] Strategies = ["mean", "expert", "frequency", "aligned_mean", "concat"];

    public override MethodSpec Spec { get; } = new("moe_to_dense",
    [
        new ParamDef<string>("strategy", "mean"),
        new ParamDef<double>("expert"),
        new ParamDef<double>("reference"),
        new ParamDef<bool>("weighted", false),
        new ParamDef<double>("top_k"),
        .. CalibrationParams,
    ], [], BaseRole.Required)
    { BaseOnly = true };

    public override void CheckStatic(Recipe recipe, RecipeProblems problems)
    {
        var p = new SurgeryParams(recipe, problems);
        var s = p.Choice("strategy", Strategies);
        if (s == null) return;
        void Only(string name, string strategy)
        {
            if (p.Has(name) && s != strategy) p.Add(name, $"parameter '{name}' is only used by strategy {strategy} (this recipe uses {s})");
        }
        Only("expert", "expert"); Only("reference", "aligned_mean"); Only("weighted", "aligned_mean"); Only("top_k", "concat");
        if (s == "expert" && !p.Has("expert")) problems.Add(recipe.MethodMark, "strategy expert needs parameter 'expert' (an index, a per-layer list or a gradient)");
    }

    public override ISurgeryJob? Prepare(Recipe recipe, InputModel baseModel, RecipeProblems problems)
    {
        var p = new SurgeryParams(recipe, problems);
        var m = Layout(recipe, baseModel, problems);
        if (m == null) return null;
        var strategy = MoeToDense.ParseStrategy(p.Choice("strategy", Strategies) ?? "mean", "strategy");
        var (text, freqFile, tokens) = p.Calibration();
        bool weighted = p.Bool("weighted");
        int? topK = p.Int("top_k", 1, m.Experts, "experts kept by concat");
        int? reference = p.Int("reference", 0, m.Experts - 1, "the reference expert of aligned_mean");
        int[]? perLayer = strategy == DenseStrategy.Expert ? p.PerLayerExpert("expert", m.Layers, m.Experts) : null;
        bool hasRouting = p.Has("calibration") || p.Has("frequencies");
        if (!hasRouting && (strategy == DenseStrategy.Frequency || (strategy == DenseStrategy.AlignedMean && weighted) || (topK is { } k && k < m.Experts)))
            problems.Add(recipe.MethodMark, $"strategy {MoeToDense.StrategyName(strategy)}{(strategy == DenseStrategy.Concat ? $" with top_k {topK}" : weighted ? " weighted" : "")} needs routing frequencies: set 'calibration' (a text file, relative to the recipe) or 'frequencies' (a moe-stats --json file)");
        if (problems.Any) return null;
        var options = new MoeToDenseOptions
        {
            Strategy = strategy, ExpertPerLayer = perLayer, ConcatTopK = topK, AlignedFrequencyWeighted = weighted, ReferenceExpert = reference,
            OutDType = p.OutDType, CardNote = p.CardNote(), RecipeText = recipe.Text, SourceLabel = baseModel.Text,
        };
        return new Job(m.Folder.Path, m, options, text, freqFile, tokens);
    }

    private sealed class Job(string source, MixtralLayout m, MoeToDenseOptions options, string? text, string? freqFile, int tokens) : ISurgeryJob
    {
        private readonly int _wide = options.Strategy == DenseStrategy.Concat ? (options.ConcatTopK ?? m.Experts) * m.Intermediate : m.Intermediate;
        private readonly long _carried = m.Carried.Sum(n => m.Folder.Info(n).ElementCount);
        private readonly string _label = Path.GetFileName(source.TrimEnd('/'));

        public IReadOnlyList<string> Describe()
        {
            var ci = CultureInfo.InvariantCulture;
            long parameters = _carried + 3L * m.Layers * _wide * m.Hidden;
            var dtype = options.OutDType?.ToTorchName() ?? $"{m.ExpertDType} (as stored)";
            var lines = new List<string>
            {
                $"surgery:  moe_to_dense, strategy {MoeToDense.StrategyName(options.Strategy)}"
                    + (options.Strategy == DenseStrategy.AlignedMean ? $" ({(options.AlignedFrequencyWeighted ? "frequency-weighted" : "uniform")}, reference {(options.ReferenceExpert?.ToString(ci) ?? "most frequent, else 0")})" : "")
                    + (options.Strategy == DenseStrategy.Concat ? $" (top {options.ConcatTopK ?? m.Experts} of {m.Experts} experts)" : ""),
                $"source:   {DescribeSource(m)}",
                $"output:   MistralForCausalLM, intermediate_size {_wide}, {parameters.ToString("N0", ci)} parameters, dtype {dtype}",
                $"routing:  {RoutingSource(text, freqFile, tokens)}",
                $"carried:  {m.Carried.Count} tensors (attention, norms, embeddings, head) copied{(options.OutDType != null ? $" (floats cast to {options.OutDType.Value.ToTorchName()})" : "")}; routers dropped",
                LayersLine(m),
            };
            if (options.ExpertPerLayer is { } e)
                lines.Add("experts:  " + string.Join(", ", e.Select((x, l) => $"layer {l}: {x}")));
            return lines;
        }

        /// <summary>The dense MLP each layer gets and the experts it comes from, named by the declarations.</summary>
        private string LayersLine(MixtralLayout m)
        {
            var dense = MoeConfigs.DenseOf(m.Names);
            string Prefix(Models.Architecture a) => a.LayerPrefix.Replace("{layer}", "N", StringComparison.Ordinal);
            return $"layers:   {Prefix(dense)}{{{dense.Gate}, {dense.Up}}} [{_wide}, {m.Hidden}], {dense.Down} [{m.Hidden}, {_wide}]"
                + $" <- {Prefix(m.Names)}{m.Names.ExpertsModule}.0..{m.Experts - 1} (w1, w3, w2)";
        }

        public string Run(string destination, ExecuteOptions eo)
        {
            var freq = freqFile != null ? FrequencyTable.Load(freqFile, m.Layers, m.Experts)
                : text != null ? MoeForwardPass.Routing(source, MoeForwardPass.Tokens(source, text, tokens), token: eo.Cancellation).SelectionFrequencyTable()
                : null;
            var r = MoeToDense.Convert(source, destination, options with
            {
                Frequencies = freq,
                Writer = Writer(eo),
                CopyTokenizer = eo.CopyTokenizer,
            }, eo.Cancellation);
            return $"wrote {destination}: MistralForCausalLM from {_label}, intermediate {r.Intermediate}, {r.Parameters.ToString("N0", CultureInfo.InvariantCulture)} parameters ({MoeToDense.StrategyName(options.Strategy)})";
        }
    }
}
