using System.Text.Json.Nodes;

namespace Mistral.Merge.Moe.Surgery;

/// <summary>
/// <c>moe_to_dense</c> (a recipe's merge_method, or <c>moe-convert</c>'s default): collapse every layer's experts into
/// one dense MLP by <c>strategy</c>; the output is a MistralForCausalLM (<see cref="MoeToDense.Convert"/>).
/// </summary>
public sealed class MoeToDenseSurgery : ISurgery
{
    private static readonly ChoiceParam Strategy = new("strategy", "How the experts become one MLP", ["mean", "expert", "frequency", "aligned_mean", "concat", "refit"]);
    private static readonly ExpertsParam Expert = new("expert", "strategy expert: the expert kept, one index for every layer or one per layer (a list)");
    private static readonly IntParam Reference = new("reference", "strategy aligned_mean: the reference expert (default the most frequent, else 0)", Min: 0);
    private static readonly FlagParam Weighted = new("weighted", "strategy aligned_mean: weight the aligned experts by routing frequency");
    private static readonly IntParam TopK = new("top_k", "strategy concat: keep the K most frequent experts (default all)");
    private static readonly ChoiceParam Init = new("init", "strategy refit: how w1/w3 start (select: the N most important units of all experts)", ["mean", "frequency", "aligned_mean", "select"]);
    private static readonly IntParam IntermediateSize = new("intermediate_size", "strategy refit: dense intermediate size (default the experts'; another size needs init select)");
    private static readonly RidgeParam Ridge = new("ridge", "strategy refit: λ as a fraction of trace(G)/N, or auto (1e-3)");
    private static readonly IntParam RefineSteps = new("refine_steps", "strategy refit: gradient steps on w1/w3 after the w2 solve (w2 re-solved after each)", Min: 0);

    public SurgerySpec Spec { get; } = new("moe_to_dense", "collapse each layer's experts into one dense MLP (MistralForCausalLM)",
        [Strategy, Expert, Reference, Weighted, TopK, Init, IntermediateSize, Ridge, RefineSteps, .. RoutingParams.All]);

    public void CheckStatic(SurgeryArgs a)
    {
        var s = a.Get(Strategy);
        if (s == null) return;
        void Only(SurgeryParam p, string strategy)
        {
            if (a.Has(p) && s != strategy) a.Add(p, $"{a.Param(p)} is only used by strategy {strategy} ({a.Subject} uses {s})");
        }
        Only(Expert, "expert"); Only(Reference, "aligned_mean"); Only(Weighted, "aligned_mean"); Only(TopK, "concat");
        Only(Init, "refit"); Only(IntermediateSize, "refit"); Only(Ridge, "refit"); Only(RefineSteps, "refit");
        if (s == "refit" && !a.Has(RoutingParams.Calibration))
            a.Add(null, $"strategy refit needs {a.Named(RoutingParams.Calibration)} (text file(s){a.Relative}: the dense MLP is fitted to the MoE block outputs on it)");
        if (s == "expert" && !a.Has(Expert)) a.Add(null, $"strategy expert needs {a.Param(Expert)} (an index, a per-layer list or a gradient)");
    }

    public ISurgeryJob? Prepare(SurgeryArgs a, MixtralLayout m)
    {
        var strategy = MoeToDense.ParseStrategy(a.Get(Strategy) ?? "mean", Strategy.Name);
        var routing = RoutingParams.Read(a, m);
        bool weighted = a.Get(Weighted);
        int? topK = a.Get(TopK, m.Experts, "experts kept by concat");
        int? reference = a.Get(Reference, m.Experts - 1, "the reference expert of aligned_mean");
        int[]? perLayer = strategy == DenseStrategy.Expert ? a.Get(Expert, m.Layers, m.Experts) : null;
        if (!routing.Given && (strategy == DenseStrategy.Frequency || (strategy == DenseStrategy.AlignedMean && weighted) || (topK is { } k && k < m.Experts)))
            a.Add(null, $"strategy {MoeToDense.StrategyName(strategy)}{(strategy == DenseStrategy.Concat ? $" with top_k {topK}" : weighted ? " weighted" : "")} needs routing frequencies: set {a.Named(RoutingParams.Calibration)} (a text file{a.Relative}) or {a.Named(RoutingParams.Frequencies)} (a moe-stats --json file)");
        Refit.RefitOptions? refit = null;
        if (strategy == DenseStrategy.Refit)
        {
            var init = a.Get(Init);
            int? size = a.Get(IntermediateSize, int.MaxValue, "dense hidden units");
            double? ridge = a.Get(Ridge);
            int? steps = a.Get(RefineSteps, 1000, "refinement steps");
            if (init != null && size is { } n && n != m.Intermediate && init != "select")
                a.Add(IntermediateSize, $"{a.Param(IntermediateSize)} {n} differs from the experts' {m.Intermediate}: only init select can choose another size");
            if (size is { } n2 && n2 > m.Experts * m.Intermediate)
                a.Add(IntermediateSize, $"{a.Param(IntermediateSize)} {n2} is more than the {m.Experts * m.Intermediate} units of all experts");
            if (init == null || (a.Has(IntermediateSize) && size == null) || (a.Has(RefineSteps) && steps == null) || !routing.Given) return null;
            refit = new Refit.RefitOptions
            {
                Init = Refit.RefitOptions.ParseInit(init), IntermediateSize = size, Ridge = ridge, RefineSteps = steps ?? 0,
                Calibration = [], Ctx = routing.Ctx, Stride = routing.Stride,
            };
        }
        var options = new MoeToDenseOptions
        {
            Refit = refit,
            Strategy = strategy, ExpertPerLayer = perLayer, ConcatTopK = topK, AlignedFrequencyWeighted = weighted, ReferenceExpert = reference,
            OutDType = a.OutDType, CardNote = a.CardNote(), RecipeText = a.RecipeText, SourceLabel = a.SourceLabel,
        };
        return new Job(m, options, routing);
    }

    private sealed class Job(MixtralLayout m, MoeToDenseOptions options, RoutingSource routing) : ISurgeryJob
    {
        private readonly int _wide = options.Strategy == DenseStrategy.Concat ? (options.ConcatTopK ?? m.Experts) * m.Intermediate
            : options.Refit?.IntermediateSize ?? m.Intermediate;
        private readonly long _carried = m.Carried.Sum(n => m.Folder.Info(n).ElementCount);
        private readonly string _source = m.Folder.Path;

        public IReadOnlyList<string> Describe()
        {
            var ci = System.Globalization.CultureInfo.InvariantCulture;
            long parameters = _carried + 3L * m.Layers * _wide * m.Hidden;
            var dtype = options.OutDType?.ToTorchName() ?? $"{m.ExpertDType} (as stored)";
            var lines = new List<string>
            {
                $"surgery:  moe_to_dense, strategy {MoeToDense.StrategyName(options.Strategy)}"
                    + (options.Strategy == DenseStrategy.AlignedMean ? $" ({(options.AlignedFrequencyWeighted ? "frequency-weighted" : "uniform")}, reference {(options.ReferenceExpert?.ToString(ci) ?? "most frequent, else 0")})" : "")
                    + (options.Strategy == DenseStrategy.Concat ? $" (top {options.ConcatTopK ?? m.Experts} of {m.Experts} experts)" : "")
                    + (options.Refit is { } r ? $" (init {Refit.RefitOptions.InitName(r.Init)}, w2 by ridge least squares, ridge {(r.Ridge?.ToString("G4", ci) ?? $"auto = {Refit.RidgeRule.AutoFactor.ToString("G4", ci)}")} × trace(G)/N, {r.RefineSteps} refinement step(s), sequential layer by layer)" : ""),
                $"source:   {SurgeryText.Source(m)}",
                $"output:   MistralForCausalLM, intermediate_size {_wide}, {SurgeryText.N(parameters)} parameters, dtype {dtype}",
                $"routing:  {routing.Describe()}",
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

        public SurgeryResult Run(string destination, SurgeryRunOptions o)
        {
            var refit = options.Refit is { } ro ? ro with { Calibration = routing.Ids(_source), Log = o.Log } : null;
            var freq = refit == null ? routing.Frequencies(m, _source, o) : null;
            var r = MoeToDense.Convert(_source, destination, options with
            {
                Refit = refit,
                Frequencies = freq,
                Writer = o.Writer,
                CopyTokenizer = o.CopyTokenizer,
                Threads = o.Threads,
                Progress = o.Progress,
            }, o.Cancellation);
            var name = MoeToDense.StrategyName(options.Strategy);
            return new SurgeryResult($"wrote {destination}: MistralForCausalLM from {Path.GetFileName(_source.TrimEnd('/'))}, intermediate {r.Intermediate}, {SurgeryText.N(r.Parameters)} parameters ({name})",
                r.Parameters, r.LayerNotes, new JsonObject { ["method"] = "moe_to_dense", ["strategy"] = name, ["intermediate"] = r.Intermediate });
        }
    }
}
