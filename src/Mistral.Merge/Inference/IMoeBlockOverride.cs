namespace Mistral.Merge.Inference;

/// <summary>
/// Replaces an MoE block's output (MoE surgery's sequential refit: layers already converted run their dense MLP,
/// layers after the one being measured are skipped). Called after <see cref="IMoeObserver.Observe"/> with the same
/// block inputs; returning true means <paramref name="output"/> [tokens, hidden] holds the block's output and the
/// experts are not run.
/// </summary>
public interface IMoeBlockOverride
{
    bool Replace(int layer, ReadOnlySpan<float> inputs, Span<float> output, int tokens);
}
