using System.Text.Json.Nodes;

namespace Mistral.Merge.Moe.Surgery;

/// <summary>
/// <c>moe_prune</c> (a recipe's merge_method, or <c>moe-convert --num-experts N</c>): keep <c>num_experts</c> experts
/// per layer chosen by <c>criterion</c> (frequency | output_change), or merge clusters with <c>group</c>; the output
/// is a Mixtral (<see cref="MoePrune.Run"/>).
/// </summary>
public sealed class MoePruneSurgery : ISurgery
{
    private static readonly IntParam NumExperts = new("num_experts", "Experts kept per layer") { Required = true };
    private static readonly ChoiceParam Criterion = new("criterion", "Which experts to keep: the most frequently routed, or those whose removal changes the MoE block output least (needs calibration)", ["frequency", "output_change"]);
    private static readonly FlagParam Group = new("group", "Merge clusters of similar experts instead of dropping experts (needs calibration)");
    private static readonly IntParam ExpertsPerToken = new("experts_per_token", "Experts routed per token in the output (default min(the model's, num_experts))");

    public SurgerySpec Spec { get; } = new("moe_prune", "keep num_experts experts per layer, or merge clusters of them (Mixtral)",
        [NumExperts, Criterion, Group, ExpertsPerToken, .. RoutingParams.All]);

    public void CheckStatic(SurgeryArgs a)
    {
        var c = a.Get(Criterion);
        bool group = a.Get(Group);
        if (group && a.Has(Criterion)) a.Add(Criterion, $"give either {a.Named(Criterion)} (which experts to keep) or '{a.Set(Group)}' (merge clusters of experts), not both");
        if ((c == "output_change" || group) && a.Has(RoutingParams.Frequencies) && !a.Has(RoutingParams.Calibration))
            a.Add(RoutingParams.Frequencies, $"{(group ? "group" : "criterion output_change")} needs {a.Named(RoutingParams.Calibration)} text (the MoE block inputs), not only {a.Named(RoutingParams.Frequencies)}");
    }

    public ISurgeryJob? Prepare(SurgeryArgs a, MixtralLayout m)
    {
        int? n = a.Get(NumExperts, m.Experts, $"experts kept per layer; the model has {m.Experts}");
        var criterion = a.Get(Criterion);
        bool group = a.Get(Group);
        int? perTok = a.Get(ExpertsPerToken, n ?? m.Experts, "experts routed per token, at most num_experts");
        var routing = RoutingParams.Read(a, m);
        bool needsInputs = group || criterion == "output_change";
        var cal = a.Named(RoutingParams.Calibration);
        if (needsInputs && !a.Has(RoutingParams.Calibration))
            a.Add(null, $"moe_prune with {(group ? a.Set(Group) : "criterion output_change")} needs {cal} (a text file{a.Relative})");
        else if (!a.Has(RoutingParams.Calibration) && !a.Has(RoutingParams.Frequencies))
            a.Add(null, $"moe_prune by frequency needs routing frequencies: set {cal} (a text file{a.Relative}) or {a.Named(RoutingParams.Frequencies)} (a moe-stats --json file)");
        if (n == null || criterion == null) return null;
        var options = new MoePruneOptions
        {
            NumExperts = n.Value, Group = group, Selection = criterion == "output_change" ? PruneSelection.OutputChange : PruneSelection.Frequency,
            ExpertsPerToken = perTok, OutDType = a.OutDType, CardNote = a.CardNote(), RecipeText = a.RecipeText, SourceLabel = a.SourceLabel,
        };
        return new Job(m, options, routing, needsInputs);
    }

    private sealed class Job(MixtralLayout m, MoePruneOptions options, RoutingSource routing, bool needsInputs) : ISurgeryJob
    {
        private readonly string _source = m.Folder.Path;

        public IReadOnlyList<string> Describe()
        {
            int n = options.NumExperts, perTok = options.ExpertsPerToken ?? Math.Min(m.Config.NumExpertsPerTok, n);
            long parameters = m.Carried.Sum(x => m.Folder.Info(x).ElementCount) + (long)m.Layers * n * (3L * m.Intermediate * m.Hidden + m.Hidden);
            string how = options.Group ? "clusters of similar experts (mean output on the calibration tokens, average linkage on cosine distance) merged with frequency weights"
                : options.Selection == PruneSelection.OutputChange ? "the experts whose removal changes the MoE block output least on the calibration tokens"
                : "the most frequently routed experts";
            return
            [
                $"surgery:  moe_prune to {n} experts per layer: {how}",
                $"source:   {SurgeryText.Source(m)}",
                $"output:   MixtralForCausalLM, num_local_experts {n}, num_experts_per_tok {perTok}, {SurgeryText.N(parameters)} parameters, dtype {options.OutDType?.ToTorchName() ?? $"{m.ExpertDType} (as stored)"}",
                $"routing:  {routing.Describe()}",
                $"carried:  {m.Carried.Count} tensors copied; router rows of kept experts kept in order (merged clusters: frequency-weighted rows)",
            ];
        }

        public SurgeryResult Run(string destination, SurgeryRunOptions o)
        {
            double[][]? freq = routing.FrequencyFile != null ? routing.Frequencies(m, _source, o) : null;
            MoeCalibration? cal = null;
            if (needsInputs)
            {
                cal = routing.Calibrate(_source, o);
                freq ??= cal.Routing.SelectionFrequencyTable();
            }
            else freq ??= routing.Frequencies(m, _source, o);
            MoeSurgeryResult r;
            using (cal)
                r = MoePrune.Run(_source, destination, options with
                {
                    Frequencies = freq,
                    Calibration = cal,
                    Writer = o.Writer,
                    CopyTokenizer = o.CopyTokenizer,
                    Threads = o.Threads,
                    Progress = o.Progress,
                }, o.Cancellation);
            return new SurgeryResult($"wrote {destination}: Mixtral with {options.NumExperts} experts per layer, {SurgeryText.N(r.Parameters)} parameters",
                r.Parameters, r.LayerNotes, new JsonObject
                {
                    ["method"] = "moe_prune", ["num_experts"] = options.NumExperts,
                    ["criterion"] = options.Selection == PruneSelection.OutputChange ? "output_change" : "frequency", ["group"] = options.Group,
                });
        }
    }
}
