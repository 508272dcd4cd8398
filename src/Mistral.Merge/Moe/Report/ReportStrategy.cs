using System.Globalization;

namespace Mistral.Merge.Moe.Report;

public enum ReportKind { Expert, Mean, Frequency, AlignedMean, AlignedWeighted, Concat, Prune, PruneOutput, Group, Refit }

/// <summary>
/// One strategy of <c>moe-report</c>: <c>expert:N</c>, <c>mean</c>, <c>frequency</c>, <c>aligned_mean</c>,
/// <c>aligned_mean:weighted</c>, <c>concat</c>, <c>concat:K</c>, <c>prune:N</c>, <c>prune:N:output_change</c> (also <c>prune:N:output</c>), <c>group:N</c>,
/// <c>refit[:INIT[:STEPS]]</c> (least-squares refit on the calibration text, init mean by default, STEPS refinement steps, ridge auto).
/// Its options are a pure function of the spec and, where <see cref="NeedsFrequencies"/>, of the routing
/// frequencies on the calibration text, so a result is cached under (model, spec, text[, calibration]).
/// </summary>
public sealed record ReportStrategy(ReportKind Kind, int N, string Text)
{
    /// <summary><c>refit</c>: the init of w1/w3.</summary>
    public Refit.RefitInit Init { get; init; }
    /// <summary>Fitted on the calibration text (its ids are part of the cache key).</summary>
    public bool NeedsCalibrationText => Kind == ReportKind.Refit;

    public bool NeedsFrequencies => Kind is ReportKind.Frequency or ReportKind.AlignedWeighted or ReportKind.Prune or ReportKind.PruneOutput or ReportKind.Group
                                    || (Kind == ReportKind.Concat && N > 0);
    public bool NeedsInputs => Kind is ReportKind.PruneOutput or ReportKind.Group;
    public bool IsPrune => Kind is ReportKind.Prune or ReportKind.PruneOutput or ReportKind.Group;

    public static List<ReportStrategy> ParseList(string list, int experts)
    {
        var r = new List<ReportStrategy>();
        foreach (var item in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var s = Parse(item, experts);
            if (r.Contains(s)) throw new MergeException($"--strategies: '{item}' is listed twice");
            r.Add(s);
        }
        if (r.Count == 0) throw new MergeException("--strategies: no strategy given");
        return r;
    }

    public static ReportStrategy Parse(string item, int experts)
    {
        var parts = item.Split(':');
        int Num(int i, int min, int max, string what)
        {
            if (parts.Length <= i || !int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
                throw new MergeException($"--strategies: '{item}': {what} must be an integer from {min} to {max}");
            return v;
        }
        void Arity(int n) { if (parts.Length != n) throw new MergeException($"--strategies: '{item}' has {parts.Length - 1} argument(s), expected {n - 1}"); }
        switch (parts[0])
        {
            case "expert": Arity(2); int e = Num(1, 0, experts - 1, "the expert"); return new(ReportKind.Expert, e, $"expert:{e}");
            case "mean": Arity(1); return new(ReportKind.Mean, 0, "mean");
            case "frequency": Arity(1); return new(ReportKind.Frequency, 0, "frequency");
            case "aligned_mean" when parts.Length == 1: return new(ReportKind.AlignedMean, 0, "aligned_mean");
            case "aligned_mean" when parts is [_, "weighted"]: return new(ReportKind.AlignedWeighted, 0, "aligned_mean:weighted");
            case "aligned_mean": throw new MergeException($"--strategies: '{item}': expected aligned_mean or aligned_mean:weighted");
            case "concat" when parts.Length == 1: return new(ReportKind.Concat, 0, "concat");
            case "concat":
                Arity(2); int k = Num(1, 1, experts, "the number of experts kept");
                return k == experts ? new(ReportKind.Concat, 0, "concat") : new(ReportKind.Concat, k, $"concat:{k}");
            // output_change: the criterion as recipes and moe-convert spell it; "output" still parses (and names the cache entry)
            case "prune" when parts.Length == 3 && parts[2] is "output_change" or "output": return new(ReportKind.PruneOutput, Num(1, 1, experts, "the number of experts kept"), $"prune:{parts[1]}:output");
            case "prune": Arity(2); int n = Num(1, 1, experts, "the number of experts kept"); return new(ReportKind.Prune, n, $"prune:{n}");
            case "refit":
                if (parts.Length > 3) throw new MergeException($"--strategies: '{item}': expected refit[:INIT[:STEPS]]");
                var init = Refit.RefitOptions.ParseInit(parts.Length > 1 ? parts[1] : "mean");
                int steps = parts.Length > 2 ? Num(2, 0, 1000, "the refinement steps") : 0;
                return new(ReportKind.Refit, steps, $"refit:{Refit.RefitOptions.InitName(init)}:{steps}") { Init = init };
            case "group": Arity(2); int g = Num(1, 1, experts, "the number of groups"); return new(ReportKind.Group, g, $"group:{g}");
            default:
                throw new MergeException($"--strategies: unknown strategy '{item}' (expected expert:N, mean, frequency, aligned_mean[:weighted], concat[:K], prune:N[:output_change], group:N, refit[:INIT[:STEPS]])");
        }
    }

    /// <summary>What the strategy does, for the report's "parameters" column.</summary>
    public string Describe(int experts) => Kind switch
    {
        ReportKind.Expert => $"expert {N} of every layer",
        ReportKind.Mean => $"uniform mean of {experts} experts",
        ReportKind.Frequency => "mean weighted by routing frequency",
        ReportKind.AlignedMean => "units aligned to expert 0, uniform mean",
        ReportKind.AlignedWeighted => "units aligned to the most routed expert, frequency-weighted mean",
        ReportKind.Concat => N == 0 ? $"all {experts} experts side by side" : $"top {N} experts by frequency side by side",
        ReportKind.Prune => $"keep the {N} most routed experts",
        ReportKind.PruneOutput => $"keep the {N} experts changing the block output least",
        ReportKind.Refit => $"w2 fitted by ridge least squares on calibration (init {Refit.RefitOptions.InitName(Init)}, {N} refinement steps)",
        _ => $"merge experts into {N} clusters",
    };

    public MoeToDenseOptions DenseOptions(int layers, double[][]? freq) => Kind switch
    {
        ReportKind.Expert => new() { Strategy = DenseStrategy.Expert, ExpertPerLayer = Enumerable.Repeat(N, layers).ToArray() },
        ReportKind.Mean => new() { Strategy = DenseStrategy.Mean },
        ReportKind.Frequency => new() { Strategy = DenseStrategy.Frequency, Frequencies = freq },
        ReportKind.AlignedMean => new() { Strategy = DenseStrategy.AlignedMean, ReferenceExpert = 0 },
        ReportKind.AlignedWeighted => new() { Strategy = DenseStrategy.AlignedMean, Frequencies = freq, AlignedFrequencyWeighted = true },
        ReportKind.Concat => new() { Strategy = DenseStrategy.Concat, ConcatTopK = N == 0 ? null : N, Frequencies = N == 0 ? null : freq },
        ReportKind.Refit => new() { Strategy = DenseStrategy.Refit },
        _ => throw new InvalidOperationException("not a dense strategy"),
    };

    public MoePruneOptions PruneOptions(double[][] freq, IMoeCalibrationSource? cal) => new()
    {
        NumExperts = N, Frequencies = freq, Calibration = cal,
        Group = Kind == ReportKind.Group, Selection = Kind == ReportKind.PruneOutput ? PruneSelection.OutputChange : PruneSelection.Frequency,
    };
}
