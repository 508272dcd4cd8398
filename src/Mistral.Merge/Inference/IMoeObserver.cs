namespace Mistral.Merge.Inference;

/// <summary>
/// Receives, for every MoE layer of every forward call, the block's inputs (the post-attention RMSNorm
/// output, float32 [tokens, hidden]) and its router logits (float32 [tokens, experts]) exactly as the
/// forward pass routes them. The spans are only valid during the call.
/// </summary>
public interface IMoeObserver
{
    void Observe(int layer, ReadOnlySpan<float> inputs, ReadOnlySpan<float> routerLogits, int tokens);
}
