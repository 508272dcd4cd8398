using System.Globalization;
using Mistral.Merge.Merging;
using Mistral.Merge.Recipes;

namespace Mistral.Merge.Moe.Recipes;

/// <summary>
/// <c>merge_method: moe_prune</c> (base_model a Mixtral): keep <c>num_experts</c> experts per layer chosen by
/// <c>criterion</c> (frequency | output_change), or merge clusters with <c>group: true</c>; the recipe form of
/// <c>moe-convert --prune</c>, same bytes for the same options (<see cref="MoePrune.Run"/>).
/// </summary>
public sealed class MoePruneMethod : SurgeryMethodBase
{
    public static readonly string[] Criteria = ["frequency", "output_change"];

    public override MethodSpec Spec { get; } = new("moe_prune",
    [
        new ParamDef<double>("num_experts", Required: true),
        new ParamDef<string>("criterion", "frequency"),
        new ParamDef<bool>("group", false),
        new ParamDef<double>("experts_per_token"),
        .. CalibrationParams,
    ], [], BaseRole.Required)
    { BaseOnly = true };

    public override void CheckStatic(Recipe recipe, RecipeProblems problems)
    {
        var p = new SurgeryParams(recipe, problems);
        var c = p.Choice("criterion", Criteria);
        if (p.Bool("group") && p.Has("criterion")) p.Add("criterion", "give either 'criterion' (which experts to keep) or 'group: true' (merge clusters of experts), not both");
        if ((c == "output_change" || p.Bool("group")) && p.Has("frequencies") && !p.Has("calibration"))
            p.Add("frequencies", $"{(p.Bool("group") ? "group" : "criterion output_change")} needs 'calibration' text (the MoE block inputs), not only 'frequencies'");
    }

    public override ISurgeryJob? Prepare(Recipe recipe, InputModel baseModel, RecipeProblems problems)
    {
        var p = new SurgeryParams(recipe, problems);
        var m = Layout(recipe, baseModel, problems);
        if (m == null) return null;
        int? n = p.Int("num_experts", 1, m.Experts, $"experts kept per layer; the model has {m.Experts}");
        var criterion = p.Choice("criterion", Criteria);
        bool group = p.Bool("group");
        int? perTok = p.Int("experts_per_token", 1, n ?? m.Experts, "experts routed per token, at most num_experts");
        var (text, freqFile, tokens) = p.Calibration();
        bool needsInputs = group || criterion == "output_change";
        if (needsInputs && !p.Has("calibration"))
            problems.Add(recipe.MethodMark, $"moe_prune with {(group ? "group: true" : "criterion output_change")} needs 'calibration' (a text file, relative to the recipe)");
        else if (!p.Has("calibration") && !p.Has("frequencies"))
            problems.Add(recipe.MethodMark, "moe_prune by frequency needs routing frequencies: set 'calibration' (a text file, relative to the recipe) or 'frequencies' (a moe-stats --json file)");
        if (problems.Any || n == null || criterion == null) return null;
        var options = new MoePruneOptions
        {
            NumExperts = n.Value, Group = group, Selection = criterion == "output_change" ? PruneSelection.OutputChange : PruneSelection.Frequency,
            ExpertsPerToken = perTok, OutDType = p.OutDType, CardNote = p.CardNote(), RecipeText = recipe.Text, SourceLabel = baseModel.Text,
        };
        return new Job(m.Folder.Path, m, options, text, freqFile, tokens, needsInputs);
    }

    private sealed class Job(string source, MixtralLayout m, MoePruneOptions options, string? text, string? freqFile, int tokens, bool needsInputs) : ISurgeryJob
    {
        public IReadOnlyList<string> Describe()
        {
            var ci = CultureInfo.InvariantCulture;
            int n = options.NumExperts, perTok = options.ExpertsPerToken ?? Math.Min(m.Config.NumExpertsPerTok, n);
            long parameters = m.Carried.Sum(x => m.Folder.Info(x).ElementCount) + (long)m.Layers * n * (3L * m.Intermediate * m.Hidden + m.Hidden);
            string how = options.Group ? "clusters of similar experts (mean output on the calibration tokens, average linkage on cosine distance) merged with frequency weights"
                : options.Selection == PruneSelection.OutputChange ? "the experts whose removal changes the MoE block output least on the calibration tokens"
                : "the most frequently routed experts";
            return
            [
                $"surgery:  moe_prune to {n} experts per layer: {how}",
                $"source:   {DescribeSource(m)}",
                $"output:   MixtralForCausalLM, num_local_experts {n}, num_experts_per_tok {perTok}, {parameters.ToString("N0", ci)} parameters, dtype {options.OutDType?.ToTorchName() ?? $"{m.ExpertDType} (as stored)"}",
                $"routing:  {RoutingSource(text, freqFile, tokens)}",
                $"carried:  {m.Carried.Count} tensors copied; router rows of kept experts kept in order (merged clusters: frequency-weighted rows)",
            ];
        }

        public string Run(string destination, ExecuteOptions eo)
        {
            double[][]? freq = freqFile != null ? FrequencyTable.Load(freqFile, m.Layers, m.Experts) : null;
            MoeCalibration? cal = null;
            if (needsInputs)
            {
                cal = MoeForwardPass.Calibrate(source, MoeForwardPass.Tokens(source, text!, tokens), token: eo.Cancellation);
                freq ??= cal.Routing.SelectionFrequencyTable();
            }
            else if (freq == null)
                freq = MoeForwardPass.Routing(source, MoeForwardPass.Tokens(source, text!, tokens), token: eo.Cancellation).SelectionFrequencyTable();
            MoeSurgeryResult r;
            using (cal) r = MoePrune.Run(source, destination, options with { Frequencies = freq, Calibration = cal, Writer = Writer(eo), CopyTokenizer = eo.CopyTokenizer }, eo.Cancellation);
            return $"wrote {destination}: Mixtral with {options.NumExperts} experts per layer, {r.Parameters.ToString("N0", CultureInfo.InvariantCulture)} parameters; "
                + string.Join("; ", r.LayerNotes);
        }
    }
}
