namespace Mistral.Merge.Inference;

/// <summary>
/// Receives, for every decoder layer of every forward call, the layer's input: the residual stream before the
/// layer's input RMSNorm (float32 [tokens, hidden]), which is HF's <c>output_hidden_states[layer]</c> (entry 0 is
/// the token embedding). Used by <c>moe-build</c>'s <c>hidden</c> gates. The span is only valid during the call.
/// </summary>
public interface ILayerInputObserver
{
    void ObserveLayerInput(int layer, ReadOnlySpan<float> hidden, int tokens);
}
