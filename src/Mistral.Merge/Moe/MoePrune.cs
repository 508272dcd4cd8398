using Mistral.Merge.IO;
using Mistral.Merge.Models;

namespace Mistral.Merge.Moe;

public enum PruneSelection { Frequency, OutputChange }

public sealed record MoePruneOptions : SurgeryOutputOptions
{
    public int NumExperts { get; init; }
    public PruneSelection Selection { get; init; } = PruneSelection.Frequency;
    /// <summary>Merge clusters of similar experts instead of dropping experts.</summary>
    public bool Group { get; init; }
    /// <summary>Routing frequency [layer][expert]; computed from <see cref="Calibration"/> when null.</summary>
    public double[][]? Frequencies { get; init; }
    /// <summary>MoE block inputs on calibration text; needed by output-change selection and by grouping.</summary>
    public IMoeCalibrationSource? Calibration { get; init; }
    /// <summary>Experts per token in the output (default min(original, N)).</summary>
    public int? ExpertsPerToken { get; init; }
}

/// <summary>
/// Mixtral → Mixtral with fewer experts per layer. Kept experts are renumbered 0..N-1 in ascending
/// original order and the router keeps exactly their rows in the same order (so routing among the kept
/// experts is unchanged); with <c>group</c> every cluster becomes one expert (<see cref="ExpertGrouping"/>).
/// </summary>
public static class MoePrune
{
    /// <summary>Per layer: the original experts that make up each output expert (singletons unless grouping).</summary>
    public static List<int[]>[] Plan(MixtralLayout m, MoePruneOptions o, double[][] frequencies)
    {
        var result = new List<int[]>[m.Layers];
        for (int l = 0; l < m.Layers; l++)
        {
            if (!o.Group && o.Selection == PruneSelection.Frequency)
            {
                result[l] = ExpertSelection.ByFrequency(frequencies[l], o.NumExperts).Select(e => new[] { e }).ToList();
                continue;
            }
            var x = o.Calibration!.MoeInputs(l, out int tokens);
            if (x.Length != (long)tokens * m.Hidden) throw new MergeException($"calibration: layer {l} inputs hold {x.Length} values for {tokens} tokens × hidden {m.Hidden}");
            var experts = m.ReadExperts(l);
            int threads = o.Threads > 0 ? o.Threads : -1;
            var outputs = experts.Select(e => MoeBlock.ExpertOutput(e, x, tokens, threads)).ToArray();
            if (o.Group)
                result[l] = ExpertGrouping.Cluster(ExpertGrouping.MeanOutputs(outputs, tokens, m.Hidden), o.NumExperts);
            else
            {
                var logits = MoeBlock.RouterLogits(x, tokens, m.ReadRouter(l), m.Experts, m.Hidden, threads);
                result[l] = ExpertSelection.ByOutputChange(outputs, logits, tokens, m.Experts, m.Hidden, m.Config.NumExpertsPerTok, o.NumExperts)
                    .Select(e => new[] { e }).ToList();
            }
        }
        return result;
    }

    public static MoeSurgeryResult Run(string source, string destination, MoePruneOptions o, CancellationToken token = default)
    {
        using var folder = ModelFolder.Open(source);
        var m = new MixtralLayout(folder);
        if (o.NumExperts < 1 || o.NumExperts > m.Experts) throw new MergeException($"moe_prune: num_experts {o.NumExperts} must be between 1 and {m.Experts}");
        int perTok = o.ExpertsPerToken ?? Math.Min(m.Config.NumExpertsPerTok, o.NumExperts);
        if (perTok < 1 || perTok > o.NumExperts) throw new MergeException($"moe_prune: experts per token {perTok} must be between 1 and num_experts {o.NumExperts}");
        if ((o.Group || o.Selection == PruneSelection.OutputChange) && o.Calibration == null)
            throw new MergeException($"moe_prune: {(o.Group ? "group" : "output-change selection")} needs calibration text");
        if (o.Calibration != null && (o.Calibration.Layers != m.Layers || o.Calibration.Hidden != m.Hidden))
            throw new MergeException($"moe_prune: calibration has {o.Calibration.Layers} layers × hidden {o.Calibration.Hidden}, the model {m.Layers} × {m.Hidden}");
        var freq = o.Frequencies ?? (o.Calibration != null ? RouterStatisticsRunner.FromInputs(o.Calibration, m).SelectionFrequencyTable()
            : throw new MergeException("moe_prune: needs routing frequencies (calibration text or a frequency file)"));
        if (freq.Length != m.Layers || freq.Any(r => r.Length != m.Experts)) throw new MergeException($"moe_prune: frequency table must be {m.Layers} layers × {m.Experts} experts");
        CheckpointWriter.CheckDestination(destination, o.Writer.Force);
        var plan = Plan(m, o, freq);

        DType expertOut = o.OutDType ?? m.ExpertDType;
        var tensors = CheckpointOutput.PlanCarried(folder, m, o.OutDType);
        for (int l = 0; l < m.Layers; l++)
        {
            tensors.Add(new PlannedTensor(m.RouterName(l), CheckpointOutput.CarriedDType(folder.Info(m.RouterName(l)), o.OutDType), [o.NumExperts, m.Hidden]));
            for (int e = 0; e < o.NumExperts; e++)
            {
                tensors.Add(new PlannedTensor(m.ExpertName(l, e, "w1"), expertOut, [m.Intermediate, m.Hidden]));
                tensors.Add(new PlannedTensor(m.ExpertName(l, e, "w2"), expertOut, [m.Hidden, m.Intermediate]));
                tensors.Add(new PlannedTensor(m.ExpertName(l, e, "w3"), expertOut, [m.Intermediate, m.Hidden]));
            }
        }
        tensors.Sort((a, b) => m.Names.Compare(a.Name, b.Name));
        using var w = new CheckpointWriter(destination, tensors, o.Writer);
        foreach (var n in m.Carried) CheckpointOutput.Carry(folder, w, n, CheckpointOutput.CarriedDType(folder.Info(n), o.OutDType));
        var notes = new List<string>();
        for (int l = 0; l < m.Layers; l++)
        {
            token.ThrowIfCancellationRequested();
            var groups = plan[l];
            var router = m.ReadRouter(l);
            var newRouter = ExpertGrouping.MergeRouter(router, m.Hidden, groups, freq[l]);
            CheckpointOutput.WriteFloats(w, m.RouterName(l), newRouter, CheckpointOutput.CarriedDType(folder.Info(m.RouterName(l)), o.OutDType));
            var experts = new ExpertWeights?[m.Experts];
            for (int g = 0; g < groups.Count; g++)
            {
                foreach (var e in groups[g]) experts[e] ??= m.ReadExpert(l, e);
                var merged = ExpertGrouping.MergeCluster(experts!, groups[g], freq[l]);
                CheckpointOutput.WriteFloats(w, m.ExpertName(l, g, "w1"), merged.W1, expertOut);
                CheckpointOutput.WriteFloats(w, m.ExpertName(l, g, "w2"), merged.W2, expertOut);
                CheckpointOutput.WriteFloats(w, m.ExpertName(l, g, "w3"), merged.W3, expertOut);
            }
            notes.Add($"layer {l}: " + string.Join(" ", groups.Select(g => g.Length == 1 ? $"{g[0]}" : $"({string.Join("+", g)})")));
            o.Progress?.Invoke(l + 1, m.Layers);
        }
        long parameters = tensors.Sum(p => p.ElementCount);
        folder.CheckUnchanged();
        CheckpointOutput.Finish(w, source, folder.Path, o, MoeConfigs.Pruned(m.Config, o.NumExperts, perTok, o.OutDType?.ToTorchName()),
            $"moe_prune to {o.NumExperts} experts{(o.Group ? " (grouped)" : "")}", parameters,
            (o.CardNote ?? "") + "\n\nKept experts per layer:\n\n" + string.Join("\n", notes.Select(n => "- " + n)) + "\n");
        return new MoeSurgeryResult(destination, parameters, m.Intermediate, o.NumExperts, notes);
    }
}
