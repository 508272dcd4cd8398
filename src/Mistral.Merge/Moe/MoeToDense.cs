using Mistral.Merge.IO;
using Mistral.Merge.Merging;
using Mistral.Merge.Models;

namespace Mistral.Merge.Moe;

public enum DenseStrategy { Expert, Mean, Frequency, AlignedMean, Concat, Refit }

public sealed record MoeToDenseOptions : SurgeryOutputOptions
{
    public DenseStrategy Strategy { get; init; } = DenseStrategy.Mean;
    /// <summary><c>expert</c>: the expert kept in each layer (one entry per layer; a recipe gradient is resolved by the caller).</summary>
    public int[]? ExpertPerLayer { get; init; }
    /// <summary>Routing frequency [layer][expert]; required by <c>frequency</c>, used by <c>concat</c> (top-K) and <c>aligned_mean</c> (weights, reference).</summary>
    public double[][]? Frequencies { get; init; }
    /// <summary><c>concat</c>: how many experts to keep (null = all).</summary>
    public int? ConcatTopK { get; init; }
    /// <summary><c>aligned_mean</c>: weight the aligned experts by frequency (needs <see cref="Frequencies"/>).</summary>
    public bool AlignedFrequencyWeighted { get; init; }
    /// <summary><c>aligned_mean</c>: reference expert; default the most frequent one (ties → lower), else 0.</summary>
    public int? ReferenceExpert { get; init; }
    /// <summary><c>refit</c>: the least-squares refit settings (with the calibration token ids).</summary>
    public Refit.RefitOptions? Refit { get; init; }
}

public sealed record MoeSurgeryResult(string Destination, long Parameters, int Intermediate, int Experts, IReadOnlyList<string> LayerNotes);

/// <summary>
/// Mixtral → MistralForCausalLM: carried tensors are copied (or cast to the output dtype), routers dropped,
/// each layer's experts collapsed by <see cref="MoeStrategies"/> into <c>mlp.{gate,up,down}_proj</c>,
/// streamed layer by layer through <see cref="CheckpointWriter"/> (one layer's experts in memory as float32).
/// </summary>
public static class MoeToDense
{
    public static string StrategyName(DenseStrategy s) => s switch
    {
        DenseStrategy.Expert => "expert",
        DenseStrategy.Mean => "mean",
        DenseStrategy.Frequency => "frequency",
        DenseStrategy.AlignedMean => "aligned_mean",
        DenseStrategy.Refit => "refit",
        _ => "concat",
    };

    public static DenseStrategy ParseStrategy(string s, string where) => s switch
    {
        "expert" => DenseStrategy.Expert,
        "mean" or "uniform" => DenseStrategy.Mean,
        "frequency" => DenseStrategy.Frequency,
        "aligned_mean" or "aligned" => DenseStrategy.AlignedMean,
        "concat" => DenseStrategy.Concat,
        "refit" => DenseStrategy.Refit,
        _ => throw new MergeException($"{where}: unknown strategy '{s}' (expected expert, mean, frequency, aligned_mean, concat or refit)"),
    };

    /// <summary>Collapses one layer's experts (pure; also the entry point for the recipe engine).</summary>
    public static ExpertWeights CollapseLayer(IReadOnlyList<ExpertWeights> experts, int layer, MoeToDenseOptions o, ExpertAlignment? alignment = null)
    {
        double[]? f = o.Frequencies?[layer];
        switch (o.Strategy)
        {
            case DenseStrategy.Expert:
                return MoeStrategies.Expert(experts, o.ExpertPerLayer![layer]);
            case DenseStrategy.Mean:
                return MoeStrategies.Mean(experts);
            case DenseStrategy.Frequency:
                return MoeStrategies.WeightedMean(experts, f!, $"frequency (layer {layer})");
            case DenseStrategy.AlignedMean:
                int reference = o.ReferenceExpert ?? (f != null ? MostFrequent(f) : 0);
                return MoeStrategies.AlignedMean(experts, reference, o.AlignedFrequencyWeighted ? f : default, alignment);
            case DenseStrategy.Refit:
                throw new InvalidOperationException("refit layers are fitted by SequentialRefit, not collapsed one by one");
            default:
                int k = o.ConcatTopK ?? experts.Count;
                int[] chosen = k == experts.Count ? Enumerable.Range(0, k).ToArray()
                    : MoeStrategies.TopByFrequency(f ?? throw new MergeException("concat with a top-K needs routing frequencies (calibration)"), k);
                return MoeStrategies.Concat(experts, chosen);
        }
    }

    private static int MostFrequent(double[] f)
    {
        int best = 0;
        for (int e = 1; e < f.Length; e++) if (f[e] > f[best]) best = e;
        return best;
    }

    public static void Validate(MixtralLayout m, MoeToDenseOptions o)
    {
        string where = $"moe_to_dense ({StrategyName(o.Strategy)})";
        if (o.Frequencies != null)
        {
            if (o.Frequencies.Length != m.Layers) throw new MergeException($"{where}: frequency table has {o.Frequencies.Length} layers, the model has {m.Layers}");
            for (int l = 0; l < m.Layers; l++)
                if (o.Frequencies[l].Length != m.Experts) throw new MergeException($"{where}: frequency row of layer {l} has {o.Frequencies[l].Length} entries, the model has {m.Experts} experts");
        }
        switch (o.Strategy)
        {
            case DenseStrategy.Expert:
                if (o.ExpertPerLayer == null) throw new MergeException($"{where}: needs 'expert' (an index, or one per layer)");
                if (o.ExpertPerLayer.Length != m.Layers) throw new MergeException($"{where}: 'expert' gives {o.ExpertPerLayer.Length} values for {m.Layers} layers");
                for (int l = 0; l < m.Layers; l++)
                    if (o.ExpertPerLayer[l] < 0 || o.ExpertPerLayer[l] >= m.Experts)
                        throw new MergeException($"{where}: expert {o.ExpertPerLayer[l]} for layer {l} does not exist (the model has {m.Experts} experts)");
                break;
            case DenseStrategy.Frequency:
                if (o.Frequencies == null) throw new MergeException($"{where}: needs routing frequencies ('calibration' text or a frequency file)");
                break;
            case DenseStrategy.AlignedMean:
                if (o.AlignedFrequencyWeighted && o.Frequencies == null) throw new MergeException($"{where}: frequency weighting needs routing frequencies");
                if (o.ReferenceExpert is { } r && (r < 0 || r >= m.Experts)) throw new MergeException($"{where}: reference expert {r} does not exist");
                break;
            case DenseStrategy.Refit:
                if (o.Refit == null) throw new MergeException($"{where}: needs calibration text (the refit fits the MoE block outputs on it)");
                if (o.Refit.IntermediateSize is { } size && size < 1) throw new MergeException($"{where}: intermediate_size must be at least 1, got {size}");
                if (o.Refit.Ridge is { } ridge && !(ridge > 0 && double.IsFinite(ridge))) throw new MergeException($"{where}: ridge must be a positive number or auto, got {ridge}");
                break;
            case DenseStrategy.Concat:
                if (o.ConcatTopK is { } k && (k < 1 || k > m.Experts)) throw new MergeException($"{where}: cannot keep {k} of {m.Experts} experts");
                if (o.ConcatTopK is { } k2 && k2 < m.Experts && o.Frequencies == null) throw new MergeException($"{where}: keeping the top {k2} experts needs routing frequencies");
                break;
        }
    }

    public static MoeSurgeryResult Convert(string source, string destination, MoeToDenseOptions o, CancellationToken token = default)
    {
        using var folder = ModelFolder.Open(source);
        var m = new MixtralLayout(folder);
        Validate(m, o);
        CheckpointWriter.CheckDestination(destination, o.Writer.Force);
        // refit: every layer is fitted before anything is written (a failure leaves no output); the fitted layers wait
        // in a memory-mapped temporary file beside the output, removed when the store is disposed
        using var store = o.Strategy == DenseStrategy.Refit ? new Refit.FittedLayerStore(Path.GetDirectoryName(Path.GetFullPath(destination))!) : null;
        var fits = store != null ? Refit.SequentialRefit.Run(source, m, o.Refit!, o.Threads, store, token) : null;
        int wide = o.Strategy == DenseStrategy.Concat ? (o.ConcatTopK ?? m.Experts) * m.Intermediate
            : fits != null ? fits[0].Intermediate : m.Intermediate;
        DType expertOut = o.OutDType ?? m.ExpertDType;

        var dense = MoeConfigs.DenseOf(m.Names);
        var plan = CheckpointOutput.PlanCarried(folder, m, o.OutDType);
        for (int l = 0; l < m.Layers; l++)
        {
            plan.Add(new PlannedTensor(dense.Layer(l, dense.Gate!), expertOut, [wide, m.Hidden]));
            plan.Add(new PlannedTensor(dense.Layer(l, dense.Up!), expertOut, [wide, m.Hidden]));
            plan.Add(new PlannedTensor(dense.Layer(l, dense.Down!), expertOut, [m.Hidden, wide]));
        }
        plan.Sort((a, b) => dense.Compare(a.Name, b.Name));

        using var w = new CheckpointWriter(destination, plan, o.Writer);
        foreach (var n in m.Carried) CheckpointOutput.Carry(folder, w, n, CheckpointOutput.CarriedDType(folder.Info(n), o.OutDType));
        var alignment = new ExpertAlignment { MaxThreads = o.Threads > 0 ? o.Threads : -1 };
        var notes = new List<string>();
        for (int l = 0; l < m.Layers; l++)
        {
            token.ThrowIfCancellationRequested();
            if (store != null)
            {
                var fitted = store.Layer(l);
                CheckpointOutput.WriteFloats(w, dense.Layer(l, dense.Gate!), fitted.W1, expertOut);
                CheckpointOutput.WriteFloats(w, dense.Layer(l, dense.Up!), fitted.W3, expertOut);
                CheckpointOutput.WriteFloats(w, dense.Layer(l, dense.Down!), fitted.W2, expertOut);
            }
            else
            {
                var mlp = CollapseLayer(m.ReadExperts(l), l, o, alignment);
                CheckpointOutput.WriteFloats(w, dense.Layer(l, dense.Gate!), mlp.W1, expertOut);
                CheckpointOutput.WriteFloats(w, dense.Layer(l, dense.Up!), mlp.W3, expertOut);
                CheckpointOutput.WriteFloats(w, dense.Layer(l, dense.Down!), mlp.W2, expertOut);
            }
            if (fits != null)
                notes.Add(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"layer {l}: relative reconstruction error {fits[l].InitialError:F4} (w2 solved), {fits[l].FinalError:F4} after {fits[l].AcceptedSteps} refinement step(s), λ {fits[l].Lambda:G3}"));
            if (o.Strategy == DenseStrategy.AlignedMean)
                notes.Add($"layer {l}: similarity {alignment.LastSimilaritySeconds:F2} s, assignment {alignment.LastAssignmentSeconds:F2} s per expert (last)");
            o.Progress?.Invoke(l + 1, m.Layers);
        }
        long parameters = plan.Sum(p => p.ElementCount);
        folder.CheckUnchanged();
        CheckpointOutput.Finish(w, source, folder.Path, o, MoeConfigs.ToDense(m.Config, wide, o.OutDType?.ToTorchName()),
            $"moe_to_dense, strategy {StrategyName(o.Strategy)}", parameters, o.CardNote);
        return new MoeSurgeryResult(destination, parameters, wide, 0, notes);
    }

    internal static string ModelCard(string source, string what, long parameters, string? note) =>
        $"""
        ---
        tags:
        - merge
        - mistral-merge
        - moe-surgery
        ---
        # {CardText.Inline(Path.GetFileName(Path.GetFullPath(source).TrimEnd('/')))} — {CardText.Inline(what)}

        Made with `mistral-merge` MoE surgery from {CardText.Code(source)}.

        Parameters: {parameters:N0}

        {note ?? ""}
        """;
}
